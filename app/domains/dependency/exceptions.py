from __future__ import annotations

from app.core.constraints import Constraints
from app.core.errors import ValidationFailed


class SelfDependency(ValidationFailed):
    def __init__(self) -> None:
        super().__init__(
            "A process cannot depend on itself.",
            extra={
                "errors": [
                    {
                        "loc": ["body"],
                        "msg": "a process cannot depend on itself",
                        "type": "self_dependency",
                    }
                ]
            },
        )


class RepeatedDependency(ValidationFailed):
    def __init__(self, process_ids: list[int]) -> None:
        named = ", ".join(map(str, process_ids))
        super().__init__(
            f"Each process may appear once; repeated: {named}.",
            extra={
                "errors": [
                    {
                        "loc": ["body"],
                        "msg": "repeated process ids",
                        "type": "repeated_ids",
                        "repeated": process_ids,
                    }
                ]
            },
        )


CONSTRAINTS: Constraints = {"ck_process_dependencies_not_self": lambda _: SelfDependency()}

from __future__ import annotations

from app.core.errors import Conflict, NotFound


class DepartmentNotFound(NotFound):
    pass


class DepartmentCodeTaken(Conflict):
    def __init__(self, code: str) -> None:
        super().__init__(f"A department with code {code!r} already exists.")


class DepartmentNameTaken(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"A department named {name!r} already exists under the same parent (names ignore case)."
        )

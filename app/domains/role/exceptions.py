from __future__ import annotations

from app.core.constraints import Constraints
from app.core.errors import Conflict, NotFound


class RoleNotFound(NotFound):
    pass


class RoleNameTaken(Conflict):
    def __init__(self) -> None:
        super().__init__("A role with this name already exists (names ignore case).")


class RoleInUse(Conflict):
    def __init__(self, role_id: int, holders: int) -> None:
        super().__init__(
            f"Role {role_id} is held by {holders} user(s); take it away from them first."
        )


CONSTRAINTS: Constraints = {"uq_roles_name_lower": lambda _: RoleNameTaken()}

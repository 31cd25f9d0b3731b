from __future__ import annotations

from app.core.constraints import Constraints
from app.core.errors import Conflict, NotFound
from app.domains.department.models import Department


class DepartmentNotFound(NotFound):
    pass


class DepartmentCodeTaken(Conflict):
    def __init__(self, code: str | None) -> None:
        which = "the same code" if code is None else f"code {code!r}"
        super().__init__(f"A department with {which} already exists.")


class DepartmentNameTaken(Conflict):
    def __init__(self, name: str | None) -> None:
        which = "with the same name" if name is None else f"named {name!r}"
        super().__init__(
            f"A department {which} already exists under the same parent (names ignore case)."
        )


CONSTRAINTS: Constraints = {
    "uq_departments_code": lambda written: DepartmentCodeTaken(written.get(Department, "code")),
    "uq_departments_parent_id_name": lambda written: DepartmentNameTaken(
        written.get(Department, "name")
    ),
}

from __future__ import annotations

from app.core.constraints import ConstraintError, Constraints, Written
from app.core.errors import AppError, Conflict, NotFound, ValidationFailed
from app.domains.user.models import User


class UserNotFound(NotFound):
    pass


class EmailTaken(Conflict):
    def __init__(self) -> None:
        super().__init__("A user with this email already exists.")


class WrongPassword(ValidationFailed):
    def __init__(self) -> None:
        super().__init__("The current password is not correct.")


class UserIsAuthor(Conflict):
    def __init__(self, user_id: int) -> None:
        super().__init__(
            f"User {user_id} created records that name them as author; "
            "deactivate the account (PATCH is_active=false) instead of deleting it."
        )


class UserStillReferenced(Conflict):
    def __init__(self, user_id: int) -> None:
        super().__init__(
            f"User {user_id} is still referenced (as a manager or process owner); "
            "reassign those records or deactivate the account instead."
        )


def _deleting(error: type[UserIsAuthor | UserStillReferenced]) -> ConstraintError:
    """`error` when the row written was a user (being deleted) that a row still names.

    Another row naming a user who no longer exists breaks the same constraint: that write
    gets the generic answer of a broken foreign key.
    """

    def factory(written: Written) -> AppError | None:
        user_id = written.get(User, "id")
        return None if user_id is None else error(user_id)

    return factory


# Every RESTRICT foreign key to users.id (user_roles and refresh_tokens cascade): the author
# of every EntityMixin row, and the manager of a department or the owner of a process.
CONSTRAINTS: Constraints = {
    "uq_users_email": lambda _: EmailTaken(),
    "fk_*_created_by_id_users": _deleting(UserIsAuthor),
    "fk_departments_manager_id_users": _deleting(UserStillReferenced),
    "fk_processes_owner_id_users": _deleting(UserStillReferenced),
}

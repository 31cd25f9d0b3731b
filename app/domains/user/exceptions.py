from __future__ import annotations

from app.core.errors import Conflict, NotFound, ValidationFailed


class UserNotFound(NotFound):
    pass


class EmailTaken(Conflict):
    def __init__(self) -> None:
        super().__init__("A user with this email already exists.")


class WrongPassword(ValidationFailed):
    def __init__(self) -> None:
        super().__init__("The current password is not correct.")

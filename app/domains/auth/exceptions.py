from __future__ import annotations

from app.core.errors import Unauthorized


class InvalidCredentials(Unauthorized):
    """One answer for an unknown email, a wrong password and an inactive account."""

    def __init__(self) -> None:
        super().__init__("Incorrect email or password.")


class InvalidRefreshToken(Unauthorized):
    def __init__(self) -> None:
        super().__init__("The refresh token is invalid, expired or revoked.")


class RefreshTokenReused(InvalidRefreshToken):
    """A rotated token came back: its family is revoked, and that revocation must commit."""

    keep_changes = True

from __future__ import annotations

from app.core.errors import Forbidden, NotFound, Unauthorized


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


class ApiTokenNotFound(NotFound):
    """Also the answer for someone else's token: its existence is not revealed."""

    def __init__(self, token_id: int) -> None:
        super().__init__(f"API token {token_id} does not exist.")


class RefusedToApiTokens(Forbidden):
    """What only a person signed in with a password may do: API tokens are for automation."""

    def __init__(self, action: str) -> None:
        super().__init__(f"API tokens cannot {action}; sign in with a password to do that.")

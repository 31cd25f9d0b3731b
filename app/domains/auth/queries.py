"""The read side of auth: what PostgreSQL says a user may do, and their API tokens."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import Keyset, PageParams, PageResult, fetch_page
from app.domains.auth.exceptions import ApiTokenNotFound
from app.domains.auth.models import ApiToken
from app.domains.auth.permissions import PERMISSIONS
from app.domains.auth.principal import Principal
from app.domains.auth.schemas import ApiTokenRead
from app.domains.auth.token_state import ApiTokenRecord, Authorization
from app.domains.role.models import Role
from app.domains.user.models import User, user_roles

api_token_keyset = Keyset(
    ApiToken.id,
    {
        "name": ApiToken.name,
        "created_at": ApiToken.created_at,
        "expires_at": ApiToken.expires_at,
    },
)


async def load_authorization(session: AsyncSession, user_id: int) -> Authorization | None:
    """The user's flags and the union of their roles' permissions, from PostgreSQL."""
    user = (
        await session.execute(select(User.is_active, User.is_superuser).where(User.id == user_id))
    ).one_or_none()
    if user is None:
        return None
    rows = await session.scalars(
        select(Role.permissions)
        .join(user_roles, user_roles.c.role_id == Role.id)
        .where(user_roles.c.user_id == user_id)
    )
    granted = frozenset(p for permissions in rows for p in permissions) & PERMISSIONS
    return Authorization(
        is_active=user.is_active, is_superuser=user.is_superuser, permissions=granted
    )


async def api_token_record(session: AsyncSession, token_hash: str) -> ApiTokenRecord | None:
    """The unrevoked API token with this hash, as the token check caches it."""
    row = (
        await session.execute(
            select(ApiToken.id, ApiToken.user_id, ApiToken.permissions, ApiToken.expires_at).where(
                ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None)
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return ApiTokenRecord(
        id=row.id,
        user_id=row.user_id,
        permissions=frozenset(row.permissions),
        expires_at=row.expires_at.timestamp(),
    )


async def count_live_api_tokens_locked(session: AsyncSession, user_id: int) -> int:
    """The user's unrevoked, unexpired API tokens, their account row locked first.

    `FOR NO KEY UPDATE`: two creators for one account queue on it, so neither counts before
    the other's token is there; the token's own foreign key (`FOR KEY SHARE`) still passes.
    """
    await session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))
    live = select(func.count()).where(
        ApiToken.user_id == user_id,
        ApiToken.revoked_at.is_(None),
        ApiToken.expires_at > func.now(),
    )
    return int((await session.execute(live)).scalar_one())


async def get_api_token_for_update(
    session: AsyncSession, token_id: int, *, actor: Principal
) -> ApiToken:
    """The caller's unrevoked token (anyone's, for a superuser), locked; else ApiTokenNotFound."""
    statement = select(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
    if not actor.is_superuser:
        statement = statement.where(ApiToken.user_id == actor.user_id)
    token = (await session.scalars(statement.with_for_update())).one_or_none()
    if token is None:
        raise ApiTokenNotFound(token_id)
    return token


async def list_api_tokens(
    session: AsyncSession, *, user_id: int, page: PageParams
) -> PageResult[ApiTokenRead]:
    """A page of one user's unrevoked API tokens (expired ones included)."""
    statement = select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    result = await fetch_page(session, statement, api_token_keyset, page)
    items = [ApiTokenRead.model_validate(token) for token in result.items]
    return PageResult(items, result.next_cursor, result.total)

"""The first superuser, created when none exists (safe with many workers starting at once)."""

from __future__ import annotations

import logging

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domains.auth.context import AuthContext
from app.domains.user import service as user_service
from app.domains.user.models import User
from app.domains.user.schemas import UserCreate

logger = logging.getLogger("app.bootstrap")
BOOTSTRAP_LOCK_ID = 0x70A7_5E1


async def ensure_superuser(
    sessionmaker: async_sessionmaker[AsyncSession],
    auth: AuthContext,
    *,
    email: str,
    password: str,
    full_name: str = "Administrator",
) -> bool:
    """Create a superuser unless one exists; True when this call created it."""
    async with sessionmaker() as session, session.begin():
        # Workers race here at start-up: the transaction-scoped lock lets one through at a time.
        await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": BOOTSTRAP_LOCK_ID})
        if await session.scalar(select(User.id).where(User.is_superuser).limit(1)) is not None:
            return False
        await user_service.create(
            session,
            data=UserCreate(email=email, full_name=full_name, password=password, is_superuser=True),
            actor=None,
            auth=auth,
        )
    logger.info("first superuser created", extra={"email": email.lower()})
    return True

"""Delegation: nobody acts on an account, or a role, holding more than they hold themselves.

An actor may create, change, deactivate or delete a user, or set their password, only when
that user's effective permissions, before and after the write, are a subset of the actor's
own; only a superuser acts on a superuser or grants superuser status. Assigning roles and
managing a role follow the same rule for the permissions the roles carry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from app.core.errors import Forbidden


class Holder(Protocol):
    """Whoever holds permissions: a signed-in principal, or a user's stored authorization."""

    @property
    def is_superuser(self) -> bool: ...

    @property
    def permissions(self) -> frozenset[str]: ...


def ensure_within(
    actor: Holder, *, permissions: Iterable[str], superuser: bool = False, action: str
) -> None:
    """Refuse `action` unless the actor holds all of `permissions` (and `superuser`, if set)."""
    if actor.is_superuser:
        return
    if superuser:
        raise Forbidden(
            f"You cannot {action}: only a superuser acts on a superuser or grants that status."
        )
    missing = sorted(set(permissions) - actor.permissions)
    if missing:
        raise Forbidden(
            f"You cannot {action}: it involves permissions you do not hold: {', '.join(missing)}."
        )

"""Small async builders of valid rows, committed so the API sees them."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.auth.context import AuthContext
from app.domains.department.models import Department
from app.domains.location.models import Location, LocationKind
from app.domains.resource.models import Resource, ResourceKind
from app.domains.role.models import Role
from app.domains.user.models import User, user_roles

PASSWORD = "correct horse battery staple"
_sequence = itertools.count(1)


class Factory:
    def __init__(self, session: AsyncSession, auth: AuthContext) -> None:
        self.session = session
        self.auth = auth
        self._hash: str | None = None

    async def password_hash(self) -> str:
        if self._hash is None:
            self._hash = await self.auth.passwords.hash(PASSWORD)
        return self._hash

    async def role(
        self, *, permissions: Iterable[str] = (), name: str | None = None, commit: bool = True
    ) -> Role:
        role = Role(
            name=name or f"Role {next(_sequence)}-{uuid.uuid4().hex[:6]}",
            permissions=sorted(set(permissions)),
        )
        self.session.add(role)
        await self.session.flush()
        if commit:
            await self.session.commit()
        return role

    async def user(
        self,
        *,
        permissions: Iterable[str] = (),
        superuser: bool = False,
        active: bool = True,
        email: str | None = None,
        full_name: str | None = None,
        roles: Iterable[Role] = (),
    ) -> User:
        number = next(_sequence)
        user = User(
            email=email or f"user{number}-{uuid.uuid4().hex[:6]}@example.com",
            full_name=full_name or f"User {number}",
            is_superuser=superuser,
            is_active=active,
            password_hash=await self.password_hash(),
        )
        self.session.add(user)
        await self.session.flush()
        role_list = list(roles)
        permissions = list(permissions)
        if permissions:
            role_list.append(await self.role(permissions=permissions, commit=False))
        if role_list:
            await self.session.execute(
                user_roles.insert(), [{"user_id": user.id, "role_id": r.id} for r in role_list]
            )
        await self.session.commit()
        return user

    def headers(self, user: User) -> dict[str, str]:
        """A bearer header for `user` (a token as the login would issue it)."""
        token, _ = self.auth.tokens.issue(user.id, uuid.uuid4().hex)
        return {"Authorization": f"Bearer {token}"}

    async def department(
        self, *, parent: Department | None = None, name: str | None = None
    ) -> Department:
        department = Department(
            name=name or f"Department {next(_sequence)}", parent_id=parent.id if parent else None
        )
        self.session.add(department)
        await self.session.commit()
        return department

    async def location(
        self, *, parent: Location | None = None, name: str | None = None
    ) -> Location:
        location = Location(
            name=name or f"Location {next(_sequence)}",
            kind=LocationKind.SITE if parent is None else LocationKind.BUILDING,
            parent_id=parent.id if parent else None,
        )
        self.session.add(location)
        await self.session.commit()
        return location

    async def resource(self, *, name: str | None = None) -> Resource:
        resource = Resource(name=name or f"Resource {next(_sequence)}", kind=ResourceKind.SYSTEM)
        self.session.add(resource)
        await self.session.commit()
        return resource

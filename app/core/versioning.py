"""ETags from row versions: If-Match preconditions on writes, If-None-Match on reads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.changes import Omittable
from app.core.database import EntityMixin
from app.core.errors import PreconditionFailed

ANY = -1


def etag(version: int) -> str:
    return f'W/"{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


def named_versions(header: str) -> list[int]:
    """The versions a list of entity tags names (`W/"3", "4"`); `[ANY]` for `*`.

    Weak comparison (RFC 9110): `W/"3"` and `"3"` both name version 3. A tag we could
    never have sent names nothing.
    """
    versions: list[int] = []
    for raw in header.split(","):
        tag = raw.strip()
        if tag == "*":
            return [ANY]
        tag = tag.removeprefix("W/").strip('"')
        if tag.isdigit() and len(tag) < 19:
            versions.append(int(tag))
    return versions


async def if_match(
    if_match: Annotated[
        Omittable[str],
        Header(
            description='Apply the write only at this version: the `ETag` read before (`W/"3"`).'
        ),
    ] = None,
) -> list[int] | None:
    """The versions an If-Match header accepts; None when absent (last write wins)."""
    if if_match is None:
        return None
    # A header that names no version we could ever have matches nothing: 412.
    return named_versions(if_match)


def check_version(current: int, expected: list[int] | None) -> None:
    """Raise 412 when the client's If-Match does not name the current version."""
    if expected is None or ANY in expected:
        return
    if current not in expected:
        raise PreconditionFailed(
            f"The resource is at version {current}; re-read it and retry with its ETag.",
            headers={"ETag": etag(current)},
        )


IfMatch = Annotated[list[int] | None, Depends(if_match)]


async def if_none_match(
    if_none_match: Annotated[
        Omittable[str],
        Header(
            description=(
                "Answer 304 Not Modified, with no body, if the resource is still at one of these "
                'versions: the `ETag` read before (`W/"3"`), a list of them, or `*`.'
            )
        ),
    ] = None,
) -> list[int] | None:
    """The versions an If-None-Match header names; None when absent (always a full read)."""
    return None if if_none_match is None else named_versions(if_none_match)


IfNoneMatch = Annotated[list[int] | None, Depends(if_none_match)]

NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {
        "description": "The resource is still at a version `If-None-Match` names: no body.",
        "headers": {
            "ETag": {"description": 'The current version, `W/"3"`.', "schema": {"type": "string"}}
        },
    }
}
"""The 304 of a GET that honours If-None-Match, for its `responses=`."""


class NotModified(Exception):
    """The client's copy is current: answered 304 with the ETag and no body (not an error)."""

    def __init__(self, version: int) -> None:
        super().__init__(version)
        self.version = version


async def not_modified_response(_request: Request, error: Exception) -> Response:
    """304 with the current ETag and no body; caching headers come from the middleware."""
    assert isinstance(error, NotModified)
    return Response(status_code=304, headers={"ETag": etag(error.version)})


_VERSION_BY_ID: dict[type[EntityMixin], Select[Any]] = {}


def _version_by_id(model: type[EntityMixin]) -> Select[Any]:
    # Built once per table: building a statement costs more CPU than this lookup runs.
    statement = _VERSION_BY_ID.get(model)
    if statement is None:
        statement = select(model.version).where(model.id == bindparam("entity_id"))
        _VERSION_BY_ID[model] = statement
    return statement


async def check_not_modified(
    session: AsyncSession,
    model: type[EntityMixin],
    entity_id: int,
    *,
    if_none_match: list[int] | None,
) -> None:
    """Raise NotModified (304) when If-None-Match names the entity's current version.

    Runs only when the header was sent, and reads only the version (one primary-key
    lookup), so a 304 never pays the full read. A missing entity passes: the read that
    follows answers its 404.
    """
    if if_none_match is None:
        return
    connection = await session.connection()
    result = await connection.execute(_version_by_id(model), {"entity_id": entity_id})
    version: int | None = result.scalar_one_or_none()
    if version is not None and (ANY in if_none_match or version in if_none_match):
        raise NotModified(version)

"""ETags from row versions, and If-Match preconditions on writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Response

from app.core.changes import Omittable
from app.core.errors import PreconditionFailed

ANY = -1


def etag(version: int) -> str:
    return f'W/"{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


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
    versions: list[int] = []
    for raw in if_match.split(","):
        tag = raw.strip()
        if tag == "*":
            return [ANY]
        tag = tag.removeprefix("W/").strip('"')
        if tag.isdigit() and len(tag) < 19:
            versions.append(int(tag))
    # A header that names no version we could ever have matches nothing: 412.
    return versions


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

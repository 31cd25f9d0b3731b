"""`GET /{collection}/export` and `POST /{collection}/import` of every collection.

The registry tries these routes before the collections' own, so that `/processes/export`
never reaches `/processes/{process_id:id}` (docs/api.md, Export).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Receive, Scope, Send

from app.core.database import SessionDep
from app.core.errors import AUTHENTICATED_ERRORS, problem_responses
from app.domains.auth.context import AuthContext, AuthDep
from app.domains.auth.principal import Principal
from app.domains.department.dependencies import DepartmentsRead, DepartmentsWrite
from app.domains.department.schemas import DepartmentFilters
from app.domains.exchange import queries as exchange_queries
from app.domains.exchange import service as exchange_service
from app.domains.exchange.collections import (
    DEPARTMENTS,
    LOCATIONS,
    PROCESSES,
    RESOURCES,
    ROLES,
    USERS,
    Collection,
)
from app.domains.exchange.dependencies import DryRun, ImportBody, ImportBodyDep
from app.domains.exchange.formats import CONTENT_TYPES, MEDIA_TYPES
from app.domains.exchange.schemas import ExportFormat, ImportReport
from app.domains.location.dependencies import LocationsRead, LocationsWrite
from app.domains.location.schemas import LocationFilters
from app.domains.process.dependencies import ProcessesRead, ProcessesWrite
from app.domains.process.schemas import ProcessFilters
from app.domains.resource.dependencies import ResourcesRead, ResourcesWrite
from app.domains.resource.schemas import ResourceFilters
from app.domains.role.dependencies import RolesRead, RolesWrite
from app.domains.role.schemas import RoleFilters
from app.domains.user.dependencies import UsersRead
from app.domains.user.schemas import UserFilters

router = APIRouter()

IMPORT_PATHS = tuple(
    f"/{collection.name}/import"
    for collection in (DEPARTMENTS, LOCATIONS, RESOURCES, PROCESSES, ROLES)
)
"""The import routes (under the API prefix): they enforce IMPORT_MAX_BYTES, not MAX_BODY_BYTES."""

Format = Annotated[ExportFormat, Query(description="`csv` (the default) or `ndjson`.")]

EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The whole filtered set, streamed; `Content-Disposition` names the file.",
        "content": {
            media_type: {"schema": {"type": "string"}} for media_type in MEDIA_TYPES.values()
        },
    },
    **AUTHENTICATED_ERRORS,
}
IMPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTHENTICATED_ERRORS,
    **problem_responses(413, 415),
    422: {
        **problem_responses(422)[422],
        "description": "A row cannot be imported; nothing was written. `report` names every one.",
    },
}
IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The file: the columns an export writes (docs/api.md, Import).",
        "content": {
            media_type: {"schema": {"type": "string", "format": "binary"}}
            for media_type in MEDIA_TYPES.values()
        },
    }
}


def _exporting(collection: Collection) -> dict[str, Any]:
    """The route arguments of a collection's export."""
    return {
        "path": f"/{collection.name}/export",
        "operation_id": f"{collection.name}-export",
        "tags": [collection.name],
        "response_class": ExportResponse,
        "responses": EXPORT_RESPONSES,
    }


def _importing(collection: Collection) -> dict[str, Any]:
    """The route arguments of a collection's import."""
    return {
        "path": f"/{collection.name}/import",
        "operation_id": f"{collection.name}-import",
        "tags": [collection.name],
        "response_model": ImportReport,
        "responses": IMPORT_RESPONSES,
        "openapi_extra": IMPORT_BODY,
    }


class ExportResponse(StreamingResponse):
    """A stream that closes its chunks however it ends, so the export's connection goes back.

    Starlette leaves an unfinished iterator to the garbage collector when sending fails, the
    client goes away while a chunk is being sent, or a HEAD stops after the headers: the
    export's snapshot and pooled connection would stay open until a collection.
    """

    body_iterator: AsyncGenerator[bytes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()


async def _then(first: bytes, rest: AsyncGenerator[bytes]) -> AsyncGenerator[bytes]:
    async with aclosing(rest):
        yield first
        async for chunk in rest:
            yield chunk


async def _export(
    request: Request, collection: Collection, filters: Any, file_format: ExportFormat
) -> ExportResponse:
    chunks = exchange_queries.export_file(
        request.state.engine,
        collection=collection,
        filters=filters,
        file_format=file_format,
        at_most=request.state.settings.export_max_concurrent,
    )
    # The snapshot opens and the first batch is read before the status is sent: a failure
    # there is still a problem response.
    first = await anext(chunks)
    day = datetime.now(UTC).strftime("%Y%m%d")
    name = f"{collection.name}-{day}.{file_format.value}"
    return ExportResponse(
        _then(first, chunks),
        media_type=CONTENT_TYPES[file_format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def _import(
    collection: Collection,
    *,
    actor: Principal,
    body: ImportBody,
    session: AsyncSession,
    auth: AuthContext,
    dry_run: bool,
) -> ImportReport:
    return await exchange_service.import_file(
        session,
        collection=collection,
        body=body.data,
        file_format=body.file_format,
        dry_run=dry_run,
        actor=actor,
        auth=auth,
    )


@router.get(**_exporting(DEPARTMENTS))
async def export_departments(
    _: DepartmentsRead,
    request: Request,
    filters: Annotated[DepartmentFilters, Query()],
    format: Format = ExportFormat.CSV,
) -> ExportResponse:
    """Download every department the filters select, as CSV or NDJSON."""
    return await _export(request, DEPARTMENTS, filters, format)


@router.get(**_exporting(LOCATIONS))
async def export_locations(
    _: LocationsRead,
    request: Request,
    filters: Annotated[LocationFilters, Query()],
    format: Format = ExportFormat.CSV,
) -> ExportResponse:
    """Download every location the filters select, as CSV or NDJSON."""
    return await _export(request, LOCATIONS, filters, format)


@router.get(**_exporting(RESOURCES))
async def export_resources(
    _: ResourcesRead,
    request: Request,
    filters: Annotated[ResourceFilters, Query()],
    format: Format = ExportFormat.CSV,
) -> ExportResponse:
    """Download every resource the filters select, as CSV or NDJSON."""
    return await _export(request, RESOURCES, filters, format)


@router.get(**_exporting(PROCESSES))
async def export_processes(
    _: ProcessesRead,
    request: Request,
    filters: Annotated[ProcessFilters, Query()],
    format: Format = ExportFormat.CSV,
) -> ExportResponse:
    """Download every process the filters select, with its links, as CSV or NDJSON."""
    return await _export(request, PROCESSES, filters, format)


@router.get(**_exporting(ROLES))
async def export_roles(
    _: RolesRead,
    request: Request,
    filters: Annotated[RoleFilters, Query()],
    format: Format = ExportFormat.CSV,
) -> ExportResponse:
    """Download every role the filters select, as CSV or NDJSON."""
    return await _export(request, ROLES, filters, format)


@router.get(**_exporting(USERS))
async def export_users(
    _: UsersRead,
    request: Request,
    filters: Annotated[UserFilters, Query()],
    format: Format = ExportFormat.CSV,
) -> ExportResponse:
    """Download every user the filters select (never a password hash), as CSV or NDJSON."""
    return await _export(request, USERS, filters, format)


@router.post(**_importing(DEPARTMENTS))
async def import_departments(
    actor: DepartmentsWrite,
    body: ImportBodyDep,
    session: SessionDep,
    auth: AuthDep,
    dry_run: DryRun = False,
) -> ImportReport:
    """Create and update departments from CSV or NDJSON, parents in any order; all or nothing."""
    return await _import(
        DEPARTMENTS, actor=actor, body=body, session=session, auth=auth, dry_run=dry_run
    )


@router.post(**_importing(LOCATIONS))
async def import_locations(
    actor: LocationsWrite,
    body: ImportBodyDep,
    session: SessionDep,
    auth: AuthDep,
    dry_run: DryRun = False,
) -> ImportReport:
    """Create and update locations from CSV or NDJSON, parents in any order; all or nothing."""
    return await _import(
        LOCATIONS, actor=actor, body=body, session=session, auth=auth, dry_run=dry_run
    )


@router.post(**_importing(RESOURCES))
async def import_resources(
    actor: ResourcesWrite,
    body: ImportBodyDep,
    session: SessionDep,
    auth: AuthDep,
    dry_run: DryRun = False,
) -> ImportReport:
    """Create and update resources from CSV or NDJSON; all or nothing."""
    return await _import(
        RESOURCES, actor=actor, body=body, session=session, auth=auth, dry_run=dry_run
    )


@router.post(**_importing(PROCESSES))
async def import_processes(
    actor: ProcessesWrite,
    body: ImportBodyDep,
    session: SessionDep,
    auth: AuthDep,
    dry_run: DryRun = False,
) -> ImportReport:
    """Create and update processes and their links from CSV or NDJSON; all or nothing."""
    return await _import(
        PROCESSES, actor=actor, body=body, session=session, auth=auth, dry_run=dry_run
    )


@router.post(**_importing(ROLES))
async def import_roles(
    actor: RolesWrite,
    body: ImportBodyDep,
    session: SessionDep,
    auth: AuthDep,
    dry_run: DryRun = False,
) -> ImportReport:
    """Create and update roles from CSV or NDJSON, with permissions the caller holds."""
    return await _import(ROLES, actor=actor, body=body, session=session, auth=auth, dry_run=dry_run)

"""The `/api/v1` routers, one per domain, in the order requests are matched against them."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import health
from app.domains.audit.router import router as audit_router
from app.domains.auth.router import router as auth_router
from app.domains.department.router import router as department_router
from app.domains.location.router import router as location_router
from app.domains.process.router import reverse_router as process_reverse_router
from app.domains.process.router import router as process_router
from app.domains.resource.router import router as resource_router
from app.domains.role.router import router as role_router
from app.domains.user.router import router as user_router

# FastAPI matches a request against every route in turn (about 1.5 us each, at each
# level of router nesting), so the routers are included into the app directly, and the
# busiest come first: processes are most of the traffic (docs/benchmarks.md, change 7).
API_ROUTERS: tuple[APIRouter, ...] = (
    process_router,
    auth_router,
    department_router,
    location_router,
    resource_router,
    role_router,
    user_router,
    process_reverse_router,
    audit_router,
    health.router,
)

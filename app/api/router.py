"""The `/api/v1` router, assembled from each domain's router."""

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

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(auth_router)
api_router.include_router(user_router)
api_router.include_router(role_router)
api_router.include_router(department_router)
api_router.include_router(location_router)
api_router.include_router(resource_router)
api_router.include_router(process_router)
api_router.include_router(process_reverse_router)
api_router.include_router(audit_router)

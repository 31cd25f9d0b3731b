"""The `/api/v1` routers: every domain's (from the domain registry), then the probes."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import health
from app.domains import routers

# The routers are included into the app directly, not nested: FastAPI tries every route
# in turn, at each level of nesting (docs/benchmarks.md, change 7).
API_ROUTERS: tuple[APIRouter, ...] = (*routers(), health.router)

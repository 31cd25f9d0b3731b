"""The audit trail is append-only and written by other domains' writes: no errors of its own."""

from __future__ import annotations

from app.core.constraints import Constraints

CONSTRAINTS: Constraints = {}

"""Prometheus metrics of the application (the HTTP ones are recorded by middleware)."""

from __future__ import annotations

from prometheus_client import Counter

AUTH_EVENTS = Counter(
    "auth_events_total",
    "Authentication events: login_success, login_failure, refresh, reuse_detected, logout.",
    ["event"],
)
AUDIT_EVENTS = Counter(
    "audit_events_total",
    "Audit events written, by entity type and action.",
    ["entity_type", "action"],
)

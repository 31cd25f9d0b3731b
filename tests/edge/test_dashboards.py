"""The Grafana dashboard and the Prometheus rules ask only for metrics the app exposes."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from httpx import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from app.core.config import PROJECT_ROOT

DASHBOARD = PROJECT_ROOT / "docker" / "grafana" / "dashboards" / "process-atlas.json"
RULES = PROJECT_ROOT / "prometheus" / "rules" / "process-atlas.yml"
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf"}
AGGREGATIONS = ("sum", "min", "max", "count", "topk")


def _metric_names(expr: str) -> set[str]:
    """Series names an expression selects (functions, labels and strings left out)."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(
        r"\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
        "",
        expr,
    )
    names = set()
    for match in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", expr):
        if match.group(2) is None and match.group(1).lower() not in PROMQL_WORDS:
            names.add(match.group(1))
    return names


def _dashboard_targets() -> list[dict[str, Any]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target for panel in panels for target in panel.get("targets", [])]


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


async def _exposed(client: AsyncClient) -> set[str]:
    text = (await client.get("/metrics")).text
    names = {"up"}
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in ("", "_total", "_bucket", "_count", "_sum")}
    return names


async def test_dashboard_queries_use_exposed_metrics_and_sum_over_instances(
    client: AsyncClient,
) -> None:
    exposed = await _exposed(client)
    targets = _dashboard_targets()
    assert len(targets) > 10
    for target in targets:
        expr = target["expr"]
        assert target["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        assert _metric_names(expr) <= exposed, expr
        assert expr.startswith(AGGREGATIONS) or (
            expr.startswith("histogram_quantile(") and "sum by (" in expr
        ), expr


async def test_rules_use_exposed_metrics_or_recorded_series(client: AsyncClient) -> None:
    exposed = await _exposed(client)
    rules = _rules()
    recorded = {rule["record"] for rule in rules if "record" in rule}
    alerts = {rule["alert"] for rule in rules if "alert" in rule}
    assert {
        "ProcessAtlasHighErrorRatio",
        "ProcessAtlasSlowRoute",
        "ProcessAtlasTargetDown",
        "ProcessAtlasNotReady",
        "ProcessAtlasRateLimitSurge",
        "ProcessAtlasDatabasePoolSaturated",
    } <= alerts
    for rule in rules:
        assert _metric_names(rule["expr"]) <= exposed | recorded, rule["expr"]


def test_every_panel_is_described_and_uses_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "process-atlas"
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["description"], panel["title"]
        assert panel["datasource"]["uid"] == "prometheus"


def test_metric_name_extraction_sees_through_functions_and_labels() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (route, le) (rate(http_request_duration_seconds_bucket"
        '{job="$job", route=~"/a|b"}[5m]))) / ignoring (x) job:up:sum and on (job) up == 0'
    )
    assert _metric_names(expr) == {"http_request_duration_seconds_bucket", "job:up:sum", "up"}

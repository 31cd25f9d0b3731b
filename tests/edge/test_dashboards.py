"""The Grafana dashboard and the Prometheus rules ask only for metrics the app exposes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml
from httpx import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from app.core.config import PROJECT_ROOT

DASHBOARD = PROJECT_ROOT / "docker" / "grafana" / "dashboards" / "process-atlas.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
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


def _import(dashboard: dict[str, Any], **inputs: str) -> dict[str, Any]:
    """What Grafana's import makes of the JSON: `${INPUT}` replaced in every string.

    As pkg/services/dashboardimport/utils/dash_template_evaluator.go does it.
    """
    declared = {f"${{{item['name']}}}": inputs[item["name"]] for item in dashboard["__inputs"]}

    def evaluate(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: evaluate(value) for key, value in node.items() if key != "__inputs"}
        if isinstance(node, list):
            return [evaluate(item) for item in node]
        if isinstance(node, str):
            return re.sub(r"\$\{.+?\}", lambda match: declared.get(match[0], match[0]), node)
        return node

    result: dict[str, Any] = evaluate(dashboard)
    return result


def _values_of(key: str, node: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """Every value stored under `key`, anywhere in the JSON, with its path."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key:
                yield f"{where}.{name}", value
            yield from _values_of(key, value, f"{where}.{name}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _values_of(key, item, f"{where}[{index}]")


async def test_dashboard_queries_use_exposed_metrics_and_sum_over_instances(
    client: AsyncClient,
) -> None:
    exposed = await _exposed(client)
    targets = _dashboard_targets()
    assert len(targets) > 10
    for target in targets:
        expr = target["expr"]
        assert target["datasource"] == DATASOURCE
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
        "ProcessAtlasWorkerMemoryGrowing",
        "ProcessAtlasCriticalReviewsOverdue",
    } <= alerts
    for rule in rules:
        assert _metric_names(rule["expr"]) <= exposed | recorded, rule["expr"]


def test_every_panel_is_described_and_queries_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "process-atlas"
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["description"], panel["title"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, variable["name"]


def test_no_datasource_uid_is_written_into_the_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    references = list(_values_of("datasource", dashboard))
    assert len(references) > 20
    for where, reference in references:
        assert reference == DATASOURCE, where
    uids = {uid for where, uid in _values_of("uid", dashboard) if where != ".uid"}
    assert uids == {"${datasource}"}


def test_import_asks_for_the_datasource_and_provisioning_picks_one() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["__inputs"] == [
        {
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "The Prometheus that scrapes the Process Atlas API.",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }
    ]
    variable = dashboard["templating"]["list"][0]
    assert variable["name"] == "datasource"
    assert variable["type"] == "datasource"
    assert variable["query"] == "prometheus"
    # Provisioning leaves `${DS_PROMETHEUS}` as it is: a value no data source has, so Grafana
    # selects the first Prometheus data source (compose provisions exactly one).
    assert variable["current"] == {"text": "${DS_PROMETHEUS}", "value": "${DS_PROMETHEUS}"}

    imported = _import(dashboard, DS_PROMETHEUS="chosen-uid")
    assert "__inputs" not in imported
    assert imported["templating"]["list"][0]["current"] == {
        "text": "chosen-uid",
        "value": "chosen-uid",
    }
    assert imported["panels"] == dashboard["panels"]


def test_overdue_reviews_are_the_maximum_over_instances_never_a_sum() -> None:
    """Every instance counts the same database: a sum would count each process per replica."""
    exprs = [target["expr"] for target in _dashboard_targets()]
    exprs += [rule["expr"] for rule in _rules()]
    overdue = [expr for expr in exprs if "process_atlas_processes_review_overdue" in expr]
    assert len(overdue) >= 2
    assert all(expr.startswith("max by (") for expr in overdue), overdue


def test_metric_name_extraction_sees_through_functions_and_labels() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (route, le) (rate(http_request_duration_seconds_bucket"
        '{job="$job", route=~"/a|b"}[5m]))) / ignoring (x) job:up:sum and on (job) up == 0'
    )
    assert _metric_names(expr) == {"http_request_duration_seconds_bucket", "job:up:sum", "up"}

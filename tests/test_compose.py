"""The compose stacks: development starts with nothing exported, production refuses without secrets.

`compose.yaml` is the development stack; production is `compose.yaml` with
`docker/docker-compose.yml` over it. Files are interpolated one by one, then merged, as
Compose does; `docker/validate.sh` checks the rest of what Compose would see.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.core.config import PROJECT_ROOT, Environment, Settings
from tests.conftest import ClientFactory

DEVELOPMENT = (PROJECT_ROOT / "compose.yaml",)
PRODUCTION = (*DEVELOPMENT, PROJECT_ROOT / "docker/docker-compose.yml")
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<operator>:?[-?])(?P<argument>[^}]*))?\}")
# Values that name the stack's own hosts or container paths, replaced by this test run's.
CONTAINER_ONLY = ("database_url", "redis_url", "prometheus_multiproc_dir")


class NeedsExport(LookupError):
    """A variable the compose files need from the shell."""


def interpolate(text: str, shell: Mapping[str, str]) -> str:
    """`text` with `${NAME}`, `${NAME:-default}` and `${NAME:?error}` resolved from `shell`."""

    def one(match: re.Match[str]) -> str:
        name, operator, argument = match["name"], match["operator"], match["argument"]
        value = shell.get(name)
        if operator in (":-", "-"):
            return argument if value is None or (operator == ":-" and not value) else value
        if value is None or (operator == ":?" and not value):
            raise NeedsExport(name)
        return value

    return VARIABLE.sub(one, text.replace("$$", "\0")).replace("\0", "$")


def interpolate_all(node: Any, shell: Mapping[str, str]) -> Any:
    """Every string value of a compose document interpolated (keys never are)."""
    if isinstance(node, str):
        return interpolate(node, shell)
    if isinstance(node, list):
        return [interpolate_all(item, shell) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_all(value, shell) for key, value in node.items()}
    return node


def load(files: Sequence[Path], shell: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each compose file interpolated on its own, as Compose does before merging them."""
    return [interpolate_all(yaml.safe_load(path.read_text()), shell) for path in files]


def api_environment(files: Sequence[Path], shell: Mapping[str, str]) -> dict[str, Any]:
    """The API container's environment, as Settings field names; bare names pass the shell's."""
    merged: dict[str, Any] = {}
    for document in load(files, shell):
        merged.update(document["services"]["api"].get("environment") or {})
    values = {
        name: shell.get(name) if value is None else str(value) for name, value in merged.items()
    }
    return {name.lower(): value for name, value in values.items() if value is not None}


def prometheus_token(files: Sequence[Path], shell: Mapping[str, str]) -> str:
    """What Prometheus sends as its bearer token: the file prometheus.yml names, trimmed."""
    prometheus = yaml.safe_load((PROJECT_ROOT / "prometheus/prometheus.yml").read_text())
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "process-atlas"]
    path = job["authorization"]["credentials_file"]
    documents = load(files, shell)
    configs = {name: c for d in documents for name, c in (d.get("configs") or {}).items()}
    services = [d["services"].get("prometheus") or {} for d in documents]
    mounts = [mount for service in services for mount in service.get("configs") or []]
    (source,) = [m["source"] for m in mounts if m["target"] == path]
    return str(configs[source]["content"]).strip()


def test_the_development_stack_needs_nothing_from_the_shell() -> None:
    (document,) = load(DEVELOPMENT, {})
    assert {"api", "migrate", "postgres", "redis", "prometheus", "grafana"} <= set(
        document["services"]
    )


def test_the_development_stack_publishes_ports_on_loopback_only() -> None:
    (document,) = load(DEVELOPMENT, {})
    published = [port for s in document["services"].values() for port in s.get("ports", [])]
    assert published
    assert all(port.startswith("127.0.0.1:") for port in published), published


def test_the_development_api_environment_loads_as_development() -> None:
    settings = Settings(_env_file=None, **api_environment(DEVELOPMENT, {}))  # type: ignore[call-arg]
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.metrics_token is None
    assert not settings.should_auto_migrate


@pytest.mark.parametrize(
    "shell", [{}, {"METRICS_TOKEN": secrets.token_urlsafe(32)}], ids=["no-token", "token"]
)
async def test_the_development_api_starts_and_prometheus_scrapes_it(
    client_with: ClientFactory, database_url: str, redis_url: str, shell: dict[str, str]
) -> None:
    values = {
        name: value
        for name, value in api_environment(DEVELOPMENT, shell).items()
        if name not in CONTAINER_ONLY
    }
    token = prometheus_token(DEVELOPMENT, shell)
    async with client_with(**values, database_url=database_url, redis_url=redis_url) as client:
        ready = await client.get("http://localhost:8000/api/v1/ready")
        docs = await client.get("http://localhost:8000/docs")
        scrape = await client.get(
            "http://api:8000/metrics", headers={"Authorization": f"Bearer {token}"}
        )
        anonymous = await client.get("http://api:8000/metrics")

    assert ready.status_code == 200, ready.text
    assert docs.status_code == 200, docs.text
    assert scrape.status_code == 200, scrape.text
    assert anonymous.status_code == (401 if shell else 200)


@pytest.mark.parametrize("missing", ["SECRET_KEY", "METRICS_TOKEN"])
def test_the_production_override_refuses_an_unset_secret(missing: str) -> None:
    shell = {"SECRET_KEY": secrets.token_urlsafe(48), "METRICS_TOKEN": secrets.token_urlsafe(32)}
    del shell[missing]
    with pytest.raises(NeedsExport, match=missing):
        api_environment(PRODUCTION, shell)


def test_the_production_stack_sends_prometheus_the_api_token() -> None:
    shell = {"SECRET_KEY": secrets.token_urlsafe(48), "METRICS_TOKEN": secrets.token_urlsafe(32)}
    environment = api_environment(PRODUCTION, shell)
    assert environment["environment"] == "production"
    assert prometheus_token(PRODUCTION, shell) == environment["metrics_token"]

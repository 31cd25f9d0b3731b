#!/usr/bin/env bash
# Check prometheus/: the configuration, the recording and alerting rules, and the rules'
# unit tests. promtool comes from PATH, else from Debian's `prometheus` package, unpacked
# (not installed: no server, no service) into .data/promtool/ on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=.data/promtool
promtool=$(command -v promtool || true)
if [ -z "$promtool" ]; then
  promtool=$cache/usr/bin/promtool
  if [ ! -x "$promtool" ]; then
    mkdir -p "$cache"
    download() { (cd "$cache" && apt-get download -q -o APT::Sandbox::User=root prometheus); }
    download || { apt-get update -q && download; }
    dpkg -x "$cache"/prometheus_*.deb "$cache"
    rm -f "$cache"/prometheus_*.deb
  fi
fi
"$promtool" --version | head -n 1

"$promtool" check config --syntax-only prometheus/prometheus.yml
"$promtool" check rules prometheus/rules/*.yml
"$promtool" test rules prometheus/tests/*.yml

# The dashboard's queries must parse too: promtool checks them as recording rules, with
# Grafana's variables replaced by plausible values.
dashboard=docker/grafana/dashboards/process-atlas.json
queries=$(mktemp --suffix=.yml)
trap 'rm -f "$queries"' EXIT
python3 - "$dashboard" >"$queries" <<'PY'
import json, sys

panels = json.load(open(sys.argv[1]))["panels"]
values = {"$__rate_interval": "1m", "$job": "process-atlas", "$route": ".*"}
print("groups:\n  - name: dashboard\n    rules:")
for number, panel in enumerate(panels):
    for target in panel.get("targets", []):
        expr = target["expr"]
        for variable, value in values.items():
            expr = expr.replace(variable, value)
        print(f"      - record: dashboard:panel{number}:{target['refId']}")
        print(f"        expr: {json.dumps(expr)}")
PY
echo "Checking the queries of $dashboard"
"$promtool" check rules "$queries"

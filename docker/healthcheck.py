#!/usr/bin/env python3
"""Container health check: exit 0 when GET /api/v1/health on this container answers 200.

Standard library only (the slim image has no curl). `http.client` rather than `urllib` so no
HTTP_PROXY/HTTPS_PROXY variable can send the probe elsewhere. The Host header is one the app
accepts: with ALLOWED_HOSTS restricted, a request for 127.0.0.1 would be refused with 400.
"""

from __future__ import annotations

import http.client
import os
import sys

PATH = "/api/v1/health"


def host_header(allowed_hosts: str) -> str | None:
    """A Host value that ALLOWED_HOSTS admits, or None when any host is admitted."""
    entries = [entry.strip() for entry in allowed_hosts.split(",") if entry.strip()]
    if not entries or "*" in entries:
        return None
    first = entries[0]
    # `*.example.com` admits any subdomain of example.com (but not example.com itself).
    return f"healthcheck{first[1:]}" if first.startswith("*") else first


def main() -> int:
    port = int(os.environ.get("PORT") or "8000")
    timeout = float(os.environ.get("HEALTHCHECK_TIMEOUT") or "3")
    headers = {"User-Agent": "process-atlas-healthcheck"}
    host = host_header(os.environ.get("ALLOWED_HOSTS", ""))
    if host:
        headers["Host"] = host
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", PATH, headers=headers)
        status = connection.getresponse().status
    except OSError as error:
        print(f"unhealthy: GET {PATH} on port {port}: {error}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if status != http.HTTPStatus.OK:
        print(f"unhealthy: GET {PATH} on port {port} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

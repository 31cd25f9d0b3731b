#!/bin/sh
# Container entry point: prepare the writable state the app expects, then exec the command
# (CMD, `docker run IMAGE ...` arguments or compose `command:`), which replaces this shell as
# PID 1 and so receives SIGTERM directly for a graceful shutdown.
set -eu

if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    # prometheus_client's multiprocess mode needs the directory to exist. Under a read-only
    # root filesystem it lives on the /tmp tmpfs, which starts empty at every container start.
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    # Files left by an earlier run of this container (a /tmp that is not a tmpfs survives
    # `docker restart`) would be summed into the new run's metrics: the client's docs ask for
    # the directory to be wiped before start-up.
    rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db
fi

exec "$@"

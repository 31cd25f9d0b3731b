"""`python -m app serve --workers 2`: memory, CPU and descriptors of each live worker, by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.core.config import PROJECT_ROOT
from tests.edge.test_metrics import _start_time
from tests.serving import STARTUP_SECONDS, Server, serve, until

pytestmark = pytest.mark.slow

RESIDENT = "process_atlas_worker_resident_memory_bytes"
CPU = "process_atlas_worker_cpu_seconds_total"
OPEN_FDS = "process_atlas_worker_open_fds"
STARTED = "process_atlas_worker_start_time_seconds"
WORKER_GAUGES = (RESIDENT, CPU, OPEN_FDS, STARTED)


def _worker_pids(server: Server) -> set[int]:
    """The uvicorn workers running now: children of the server that multiprocessing spawned."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if parent == server.process.pid and b"spawn_main" in command:
            pids.add(int(entry.name))
    return pids


def _by_pid(server: Server) -> dict[str, dict[int, float]]:
    """Each worker gauge of one scrape, as {pid: value}."""
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    gauges: dict[str, dict[int, float]] = {name: {} for name in WORKER_GAUGES}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in gauges:
                gauges[sample.name][int(sample.labels["pid"])] = sample.value
    return gauges


def _reported_for(server: Server, pids: set[int]) -> bool:
    return all(set(values) == pids for values in _by_pid(server).values())


async def test_every_live_worker_reports_its_own_process_and_a_dead_one_disappears(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    with serve(tmp_path, database_url, redis_url, workers=2) as server:
        workers = _worker_pids(server)
        assert len(workers) == 2
        await until(lambda: _reported_for(server, workers))
        gauges = _by_pid(server)
        for pid in workers:
            assert gauges[RESIDENT][pid] > 20 * 2**20
            assert gauges[CPU][pid] > 0
            assert gauges[OPEN_FDS][pid] >= 3
            assert abs(gauges[STARTED][pid] - _start_time(pid)) < 1

        victim, survivor = sorted(workers)
        os.kill(victim, signal.SIGKILL)
        await until(lambda: len(_worker_pids(server) - workers) == 1, within=STARTUP_SECONDS)
        (replacement,) = _worker_pids(server) - workers
        await until(lambda: _reported_for(server, {survivor, replacement}))
        assert victim not in _by_pid(server)[RESIDENT]

    assert not list(server.metrics_dir.glob("gauge_live*")), "stopped workers leave no series"


def test_a_worker_is_never_reported_before_it_has_been_sampled(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if "PROMETHEUS" not in key}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    scrape = "from app.core.metrics import render_latest; print(render_latest(None)[0].decode())"
    text = subprocess.run(
        [sys.executable, "-c", scrape],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    samples = [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in WORKER_GAUGES
    ]
    assert {sample.name for sample in samples} == set(WORKER_GAUGES)
    assert all(sample.value > 0 for sample in samples), samples

"""gunicorn.conf.py in a real deployment: ``gunicorn -c gunicorn.conf.py wsgi:app`` with three workers
on PostgreSQL plus one ``jsm-scim worker`` process, all sharing PROMETHEUS_MULTIPROC_DIR.

Whichever gunicorn worker answers a scrape, /metrics reports the sum over every process: the SCIM
requests the three HTTP workers served and the jobs and JSM calls of the sync worker.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests

from benchmarks.common import bridge_stack
from jsm_client.emulator import EmulatorServer
from scim_server import __version__
from tests.fixtures.db import BACKENDS, POSTGRES_URL
from tests.ops.test_endpoints import sample_value

pytestmark = pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL backend not selected")

HTTP_WORKERS = 3
USERS = 15
SCIM_JSON = "application/scim+json"


def user(n: int) -> dict:
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"gunicorn{n}@metrics.example",
            "emails": [{"value": f"gunicorn{n}@metrics.example", "type": "work", "primary": True}]}


def scrape(base_url: str) -> str:
    response = requests.get(base_url + "/metrics", headers={"Connection": "close"}, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    return response.text


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def metric_file_pids(directory: Path) -> set[int]:
    return {int(m.group(1)) for p in directory.glob("counter_*.db") if (m := re.fullmatch(r"counter_(\d+)\.db", p.name))}


def test_metrics_health_and_readiness_across_gunicorn_and_sync_workers(tmp_path, monkeypatch):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    stale = metrics_dir / "counter_999999999.db"  # a dead process's file from an earlier run
    stale.write_bytes(b"\0" * 16)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))  # inherited by every process below
    with EmulatorServer() as emulator, bridge_stack(
        backend="postgresql", http_workers=HTTP_WORKERS, sync_workers=1, jsm_url=emulator.url,
        workdir=tmp_path, postgres_admin_url=POSTGRES_URL,
    ) as stack:
        base = stack.base_url
        assert not stale.exists()
        headers = {"Authorization": f"Bearer {stack.token}", "Content-Type": SCIM_JSON, "Connection": "close"}
        for n in range(USERS):  # a new connection each time: the kernel spreads them over the workers
            assert requests.post(stack.scim_url + "/Users", json=user(n), headers=headers, timeout=10).status_code == 201

        def propagated() -> bool:
            stack.check_alive()
            customers = [c for c in emulator.emulator.state_dict()["customers"]
                         if c["emailAddress"].endswith("@metrics.example")]
            return len(customers) == USERS and sample_value(scrape(base), "jsm_scim_sync_queue_depth") == 0

        wait_for(propagated)
        worker_pids = {int(p) for p in re.findall(r"Booting worker with pid: (\d+)", stack.processes[0].log_tail(200))}
        assert len(worker_pids) == HTTP_WORKERS
        served = worker_pids & metric_file_pids(metrics_dir)
        assert len(served) >= 2, f"requests did not spread over the workers: {served}"
        sync_pid = stack.processes[1].popen.pid
        assert sync_pid in metric_file_pids(metrics_dir)

        for _ in range(6):  # whichever worker answers, it reports the sum of all processes
            text = scrape(base)
            assert sample_value(text, "jsm_scim_scim_requests_total", method="POST", route="/scim/v2/Users", status="201") == USERS
            assert sample_value(text, "jsm_scim_scim_request_duration_seconds_count", route="/scim/v2/Users") == USERS
            assert sample_value(text, "jsm_scim_jsm_calls_total", method="POST", route="/rest/servicedeskapi/customer") == USERS
            assert sample_value(text, "jsm_scim_sync_jobs_total", outcome="done") >= USERS
            assert sample_value(text, "jsm_scim_sync_queue_depth") == 0
            assert sample_value(text, "jsm_scim_sync_oldest_pending_age_seconds") == 0

        health = requests.get(base + "/healthz", timeout=5)
        ready = requests.get(base + "/readyz", timeout=5)
        assert health.status_code == 200 and health.json() == {"status": "ok", "version": __version__}
        assert ready.status_code == 200 and ready.json() == {"status": "ok", "database": "ok"}

"""gunicorn.conf.py in a real gunicorn: several workers, one merged /metrics."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from scim_server.db import make_engine, upgrade
from tests.ops.test_endpoints import sample_value

REPO = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {process.returncode}")
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    raise AssertionError("gunicorn did not become ready")


@pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn not installed")
def test_metrics_are_merged_across_workers(tmp_path):
    url = f"sqlite:///{tmp_path / 'g.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JSM_SCIM_", "PROMETHEUS_"))}
    env.update(JSM_SCIM_DATABASE_URL=url, JSM_SCIM_SECRET_KEY="k" * 32, JSM_SCIM_PORT=str(port),
               JSM_SCIM_HOST="127.0.0.1", WEB_CONCURRENCY="2", JSM_SCIM_RUN_WORKER_IN_PROCESS="false")
    process = subprocess.Popen([str(GUNICORN), "wsgi:app", "-c", "gunicorn.conf.py"], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + "/healthz", process)
        before = sample_value(requests.get(base + "/metrics", timeout=5).text, "scim_requests_total",
                              route="/healthz", status="200")
        for _ in range(30):  # fresh connection each time: the kernel spreads them over the workers
            response = requests.get(base + "/healthz", headers={"Connection": "close"}, timeout=5)
            assert response.status_code == 200
        for _ in range(5):  # whichever worker answers the scrape, it reports the sum of all workers
            text = requests.get(base + "/metrics", headers={"Connection": "close"}, timeout=5).text
            assert sample_value(text, "scim_requests_total", route="/healthz", status="200") - before == 30
        assert requests.get(base + "/readyz", timeout=5).status_code == 200
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert b"Booting worker" in stderr and stderr.count(b"Booting worker") >= 2

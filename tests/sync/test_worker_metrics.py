"""A ``jsm-scim worker`` on a machine of its own exposes its counters with ``--metrics-port``."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.sync import seed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sample(text: str, prefix: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_worker_serves_its_metrics(database_url, session_factory, jsm_emulator, tmp_path):
    seed.add_user(session_factory, "alice@acme.com")
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"JSM_SCIM_DATABASE_URL": database_url, "JSM_SCIM_JSM_URL": jsm_emulator.url,
                "JSM_SCIM_JSM_EMAIL": "bot@example.com", "JSM_SCIM_JSM_API_TOKEN": "secret-token",
                "JSM_SCIM_LOG_LEVEL": "WARNING"})
    command = [str(Path(sys.executable).parent / "jsm-scim"), "worker", "--poll-interval", "0.1",
               "--metrics-host", "127.0.0.1", "--metrics-port", str(port)]
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline, text = time.monotonic() + 30, ""
        while time.monotonic() < deadline:
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except requests.ConnectionError:
                text = ""
            if (_sample(text, 'jsm_scim_sync_jobs_total{outcome="done"}') or 0) >= 1 and _sample(text, "jsm_scim_sync_queue_depth") == 0:
                break
            time.sleep(0.2)
        assert _sample(text, 'jsm_scim_jsm_calls_total{method="POST",route="/rest/servicedeskapi/customer",status="201"}') == 1, text
        assert (_sample(text, 'jsm_scim_sync_jobs_total{outcome="done"}') or 0) >= 1, text
        assert _sample(text, "jsm_scim_sync_queue_depth") == 0, text
        assert requests.get(f"http://127.0.0.1:{port}/other", timeout=2).status_code == 404
    finally:
        process.terminate()
        process.wait(10)

"""gunicorn.conf.py's process hooks: a worker that dies and the server's own shutdown leave no error in
the log and no private metrics directory on disk (``jsm-scim-metrics-*`` under the temp directory)."""
from __future__ import annotations

import os
import signal
import time

import requests

from benchmarks.common import bridge_stack

SCIM_JSON = "application/scim+json"


def _worker_pids(log: str) -> list[int]:
    return [int(line.rsplit(" ", 1)[-1]) for line in log.splitlines() if "Booting worker with pid:" in line]


def test_worker_death_and_shutdown_leave_no_errors_and_no_metrics_directory(tmp_path, monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))  # gunicorn.conf.py makes its private directory here
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with bridge_stack(backend="sqlite", server="gunicorn", http_workers=2, workdir=tmp_path) as stack:
        [metrics_dir] = list(temp.glob("jsm-scim-metrics-*"))
        headers = {"Authorization": f"Bearer {stack.token}", "Accept": SCIM_JSON, "Connection": "close"}
        for _ in range(4):
            assert requests.get(stack.scim_url + "/Users", headers=headers, timeout=10).status_code == 200
        gunicorn = stack.http_process
        victim = _worker_pids(gunicorn.log_tail(200))[0]
        os.kill(victim, signal.SIGKILL)  # the master's child_exit hook runs for it
        deadline = time.monotonic() + 20
        while len(_worker_pids(gunicorn.log_tail(400))) < 3:  # replaced by a fresh worker
            assert time.monotonic() < deadline, gunicorn.log_tail()
            time.sleep(0.2)
        assert gunicorn.alive
        assert requests.get(stack.scim_url + "/Users", headers=headers, timeout=10).status_code == 200
        assert metrics_dir.is_dir()
        # Shut down as an init system does: SIGTERM to the master, which stops its workers. A worker
        # still booting on a busy machine can delay that well past the stack's own 15 s stop.
        gunicorn.popen.send_signal(signal.SIGTERM)
        gunicorn.popen.wait(timeout=120)
    log = gunicorn.log_path.read_text()
    assert gunicorn.popen.returncode == 0, log[-3000:]
    assert "Traceback" not in log and "Exception in" not in log, log[-3000:]
    assert not list(temp.glob("jsm-scim-metrics-*")), "private metrics directory left behind"


def test_an_operator_configured_metrics_directory_is_kept(tmp_path, monkeypatch):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    with bridge_stack(backend="sqlite", server="gunicorn", http_workers=1, workdir=tmp_path) as stack:
        assert requests.get(stack.base_url + "/healthz", timeout=10).status_code == 200
    assert metrics_dir.is_dir()

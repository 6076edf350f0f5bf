"""A JSM that drips its answers: jobs fail within the call deadline, retry, and show in ``sync status``."""
from __future__ import annotations

import json
import logging
import threading
import time

from click.testing import CliRunner

from jsm_client import JsmClient
from scim_server.cli import main
from scim_server.db import transaction
from scim_server.sync import outbox
from scim_server.sync.worker import Worker
from tests.fixtures.hostile_http import headers_then_drip, hostile_server
from tests.sync import seed


def test_dripping_jsm_fails_the_batch_quickly_and_visibly(services, session_factory, database_url, tmp_path,
                                                         monkeypatch, caplog):
    caplog.set_level(logging.WARNING)
    for n in range(5):
        seed.add_user(session_factory, f"user{n}@acme.com")
    with hostile_server(headers_then_drip(100, every_s=0.2)) as server:
        client = JsmClient(server.url, "bot@example.com", "secret-token", timeout=0.4, max_retry_seconds=0.8,
                           backoff_base=0.01)
        worker = Worker(services, client=client, poll_interval=0.05)
        started = time.monotonic()
        assert worker.step(threading.Event())
        elapsed = time.monotonic() - started
        client.close()

    # One user's calls ran into the deadline; the others of the batch failed with it, without more calls.
    assert elapsed < 3.0
    assert worker.stats.failed == 5
    assert len(server.requests) <= 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("failed (attempt 1, now pending)" in m and "DeadlineExceeded" in m for m in warnings) == 5

    with transaction(session_factory) as session:
        assert outbox.retrying_count(session) == 5
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["sync", "status", "--json"], env={"JSM_SCIM_DATABASE_URL": database_url},
                                catch_exceptions=False)
    status = json.loads(result.output)
    assert (status["pending"], status["retrying"], status["failed"]) == (5, 5, 0)
    assert {p["status"] for p in status["problems"]} == {"retrying"}
    assert all("DeadlineExceeded" in p["last_error"] for p in status["problems"])

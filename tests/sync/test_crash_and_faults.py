"""Faults and crashes: a worker process killed mid-batch under 429/503 faults, then others finish."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from sqlalchemy import select

from scim_server.db import transaction
from scim_server.models.sync import JsmMembership, JsmOrganization
from scim_server.sync import outbox
from scim_server.sync.worker import run_worker
from tests.sync import seed
from tests.sync.conftest import jsm_view

USERS, GROUPS = 60, 4
RULES = '[portals]\n"Team 0" = ["HELP"]\n"Team 1" = ["HELP", "BILL"]\n'


def _start_worker_process(database_url: str, jsm_url: str, rules: Path, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "JSM_SCIM_DATABASE_URL": database_url, "JSM_SCIM_JSM_URL": jsm_url,
           "JSM_SCIM_JSM_EMAIL": "bot@example.com", "JSM_SCIM_JSM_API_TOKEN": "secret-token",
           "JSM_SCIM_MAPPINGS": str(rules), "JSM_SCIM_LOG_LEVEL": "WARNING"}
    command = [str(Path(sys.executable).parent / "jsm-scim"), "worker", "--lease-seconds", "2", "--poll-interval", "0.1"]
    return subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _drained(factory) -> bool:
    with transaction(factory) as session:
        return outbox.queue_stats(session)[0] == 0


def test_killed_worker_then_others_finish_exactly(services, session_factory, jsm_emulator, jsm_client, rules_file,
                                                  database_url, tmp_path):
    rules_file.write_text(RULES)
    emails = [f"user{n:03d}@example.com" for n in range(USERS)]
    groups = {f"Team {g}": [n for n in range(USERS) if n % GROUPS == g] for g in range(GROUPS)}
    seed.bulk(session_factory, emails, groups)
    faults = {"rate_limit_every": 3, "retry_after_s": 0, "error_every": 5, "latency_ms": 15}
    requests.post(f"{jsm_emulator.url}/_emulator/faults", json=faults, timeout=5).raise_for_status()

    process = _start_worker_process(database_url, jsm_emulator.url, rules_file, tmp_path)
    try:
        _wait_for(lambda: len(jsm_emulator.emulator.state_dict()["customers"]) >= USERS // 3, 60, "first customers")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert process.returncode == -signal.SIGKILL
    assert len(jsm_emulator.emulator.state_dict()["customers"]) < USERS  # killed mid-batch

    # Two workers take over (side by side on PostgreSQL); faults stay on.
    stop = threading.Event()
    settings = services.settings.with_overrides(mappings_path=str(rules_file))
    from scim_server.sync.rules import RulesProvider

    workers = [threading.Thread(target=run_worker, args=(services, stop),
                                kwargs={"client": jsm_client, "rules_provider": RulesProvider(settings),
                                        "poll_interval": 0.1, "lease_seconds": 5, "claim_batch": 10})
               for _ in range(2 if database_url.startswith("postgresql") else 1)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(2.5)  # the killed worker's leases run out
        _wait_for(lambda: _drained(session_factory), 90, "the queue to drain")
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    requests.post(f"{jsm_emulator.url}/_emulator/faults", json={}, timeout=5)

    view = jsm_view(jsm_emulator.emulator)
    assert view["customers"] == sorted(emails)  # each exactly once
    assert view["organizations"] == {name: sorted(emails[i] for i in members) for name, members in groups.items()}
    assert view["desks"] == {"HELP": ["Team 0", "Team 1"], "BILL": ["Team 1"]}
    # Nothing applied twice: every effective change in JSM happened exactly once, nothing was undone.
    assert jsm_emulator.emulator.stats_dict()["effects"] == {
        "customers_created": USERS, "organizations_created": GROUPS, "organizations_deleted": 0,
        "members_added": USERS, "members_removed": 0, "desk_links_added": 3, "desk_links_removed": 0}
    with transaction(session_factory) as session:
        assert outbox.status_counts(session)[outbox.DEAD] == 0
        recorded = {(m.org_name, m.account_id) for m in session.scalars(select(JsmMembership))}
        owned = {o.name: o.owned for o in session.scalars(select(JsmOrganization))}
    state = jsm_emulator.emulator.state_dict()
    assert recorded == {(o["name"], a) for o in state["organizations"] for a in o["accountIds"]}
    assert owned == {name: True for name in groups}  # created by the bridge even across the crash

"""The worker's own duties: dead jobs revived once JSM answers, periodic reconcile (one worker per
period), heartbeats that set each process's share of JSM's rate limits, leases kept during long waits."""
from __future__ import annotations

import datetime as dt
import threading
import time

from click.testing import CliRunner
from sqlalchemy import select, update

from jsm_client import JsmClient
from scim_server.cli import main
from scim_server.db import transaction, utcnow
from scim_server.models import InstanceValue
from scim_server.models.sync import SyncMark
from scim_server.sync import coordination, outbox
from scim_server.sync.worker import Worker
from tests.fixtures.emulator import FAST_CLIENT_SETTINGS, TEST_EMAIL, TEST_TOKEN
from tests.sync import seed
from tests.sync.conftest import jsm_view


def _kill_all_marks(session_factory, max_attempts: int, minutes_ago: float) -> None:
    """Every mark dead (as after a long outage), its last attempt ``minutes_ago``."""
    with transaction(session_factory) as session:
        session.execute(update(SyncMark).values(status=outbox.DEAD, attempts=max_attempts, last_error="JsmUnavailable",
                                                updated_at=utcnow() - dt.timedelta(minutes=minutes_ago)))


def _marks(session_factory) -> list[tuple[str, int]]:
    with transaction(session_factory) as session:
        return [(m.status, m.attempts) for m in session.scalars(select(SyncMark))]


def test_dead_jobs_are_revived_once_jsm_answers_and_then_converge(services, jsm_client, jsm_emulator, sync):
    settings = services.settings.with_overrides(sync_dead_retry_s=1800.0)
    alice = seed.add_user(services.session_factory, "alice@acme.com")
    seed.add_group(services.session_factory, "Staff", [alice])
    _kill_all_marks(services.session_factory, settings.sync_max_attempts, minutes_ago=10)

    worker = Worker(services.__class__(settings, services.engine, services.session_factory), client=jsm_client)
    assert worker.revive_dead() == 0  # dead for 10 minutes only: the long backoff is 30
    _kill_all_marks(services.session_factory, settings.sync_max_attempts, minutes_ago=31)

    down = JsmClient("http://127.0.0.1:9", TEST_EMAIL, TEST_TOKEN, **{**FAST_CLIENT_SETTINGS, "max_attempts": 1})
    assert Worker(services.__class__(settings, services.engine, services.session_factory), client=down).revive_dead() == 0
    assert {status for status, _ in _marks(services.session_factory)} == {outbox.DEAD}  # JSM still down: kept

    assert worker.revive_dead() == 2
    expected_attempts = settings.sync_max_attempts - outbox.REVIVAL_ATTEMPTS
    assert _marks(services.session_factory) == [(outbox.PENDING, expected_attempts)] * 2
    sync()
    assert jsm_view(jsm_emulator.emulator)["organizations"] == {"Staff": ["alice@acme.com"]}


def test_a_revived_job_that_keeps_failing_is_dead_again_after_a_few_attempts(services, session_factory):
    seed.add_user(session_factory, "bob@acme.com")
    with transaction(session_factory) as session:
        outbox.revive(session, 0, 12)  # nothing dead yet
        [claim] = outbox.claim(session, "w", 10, 60)
    _kill_all_marks(session_factory, 12, minutes_ago=60)
    with transaction(session_factory) as session:
        assert outbox.revive(session, 1800, 12) == 1
    statuses = []
    for _ in range(outbox.REVIVAL_ATTEMPTS):
        with transaction(session_factory) as session:
            session.execute(update(SyncMark).values(available_at=utcnow()))
            [claim] = outbox.claim(session, "w", 10, 60)
            statuses.append(outbox.fail(session, claim, "still failing", 12))
    assert statuses == [outbox.PENDING, outbox.PENDING, outbox.DEAD]


def test_one_worker_of_all_takes_each_reconcile_period(session_factory):
    results = []
    barrier = threading.Barrier(4)

    def contend() -> None:
        barrier.wait()
        results.append(coordination.take_duty(session_factory, "reconcile", 3600))

    threads = [threading.Thread(target=contend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    assert coordination.take_duty(session_factory, "reconcile", 3600) is False
    assert coordination.take_duty(session_factory, "reconcile", 0.0) is True  # the period passed


def test_periodic_reconcile_repairs_drift(services, jsm_client, jsm_emulator, sync):
    alice = seed.add_user(services.session_factory, "alice@acme.com")
    seed.add_group(services.session_factory, "Staff", [alice])
    sync()
    emulator = jsm_emulator.emulator
    [org] = emulator.state_dict()["organizations"]
    with emulator._lock:
        emulator.state.organization(org["id"]).members.clear()  # an admin emptied it behind our back
    settings = services.settings.with_overrides(reconcile_every_s=3600.0)
    worker = Worker(services.__class__(settings, services.engine, services.session_factory), client=jsm_client)
    worker._duties()
    assert jsm_view(emulator)["organizations"] == {"Staff": ["alice@acme.com"]}
    with emulator._lock:
        emulator.state.organization(org["id"]).members.clear()
    worker._duties()  # within the period: not again
    assert jsm_view(emulator)["organizations"] == {"Staff": []}


def test_heartbeats_set_the_share_of_each_process(services, jsm_client):
    factory = services.session_factory
    with transaction(factory) as session:
        coordination.beat(session, "other-machine:1")
        session.add(InstanceValue(name=coordination.HEARTBEAT_PREFIX + "crashed:2",
                                  value=(utcnow() - dt.timedelta(hours=2)).isoformat()))
    worker = Worker(services, client=jsm_client)
    worker._keep_once()
    assert jsm_client.pacer.processes == 2  # this worker and the other live one; the crashed one is gone
    with transaction(factory) as session:
        names = set(session.scalars(select(InstanceValue.name)))
        assert coordination.HEARTBEAT_PREFIX + "crashed:2" not in names
        coordination.leave(session, "other-machine:1")
    worker._keep_once()
    assert jsm_client.pacer.processes == 1


def test_leases_are_kept_while_a_converge_waits(services, jsm_client, jsm_emulator):
    """A converge held up (here: JSM answers slowly) keeps its marks: the keeper renews the leases."""
    seed.add_user(services.session_factory, "carol@acme.com")
    jsm_emulator.emulator.set_faults(latency_ms=1500)
    worker = Worker(services, client=jsm_client, lease_seconds=0.9)
    assert worker.keeper_interval == 0.3
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), kwargs={"once": True})
    thread.start()
    time.sleep(1.2)  # past the first lease: still held by this worker
    with transaction(services.session_factory) as session:
        [mark] = session.scalars(select(SyncMark))
        assert mark.claimed_by == worker.worker_id and mark.claimed_until > utcnow()
    thread.join(timeout=30)
    assert worker.stats.done == 1


def test_worker_reconcile_every_option_is_checked():
    result = CliRunner().invoke(main, ["worker", "--reconcile-every", "soon"], env={"JSM_SCIM_ENV_FILE": "/dev/null"})
    assert result.exit_code == 2
    assert "expected a duration such as 90s, 30m, 6h or 1d" in result.output

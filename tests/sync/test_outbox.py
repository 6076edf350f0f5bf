"""Outbox claim semantics on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select, update

from scim_server.db import transaction
from scim_server.models.sync import SyncMark
from scim_server.store.marks import mark_dirty
from scim_server.sync import outbox


def _mark(factory, kind: str, entity: str, directory: int = 1) -> None:
    with transaction(factory) as session:
        mark_dirty(session, kind, entity, directory)


def _claim(factory, worker: str, limit: int = 10, lease: float = 60) -> list[outbox.Claim]:
    with transaction(factory) as session:
        return outbox.claim(session, worker, limit, lease)


def test_marks_collapse_per_entity_and_bump_generation(session_factory):
    for _ in range(3):
        _mark(session_factory, "user", "u1")
    with transaction(session_factory) as session:
        [row] = session.scalars(select(SyncMark)).all()
        assert (row.generation, row.status) == (3, "pending")
        assert outbox.queue_stats(session)[0] == 1


def test_claim_order_is_users_then_groups_then_organizations(session_factory):
    _mark(session_factory, "org", "O", 0)
    _mark(session_factory, "group", "g1")
    _mark(session_factory, "user", "u1")
    assert [c.kind for c in _claim(session_factory, "w")] == ["user", "group", "org"]


def test_claimed_mark_is_not_claimed_again_until_the_lease_expires(session_factory):
    _mark(session_factory, "user", "u1")
    [first] = _claim(session_factory, "w1", lease=60)
    assert _claim(session_factory, "w2") == []
    with transaction(session_factory) as session:  # the lease runs out (worker crashed)
        session.execute(update(SyncMark).values(claimed_until=outbox.utcnow() - dt.timedelta(seconds=1)))
    [again] = _claim(session_factory, "w2")
    assert again.id == first.id


def test_generation_bump_during_converge_keeps_the_mark(session_factory):
    _mark(session_factory, "user", "u1")
    [item] = _claim(session_factory, "w")
    _mark(session_factory, "user", "u1")  # the user changed while the worker was busy
    with transaction(session_factory) as session:
        assert outbox.complete(session, item) is False
    [again] = _claim(session_factory, "w")
    assert again.generation == item.generation + 1
    with transaction(session_factory) as session:
        assert outbox.complete(session, again) is True
        assert outbox.queue_stats(session) == (0, None)
        assert outbox.status_counts(session)["done"] == 1


def test_failure_of_a_superseded_generation_is_not_counted(session_factory):
    _mark(session_factory, "user", "u1")
    [item] = _claim(session_factory, "w")
    _mark(session_factory, "user", "u1")  # new data arrived while the failing attempt ran
    with transaction(session_factory) as session:
        assert outbox.fail(session, item, "JSM down", max_attempts=1) == outbox.SUPERSEDED
    [again] = _claim(session_factory, "w")  # claimable at once, no backoff, attempts untouched
    assert (again.generation, again.attempts) == (item.generation + 1, 0)


def test_failures_back_off_then_dead_letter_and_retry_requeues(session_factory):
    _mark(session_factory, "user", "u1")
    [item] = _claim(session_factory, "w")
    with transaction(session_factory) as session:
        assert outbox.fail(session, item, "JSM down", max_attempts=2) == "pending"
    assert _claim(session_factory, "w") == []  # backing off
    with transaction(session_factory) as session:
        session.execute(update(SyncMark).values(available_at=outbox.utcnow()))
    [item] = _claim(session_factory, "w")
    assert item.attempts == 1
    with transaction(session_factory) as session:
        assert outbox.fail(session, item, "JSM still down", max_attempts=2) == "dead"
        [dead] = outbox.problem_marks(session)
        assert (dead.status, dead.last_error, dead.attempts) == ("dead", "JSM still down", 2)
        assert outbox.retry(session) == 1
    assert [c.entity_id for c in _claim(session_factory, "w")] == ["u1"]


def test_backoff_grows_with_jitter_and_is_capped():
    import random

    rng = random.Random(1)
    waits = [outbox.backoff_seconds(n, rng) for n in (1, 2, 3, 20)]
    assert 1 <= waits[0] <= 2 and 2 <= waits[1] <= 4 and 4 <= waits[2] <= 8
    assert outbox.BACKOFF_CAP_SECONDS / 2 <= waits[3] <= outbox.BACKOFF_CAP_SECONDS


def test_unknown_kind_is_refused(session_factory):
    with pytest.raises(ValueError):
        _mark(session_factory, "printer", "p1")


def test_concurrent_claims_never_share_a_mark(session_factory, database_url):
    for n in range(200):
        _mark(session_factory, "user", f"u{n}")
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def claimer(name: str) -> None:
        try:
            barrier.wait()
            mine = claimed.setdefault(name, [])
            while batch := _claim(session_factory, name, limit=7):
                mine.extend(c.id for c in batch)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    every = [i for ids in claimed.values() for i in ids]
    assert len(every) == len(set(every)) == 200
    if database_url.startswith("postgresql"):
        assert sum(1 for ids in claimed.values() if ids) > 1  # SKIP LOCKED lets them work side by side

"""Transactional outbox, the workers' side: claim, lease, complete, fail, block and retry marks.

SCIM writes mark which entity changed in their own transaction (``scim_server.store.marks``): one
row per entity (``sync_marks``), upserted, so a burst of writes to one user collapses into one mark
whose ``generation`` grows. Workers claim marks under a lease (``claimed_until``): on
PostgreSQL with ``SELECT ... FOR UPDATE SKIP LOCKED``, on SQLite with a conditional UPDATE (SQLite
serialises writers, so the UPDATE is the atomic step). A mark is cleared only if its generation did
not change while it was being converged; otherwise it stays pending and is converged again.
"""
from __future__ import annotations

import datetime as dt
import functools
import random
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import ColumnElement, Update, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from scim_server.db import chunked, rowcount, utcnow

# Kinds and statuses are the model's; re-exported here for the workers (outbox.USER, outbox.DEAD, ...).
from scim_server.models.sync import BLOCKED as BLOCKED
from scim_server.models.sync import DEAD as DEAD
from scim_server.models.sync import DONE as DONE
from scim_server.models.sync import GROUP as GROUP
from scim_server.models.sync import ORGANIZATION as ORGANIZATION
from scim_server.models.sync import PENDING as PENDING
from scim_server.models.sync import PRIORITY as PRIORITY
from scim_server.models.sync import USER as USER
from scim_server.models.sync import SyncMark

#: Returned by ``fail`` when the entity was re-marked meanwhile (not a stored status: the mark is pending).
SUPERSEDED = "superseded"

BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 900.0
MAX_ERROR_CHARS = 2000
#: Attempts a revived dead mark gets (with the long backoff of its last attempts) before it is dead
#: again, to wait for the next revival (``revive``).
REVIVAL_ATTEMPTS = 3


@dataclass(frozen=True)
class Claim:
    """A mark held by one worker until ``complete``/``fail``/``block`` (or until the lease ends)."""

    id: int
    kind: str
    directory_id: int
    entity_id: str
    generation: int
    attempts: int


def _claimable(now: dt.datetime) -> ColumnElement[bool]:
    return and_(
        SyncMark.status == PENDING,
        SyncMark.available_at <= now,
        or_(SyncMark.claimed_until.is_(None), SyncMark.claimed_until < now),
    )


def claim(session: Session, worker_id: str, limit: int, lease_seconds: float) -> list[Claim]:
    """Claim up to ``limit`` marks in priority order; commit the session afterwards.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` so concurrent workers pass each other by. SQLite: one
    ``UPDATE ... WHERE id IN (SELECT ...)`` statement (no read-then-write upgrade that could fail
    with "database is locked"); the rows taken are recognised by this call's exact lease end.
    """
    now = utcnow()
    until = now + dt.timedelta(seconds=lease_seconds)
    candidates = (
        select(SyncMark.id)
        .where(_claimable(now))
        .order_by(SyncMark.priority, SyncMark.available_at, SyncMark.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        ids = list(session.scalars(candidates.with_for_update(skip_locked=True)))
        if not ids:
            return []
        target = SyncMark.id.in_(ids)
    else:
        target = SyncMark.id.in_(candidates.scalar_subquery())
    session.execute(
        update(SyncMark)
        .where(target, _claimable(now))
        .values(claimed_by=worker_id, claimed_until=until)
        .execution_options(synchronize_session=False)
    )
    held = (
        select(SyncMark)
        .where(SyncMark.claimed_by == worker_id, SyncMark.claimed_until == until)
        .order_by(SyncMark.priority, SyncMark.available_at, SyncMark.id)
    )
    return [_to_claim(row) for row in session.scalars(held)]


def _to_claim(row: SyncMark) -> Claim:
    return Claim(row.id, row.kind, row.directory_id, row.entity_id, row.generation, row.attempts)


def extend(session: Session, claims: list[Claim], worker_id: str, lease_seconds: float) -> None:
    """Renew the lease of marks this worker still holds (a heartbeat for long batches)."""
    if not claims:
        return
    session.execute(
        update(SyncMark)
        .where(SyncMark.id.in_([c.id for c in claims]), SyncMark.claimed_by == worker_id)
        .values(claimed_until=utcnow() + dt.timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )


def complete(session: Session, item: Claim) -> bool:
    """Clear the mark if nothing changed since it was claimed; else just release it (stays pending)."""
    result = session.execute(_complete_statement(), {"mark_id": item.id, "seen": item.generation, "now": utcnow()})
    if rowcount(result):
        return True
    release(session, item)
    return False


@functools.cache
def _complete_statement() -> Update:
    now = bindparam("now", type_=SyncMark.__table__.c.updated_at.type)
    return (
        update(SyncMark)
        .where(SyncMark.id == bindparam("mark_id"), SyncMark.generation == bindparam("seen"))
        .values(status=DONE, attempts=0, last_error=None, claimed_by=None, claimed_until=None,
                done_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def release(session: Session, item: Claim) -> None:
    session.execute(
        update(SyncMark)
        .where(SyncMark.id == item.id)
        .values(claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )


def backoff_seconds(attempts: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: half fixed, half random, so retries spread out."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** max(0, attempts - 1))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def fail(session: Session, item: Claim, error: str, max_attempts: int) -> str:
    """Count a failed attempt: back off, or dead-letter after ``max_attempts``.

    Returns the new status, or ``SUPERSEDED`` when the entity changed meanwhile: then the failed
    attempt is not counted and the mark is converged again from the new data at once.
    """
    attempts = item.attempts + 1
    status = DEAD if attempts >= max_attempts else PENDING
    now = utcnow()
    result = session.execute(
        update(SyncMark)
        .where(SyncMark.id == item.id, SyncMark.generation == item.generation)
        .values(status=status, attempts=attempts, last_error=error[:MAX_ERROR_CHARS],
                available_at=now + dt.timedelta(seconds=backoff_seconds(attempts)),
                claimed_by=None, claimed_until=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if not rowcount(result):  # re-marked meanwhile: new data, fresh attempt
        release(session, item)
        return SUPERSEDED
    return status


def block(session: Session, item: Claim, reason: str) -> bool:
    """Park the mark until the entity changes again (re-marking makes it pending)."""
    now = utcnow()
    result = session.execute(
        update(SyncMark)
        .where(SyncMark.id == item.id, SyncMark.generation == item.generation)
        .values(status=BLOCKED, last_error=reason[:MAX_ERROR_CHARS], claimed_by=None,
                claimed_until=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if not rowcount(result):
        release(session, item)
    return bool(rowcount(result))


def retry(session: Session, job_id: int | None = None) -> int:
    """Re-queue dead (and blocked) marks, or one mark by id; returns how many."""
    now = utcnow()
    statement = update(SyncMark).values(status=PENDING, attempts=0, available_at=now, pending_since=now,
                                        claimed_by=None, claimed_until=None, updated_at=now)
    if job_id is None:
        statement = statement.where(SyncMark.status.in_([DEAD, BLOCKED]))
    else:
        statement = statement.where(SyncMark.id == job_id, SyncMark.status != PENDING)
    return rowcount(session.execute(statement.execution_options(synchronize_session=False)))


def _dead_before(older_than_s: float) -> ColumnElement[bool]:
    return and_(SyncMark.status == DEAD, SyncMark.updated_at <= utcnow() - dt.timedelta(seconds=older_than_s))


def revivable_count(session: Session, older_than_s: float) -> int:
    """Dead marks whose last attempt is at least ``older_than_s`` seconds old."""
    return int(session.scalar(select(func.count(SyncMark.id)).where(_dead_before(older_than_s))) or 0)


def revive(session: Session, older_than_s: float, max_attempts: int) -> int:
    """Re-queue the dead marks last tried ``older_than_s`` seconds ago or earlier, for
    ``REVIVAL_ATTEMPTS`` more attempts: after an outage nobody needs ``sync retry``, and a job that
    keeps failing costs a few attempts per period. Several workers may call it: a revived mark is
    no longer dead. Returns how many."""
    now = utcnow()
    statement = (
        update(SyncMark)
        .where(_dead_before(older_than_s))
        .values(status=PENDING, attempts=max(0, max_attempts - REVIVAL_ATTEMPTS), available_at=now,
                pending_since=now, claimed_by=None, claimed_until=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(session.execute(statement))


def pending_users(session: Session, user_ids: Iterable[str]) -> set[str]:
    """Those of ``user_ids`` whose own mark is still queued or being converged."""
    found: set[str] = set()
    for chunk in chunked(user_ids):
        found.update(session.scalars(
            select(SyncMark.entity_id)
            .where(SyncMark.kind == USER, SyncMark.status == PENDING, SyncMark.entity_id.in_(chunk))
        ))
    return found


def queue_stats(session: Session) -> tuple[int, float | None]:
    """``(pending_count, oldest_pending_age_seconds | None)`` for metrics and ``sync status``."""
    count, oldest = session.execute(
        select(func.count(), func.min(SyncMark.pending_since)).where(SyncMark.status == PENDING)
    ).one()
    if not count or oldest is None:
        return int(count or 0), None
    if oldest.tzinfo is None:  # aggregate results bypass the column type on SQLite
        oldest = _parse_naive(oldest)
    return int(count), max(0.0, (utcnow() - oldest).total_seconds())


def _parse_naive(value: str | dt.datetime) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.timezone.utc)


def status_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(SyncMark.status, func.count()).group_by(SyncMark.status))
    counts = {PENDING: 0, DONE: 0, DEAD: 0, BLOCKED: 0}
    counts.update({status: int(n) for status, n in rows})
    return counts


def retrying_count(session: Session) -> int:
    """Pending marks whose last attempt failed (JSM down or too slow, say): waiting for a retry."""
    return int(session.scalar(select(func.count(SyncMark.id)).where(_retrying())) or 0)


def _retrying() -> ColumnElement[bool]:
    return and_(SyncMark.status == PENDING, SyncMark.attempts > 0)


def problem_marks(session: Session, limit: int = 100) -> list[SyncMark]:
    """Dead, blocked and retrying marks, newest first (what ``sync status`` lists)."""
    query = (
        select(SyncMark)
        .where(or_(SyncMark.status.in_([DEAD, BLOCKED]), _retrying()))
        .order_by(SyncMark.updated_at.desc())
        .limit(limit)
    )
    return list(session.scalars(query))

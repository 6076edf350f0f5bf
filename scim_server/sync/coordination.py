"""What the sync workers agree on through the database: who is alive, and who runs a periodic duty.

Both live in ``instance_values`` (no table of their own): a worker's heartbeat is the row
``sync-worker:<worker id>`` holding the time of its last beat; a periodic duty (``reconcile``) is
the row ``duty:<name>`` holding the time it last started, taken by a compare-and-swap UPDATE so that
exactly one of any number of workers wins each period.

The number of live workers sets each process's share of JSM's rate limits
(``jsm_client.pacing.Pacer.set_processes``): per-process budgets derived from the worker count,
read through the database, so workers on several machines stay within one site's limits without
talking to each other on every call.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from scim_server.db import rowcount, transaction, utcnow
from scim_server.models import InstanceValue

HEARTBEAT_PREFIX = "sync-worker:"
DUTY_PREFIX = "duty:"
#: A worker whose last beat is older than this is not counted; older than ``FORGET_AFTER_S``, forgotten.
LIVE_WITHIN_S = 30.0
FORGET_AFTER_S = 3600.0


def beat(session: Session, worker_id: str) -> None:
    """Record that ``worker_id`` is alive now."""
    name = HEARTBEAT_PREFIX + worker_id[:80]
    now = utcnow().isoformat()
    if not rowcount(session.execute(update(InstanceValue).where(InstanceValue.name == name).values(value=now)
                                    .execution_options(synchronize_session=False))):
        session.add(InstanceValue(name=name, value=now))


def leave(session: Session, worker_id: str) -> None:
    """The worker stops: it no longer takes a share."""
    session.execute(delete(InstanceValue).where(InstanceValue.name == HEARTBEAT_PREFIX + worker_id[:80]))


def live_workers(session: Session) -> int:
    """How many workers beat within ``LIVE_WITHIN_S`` (stale rows past ``FORGET_AFTER_S`` are removed)."""
    now = utcnow()
    live, stale = 0, []
    rows = session.execute(select(InstanceValue.name, InstanceValue.value)
                           .where(InstanceValue.name.startswith(HEARTBEAT_PREFIX, autoescape=True)))
    for name, value in rows:
        age = _age(value, now)
        if age is not None and age <= LIVE_WITHIN_S:
            live += 1
        elif age is None or age > FORGET_AFTER_S:
            stale.append(name)
    if stale:
        session.execute(delete(InstanceValue).where(InstanceValue.name.in_(stale)))
    return live


def take_duty(session_factory: sessionmaker[Session], name: str, every_s: float) -> bool:
    """True for exactly one caller per period of ``every_s`` seconds (across all processes)."""
    key = DUTY_PREFIX + name
    now = utcnow()
    with transaction(session_factory) as session:
        row = session.get(InstanceValue, key)
        seen = row.value if row is not None else None
    if seen is None:
        try:
            with transaction(session_factory) as session:
                session.add(InstanceValue(name=key, value=now.isoformat()))
        except IntegrityError:  # another worker took the first period
            return False
        return True
    with transaction(session_factory) as session:
        age = _age(seen, now)
        if age is not None and age < every_s:
            return False
        swapped = session.execute(update(InstanceValue)
                                  .where(InstanceValue.name == key, InstanceValue.value == seen)
                                  .values(value=now.isoformat()).execution_options(synchronize_session=False))
        return bool(rowcount(swapped))


def _age(value: str, now: dt.datetime) -> float | None:
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return (now - when).total_seconds()

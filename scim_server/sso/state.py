"""Server-side SAML protocol state: consumed assertion IDs and assertions parked for a browser hop.

Both rows are written only after a Response's signature verified (never for anonymous
visitors), and both expire. Consuming is atomic (an INSERT on a primary key, a DELETE only one
caller can win), so every worker process agrees and a Response can log in once.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scim_server.models.sso import ConsumedAssertion, PendingLoginRecord

PURPOSE_LOGIN = "login"
PURPOSE_TEST = "test"
PARK_TTL = dt.timedelta(seconds=60)


class AssertionReplayed(Exception):
    """The assertion ID was accepted before."""


def consume_assertion(session: Session, assertion_id: str, expires_at: dt.datetime) -> None:
    """Record ``assertion_id`` as used until ``expires_at``; raise :class:`AssertionReplayed` if it was.

    After a replay the session's transaction is unusable (PostgreSQL aborts it): let it roll back.
    """
    try:
        session.add(ConsumedAssertion(id=assertion_id, expires_at=expires_at))
        session.flush()
    except IntegrityError:
        raise AssertionReplayed(assertion_id) from None


def _digest(handle: str) -> str:
    return hashlib.sha256(handle.encode("ascii", "replace")).hexdigest()


def park(session: Session, payload: dict[str, Any], now: dt.datetime) -> str:
    """Keep a verified login ``payload`` for ``PARK_TTL``; returns the one-time handle."""
    handle = secrets.token_urlsafe(32)
    session.add(PendingLoginRecord(id=_digest(handle), payload=payload, expires_at=now + PARK_TTL))
    return handle


def take_parked(session: Session, handle: str, now: dt.datetime) -> dict[str, Any] | None:
    """The payload parked under ``handle`` (removed at once); None if unknown, expired or taken."""
    if not handle or len(handle) > 100:
        return None
    key = _digest(handle)
    row = session.scalar(select(PendingLoginRecord).where(PendingLoginRecord.id == key))
    if row is None or row.expires_at <= now:
        return None
    payload = dict(row.payload)
    session.expunge(row)
    result = session.execute(delete(PendingLoginRecord).where(PendingLoginRecord.id == key))
    return payload if result.rowcount == 1 else None


def purge_expired(session: Session, now: dt.datetime) -> None:
    session.execute(delete(ConsumedAssertion).where(ConsumedAssertion.expires_at < now))
    session.execute(delete(PendingLoginRecord).where(PendingLoginRecord.expires_at < now))

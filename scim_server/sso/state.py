"""Server-side SAML protocol state: issued AuthnRequest IDs and consumed assertion IDs.

Both live in the database so that every worker process agrees; consuming is atomic (a DELETE
that only one caller can win, an INSERT on a primary key) so a Response can log in once.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scim_server.db import utcnow
from scim_server.models.sso import AuthnRequestRecord, ConsumedAssertion

REQUEST_TTL = dt.timedelta(minutes=15)
PURPOSE_LOGIN = "login"
PURPOSE_TEST = "test"


@dataclass(frozen=True)
class IssuedRequest:
    id: str
    purpose: str
    target: str | None


class AssertionReplayed(Exception):
    """The assertion ID was accepted before."""


def remember_request(session: Session, request: IssuedRequest, now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    purge_expired(session, now)
    session.add(
        AuthnRequestRecord(
            id=request.id, purpose=request.purpose, target=request.target, expires_at=now + REQUEST_TTL
        )
    )


def consume_request(session: Session, request_id: str, now: dt.datetime) -> IssuedRequest | None:
    """Take the issued request ``request_id`` out of the cache; None if unknown, expired or taken."""
    row = session.scalar(select(AuthnRequestRecord).where(AuthnRequestRecord.id == request_id))
    if row is None or row.expires_at <= now:
        return None
    issued = IssuedRequest(row.id, row.purpose, row.target)
    session.expunge(row)
    result = session.execute(delete(AuthnRequestRecord).where(AuthnRequestRecord.id == request_id))
    return issued if result.rowcount == 1 else None


def consume_assertion(session: Session, assertion_id: str, expires_at: dt.datetime) -> None:
    """Record ``assertion_id`` as used until ``expires_at``; raise :class:`AssertionReplayed` if it was.

    After a replay the session's transaction is unusable (PostgreSQL aborts it): let it roll back.
    """
    try:
        session.add(ConsumedAssertion(id=assertion_id, expires_at=expires_at))
        session.flush()
    except IntegrityError:
        raise AssertionReplayed(assertion_id) from None


def purge_expired(session: Session, now: dt.datetime) -> None:
    session.execute(delete(AuthnRequestRecord).where(AuthnRequestRecord.expires_at < now))
    session.execute(delete(ConsumedAssertion).where(ConsumedAssertion.expires_at < now))

"""Audit trail of SCIM writes and key operations.

``record`` adds one row in the caller's transaction, so the audit entry commits or rolls back with
the change it describes. Values under secret-sounding keys in ``detail`` are never stored.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scim_server.db import utcnow
from scim_server.models import Directory
from scim_server.models.audit import AuditEvent

CLI_ACTOR = "cli"
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
_SECRET_WORDS = ("password", "secret", "token", "authorization", "credential", "api_key", "apikey")
REDACTED = "[REDACTED]"


def _is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def scrub(value: Any) -> Any:
    """A copy of ``value`` with every entry under a secret-sounding key replaced by ``[REDACTED]``."""
    if isinstance(value, dict):
        return {k: REDACTED if _is_secret_name(str(k)) else scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(item) for item in value]
    return value


def event_values(
    *,
    action: str,
    target_type: str,
    target_id: str | None = None,
    directory_id: int | None = None,
    key_id: str | None = None,
    detail: dict[str, Any] | None = None,
    actor: str | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The column values of one audit row; the actor is ``actor`` when given, else the API key id,
    else ``cli``."""
    return {
        "at": at or utcnow(),
        "actor": (actor or key_id or CLI_ACTOR)[:64],
        "directory_id": directory_id,
        "action": action[:64],
        "target_type": target_type[:32],
        "target_id": None if target_id is None else str(target_id)[:300],
        "detail": scrub(detail) if detail else None,
    }


def record(session: Session, **values: Any) -> AuditEvent:
    """Record one audited action in the caller's transaction (e.g. action="user.create"); see
    :func:`event_values` for the arguments."""
    event = AuditEvent(**event_values(**values))
    session.add(event)
    return event


INSERT = AuditEvent.__table__.insert()  # parameters: the keys of event_values()


def insert(session: Session, **values: Any) -> None:
    """Like :func:`record`, as one INSERT executed now (no ORM object, no flush): the SCIM write path."""
    session.connection().execute(INSERT, event_values(**values))  # Core: no ORM execution overhead


def query_events(
    session: Session,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    target_id: str | None = None,
    target_type: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    directory_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[AuditEvent]:
    """Matching events, newest first. ``action`` ending in ``.*`` matches a prefix (``key.*``)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    query = select(AuditEvent)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    if target_id is not None:
        query = query.where(AuditEvent.target_id == target_id)
    if target_type is not None:
        query = query.where(func.lower(AuditEvent.target_type) == target_type.lower())  # User, user, api_key
    if action is not None:
        query = query.where(_action_clause(action))
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    if directory_id is not None:
        query = query.where(AuditEvent.directory_id == directory_id)
    query = query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    return list(session.scalars(query))


def _action_clause(action: str):
    if action.endswith(".*"):
        prefix = action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return AuditEvent.action.like(prefix + "%", escape="\\")
    return AuditEvent.action == action


def directory_names(session: Session, events: list[AuditEvent]) -> dict[int, str]:
    ids = {e.directory_id for e in events if e.directory_id is not None}
    if not ids:
        return {}
    rows = session.execute(select(Directory.id, Directory.name).where(Directory.id.in_(ids)))
    return {row.id: row.name for row in rows}


def event_to_dict(event: AuditEvent, directories: dict[int, str] | None = None) -> dict[str, Any]:
    directories = directories or {}
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "directory": directories.get(event.directory_id) if event.directory_id is not None else None,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "detail": event.detail,
    }

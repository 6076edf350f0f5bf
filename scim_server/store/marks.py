"""The write side of the propagation outbox: a SCIM write marks which entity changed, in the
write's own transaction (a rollback undoes the mark too). One row per entity (``sync_marks``),
upserted: a burst of writes collapses into one pending mark whose ``generation`` grows. The workers'
side (claim, lease, fail, retry) is ``scim_server.sync.outbox``.
"""
from __future__ import annotations

import functools
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from scim_server.db import utcnow
from scim_server.models.sync import GLOBAL_DIRECTORY, ORGANIZATION, PENDING, PRIORITY, SyncMark


def mark_dirty(session: Session, kind: str, entity_id: str, directory_id: int) -> None:
    """Record that the ``kind`` ("user" | "group" | "org") entity changed and must be converged to JSM.

    Call inside the write transaction. Idempotent; concurrent calls for one entity are safe.
    """
    connection = session.connection()  # Core statement: no ORM execution overhead
    connection.execute(upsert_statement(connection.dialect.name), mark_params(kind, entity_id, directory_id))


def mark_params(kind: str, entity_id: str, directory_id: int, prefix: str = "") -> dict[str, Any]:
    """The parameters of :func:`upsert_statement` (built with the same ``prefix``)."""
    if kind not in PRIORITY:
        raise ValueError(f"unknown mark kind {kind!r}")
    return {f"{prefix}kind": kind, f"{prefix}directory_id": directory_id, f"{prefix}entity_id": str(entity_id),
            f"{prefix}priority": PRIORITY[kind], f"{prefix}now": utcnow()}


@functools.cache
def upsert_statement(dialect: str, prefix: str = "") -> Any:
    """The mark upsert, built once per dialect (building it costs more than running it); its
    parameters are named ``prefix`` + kind, directory_id, entity_id, priority, now."""
    now = bindparam(f"{prefix}now", type_=SyncMark.__table__.c.updated_at.type)
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = cast(Table, SyncMark.__table__)
    statement = insert(table).values(
        kind=bindparam(f"{prefix}kind"), directory_id=bindparam(f"{prefix}directory_id"),
        entity_id=bindparam(f"{prefix}entity_id"), priority=bindparam(f"{prefix}priority"), status=PENDING,
        generation=1, attempts=0, available_at=now, pending_since=now, updated_at=now,
    )
    return statement.on_conflict_do_update(
        index_elements=[table.c.kind, table.c.directory_id, table.c.entity_id],
        set_=dict(
            generation=table.c.generation + 1,
            status=PENDING,
            attempts=0,
            available_at=now,
            last_error=None,
            updated_at=now,
            # Still pending: the entity has been waiting since the earlier write.
            pending_since=func.coalesce(case((table.c.status == PENDING, table.c.pending_since)), now),
        ),
    )


def mark_organization(session: Session, name: str) -> None:
    """Organizations are site-wide in JSM, so their marks belong to no directory."""
    mark_dirty(session, ORGANIZATION, name, GLOBAL_DIRECTORY)

"""Fast seeding of many users straight into the database, bypassing HTTP.

Pushing 100,000 users over SCIM would take minutes and measure creation, not lookup; the
filtered-GET benchmark only needs the rows to exist. Rows are built from the same SCIM
documents the HTTP workload sends (``benchmarks.workload.user_document``) and written into the
models' tables with ``COPY`` on PostgreSQL and multi-row INSERTs on SQLite. Documents are validated and their index columns and
``user_values`` rows derived by the store's own functions (``validate_document``,
``derived_columns``, ``value_rows``; see ``canonical_documents`` for how validation is kept
cheap), so the rows are exactly those ``POST /Users`` would write,
without the audit entries and outbox marks. Planner statistics are then refreshed (``ANALYZE``),
as autovacuum would do.
"""
from __future__ import annotations

import json
import uuid
from typing import Any, Callable

from sqlalchemy import JSON, Table, insert, select, text
from sqlalchemy.orm import Session

from benchmarks.workload import Workload, user_document
from scim_server.db import make_engine, make_session_factory, transaction, utcnow
from scim_server.models import Directory, User, UserValue
from scim_server.scim.attributes import USER
from scim_server.scim.resources import validate_document
from scim_server.store.users import derived_columns, value_rows

BATCH = 5_000


def user_row(document: dict[str, Any], directory_id: int) -> dict[str, Any]:
    """Column values of a ``users`` row for a canonical document (the store's own derivation)."""
    now = utcnow()
    return {"id": str(uuid.uuid4()), "directory_id": directory_id, "document": document, "version": 1,
            "created_at": now, "updated_at": now, **derived_columns(document)}


def canonical_documents(workload: Workload) -> Callable[[int], dict[str, Any]]:
    """``i -> canonical document of user i``.

    Validation costs most of a millisecond per document. The workload's documents differ only in
    digits, so when validation leaves the first and the last unchanged (they are already
    canonical) the rest are taken as they are; otherwise every document is validated.
    """
    def validated(i: int) -> dict[str, Any]:
        return validate_document(USER, user_document(workload, i))

    samples = {0, workload.users - 1}
    if all(validated(i) == user_document(workload, i) for i in samples):
        return lambda i: user_document(workload, i)
    return validated


def seed_users(database_url: str, workload: Workload, directory: str = "default") -> list[str]:
    """Insert ``workload.users`` users (with their e-mails) into ``directory``; their ids in order."""
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    try:
        with transaction(factory) as session:
            directory_id = session.scalar(select(Directory.id).where(Directory.name == directory))
        if directory_id is None:
            raise LookupError(f"directory {directory!r} does not exist (create a key for it first)")
        document = canonical_documents(workload)
        users: list[dict[str, Any]] = []
        for start in range(0, workload.users, BATCH):
            batch = [user_row(document(i), directory_id) for i in range(start, min(start + BATCH, workload.users))]
            _write_rows(factory, User.__table__, batch)
            users.extend({"id": row["id"], "document": row["document"]} for row in batch)
        _analyze(engine)  # before user_values: its foreign-key checks must plan an index lookup
        for start in range(0, len(users), BATCH):
            values = [row for user in users[start:start + BATCH] for row in value_rows(user["id"], user["document"])]
            _write_rows(factory, UserValue.__table__, values)
        _analyze(engine)
        return [user["id"] for user in users]
    finally:
        engine.dispose()


def _write_rows(factory, table: Table, rows: list[dict[str, Any]]) -> None:
    with transaction(factory) as session:
        write = _copy if session.get_bind().dialect.name == "postgresql" else _insert
        write(session, table, rows)


def _insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    session.execute(insert(table), rows)


def _copy(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL ``COPY ... FROM STDIN``: several times faster than multi-row INSERTs."""
    if not rows:
        return
    columns = list(rows[0])
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    cursor = session.connection().connection.driver_connection.cursor()
    quoted = ", ".join(f'"{name}"' for name in columns)
    with cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([json.dumps(row[c]) if c in json_columns else row[c] for c in columns])


def _analyze(engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()

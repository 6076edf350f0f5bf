"""A pooled PostgreSQL connection that died while idle (database restart, idle timeout) is replaced
before a request uses it; one used moments ago is not pinged (no round trip per request)."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from scim_server import db
from tests.fixtures.db import BACKENDS

pytestmark = pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL backend not selected")


def backend_pid(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_a_connection_killed_while_idle_is_replaced(postgres_database, monkeypatch):
    engine = db.make_engine(postgres_database, pool_size=1, max_overflow=0)
    admin = db.make_engine(postgres_database, isolation_level="AUTOCOMMIT")
    try:
        first = backend_pid(engine)
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)  # the connection counts as idle now
        second = backend_pid(engine)  # no OperationalError: the dead connection was replaced
        assert second != first
    finally:
        engine.dispose()
        admin.dispose()


def test_a_busy_connection_is_not_pinged(postgres_database, monkeypatch):
    engine = db.make_engine(postgres_database, pool_size=1, max_overflow=0)
    pings: list[object] = []
    real_ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda connection: pings.append(connection) or real_ping(connection))
    try:
        for _ in range(3):
            backend_pid(engine)
        assert pings == []
        monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
        backend_pid(engine)
        assert len(pings) == 1
    finally:
        engine.dispose()

"""Query plans must not depend on luck: a migration leaves PostgreSQL with planner statistics."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from benchmarks.common import scratch_database
from scim_server.db import make_engine, upgrade
from tests.fixtures.db import BACKENDS, POSTGRES_URL

pytestmark = pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL backend not selected")


def test_migrating_a_new_database_analyzes_it(tmp_path):
    with scratch_database("postgresql", f"stats{os.getpid()}", tmp_path, POSTGRES_URL) as url:
        engine = make_engine(url)
        try:
            upgrade(engine)
            with engine.connect() as connection:
                analyzed = dict(connection.execute(text(
                    "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables"
                    " WHERE relname IN ('users', 'user_values', 'groups', 'group_members')")).all())
        finally:
            engine.dispose()
    assert analyzed == {"users": True, "user_values": True, "groups": True, "group_members": True}

"""The migration chain on a brand-new database, on SQLite and PostgreSQL.

Proves that an empty database migrates to head, that every revision downgrades and upgrades
again, and that the migrated schema is exactly what the models declare (alembic autogenerate
finds nothing to do). A failure names the tables whose model and migration disagree.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

import scim_server.models  # noqa: F401  (registers every table)
from scim_server.db import Base, alembic_config, current_revision, make_engine, upgrade


def downgrade(engine: Engine, revision: str) -> None:
    """Counterpart of ``scim_server.db.upgrade`` on the same connection handling."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def revision_chain(engine: Engine) -> list[str]:
    """Revision ids from the first to head (the chain is linear)."""
    script = ScriptDirectory.from_config(alembic_config(engine.url.render_as_string(hide_password=False)))
    assert len(script.get_heads()) == 1, f"migrations have several heads: {script.get_heads()}"
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def schema_differences(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": connection.dialect.name == "sqlite"}
        )
        return compare_metadata(context, Base.metadata)


def _table_of(diff: Any) -> str:
    """The table a diff entry (tuple, or list of tuples for column modifications) is about."""
    entry = diff[0] if isinstance(diff, list) else diff
    for item in entry[1:]:
        table = getattr(item, "table", None)
        if table is not None:
            return table.name
        if hasattr(item, "name") and hasattr(item, "columns") and hasattr(item, "c"):
            return item.name
    return str(entry[2]) if len(entry) > 2 else "?"


def describe(diffs: list[Any]) -> str:
    by_table: dict[str, list[str]] = defaultdict(list)
    for diff in diffs:
        entry = diff[0] if isinstance(diff, list) else diff
        by_table[_table_of(diff)].append(f"{entry[0]}: {entry[1:]}")
    return "\n".join(f"table {table}:\n  " + "\n  ".join(items) for table, items in sorted(by_table.items()))


def app_tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_empty_database_migrates_to_head_matching_the_models(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine)
        assert current_revision(engine) == revision_chain(engine)[-1]
        assert app_tables(engine) == set(Base.metadata.tables)
        diffs = schema_differences(engine)
        assert not diffs, "models and migrations differ:\n" + describe(diffs)
    finally:
        engine.dispose()


def test_head_downgrades_to_previous_revision_and_back(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        chain = revision_chain(engine)
        upgrade(engine)
        downgrade(engine, "-1")
        assert current_revision(engine) == (chain[-2] if len(chain) > 1 else None)
        upgrade(engine)
        assert current_revision(engine) == chain[-1]
        diffs = schema_differences(engine)
        assert not diffs, "schema differs from the models after down/up:\n" + describe(diffs)
    finally:
        engine.dispose()


def test_every_revision_downgrades_to_base_and_the_chain_replays(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        chain = revision_chain(engine)
        upgrade(engine)
        for expected in reversed([None, *chain[:-1]]):
            downgrade(engine, "-1")
            assert current_revision(engine) == expected
        assert app_tables(engine) == set(), "downgrade to base left tables behind"
        for revision in chain:
            upgrade(engine, revision)
            assert current_revision(engine) == revision
        assert not schema_differences(engine)
    finally:
        engine.dispose()

"""The sync tables created by migration 0002 match the models exactly (alembic autogenerate)."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from scim_server.db import Base, make_engine
from scim_server.models import sync as sync_models

SYNC_TABLES = {model.__tablename__ for model in (
    sync_models.SyncMark, sync_models.JsmAccount, sync_models.JsmOrganization, sync_models.JsmMembership,
    sync_models.JsmPortalLink, sync_models.SyncGroupTarget, sync_models.SyncRulesState)}


def _about_sync_table(diff) -> bool:
    """Autogenerate diffs are nested tuples of SQLAlchemy objects; their repr names the table."""
    text = repr(diff)
    return any(f"'{table}'" in text for table in SYNC_TABLES)


def test_sync_migration_matches_models(database_url):
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diffs = [d for d in compare_metadata(context, Base.metadata) if _about_sync_table(d)]
    finally:
        engine.dispose()
    assert diffs == []

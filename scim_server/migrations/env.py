"""Alembic environment: runs on the connection handed over by ``scim_server.db.upgrade``."""
from alembic import context
from sqlalchemy import create_engine

import scim_server.models  # noqa: F401  (registers every table on Base.metadata)
from scim_server.db import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        _run(conn)

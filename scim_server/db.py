"""Database plumbing: declarative base, engines, sessions and schema migration (alembic)."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar, cast

from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy.engine import CursorResult, Engine, Result, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from scim_server import sqlite_writers
from scim_server.private_files import prepare_sqlite

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Deterministic constraint names so that migrations are portable between SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# SQLite allows 32766 bound variables (999 before 3.32); IN lists are cut well below either limit.
IN_CHUNK = 500
T = TypeVar("T")


def chunked(values: Iterable[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    """Lists of at most ``size`` values (for bounded ``IN`` lists)."""
    chunk: list[T] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched (``Session.execute`` is typed as returning a plain Result)."""
    return cast("CursorResult[Any]", result).rowcount


#: What a client is told to wait (seconds) while the database is unreachable.
RETRY_AFTER_SECONDS = 5


def is_unavailable(exc: BaseException) -> bool:
    """The database could not be reached, dropped the connection, stayed locked or the pool ran dry:
    a condition that passes (answered 503 with Retry-After), not a bug (500)."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError))


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs (the driver we install)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: with WAL, NORMAL may lose the last commits on power loss (they are synced only at
    # checkpoints); FULL syncs the WAL at every commit, so an acknowledged SCIM write survives.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str, **kwargs: object) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout for concurrent writers."""
    url = normalize_url(url)
    if is_sqlite(url):
        database = make_url(url).database
        connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": 30}
        if database and database != ":memory:" and not database.startswith("file:"):
            prepare_sqlite(database)  # 0600 before SQLite creates it (and its -wal/-shm)
            connect_args["factory"] = sqlite_writers.WriterConnection  # writers take turns, woken at once
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("connect_args", {"connect_timeout": 5})
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    try:
        engine = create_engine(url, **kwargs)
    except ImportError as exc:  # the driver is an extra: say how to get it, not a traceback
        raise ValueError(f"the database driver is not installed ({exc.name}); for PostgreSQL install the "
                         "extra [postgres], e.g. pip install '.[postgres]' in the source tree") from exc
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


# A pooled connection unused for this long is tested before use (a database restart or an idle
# timeout in between would otherwise fail the next request). One used moments ago is not: a ping
# per checkout (``pool_pre_ping``) is a round trip on every request, about 3% of a request's CPU.
IDLE_PING_SECONDS = 2.0


def _ping_when_idle(engine: Engine) -> None:
    def checkin(_dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    def checkout(dbapi_connection, record, _proxy) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
            dbapi_connection.rollback()  # the ping opened a transaction; start the request clean
        except Exception as exc:  # the pool discards this connection and checks out another
            raise DisconnectionError("pooled connection failed its idle check") from exc

    event.listen(engine.pool, "checkin", checkin)
    event.listen(engine.pool, "checkout", checkout)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def insert_ignoring_duplicates(session: Session, model, rows: list[dict]) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING`` on either backend.

    Preferred to ``begin_nested()`` + IntegrityError for "create unless present": on SQLite a
    SAVEPOINT opened before any other write starts and, when released, commits the transaction.
    """
    if not rows:
        return
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(model).values(rows).on_conflict_do_nothing())


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on any exception."""
    with factory() as session, session.begin():
        yield session


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


_MIGRATION_LOCK_ID = 0x4A534D53  # "JSMS": serializes concurrent `db upgrade` on PostgreSQL


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or migrate the schema; idempotent and safe when several processes start at once."""
    from alembic import command

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        config.attributes["connection"] = connection
        before = _revision_of(connection)
        command.upgrade(config, revision)
        if connection.dialect.name == "postgresql" and _revision_of(connection) != before:
            # Fresh statistics after a schema change: without them (new tables, autovacuum not run
            # yet or off) the planner may walk an index in sort order to a LIMIT instead of looking
            # a unique value up (tens of milliseconds instead of a tenth at 100,000 users).
            connection.execute(text("ANALYZE"))


def _revision_of(connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


# ---------------------------------------------------------------------------------------------
# Column types shared by all models
# ---------------------------------------------------------------------------------------------
import datetime as _dt  # noqa: E402

from sqlalchemy.types import DateTime, TypeDecorator  # noqa: E402


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(_dt.timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=_dt.timezone.utc)
        return value.astimezone(_dt.timezone.utc)

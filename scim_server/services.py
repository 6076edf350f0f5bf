"""What every request, CLI command and background task shares, built once per process.

A leaf module: it imports the foundation (settings, database, models) and Flask's context locals,
never a blueprint or the app factory, so views, SSO and the CLI can all depend on it.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from flask import Flask, current_app, g
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from scim_server.db import make_engine, make_session_factory, transaction, upgrade
from scim_server.models import InstanceValue
from scim_server.private_files import read_or_create_secret, write_new_secret
from scim_server.settings import Settings

EXTENSION = "jsm_scim"  # the key of the Services in ``Flask.extensions``
SESSION_SECRET_NAME = "secret_key"


@dataclass(frozen=True)
class Services:
    """Settings, engine and session factory; derive a variant with ``dataclasses.replace``."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]


def build_services(settings: Settings, migrate: bool = True) -> Services:
    """Open the database (and bring its schema to the newest revision unless ``migrate`` is False)."""
    engine = make_engine(settings.database_url)
    if migrate:
        upgrade(engine)
    return Services(settings, engine, make_session_factory(engine))


def attach(app: Flask, services: Services) -> None:
    """Make ``services`` the app's, for ``current_services()`` and ``services_of(app)``."""
    app.extensions[EXTENSION] = services
    app.teardown_appcontext(_close_request_session)


def services_of(app: Flask) -> Services:
    """The Services of an app built by ``create_app`` (a KeyError for any other app)."""
    services: Services = app.extensions[EXTENSION]
    return services


def current_services() -> Services:
    """The Services of the app handling the current request (needs an app context)."""
    return services_of(current_app)


def db_session() -> Session:
    """The request's session (one per request, closed at teardown)."""
    if "db_session" not in g:
        g.db_session = current_services().session_factory()
    session: Session = g.db_session
    return session


def read_only_db_session() -> Session:
    """The request's session for a request that only reads. On PostgreSQL its connection runs in
    autocommit: no BEGIN and no ROLLBACK round trip (half of a filtered GET's four). Under READ
    COMMITTED, PostgreSQL's default, every statement of a transaction takes a fresh snapshot
    anyway, so the statements see exactly what they would see in one. SQLite reads take no
    transaction in the driver either way."""
    session = db_session()
    if not session.in_transaction() and session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    return session


def _close_request_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def instance_value(factory: sessionmaker[Session], name: str, generate: Callable[[], str]) -> str:
    """A per-installation value, generated and stored on first use (race-safe across processes)."""
    with transaction(factory) as session:
        row = session.get(InstanceValue, name)
        if row is not None:
            return row.value
    try:
        with transaction(factory) as session:
            session.add(InstanceValue(name=name, value=generate()))
    except IntegrityError:  # another process stored it first
        pass
    with transaction(factory) as session:
        stored = session.get(InstanceValue, name)
        assert stored is not None
        return stored.value


_secrets: dict[tuple[str, str, str], str] = {}  # read once per process and database


def installation_secret(services: Services) -> str:
    """The secret that signs browser sessions and test links and encrypts the SAML SP key:
    JSM_SCIM_SECRET_KEY, else the secret file (JSM_SCIM_SECRET_FILE, created 0600 on first start).

    Never the database: someone who can read only the database (a backup, a replica, a leaked
    dump) must not be able to forge a session or use the SP key. Installs from before kept a
    generated secret in ``instance_values``; the first start moves it to the file (or drops it
    when JSM_SCIM_SECRET_KEY is set), so existing sessions and the SP key keep working.
    """
    settings = services.settings
    path = Path(settings.secret_file).resolve()
    key = (settings.database_url, settings.secret_key or "", str(path))
    if key not in _secrets:
        _secrets[key] = _load_secret(services.session_factory, settings.secret_key, path)
    return _secrets[key]


def _load_secret(factory: sessionmaker[Session], configured: str | None, path: Path) -> str:
    if configured:
        _drop_stored_secret(factory, tolerant=True)
        return configured
    if not path.exists():
        stored = _drop_stored_secret(factory)  # the database must answer: it may hold the secret
        if stored:
            write_new_secret(path, stored)
    secret = read_or_create_secret(path, lambda: secrets.token_urlsafe(48))
    _drop_stored_secret(factory, tolerant=True)  # another process may have migrated it meanwhile
    return secret


def _drop_stored_secret(factory: sessionmaker[Session], tolerant: bool = False) -> str | None:
    """Remove a secret an earlier version kept in the database; returns it. ``tolerant``: an
    unreachable database is no reason not to start (the next start removes it)."""
    try:
        with transaction(factory) as session:
            row = session.get(InstanceValue, SESSION_SECRET_NAME)
            if row is None:
                return None
            session.delete(row)
            return row.value
    except SQLAlchemyError:
        if not tolerant:
            raise
        return None

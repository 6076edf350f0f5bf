"""Flask application factory."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from flask import Flask, current_app, g
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from scim_server import metrics
from scim_server.db import make_engine, make_session_factory, transaction, upgrade
from scim_server.logging_setup import configure_logging, install_request_logging
from scim_server.models import InstanceValue
from scim_server.settings import Settings, load_settings


@dataclass
class Services:
    """What every request and background task needs, built once per process."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]


def instance_value(factory: sessionmaker[Session], name: str, generate) -> str:
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
        return session.get(InstanceValue, name).value


SESSION_SECRET_NAME = "secret_key"


def installation_secret(services: Services) -> str:
    """The session-signing secret: JSM_SCIM_SECRET_KEY, else one generated on first start and stored."""
    return services.settings.secret_key or instance_value(
        services.session_factory, SESSION_SECRET_NAME, lambda: secrets.token_urlsafe(48)
    )


def build_services(settings: Settings, migrate: bool = True) -> Services:
    engine = make_engine(settings.database_url)
    if migrate:
        upgrade(engine)
    return Services(settings, engine, make_session_factory(engine))


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> Flask:
    settings = settings or load_settings()
    configure_logging(settings)
    services = build_services(settings, migrate=migrate)
    app = Flask(__name__)
    app.extensions["jsm_scim"] = services
    install_request_logging(app)
    metrics.install(app)
    from scim_server.sync.worker import register_queue_metrics

    register_queue_metrics(services)
    app.config["SECRET_KEY"] = installation_secret(services)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = settings.effective_public_url.startswith("https://")
    app.teardown_appcontext(_close_session)

    from scim_server.api import register_blueprints

    register_blueprints(app)
    return app


def services() -> Services:
    return current_app.extensions["jsm_scim"]


def db_session() -> Session:
    """The request's session (one per request, closed at teardown)."""
    if "db_session" not in g:
        g.db_session = services().session_factory()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()

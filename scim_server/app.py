"""Flask application factory: builds the Services, configures the app and registers the blueprints.

Only the entry points import this module (``wsgi.py``, the CLI and tests); everything else takes
what it needs from ``scim_server.services``.
"""
from __future__ import annotations

from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException

from scim_server import metrics
from scim_server.api import ops, scim
from scim_server.idp import views as idp_views
from scim_server.logging_setup import configure_logging, install_request_logging
from scim_server.services import attach, build_services, installation_secret
from scim_server.settings import Settings, load_settings
from scim_server.sso import pages
from scim_server.sso import views as sso_views
from scim_server.sync.worker import register_queue_metrics


class _SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions with the signer built once per key set, not on every request
    (every SCIM request opens the session, and building the signer cost more than the rest of it)."""

    def __init__(self) -> None:
        self._signers: dict[tuple[Any, ...], Any] = {}

    def get_signing_serializer(self, app: Flask) -> Any:
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)
        signer = self._signers.get(keys)
        if signer is None:
            signer = self._signers[keys] = super().get_signing_serializer(app)
        return signer


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> Flask:
    settings = settings or load_settings()
    configure_logging(settings)
    services = build_services(settings, migrate=migrate)
    app = Flask(__name__)
    app.session_interface = _SessionCookies()
    attach(app, services)
    install_request_logging(app)
    metrics.install(app)
    pages.install(app)
    register_queue_metrics(services)
    app.config["SECRET_KEY"] = installation_secret(services)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = settings.effective_public_url.startswith("https://")
    app.register_blueprint(scim.blueprint)
    app.register_blueprint(ops.blueprint)
    app.register_blueprint(sso_views.blueprint)
    app.register_blueprint(idp_views.blueprint)
    app.register_error_handler(HTTPException, _http_error)
    return app


def _http_error(error: HTTPException):
    """Outside a blueprint's own handlers (routing errors, a browser route's 500): SCIM JSON under
    /scim/v2, the styled page elsewhere."""
    return scim.routing_error(error) or pages.http_error_page(error)

"""Operational endpoints: /healthz (process alive), /readyz (database reachable), /metrics."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SqlalchemyTimeout

from scim_server import __version__, metrics
from scim_server.db import RETRY_AFTER_SECONDS, is_unavailable
from scim_server.services import current_services

log = logging.getLogger(__name__)
blueprint = Blueprint("ops", __name__)

_NO_STORE = {"Cache-Control": "no-store"}


def _database_unavailable(error: Exception):
    """Any page or endpoint outside SCIM: a plain 503 with Retry-After while the database is away."""
    if not is_unavailable(error):
        raise error
    log.warning("database unavailable during %s %s: %s", request.method, request.path, type(error).__name__)
    return (jsonify(status="unavailable", detail="The database is unavailable; retry later"), 503,
            {"Retry-After": str(RETRY_AFTER_SECONDS), **_NO_STORE})


blueprint.app_errorhandler(DBAPIError)(_database_unavailable)
blueprint.app_errorhandler(SqlalchemyTimeout)(_database_unavailable)


@blueprint.get("/healthz")
def healthz() -> tuple[Response, int, dict[str, str]]:
    return jsonify(status="ok", version=__version__), 200, _NO_STORE


@blueprint.get("/readyz")
def readyz() -> tuple[Response, int, dict[str, str]]:
    try:
        with current_services().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means "not ready"
        log.warning("readiness check failed: database unreachable (%s)", type(exc).__name__)
        return jsonify(status="unavailable", database="unreachable"), 503, _NO_STORE
    return jsonify(status="ok", database="ok"), 200, _NO_STORE


@blueprint.get("/metrics")
def prometheus_metrics() -> Response:
    response = metrics.metrics_response()
    response.headers.update(_NO_STORE)
    return response

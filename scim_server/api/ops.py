"""Operational endpoints: /healthz (process alive), /readyz (database reachable), /metrics."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from scim_server import metrics
from scim_server.services import current_services

log = logging.getLogger(__name__)
blueprint = Blueprint("ops", __name__)

_NO_STORE = {"Cache-Control": "no-store"}


@blueprint.get("/healthz")
def healthz() -> tuple[Response, int, dict[str, str]]:
    return jsonify(status="ok"), 200, _NO_STORE


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

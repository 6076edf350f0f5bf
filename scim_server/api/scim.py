"""The SCIM 2.0 blueprint under /scim/v2: authentication of every request and SCIM-shaped errors.

Every answer, errors included, is ``application/scim+json``: a ScimError as its RFC 7644 §3.12
body, unknown paths as 404, unsupported methods as 405 (Okta's test expects 405 for POST on the
discovery endpoints), oversized bodies as 413, an unreachable database as 503 with Retry-After, and anything
unexpected as a logged 500.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, g, request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SqlalchemyTimeout
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from scim_server import ratelimit
from scim_server.api.scim_http import error_response
from scim_server.auth import authenticate
from scim_server.db import RETRY_AFTER_SECONDS, is_unavailable
from scim_server.scim.errors import ScimError
from scim_server.services import current_services, db_session

PREFIX = "/scim/v2"
log = logging.getLogger(__name__)

blueprint = Blueprint("scim", __name__, url_prefix=PREFIX)


@blueprint.before_request
def _refuse_unstorable_url() -> None:
    """A NUL in the path or the query reaches no resource and no database accepts it: refuse it
    here, before any query (PostgreSQL would fail the statement)."""
    if "\x00" in request.path:
        raise ScimError(404, "Resource not found")
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            raise ScimError(400, f"Query parameter {name!r} contains a NUL character",
                            "invalidFilter" if name.lower() == "filter" else "invalidValue")


@blueprint.before_request
def _authenticate() -> None:
    session = db_session()
    key = authenticate(session, request.headers.get("Authorization"),
                       warning_days=current_services().settings.key_expiry_warning_days,
                       cache_seconds=current_services().settings.key_cache_seconds)
    # No commit here: last_used_at is written by authentication in its own side transaction, so the
    # request goes on in the same transaction on the same connection (one pool checkout). The key is
    # detached so that a rollback later in the request (a 409 at flush) cannot expire it.
    if key in session:
        session.expunge(key)
    g.api_key = key
    ratelimit.check(key.id)


@blueprint.errorhandler(ScimError)
def _scim_error(error: ScimError) -> Response:
    return error_response(error)


def _from_http(error: HTTPException) -> ScimError:
    headers = {}
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    detail = {404: "Unknown SCIM endpoint", 405: f"Method {request.method} is not supported here",
              413: "Request body too large"}.get(error.code or 500, error.description or error.name)
    return ScimError(error.code or 500, detail, headers=headers)


@blueprint.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    return error_response(_from_http(error))


@blueprint.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    if is_unavailable(error):
        log.warning("database unavailable during %s %s: %s", request.method, request.path, type(error).__name__)
        return error_response(ScimError(503, "The database is unavailable; retry later",
                                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)}))
    log.exception("Unexpected error in %s %s", request.method, request.path)
    return error_response(ScimError(500, "Internal server error"))


# More specific than the application's own handler for database errors (ops.py), so that SCIM
# requests get a SCIM-shaped 503.
blueprint.errorhandler(DBAPIError)(_unexpected)
blueprint.errorhandler(SqlalchemyTimeout)(_unexpected)


def routing_error(error: HTTPException) -> Response | None:
    """404/405 raised while routing (before any blueprint is chosen): SCIM-shaped under /scim/v2,
    None elsewhere (the app factory shows the browser page then)."""
    if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
        return error_response(_from_http(error))
    return None


def _register_routes() -> None:
    from scim_server.api import discovery, resources

    resources.register(blueprint)
    discovery.register(blueprint)


_register_routes()

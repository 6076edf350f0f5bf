"""Request reading and response writing shared by the SCIM views (thin Flask glue, no SCIM rules)."""
from __future__ import annotations

import json
from typing import Any

from flask import Response, g, request

from scim_server.scim import limits
from scim_server.scim.errors import SCIM_MEDIA_TYPE, ScimError
from scim_server.services import current_services
from scim_server.store import Scope

ACCEPTED_MEDIA_TYPES = (SCIM_MEDIA_TYPE, "application/json")


def scim_response(body: Any = None, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    payload = "" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    response = Response(payload, status=status, headers=headers or {})
    if body is not None:
        response.content_type = SCIM_MEDIA_TYPE
    return response


def error_response(error: ScimError) -> Response:
    return scim_response(error.document(), error.status, error.headers)


def json_body() -> Any:
    """The request's JSON body: 415 for a non-JSON Content-Type (none at all is accepted, as Okta
    sends one create without it), 400 invalidSyntax for malformed or too deeply nested JSON, 400
    invalidValue for values no database stores (``limits.check_json``), 413 past the size limit."""
    if request.content_type and request.mimetype not in ACCEPTED_MEDIA_TYPES:
        raise ScimError(415, f"Unsupported Content-Type {request.mimetype}; use {SCIM_MEDIA_TYPE}")
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ScimError(400, "The request body is empty", "invalidSyntax")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScimError(400, f"Malformed JSON: {exc}", "invalidSyntax") from None
    except RecursionError:
        raise ScimError(400, f"JSON nested deeper than {limits.MAX_JSON_DEPTH} levels", "invalidSyntax") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ScimError(400, f"Malformed JSON: {exc}", "invalidSyntax") from None
    limits.check_json(body)
    return body


def base_url() -> str:
    """Where resources live, for ``Location``, ``meta.location`` and ``$ref``: JSM_SCIM_PUBLIC_URL,
    else the bind address; never the request's Host header, which the client chooses."""
    return current_services().settings.effective_public_url


def scope() -> Scope:
    """The calling key's directory: every query of the request is confined to it."""
    return Scope(directory_id=g.api_key.directory_id, key_id=g.api_key.id)

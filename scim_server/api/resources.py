"""The /Users and /Groups endpoints: read the request, call the SCIM handler, render its answer.

The SCIM work is done by ``scim_server.handler`` (framework-free, shared with JIT provisioning).
Each request is one transaction: it commits only after every rule and write succeeded and the
answer was rendered.
"""
from __future__ import annotations

from typing import Any, Callable

from flask import Blueprint, Response, request

from scim_server import handler
from scim_server.api.scim_http import base_url, json_body, scim_response, scope
from scim_server.handler import Answer, Caller, Kind
from scim_server.services import db_session, read_only_db_session


def _caller() -> Caller:
    return Caller(scope(), base_url())


def _query() -> dict[str, str]:
    return request.args.to_dict()


def _render(answer: Answer) -> Response:
    headers = {}
    if answer.etag is not None:
        headers["ETag"] = answer.etag
    if answer.location is not None:
        headers["Location"] = answer.location
    return scim_response(answer.document, answer.status, headers)


def _committed(answer: Any) -> Response:
    """Commit the request's transaction, then serialize the answer (a single answer, or a
    ListResponse document): SQLite's write lock is not held while the JSON is written."""
    db_session().commit()
    return _render(answer) if isinstance(answer, Answer) else scim_response(answer)


def _views(kind: Kind) -> dict[str, Callable[..., Response]]:
    def list_resources() -> Response:
        return scim_response(handler.list_resources(read_only_db_session(), kind, _caller(), _query()))

    def search() -> Response:
        return scim_response(handler.search(db_session(), kind, _caller(), json_body()))

    def create() -> Response:
        body = json_body()
        return _committed(handler.create(db_session(), kind, _caller(), body, _query()))

    def get(resource_id: str) -> Response:
        return _render(handler.get(read_only_db_session(), kind, _caller(), resource_id, _query(),
                                   request.headers.get("If-None-Match")))

    def replace(resource_id: str) -> Response:
        body = json_body()
        return _committed(handler.replace_resource(db_session(), kind, _caller(), resource_id, body, _query(),
                                                   request.headers.get("If-Match")))

    def patch(resource_id: str) -> Response:
        message = json_body()
        return _committed(handler.patch(db_session(), kind, _caller(), resource_id, message, _query(),
                                        request.headers.get("If-Match")))

    def delete(resource_id: str) -> Response:
        return _committed(handler.delete(db_session(), kind, _caller(), resource_id,
                                         request.headers.get("If-Match")))

    return {"list": list_resources, "search": search, "create": create, "get": get,
            "replace": replace, "patch": patch, "delete": delete}


def _root_search() -> Response:
    return scim_response(handler.search_all(db_session(), _caller(), json_body()))


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/.search", "root_search", _root_search, methods=["POST"])
    for kind in handler.KINDS:
        views = _views(kind)
        name = kind.endpoint.lower()
        base = f"/{kind.endpoint}"
        blueprint.add_url_rule(base, f"{name}_list", views["list"], methods=["GET"])
        blueprint.add_url_rule(base, f"{name}_create", views["create"], methods=["POST"])
        blueprint.add_url_rule(f"{base}/.search", f"{name}_search", views["search"], methods=["POST"])
        item = f"{base}/<resource_id>"
        blueprint.add_url_rule(item, f"{name}_get", views["get"], methods=["GET"])
        blueprint.add_url_rule(item, f"{name}_replace", views["replace"], methods=["PUT"])
        blueprint.add_url_rule(item, f"{name}_patch", views["patch"], methods=["PATCH"])
        blueprint.add_url_rule(item, f"{name}_delete", views["delete"], methods=["DELETE"])

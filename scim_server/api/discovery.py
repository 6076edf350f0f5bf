"""SCIM discovery endpoints (RFC 7644 §4): ServiceProviderConfig, ResourceTypes, Schemas.

``register(bp)`` adds the routes to the SCIM blueprint. Authentication is not decided here: the
SCIM blueprint authenticates every request it serves, discovery included (RFC 7644 §4 lets a
service provider require it, and Okta and Entra ID send their token anyway). Only GET (and HEAD)
is served; any other method is a 405 SCIM error. Unknown schemas and resource types are 404 SCIM
errors. Query parameters (filter, sort, paging) are ignored: the lists are tiny.
"""
from __future__ import annotations

from typing import Any, Callable

from flask import Blueprint, request, url_for

from schemas.documents import resource_types, schema_documents, service_provider_config
from scim_server.api.scim_http import base_url, scim_response
from scim_server.scim.errors import ScimError

LIST_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
_REJECTED_METHODS = ["POST", "PUT", "PATCH", "DELETE"]


def register(bp: Blueprint) -> None:
    """Add the discovery routes to ``bp`` (the SCIM blueprint, prefix ``/scim/v2``)."""
    routes: list[tuple[str, str, Callable[..., Any]]] = [
        ("/ServiceProviderConfig", "discovery_service_provider_config", _service_provider_config),
        ("/ResourceTypes", "discovery_resource_types", _resource_types),
        ("/ResourceTypes/<name>", "discovery_resource_type", _resource_type),
        ("/Schemas", "discovery_schemas", _schemas),
        ("/Schemas/<path:urn>", "discovery_schema", _schema),
    ]
    for rule, endpoint, view in routes:
        bp.add_url_rule(rule, endpoint, _get_only(view), methods=["GET", *_REJECTED_METHODS])


def _get_only(view: Callable[..., Any]) -> Callable[..., Any]:
    def dispatch(**kwargs: Any):
        if request.method not in ("GET", "HEAD"):
            raise ScimError(405, f"{request.method} is not supported on {request.path}: discovery is read-only",
                            headers={"Allow": "GET, HEAD"})
        return scim_response(view(**kwargs))

    dispatch.__name__ = view.__name__
    return dispatch


def _location(endpoint: str, **values: str) -> str:
    """Absolute URL of a discovery document, on the same base as the resources' locations."""
    return base_url() + url_for(f"{request.blueprint}.{endpoint}", **values)


def _list_response(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": len(resources),
        "itemsPerPage": len(resources),
        "startIndex": 1,
        "Resources": resources,
    }


def _with_location(document: dict[str, Any], location: str) -> dict[str, Any]:
    document.setdefault("meta", {})["location"] = location
    return document


def _service_provider_config() -> dict[str, Any]:
    return _with_location(service_provider_config(), _location("discovery_service_provider_config"))


def _located_resource_types() -> list[dict[str, Any]]:
    return [_with_location(rt, _location("discovery_resource_type", name=rt["id"])) for rt in resource_types()]


def _located_schemas() -> list[dict[str, Any]]:
    return [_with_location(s, _location("discovery_schema", urn=s["id"])) for s in schema_documents()]


def _resource_types() -> dict[str, Any]:
    return _list_response(_located_resource_types())


def _schemas() -> dict[str, Any]:
    return _list_response(_located_schemas())


def _resource_type(name: str) -> dict[str, Any]:
    return _find(_located_resource_types(), name, "resource type")


def _schema(urn: str) -> dict[str, Any]:
    return _find(_located_schemas(), urn, "schema")


def _find(documents: list[dict[str, Any]], wanted: str, kind: str) -> dict[str, Any]:
    """The document whose id is ``wanted`` (case-insensitively: schema URIs are case-insensitive)."""
    for document in documents:
        if document["id"].lower() == wanted.lower():
            return document
    raise ScimError(404, f"Unknown {kind} {wanted!r}")

"""The SCIM operations on Users and Groups (RFC 7644 §3.3-§3.6), free of any web framework.

Plain arguments in (the session, a resource kind, the caller, ids, parsed JSON bodies, the query
parameters as strings, the If-Match / If-None-Match values), an ``Answer`` or a ``ScimError`` out.
Every operation runs in the caller's transaction and does not commit it: the Flask views commit
after rendering, JIT provisioning commits its whole login in one transaction. One exception keeps
the HTTP behaviour: when a write succeeded but the answer's query parameters are invalid, the
session is committed before the 400 is raised (the write stands, as it always has).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from sqlalchemy.orm import Session

from schemas.messages import PATCH_REQUEST, SEARCH_REQUEST_MESSAGE, list_response, load_list_query, load_message
from scim_server.handler.kinds import GROUPS, USERS, Kind
from scim_server.scim.errors import ScimError
from scim_server.scim.etag import etag_for, header_matches, precondition_holds
from scim_server.scim.patch import apply_patch
from scim_server.scim.projection import Projection, projection
from scim_server.scim.resources import check_immutable, reference, validate_document
from scim_server.store import ListQuery, Scope

Query = Mapping[str, str]


@dataclass(frozen=True)
class Caller:
    """Who asks: the directory and key (``scope``), and the public base URL of the service that
    ``meta.location`` and ``$ref`` start with (``/scim/v2/...`` is appended)."""

    scope: Scope
    base_url: str


@dataclass(frozen=True)
class Answer:
    """One resource's answer: ``document`` is None for 204 and 304; ``resource_id`` is the resource's."""

    status: int
    resource_id: str
    document: dict[str, Any] | None = None
    etag: str | None = None
    location: str | None = None


def create(session: Session, kind: Kind, caller: Caller, body: Any, query: Query | None = None) -> Answer:
    """POST: a new resource with a fresh id (201, with its location)."""
    body = _object(body)
    row = kind.create(session, caller.scope, str(uuid.uuid4()), body)
    view = _view_or_commit(session, lambda: _projection(kind, _params(query)))
    return _single(session, kind, caller, row, view, 201)


def get(session: Session, kind: Kind, caller: Caller, resource_id: str, query: Query | None = None,
        if_none_match: str | None = None) -> Answer:
    """GET one resource; 304 (no document) when ``if_none_match`` names its current version."""
    row = kind.find(session, caller.scope.directory_id, resource_id)
    if header_matches(if_none_match, row.version):
        return Answer(304, row.id, etag=etag_for(row.version))
    return _single(session, kind, caller, row, _projection(kind, _params(query)))


def list_resources(session: Session, kind: Kind, caller: Caller, query: Query | None = None) -> dict[str, Any]:
    """GET the collection (filter, sortBy, paging from the query parameters): a ListResponse."""
    return _list(session, kind, caller, _params(query))


def search(session: Session, kind: Kind, caller: Caller, body: Any) -> dict[str, Any]:
    """POST ``/.search`` on one resource type: a SearchRequest body, a ListResponse."""
    return _list(session, kind, caller, load_message(SEARCH_REQUEST_MESSAGE, body))


def search_all(session: Session, caller: Caller, body: Any) -> dict[str, Any]:
    """POST ``/.search`` at the root (RFC 7644 §3.4.3): Users then Groups, paged across both. A
    filter or sortBy that does not apply to one resource type selects nothing from it."""
    params = load_message(SEARCH_REQUEST_MESSAGE, body)
    query = ListQuery.from_params(params)
    offset, remaining, grand_total = query.start_index - 1, query.count, 0
    resources: list[dict[str, Any]] = []
    errors: list[ScimError] = []
    for kind in (USERS, GROUPS):
        try:
            page = replace(query, start_index=offset + 1, count=remaining)
            total, rows = kind.list_rows(session, caller.scope.directory_id, page)
        except ScimError as error:
            errors.append(error)
            continue
        resources += kind.render(session, caller.base_url, rows, _projection(kind, params))
        grand_total, remaining, offset = grand_total + total, remaining - len(rows), max(0, offset - total)
    if len(errors) == 2:
        raise errors[0]
    return list_response(grand_total, query.start_index, resources)


def replace_resource(session: Session, kind: Kind, caller: Caller, resource_id: str, body: Any,
                     query: Query | None = None, if_match: str | None = None) -> Answer:
    """PUT: the resource's attributes replaced by ``body`` (immutable attributes must not change)."""
    body = _object(body)
    row = _writable(session, kind, caller, resource_id, if_match)
    changes = kind.take_member_changes(body)
    document = validate_document(kind.resource_type, body)
    check_immutable(kind.resource_type, kind.stored_document(row), document)
    row = kind.update(session, caller.scope, row, document, changes, "replace")
    view = _view_or_commit(session, lambda: _projection(kind, _params(query)))
    return _single(session, kind, caller, row, view)


def patch(session: Session, kind: Kind, caller: Caller, resource_id: str, message: Any,
          query: Query | None = None, if_match: str | None = None) -> Answer:
    """PATCH: a PatchOp message (RFC 7644 §3.5.2) applied to the resource."""
    operations = load_message(PATCH_REQUEST, message)["Operations"]
    row = _writable(session, kind, caller, resource_id, if_match)
    result = apply_patch(kind.resource_type, kind.stored_document(row), operations, row.id)
    row = kind.update(session, caller.scope, row, result.document, result.member_changes, "patch")

    def view() -> Projection:
        params = _params(query)
        return kind.patch_projection(session, row, _projection(kind, params), bool(params.get("attributes")))

    return _single(session, kind, caller, row, _view_or_commit(session, view))


def delete(session: Session, kind: Kind, caller: Caller, resource_id: str, if_match: str | None = None) -> Answer:
    """DELETE (204)."""
    row = _writable(session, kind, caller, resource_id, if_match)
    kind.delete(session, caller.scope, row)
    return Answer(204, resource_id)


# -- shared steps -------------------------------------------------------------------------------------
def _object(body: Any) -> dict[str, Any]:
    """A resource body must be a JSON object (400 invalidSyntax otherwise)."""
    if not isinstance(body, dict):
        raise ScimError(400, "The request body must be a JSON object", "invalidSyntax")
    return body


def _params(query: Query | None) -> dict[str, Any]:
    return load_list_query(dict(query or {}))


def _projection(kind: Kind, params: dict[str, Any]) -> Projection:
    return projection(kind.resource_type, params.get("attributes"), params.get("excludedAttributes"))


def _list(session: Session, kind: Kind, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    query = ListQuery.from_params(params)
    total, rows = kind.list_rows(session, caller.scope.directory_id, query)
    resources = kind.render(session, caller.base_url, rows, _projection(kind, params))
    return list_response(total, query.start_index, resources)


def _writable(session: Session, kind: Kind, caller: Caller, resource_id: str, if_match: str | None) -> Any:
    """The resource, locked for this transaction, after checking If-Match (412 on a stale ETag)."""
    row = kind.find(session, caller.scope.directory_id, resource_id, for_update=True)
    if not precondition_holds(if_match, row.version):
        raise ScimError(412, f"The resource has changed: its version is now {etag_for(row.version)}")
    return row


def _view_or_commit(session: Session, make_view: Callable[[], Projection]) -> Projection:
    """The answer's projection. Writes render their answer inside their transaction (it shows what
    the transaction commits, and needs no second connection); a bad ``attributes`` parameter is
    still answered 400 after the write committed, as it always was."""
    try:
        return make_view()
    except ScimError:
        session.commit()
        raise


def _single(session: Session, kind: Kind, caller: Caller, row: Any, view: Projection, status: int = 200) -> Answer:
    location = reference(caller.base_url, kind.endpoint, row.id)
    document = kind.render(session, caller.base_url, [row], view, new=status == 201)[0]
    return Answer(status, row.id, document, etag_for(row.version), location if status == 201 else None)

"""The /Users and /Groups endpoints: one set of views, parameterised by a resource kind.

Views are thin: read the request, call the pure rules (``scim_server.scim``) and the store, render.
Each request is one transaction: it commits only after every rule and write succeeded.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any, Callable

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from schemas.messages import ListQuerySchema, PatchRequestSchema, SearchRequestSchema, list_response, load_message
from scim_server import store
from scim_server.api.scim_http import base_url, json_body, scim_response, scope
from scim_server.services import db_session
from scim_server.models import Group, User
from scim_server.scim.attributes import GROUP, GROUP_SCHEMA, USER
from scim_server.scim.errors import ScimError
from scim_server.scim.etag import etag_for, header_matches, precondition_holds
from scim_server.scim.patch import MEMBERS, MemberChange, apply_patch, take_members
from scim_server.scim.projection import Projection, projection
from scim_server.scim.resources import ResourceMeta, check_immutable, output_document, reference, validate_document
from scim_server.store import ListQuery, Scope


@dataclass(frozen=True)
class Kind:
    """What differs between Users and Groups; everything else is shared."""

    resource_type: str
    endpoint: str
    find: Callable[..., Any]
    list_rows: Callable[[Session, int, ListQuery], tuple[int, list[Any]]]
    render: Callable[..., list[dict[str, Any]]]  # (session, rows, projection, new=False)
    create: Callable[[Session, Scope, str, dict[str, Any]], Any]
    update: Callable[[Session, Scope, Any, dict[str, Any], list[MemberChange], str], Any]
    delete: Callable[[Session, Scope, Any], None]
    stored_document: Callable[[Any], dict[str, Any]]
    take_member_changes: Callable[[dict[str, Any]], list[MemberChange]]
    patch_projection: Callable[[Session, Any, Projection, bool], Projection]


def _meta(kind: Kind, row: Any) -> ResourceMeta:
    return ResourceMeta(kind.resource_type, row.created_at, row.updated_at,
                        reference(base_url(), kind.endpoint, row.id), row.version)


# -- Users --------------------------------------------------------------------------------------------
def _render_users(session: Session, rows: list[User], view: Projection, new: bool = False) -> list[dict[str, Any]]:
    # A user created by this request is in no group yet: nothing to look up.
    wanted = view.wants("groups") and not new
    groups = store.groups_of_users(session, [row.id for row in rows]) if wanted else {}
    base = base_url()
    documents = []
    for row in rows:
        computed = {"groups": [
            {"value": group_id, "$ref": reference(base, "Groups", group_id), "display": name, "type": "direct"}
            for group_id, name in groups.get(row.id, [])
        ] or None}
        documents.append(view.apply(output_document(USER, row.id, row.document, _meta(USERS, row), computed)))
    return documents


def _create_user(session: Session, who: Scope, new_id: str, body: dict[str, Any]) -> User:
    return store.create_user(session, who, new_id, validate_document(USER, body))


def _update_user(session: Session, who: Scope, row: User, document: dict[str, Any], _: list[MemberChange], action: str) -> User:
    return store.update_user(session, who, row, document, action)


# -- Groups -------------------------------------------------------------------------------------------
def _render_groups(session: Session, rows: list[Group], view: Projection, new: bool = False) -> list[dict[str, Any]]:
    members = store.members_of_groups(session, [row.id for row in rows]) if view.wants(MEMBERS) else {}
    base = base_url()
    documents = []
    for row in rows:
        computed = {MEMBERS: [
            {"value": user_id, "$ref": reference(base, "Users", user_id), "type": "User"}
            for user_id in members.get(row.id, [])
        ] or None}
        document = store.group_document(row)
        documents.append(view.apply(output_document(GROUP, row.id, document, _meta(GROUPS, row), computed)))
    return documents


def _create_group(session: Session, who: Scope, new_id: str, body: dict[str, Any]) -> Group:
    ids = take_members(body)
    return store.create_group(session, who, new_id, validate_document(GROUP, body), ids)


# A group PATCH answer carries the member list only up to this size (unless asked for).
PATCH_ANSWER_MAX_MEMBERS = 1000


def _group_patch_projection(session: Session, row: Group, view: Projection, asked: bool) -> Projection:
    """A group PATCH answers with the full resource (RFC 7644 §3.5.2), except that the member list
    of a group larger than PATCH_ANSWER_MAX_MEMBERS is left out unless ``attributes`` asks for it:
    PATCHing a 50,000-member group must not build a list nobody asked for (Entra's guidance)."""
    if asked or store.member_count(session, row.id) <= PATCH_ANSWER_MAX_MEMBERS:
        return view
    return Projection(GROUP, excluded=view.excluded | {(GROUP_SCHEMA, MEMBERS, None)})


def _same_projection(_session: Session, _row: Any, view: Projection, _asked: bool) -> Projection:
    return view


USERS = Kind(USER, "Users", store.find_user, store.list_users, _render_users, _create_user, _update_user,
             store.delete_user, lambda row: row.document, lambda _: [], _same_projection)
GROUPS = Kind(GROUP, "Groups", store.find_group, store.list_groups, _render_groups, _create_group,
              store.update_group, store.delete_group, store.group_document,
              lambda body: [MemberChange("replace", take_members(body))], _group_patch_projection)


# -- shared views -------------------------------------------------------------------------------------
def _projection(kind: Kind, params: dict[str, Any]) -> Projection:
    return projection(kind.resource_type, params.get("attributes"), params.get("excludedAttributes"))


def _query_params() -> dict[str, Any]:
    return load_message(ListQuerySchema(), request.args.to_dict(), "invalidValue")


def _single(kind: Kind, session: Session, row: Any, view: Projection, status: int = 200) -> Response:
    headers = {"ETag": etag_for(row.version)}
    if status == 201:
        headers["Location"] = reference(base_url(), kind.endpoint, row.id)
    return scim_response(kind.render(session, [row], view, new=status == 201)[0], status, headers)


def _list(kind: Kind, params: dict[str, Any]) -> Response:
    session = db_session()
    query = ListQuery.from_params(params)
    total, rows = kind.list_rows(session, scope().directory_id, query)
    resources = kind.render(session, rows, _projection(kind, params))
    return scim_response(list_response(total, query.start_index, resources))


def _object_body() -> dict[str, Any]:
    """The request's JSON body, which must be an object (400 invalidSyntax otherwise)."""
    body = json_body()
    if not isinstance(body, dict):
        raise ScimError(400, "The request body must be a JSON object", "invalidSyntax")
    return body


def _writable(kind: Kind, session: Session, resource_id: str) -> Any:
    """The resource, locked for this transaction, after checking If-Match (412 on a stale ETag)."""
    row = kind.find(session, scope().directory_id, resource_id, for_update=True)
    if not precondition_holds(request.headers.get("If-Match"), row.version):
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


def _views(kind: Kind) -> dict[str, Callable[..., Response]]:
    def list_resources() -> Response:
        return _list(kind, _query_params())

    def search() -> Response:
        return _list(kind, load_message(SearchRequestSchema(), json_body()))

    def create() -> Response:
        body = _object_body()
        session = db_session()
        row = kind.create(session, scope(), str(uuid.uuid4()), body)
        view = _view_or_commit(session, lambda: _projection(kind, _query_params()))
        response = _single(kind, session, row, view, 201)  # read inside the transaction it commits
        session.commit()
        return response

    def get(resource_id: str) -> Response:
        session = db_session()
        row = kind.find(session, scope().directory_id, resource_id)
        if header_matches(request.headers.get("If-None-Match"), row.version):
            return scim_response(None, 304, {"ETag": etag_for(row.version)})
        return _single(kind, session, row, _projection(kind, _query_params()))

    def replace(resource_id: str) -> Response:
        body = _object_body()
        session = db_session()
        row = _writable(kind, session, resource_id)
        changes = kind.take_member_changes(body)
        document = validate_document(kind.resource_type, body)
        check_immutable(kind.resource_type, kind.stored_document(row), document)
        row = kind.update(session, scope(), row, document, changes, "replace")
        view = _view_or_commit(session, lambda: _projection(kind, _query_params()))
        response = _single(kind, session, row, view)
        session.commit()
        return response

    def patch(resource_id: str) -> Response:
        message = load_message(PatchRequestSchema(), json_body())
        session = db_session()
        row = _writable(kind, session, resource_id)
        result = apply_patch(kind.resource_type, kind.stored_document(row), message["Operations"], row.id)
        row = kind.update(session, scope(), row, result.document, result.member_changes, "patch")

        def view() -> Projection:
            params = _query_params()
            return kind.patch_projection(session, row, _projection(kind, params), bool(params.get("attributes")))

        response = _single(kind, session, row, _view_or_commit(session, view))
        session.commit()
        return response

    def delete(resource_id: str) -> Response:
        session = db_session()
        row = _writable(kind, session, resource_id)
        kind.delete(session, scope(), row)
        session.commit()
        return scim_response(None, 204)

    return {"list": list_resources, "search": search, "create": create, "get": get,
            "replace": replace, "patch": patch, "delete": delete}


def _root_search() -> Response:
    """``POST /.search`` over Users then Groups (RFC 7644 §3.4.3); paging runs across both. A
    filter or sortBy that does not apply to one resource type selects nothing from it."""
    params = load_message(SearchRequestSchema(), json_body())
    query = ListQuery.from_params(params)
    session, directory_id = db_session(), scope().directory_id
    offset, remaining, grand_total, resources, errors = query.start_index - 1, query.count, 0, [], []
    for kind in (USERS, GROUPS):
        try:
            total, rows = kind.list_rows(session, directory_id, replace(query, start_index=offset + 1, count=remaining))
        except ScimError as error:
            errors.append(error)
            continue
        resources += kind.render(session, rows, _projection(kind, params))
        grand_total, remaining, offset = grand_total + total, remaining - len(rows), max(0, offset - total)
    if len(errors) == 2:
        raise errors[0]
    return scim_response(list_response(grand_total, query.start_index, resources))


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/.search", "root_search", _root_search, methods=["POST"])
    for kind in (USERS, GROUPS):
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

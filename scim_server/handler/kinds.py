"""What differs between Users and Groups for the SCIM handler; everything else is shared."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy.orm import Session

from scim_server import store
from scim_server.models import Group
from scim_server.scim.attributes import GROUP, GROUP_SCHEMA, USER
from scim_server.scim.patch import MEMBERS, MemberChange, take_members
from scim_server.scim.projection import Projection
from scim_server.scim.resources import ResourceMeta, output_document, reference, validate_document
from scim_server.store import ListQuery, Scope

# A group PATCH answer carries the member list only up to this size (unless asked for).
PATCH_ANSWER_MAX_MEMBERS = 1000


@dataclass(frozen=True)
class Kind:
    """A resource type as the handler sees it: its store functions and how its rows are rendered."""

    resource_type: str
    endpoint: str
    find: Callable[..., Any]
    list_rows: Callable[[Session, int, ListQuery], tuple[int, list[Any]]]
    render: Callable[..., list[dict[str, Any]]]  # (session, base_url, rows, projection, new=False)
    create: Callable[[Session, Scope, str, dict[str, Any]], Any]
    update: Callable[[Session, Scope, Any, dict[str, Any], list[MemberChange], str], Any]
    delete: Callable[[Session, Scope, Any], None]
    stored_document: Callable[[Any], dict[str, Any]]
    take_member_changes: Callable[[dict[str, Any]], list[MemberChange]]
    patch_projection: Callable[[Session, Any, Projection, bool], Projection]


def _meta(kind: Kind, base_url: str, row: Any) -> ResourceMeta:
    return ResourceMeta(kind.resource_type, row.created_at, row.updated_at,
                        reference(base_url, kind.endpoint, row.id), row.version)


# -- Users --------------------------------------------------------------------------------------------
def _render_users(session: Session, base_url: str, rows: list[Any], view: Projection,
                  new: bool = False) -> list[dict[str, Any]]:
    # A user created by this request is in no group yet: nothing to look up.
    wanted = view.wants("groups") and not new
    groups = store.groups_of_users(session, [row.id for row in rows]) if wanted else {}
    documents = []
    for row in rows:
        computed = {"groups": [
            {"value": group_id, "$ref": reference(base_url, "Groups", group_id), "display": name, "type": "direct"}
            for group_id, name in groups.get(row.id, [])
        ] or None}
        meta = _meta(USERS, base_url, row)
        documents.append(view.apply(output_document(USER, row.id, row.document, meta, computed)))
    return documents


def _create_user(session: Session, who: Scope, new_id: str, body: dict[str, Any]) -> store.UserRecord:
    return store.create_user(session, who, new_id, validate_document(USER, body))


def _update_user(session: Session, who: Scope, row: store.UserRecord, document: dict[str, Any],
                 _: list[MemberChange], action: str) -> store.UserRecord:
    return store.update_user(session, who, row, document, action)


# -- Groups -------------------------------------------------------------------------------------------
def _render_groups(session: Session, base_url: str, rows: list[Group], view: Projection,
                   new: bool = False) -> list[dict[str, Any]]:
    members = store.members_of_groups(session, [row.id for row in rows]) if view.wants(MEMBERS) else {}
    documents = []
    for row in rows:
        computed = {MEMBERS: [
            {"value": user_id, "$ref": reference(base_url, "Users", user_id), "type": "User"}
            for user_id in members.get(row.id, [])
        ] or None}
        document = store.group_document(row)
        meta = _meta(GROUPS, base_url, row)
        documents.append(view.apply(output_document(GROUP, row.id, document, meta, computed)))
    return documents


def _create_group(session: Session, who: Scope, new_id: str, body: dict[str, Any]) -> Group:
    ids = take_members(body)
    return store.create_group(session, who, new_id, validate_document(GROUP, body), ids)


def _group_patch_projection(session: Session, row: Group, view: Projection, asked: bool) -> Projection:
    """A group PATCH answers with the full resource (RFC 7644 §3.5.2), except that the member list
    of a group larger than PATCH_ANSWER_MAX_MEMBERS is left out unless ``attributes`` asks for it:
    PATCHing a 50,000-member group must not build a list nobody asked for (Entra's guidance)."""
    if asked or store.member_count(session, row.id) <= PATCH_ANSWER_MAX_MEMBERS:
        return view
    return Projection(GROUP, excluded=view.excluded | {(GROUP_SCHEMA, MEMBERS, None)})


def _same_projection(_session: Session, _row: Any, view: Projection, _asked: bool) -> Projection:
    return view


def _user_document(row: store.UserRecord) -> dict[str, Any]:
    return row.document


def _no_member_changes(_body: dict[str, Any]) -> list[MemberChange]:
    return []


def _replaced_members(body: dict[str, Any]) -> list[MemberChange]:
    return [MemberChange("replace", take_members(body))]


USERS = Kind(USER, "Users", store.find_user, store.list_users, _render_users, _create_user, _update_user,
             store.delete_user, _user_document, _no_member_changes, _same_projection)
GROUPS = Kind(GROUP, "Groups", store.find_group, store.list_groups, _render_groups, _create_group,
              store.update_group, store.delete_group, store.group_document, _replaced_members,
              _group_patch_projection)
KINDS = (USERS, GROUPS)

"""Storage of SCIM Groups: displayName/externalId columns plus the membership set."""
from __future__ import annotations

import logging
from typing import Any, Sequence

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from scim_server import audit
from scim_server.db import IN_CHUNK, utcnow
from scim_server.models import Group, GroupMember
from scim_server.scim.attributes import GROUP, GROUP_SCHEMA
from scim_server.scim.errors import ScimError
from scim_server.scim.patch import MemberChange
from scim_server.store import members
from scim_server.store.columns import GROUP_DOCUMENT_COLUMNS
from scim_server.store.common import (
    ListQuery,
    Scope,
    check_lengths,
    find_in_directory,
    flush_unique,
    list_page,
    plan_with_values,
    record_write,
    touch,
    unique_eq,
)
from scim_server.store.members import MembershipDelta

log = logging.getLogger(__name__)
DUPLICATE = "A group with this displayName already exists"
_LABELS = {column: str(path) for path, column in GROUP_DOCUMENT_COLUMNS.items()}


def group_document(group: Group) -> dict[str, Any]:
    """The stored attributes of a group as a canonical document (members are kept as a set)."""
    document: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": group.display_name}
    if group.external_id is not None:
        document["externalId"] = group.external_id
    return document


def _check_display_name_free(session: Session, group: Group, display_name_lower: str) -> None:
    clash = select(Group.id).where(
        Group.directory_id == group.directory_id,
        Group.display_name_lower == display_name_lower,
        Group.id != group.id,
    )
    with session.no_autoflush:
        if session.scalar(clash.limit(1)) is not None:
            raise ScimError(409, DUPLICATE, "uniqueness")


def _write(session: Session, group: Group, document: dict[str, Any]) -> None:
    columns = {column: document.get(path.attribute) for path, column in GROUP_DOCUMENT_COLUMNS.items()}
    lowered: str = document["displayName"].lower()  # required by the schema
    columns["display_name_lower"] = lowered
    check_lengths(Group, columns, {**_LABELS, "display_name_lower": "displayName"})
    _check_display_name_free(session, group, lowered)
    for name, value in columns.items():
        setattr(group, name, value)
    session.add(group)
    flush_unique(session, DUPLICATE)


def apply_member_changes(session: Session, scope: Scope, group_id: str, changes: Sequence[MemberChange]) -> MembershipDelta:
    """Run PATCH/PUT membership changes in order. Added ids that are no user of the directory are
    skipped (a WARNING and an audit event name them) and the rest is applied: one stale id held
    by the IdP must not block every other member's change."""
    delta = MembershipDelta()
    if any(len(change.ids) > IN_CHUNK for change in changes):
        plan_with_values(session)
    for change in changes:
        ids = change.ids
        if change.kind in ("add", "replace"):
            ids = members.users_of_directory(session, scope.directory_id, change.ids)
            if len(ids) < len(change.ids):
                known = set(ids)
                _skipped_members(session, scope, group_id, [i for i in change.ids if i not in known])
        if change.kind == "add":
            delta.added += members.add_members(session, group_id, ids)
        elif change.kind == "replace":
            step = members.replace_members(session, group_id, ids)
            delta.added, delta.removed = delta.added + step.added, delta.removed + step.removed
        elif change.kind == "remove":
            delta.removed += members.remove_members(session, group_id, change.ids)
        elif change.kind == "remove_all":
            delta.removed += members.clear_members(session, group_id)
        elif change.kind == "remove_matching" and change.predicate is not None:
            delta.removed += members.remove_matching(session, group_id, change.predicate)
    return delta


_SKIPPED_SHOWN = 20


def _skipped_members(session: Session, scope: Scope, group_id: str, unknown: list[str]) -> None:
    shown = unknown[:_SKIPPED_SHOWN]
    log.warning("group %s: skipped %d member id(s) that are no user of directory %s: %s%s", group_id,
                len(unknown), scope.directory_id, ", ".join(shown), " ..." if len(unknown) > len(shown) else "")
    audit.record(session, action="group.members_skipped", target_type="group", target_id=group_id,
                 directory_id=scope.directory_id, key_id=scope.key_id, actor=scope.actor,
                 detail={"unknownMembers": shown, "count": len(unknown)})


def create_group(session: Session, scope: Scope, group_id: str, document: dict[str, Any], member_ids: tuple[str, ...]) -> Group:
    now = utcnow()
    group = Group(id=group_id, directory_id=scope.directory_id, version=1, created_at=now, updated_at=now)
    _write(session, group, document)
    delta = apply_member_changes(session, scope, group.id, [MemberChange("add", member_ids)] if member_ids else [])
    record_write(session, scope, kind="group", action="create", entity_id=group.id,
                 detail={"displayName": group.display_name, "membersAdded": delta.added})
    return group


def find_group(session: Session, directory_id: int, group_id: str, *, for_update: bool = False) -> Group:
    return find_in_directory(session, Group, directory_id, group_id, for_update=for_update)


def update_group(
    session: Session, scope: Scope, group: Group, document: dict[str, Any], changes: list[MemberChange], action: str
) -> Group:
    """Store new attributes and membership changes (``action`` "replace" for PUT, "patch" for PATCH)."""
    renamed = document != group_document(group)
    if renamed:
        _write(session, group, document)
    delta = apply_member_changes(session, scope, group.id, changes)
    if not (renamed or delta.changed):
        return group  # Okta re-sends the name with every membership change: no new version
    touch(group)
    session.flush()
    record_write(session, scope, kind="group", action=action, entity_id=group.id,
                 detail={"displayName": group.display_name, "membersAdded": delta.added,
                         "membersRemoved": delta.removed})
    return group


def delete_group(session: Session, scope: Scope, group: Group) -> None:
    session.execute(delete(GroupMember).where(GroupMember.group_id == group.id))
    session.delete(group)
    session.flush()
    record_write(session, scope, kind="group", action="delete", entity_id=group.id,
                 detail={"displayName": group.display_name})


_BY_DISPLAY_NAME = select(Group).where(Group.directory_id == bindparam("directory_id"),
                                       Group.display_name_lower == bindparam("display_name_lower"))


def list_groups(session: Session, directory_id: int, query: ListQuery) -> tuple[int, list[Group]]:
    display_name = unique_eq(query, "displayName")
    if display_name is not None:  # displayName is unique per directory: one index lookup
        rows = list(session.scalars(_BY_DISPLAY_NAME, {"directory_id": directory_id,
                                                       "display_name_lower": display_name.lower()}))
        return len(rows), rows
    return list_page(session, Group, GROUP, directory_id, query)


def find_group_by_name(session: Session, directory_id: int, display_name: str) -> Group | None:
    """The group of this directory with this displayName (case-insensitively), if any."""
    return session.scalar(
        select(Group).where(Group.directory_id == directory_id, Group.display_name_lower == display_name.lower())
    )


def user_groups_in_directory(session: Session, directory_id: int, user_id: str) -> list[Group]:
    """The groups of this directory that the user is a member of."""
    return list(session.scalars(
        select(Group)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.user_id == user_id, Group.directory_id == directory_id)
    ))


members_of_groups = members.members_of_groups
member_count = members.member_count

"""Writing SCIM users and groups the way the store does (rows + dirty marks in one transaction).

Used where a test needs many resources quickly or needs a shape the SCIM API would refuse; the
end-to-end tests go through the SCIM HTTP API where it is available.
"""
from __future__ import annotations

import uuid
from typing import Iterable

from sqlalchemy import delete, select

from scim_server.db import transaction
from scim_server.models import Directory, Group, GroupMember, User, UserValue
from scim_server.store.marks import mark_dirty


def directory_id(session, name: str = "default") -> int:
    row = session.scalar(select(Directory).where(Directory.name == name))
    if row is None:
        row = Directory(name=name)
        session.add(row)
        session.flush()
    return row.id


def user_document(user_name: str, email: str | None, display_name: str | None, active: bool) -> dict:
    document: dict = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name,
                      "active": active}
    if email:
        document["emails"] = [{"value": email, "type": "work", "primary": True}]
    if display_name:
        document["displayName"] = display_name
    return document


def _write_user(session, user: User, email: str | None, display_name: str | None, active: bool) -> None:
    user.document = user_document(user.user_name, email, display_name, active)
    user.active, user.display_name, user.primary_email = active, display_name, email
    session.execute(delete(UserValue).where(UserValue.user_id == user.id))
    if email:
        session.add(UserValue(user_id=user.id, attribute="emails", value=email, value_lower=email.lower(),
                              type="work", primary=True))


def add_user(factory, user_name: str, email: str | None = None, *, display_name: str | None = None,
             active: bool = True, directory: str = "default") -> str:
    with transaction(factory) as session:
        user = User(id=str(uuid.uuid4()), directory_id=directory_id(session, directory), user_name=user_name,
                    user_name_lower=user_name.lower(), document={})
        session.add(user)
        session.flush()
        _write_user(session, user, email if email is not None else (user_name if "@" in user_name else None),
                    display_name, active)
        mark_dirty(session, "user", user.id, user.directory_id)
        return user.id


def update_user(factory, user_id: str, *, email: str | None = None, active: bool | None = None,
                display_name: str | None = None) -> None:
    with transaction(factory) as session:
        user = session.get(User, user_id)
        old = user.document
        current_email = (old.get("emails") or [{}])[0].get("value")
        _write_user(session, user, email or current_email, display_name or old.get("displayName"),
                    user.active if active is None else active)
        mark_dirty(session, "user", user.id, user.directory_id)


def delete_user(factory, user_id: str) -> None:
    with transaction(factory) as session:
        user = session.get(User, user_id)
        groups = list(session.scalars(select(GroupMember.group_id).where(GroupMember.user_id == user_id)))
        mark_dirty(session, "user", user.id, user.directory_id)
        for group_id in groups:
            mark_dirty(session, "group", group_id, user.directory_id)
        session.execute(delete(GroupMember).where(GroupMember.user_id == user_id))
        session.execute(delete(UserValue).where(UserValue.user_id == user_id))
        session.delete(user)


def add_group(factory, name: str, members: Iterable[str] = (), *, directory: str = "default") -> str:
    with transaction(factory) as session:
        group = Group(id=str(uuid.uuid4()), directory_id=directory_id(session, directory), display_name=name,
                      display_name_lower=name.lower())
        session.add(group)
        session.flush()
        session.add_all(GroupMember(group_id=group.id, user_id=u) for u in members)
        mark_dirty(session, "group", group.id, group.directory_id)
        return group.id


def set_members(factory, group_id: str, members: Iterable[str]) -> None:
    with transaction(factory) as session:
        group = session.get(Group, group_id)
        session.execute(delete(GroupMember).where(GroupMember.group_id == group_id))
        session.add_all(GroupMember(group_id=group_id, user_id=u) for u in members)
        mark_dirty(session, "group", group.id, group.directory_id)


def rename_group(factory, group_id: str, name: str) -> None:
    with transaction(factory) as session:
        group = session.get(Group, group_id)
        group.display_name, group.display_name_lower = name, name.lower()
        mark_dirty(session, "group", group.id, group.directory_id)


def delete_group(factory, group_id: str) -> None:
    with transaction(factory) as session:
        group = session.get(Group, group_id)
        mark_dirty(session, "group", group.id, group.directory_id)
        session.execute(delete(GroupMember).where(GroupMember.group_id == group_id))
        session.delete(group)


def bulk(factory, users: list[str], groups: dict[str, list[int]], *, directory: str = "default") -> list[str]:
    """Many users (by e-mail) and groups (name -> member indexes) in one transaction; returns user ids."""
    with transaction(factory) as session:
        dir_id = directory_id(session, directory)
        ids = [str(uuid.uuid4()) for _ in users]
        session.add_all(User(id=uid, directory_id=dir_id, user_name=email, user_name_lower=email.lower(),
                             primary_email=email, active=True, document=user_document(email, email, None, True))
                        for uid, email in zip(ids, users, strict=True))
        session.flush()
        session.add_all(UserValue(user_id=uid, attribute="emails", value=email, value_lower=email.lower(),
                                  type="work", primary=True) for uid, email in zip(ids, users, strict=True))
        for uid in ids:
            mark_dirty(session, "user", uid, dir_id)
        for name, members in groups.items():
            group = Group(id=str(uuid.uuid4()), directory_id=dir_id, display_name=name, display_name_lower=name.lower())
            session.add(group)
            session.flush()
            session.add_all(GroupMember(group_id=group.id, user_id=ids[i]) for i in members)
            mark_dirty(session, "group", group.id, dir_id)
        return ids

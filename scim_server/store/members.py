"""Group membership as set operations in SQL: a PATCH never loads a whole group.

A list of ids is one array parameter on PostgreSQL and chunks of bounded IN lists on SQLite, so
10,000 members in one request are a handful of statements.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import delete, func, literal, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from scim_server.db import rowcount
from scim_server.models import GroupMember, User
from scim_server.store.common import id_batches, in_values

MEMBER_DISPLAY = func.coalesce(User.display_name, User.user_name)


@dataclass
class MembershipDelta:
    added: int = 0
    removed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


def users_of_directory(session: Session, directory_id: int, user_ids: tuple[str, ...]) -> tuple[str, ...]:
    """The ids (in their order) that are users of this directory; others are unknown here."""
    found: set[str] = set()
    for chunk in id_batches(session, user_ids):
        # by primary key only: a planner without statistics may prefer the directory index and scan
        rows = session.execute(select(User.id, User.directory_id).where(in_values(session, User.id, chunk)))
        found.update(user_id for user_id, directory in rows if directory == directory_id)
    return tuple(user_id for user_id in user_ids if user_id in found)


def add_members(session: Session, group_id: str, user_ids: tuple[str, ...]) -> int:
    """Insert the memberships that do not exist yet (adds are idempotent); the number added.

    ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``: the primary key skips existing members by an
    index probe per row, whatever plan the database picks, and nothing is read back.
    """
    added = 0
    for chunk in id_batches(session, user_ids):
        rows = select(literal(group_id, GroupMember.group_id.type), User.id).where(in_values(session, User.id, chunk))
        statement = (_insert(session)(GroupMember).from_select(["group_id", "user_id"], rows)
                     .on_conflict_do_nothing()
                     .execution_options(preserve_rowcount=True))  # else psycopg reports -1 for INSERT..SELECT
        added += rowcount(session.execute(statement))
    return added


def _insert(session: Session) -> Callable[..., Any]:
    """The dialect's INSERT construct (both PostgreSQL's and SQLite's know ON CONFLICT)."""
    return postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def remove_members(session: Session, group_id: str, user_ids: tuple[str, ...]) -> int:
    removed = 0
    for chunk in id_batches(session, user_ids):
        result = session.execute(
            delete(GroupMember).where(GroupMember.group_id == group_id, in_values(session, GroupMember.user_id, chunk))
        )
        removed += rowcount(result) or 0
    return removed


def clear_members(session: Session, group_id: str) -> int:
    return rowcount(session.execute(delete(GroupMember).where(GroupMember.group_id == group_id))) or 0


def replace_members(session: Session, group_id: str, user_ids: tuple[str, ...]) -> MembershipDelta:
    """Make the member set exactly ``user_ids``: delete the others, insert the missing ones."""
    keep = set(user_ids)
    current = set(session.scalars(select(GroupMember.user_id).where(GroupMember.group_id == group_id)))
    removed = remove_members(session, group_id, tuple(current - keep))
    added = add_members(session, group_id, tuple(u for u in user_ids if u not in current))
    return MembershipDelta(added, removed)


def remove_matching(session: Session, group_id: str, predicate: Callable[[dict], bool]) -> int:
    """Remove members matching a value filter other than ``value eq`` (rare: needs the member list)."""
    rows = session.execute(
        select(GroupMember.user_id, MEMBER_DISPLAY)
        .join(User, User.id == GroupMember.user_id)
        .where(GroupMember.group_id == group_id)
    )
    doomed = tuple(user_id for user_id, display in rows
                   if predicate({"value": user_id, "display": display, "type": "User"}))
    return remove_members(session, group_id, doomed)


def member_count(session: Session, group_id: str) -> int:
    return session.scalar(select(func.count()).select_from(GroupMember).where(GroupMember.group_id == group_id)) or 0


def members_of_groups(session: Session, group_ids: list[str]) -> dict[str, list[str]]:
    """group id -> member user ids in order (only called when members are wanted).

    Membership rows alone: the foreign key guarantees the users exist, and the output names no
    more than the ids, so no join with ``users``."""
    result: dict[str, list[str]] = {group_id: [] for group_id in group_ids}
    for chunk in id_batches(session, group_ids):
        rows = session.execute(
            select(GroupMember.group_id, GroupMember.user_id)
            .where(in_values(session, GroupMember.group_id, chunk))
            .order_by(GroupMember.group_id, GroupMember.user_id)
        )
        for group_id, user_id in rows:
            result[group_id].append(user_id)
    return result

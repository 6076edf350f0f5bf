"""Reading stored SCIM users and groups as plain planner inputs (the SQL side of the planner).

Queries only narrow the candidates (e.g. groups whose name matches case-insensitively, users whose
e-mail ends with a domain); the planner makes every final decision.
"""
from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from scim_server.db import chunked
from scim_server.models import Directory, Group, GroupMember, User, UserValue
from scim_server.sync.names import organization_key
from scim_server.sync.planner import GroupFacts, UserFacts
from scim_server.sync.rules import Rules


def directory_names(session: Session) -> dict[int, str]:
    """Directory id -> name, cached on the session (a handful of rows, read once per transaction)."""
    cached = session.info.get("directory_names")
    if cached is None:
        cached = session.info["directory_names"] = dict(session.execute(select(Directory.id, Directory.name)).all())
    return cached


def user_facts(row: User, session: Session | None = None) -> UserFacts:
    directory = directory_names(session).get(row.directory_id, "") if session is not None else ""
    return UserFacts(row.id, row.directory_id, row.user_name, bool(row.active), row.document or {}, directory)


def group_facts(row: Group, session: Session | None = None) -> GroupFacts:
    directory = directory_names(session).get(row.directory_id, "") if session is not None else ""
    return GroupFacts(row.id, row.directory_id, row.display_name, directory, row.created_at)


def load_user(session: Session, user_id: str) -> UserFacts | None:
    row = session.get(User, user_id)
    return user_facts(row, session) if row is not None else None


def load_group(session: Session, group_id: str) -> GroupFacts | None:
    row = session.get(Group, group_id)
    return group_facts(row, session) if row is not None else None


def load_users(session: Session, user_ids: list[str]) -> dict[str, UserFacts]:
    found: dict[str, UserFacts] = {}
    for chunk in chunked(user_ids):
        for row in session.scalars(select(User).where(User.id.in_(chunk))):
            found[row.id] = user_facts(row, session)
    return found


def group_names_of_users(session: Session, user_ids: list[str]) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {uid: [] for uid in user_ids}
    for chunk in chunked(user_ids):
        query = select(GroupMember.user_id, Group.display_name).join(Group, Group.id == GroupMember.group_id).where(
            GroupMember.user_id.in_(chunk)
        )
        for user_id, name in session.execute(query):
            names[user_id].append(name)
    return names


def group_names_of_user(session: Session, user_id: str) -> list[str]:
    query = select(Group.display_name).join(GroupMember, GroupMember.group_id == Group.id).where(
        GroupMember.user_id == user_id
    )
    return list(session.scalars(query))


def _group_rule_names(rules: Rules, key: str) -> set[str]:
    """Folded group names that a global or per-directory group rule maps to organization ``key``."""
    tables = [rules.groups, *(own.groups for own in rules.directories.values())]
    return {group for table in tables for group, org in table.items() if organization_key(org) == key}


def candidate_groups(session: Session, rules: Rules, org_name: str) -> list[GroupFacts]:
    """Groups (all directories) that may map to ``org_name``: named so (also after a directory's
    prefix), or mapped to it by a rule. The planner decides which really do."""
    key = organization_key(org_name)
    names = {key} | _group_rule_names(rules, key)
    for own in rules.directories.values():
        prefix = organization_key(own.organization_prefix) if own.organization_prefix.strip() else ""
        if prefix and key.startswith(prefix):
            names.add(key[len(prefix):].strip())
    folded = sorted(names)
    query = select(Group).where(
        or_(Group.display_name_lower.in_(folded), func.lower(func.trim(Group.display_name)).in_(folded))
    )
    return [group_facts(g, session) for g in session.scalars(query)]


def members_of_groups(session: Session, group_ids: list[str]) -> dict[str, list[UserFacts]]:
    members: dict[str, list[UserFacts]] = {gid: [] for gid in group_ids}
    if not group_ids:
        return members
    query = select(GroupMember.group_id, User).join(User, User.id == GroupMember.user_id).where(
        GroupMember.group_id.in_(group_ids)
    )
    for group_id, user in session.execute(query):
        members[group_id].append(user_facts(user, session))
    return members


def domain_candidates(session: Session, rules: Rules, org_name: str) -> list[UserFacts]:
    """Users (all directories) with a userName or e-mail in a domain that a global or per-directory
    rule maps to ``org_name``."""
    key = organization_key(org_name)
    tables = [rules.domains, *(own.domains for own in rules.directories.values())]
    domains = sorted({domain for table in tables for domain, org in table.items() if organization_key(org) == key})
    if not domains:
        return []
    email_match = select(UserValue.user_id).where(
        UserValue.attribute == "emails", or_(*[UserValue.value_lower.like(f"%@{d}") for d in domains])
    )
    query = select(User).where(
        or_(
            User.id.in_(email_match),
            *[func.lower(User.primary_email).like(f"%@{d}") for d in domains],
            *[User.user_name_lower.like(f"%@{d}") for d in domains],
        )
    )
    return [user_facts(u, session) for u in session.scalars(query)]


def all_groups(session: Session) -> list[GroupFacts]:
    return [group_facts(g, session) for g in session.scalars(select(Group))]

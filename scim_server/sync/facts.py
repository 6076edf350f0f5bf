"""Reading stored SCIM users and groups as plain planner inputs (the SQL side of the planner).

Queries only narrow the candidates (e.g. groups whose name matches case-insensitively, users whose
e-mail ends with a domain); the planner makes every final decision.
"""
from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from scim_server.db import chunked
from scim_server.models import Group, GroupMember, User, UserValue
from scim_server.sync.planner import GroupFacts, UserFacts
from scim_server.sync.rules import Rules


def user_facts(row: User) -> UserFacts:
    return UserFacts(row.id, row.directory_id, row.user_name, bool(row.active), row.document or {})


def group_facts(row: Group) -> GroupFacts:
    return GroupFacts(row.id, row.directory_id, row.display_name)


def load_user(session: Session, user_id: str) -> UserFacts | None:
    row = session.get(User, user_id)
    return user_facts(row) if row is not None else None


def load_group(session: Session, group_id: str) -> GroupFacts | None:
    row = session.get(Group, group_id)
    return group_facts(row) if row is not None else None


def load_users(session: Session, user_ids: list[str]) -> dict[str, UserFacts]:
    found: dict[str, UserFacts] = {}
    for chunk in chunked(user_ids):
        for row in session.scalars(select(User).where(User.id.in_(chunk))):
            found[row.id] = user_facts(row)
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


def candidate_groups(session: Session, rules: Rules, org_name: str) -> list[GroupFacts]:
    """Groups (all directories) that may map to ``org_name``: named so, or mapped to it by the rules."""
    names = {org_name.casefold()} | {group for group, org in rules.groups.items() if org == org_name}
    folded = sorted(names)
    query = select(Group).where(
        or_(Group.display_name_lower.in_(folded), func.lower(Group.display_name).in_(folded))
    )
    return [group_facts(g) for g in session.scalars(query)]


def members_of_groups(session: Session, group_ids: list[str]) -> dict[str, list[UserFacts]]:
    members: dict[str, list[UserFacts]] = {gid: [] for gid in group_ids}
    if not group_ids:
        return members
    query = select(GroupMember.group_id, User).join(User, User.id == GroupMember.user_id).where(
        GroupMember.group_id.in_(group_ids)
    )
    for group_id, user in session.execute(query):
        members[group_id].append(user_facts(user))
    return members


def domain_candidates(session: Session, rules: Rules, org_name: str) -> list[UserFacts]:
    """Users (all directories) with a userName or e-mail in a domain that the rules map to ``org_name``."""
    domains = sorted(domain for domain, org in rules.domains.items() if org == org_name)
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
    return [user_facts(u) for u in session.scalars(query)]


def all_groups(session: Session) -> list[GroupFacts]:
    return [group_facts(g) for g in session.scalars(select(Group))]

"""``mappings explain EMAIL``: which organizations and portals a user gets, and why (planner-backed)."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from scim_server.models import User
from scim_server.store import users_with_email
from scim_server.store.directories import directory_name
from scim_server.sync import facts, ownership, planner, state
from scim_server.sync.rules import Rules


def explain(session: Session, rules: Rules, email: str, directory: str | None = None) -> list[dict[str, Any]]:
    """What the users with ``email`` get (only those of ``directory`` when given)."""
    rows = users_with_email(session, email)
    if directory is not None:
        names = facts.directory_names(session)
        rows = [row for row in rows if names.get(row.directory_id) == directory]
    return [_explain_user(session, rules, row) for row in rows]


def _explain_user(session: Session, rules: Rules, row: User) -> dict[str, Any]:
    user = facts.user_facts(row, session)
    groups = facts.group_names_of_user(session, user.id)
    owners = ownership.owners_of(session, [g.organization for g in planner.user_grants(rules, user, groups)])
    grants = planner.user_grants(rules, user, groups, owners)
    organizations = planner.user_organizations(rules, user, groups, owners)
    account = state.account_of(session, user.id)
    portals = planner.allowed_project_keys_for(rules, organizations, user.directory, owners)
    email = planner.account_email(user)
    notes = []
    if not user.active:
        notes.append("inactive: no organizations and no portals until re-activated")
    if email is None:
        notes.append("no usable e-mail address: cannot have a JSM account")
    return {
        "user_id": user.id,
        "directory": directory_name(session, user.directory_id),
        "user_name": user.user_name,
        "active": user.active,
        "account_email": email,
        "jsm_account_id": account.account_id if account else None,
        "groups": sorted(groups, key=str.casefold),
        "grants": [{"organization": g.organization, "reason": g.reason, "refused": g.refused} for g in grants],
        "organizations": sorted(organizations),
        "portals": sorted(portals) if portals is not None else None,
        "notes": notes,
    }

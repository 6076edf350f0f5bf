"""``mappings explain EMAIL``: which organizations and portals a user gets, and why (planner-backed)."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from scim_server.models import User
from scim_server.store import users_with_email
from scim_server.store.directories import directory_name
from scim_server.sync import facts, planner, state
from scim_server.sync.rules import Rules


def explain(session: Session, rules: Rules, email: str) -> list[dict[str, Any]]:
    return [_explain_user(session, rules, row) for row in users_with_email(session, email)]


def _explain_user(session: Session, rules: Rules, row: User) -> dict[str, Any]:
    user = facts.user_facts(row)
    groups = facts.group_names_of_user(session, user.id)
    grants = planner.user_grants(rules, user, groups)
    organizations = planner.user_organizations(rules, user, groups)
    account = state.account_of(session, user.id)
    portals = planner.allowed_project_keys_for(rules, organizations)
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
        "grants": [{"organization": g.organization, "reason": g.reason} for g in grants],
        "organizations": sorted(organizations),
        "portals": sorted(portals) if portals is not None else None,
        "notes": notes,
    }

"""Desired JSM state from stored SCIM users/groups and the mapping rules. PURE: no I/O.

The one place where mapping decisions are made: the worker, ``sync reconcile``, ``mappings
explain`` and the SAML access check all call these functions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from scim_server.sync.rules import Rules

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class UserFacts:
    """What the planner needs to know about a SCIM user."""

    id: str
    directory_id: int
    user_name: str
    active: bool
    document: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class GroupFacts:
    id: str
    directory_id: int
    display_name: str


@dataclass(frozen=True)
class Grant:
    """One reason a user belongs to an organization (``mappings explain``)."""

    organization: str
    reason: str


@dataclass(frozen=True)
class DesiredOrganization:
    """Desired JSM state of one organization: does it exist, who is in it (users), which desks."""

    name: str
    exists: bool
    members: Mapping[str, str]  # user id -> e-mail
    project_keys: frozenset[str]


@dataclass(frozen=True)
class DesiredMembership:
    """``DesiredOrganization`` with the members resolved to JSM account ids (the differ's input)."""

    name: str
    exists: bool
    account_ids: frozenset[str]
    project_keys: frozenset[str]


def is_email(value: str | None) -> bool:
    return bool(value) and bool(_EMAIL.match(value.strip()))  # type: ignore[union-attr]


def account_email(user: UserFacts) -> str | None:
    """The e-mail of the user's JSM account: the primary e-mail, else the first work e-mail, else
    the first e-mail, else ``userName`` when it looks like an e-mail; ``None`` when none is usable."""
    emails = [e for e in user.document.get("emails") or [] if isinstance(e, Mapping) and is_email(e.get("value"))]
    for chosen in (
        next((e for e in emails if e.get("primary") is True), None),
        next((e for e in emails if str(e.get("type") or "").lower() == "work"), None),
        emails[0] if emails else None,
    ):
        if chosen is not None:
            return str(chosen["value"]).strip()
    return user.user_name.strip() if is_email(user.user_name) else None


def customer_display_name(user: UserFacts, email: str) -> str:
    """displayName, else name.formatted, else "given family", else the e-mail."""
    doc = user.document
    raw_name = doc.get("name")
    name = raw_name if isinstance(raw_name, Mapping) else {}
    candidates = [
        doc.get("displayName"),
        name.get("formatted"),
        " ".join(p for p in (name.get("givenName"), name.get("familyName")) if isinstance(p, str) and p.strip()),
    ]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()[:255]
    return email


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].lower()


def organization_for_group(rules: Rules, group_name: str) -> str | None:
    """The organization an IdP group maps to: the rules' mapping, else the same name on the fly."""
    mapped = rules.groups.get(group_name.casefold())
    if mapped is not None:
        return mapped
    return group_name[:200] if rules.on_the_fly and group_name.strip() else None


def organization_for_email(rules: Rules, email: str | None) -> str | None:
    """The organization a domain rule assigns to this e-mail (exact domain match)."""
    return rules.domains.get(email_domain(email)) if email else None


def user_grants(rules: Rules, user: UserFacts, group_names: Iterable[str]) -> list[Grant]:
    """Every (organization, reason) the rules give this user, whether or not it is active."""
    grants = []
    for name in sorted(group_names, key=str.casefold):
        org = organization_for_group(rules, name)
        if org is not None:
            how = "mapped by [organizations.groups]" if name.casefold() in rules.groups else "on the fly"
            grants.append(Grant(org, f'member of IdP group "{name}" ({how})'))
    email = account_email(user)
    by_domain = organization_for_email(rules, email)
    if by_domain is not None and email is not None:
        grants.append(Grant(by_domain, f'e-mail domain "{email_domain(email)}" ([organizations.domains])'))
    return grants


def receives_access(user: UserFacts) -> bool:
    """Inactive users and users without a usable e-mail get no JSM access."""
    return user.active and account_email(user) is not None


def user_organizations(rules: Rules, user: UserFacts, group_names: Iterable[str]) -> set[str]:
    """The organizations the user should be a member of now (empty when inactive)."""
    if not receives_access(user):
        return set()
    return {grant.organization for grant in user_grants(rules, user, group_names)}


def project_keys_for(rules: Rules, organization: str) -> frozenset[str]:
    """Service desks an organization is linked to (none when there is no ``[portals]`` section)."""
    if rules.portals is None:
        return frozenset()
    return frozenset(rules.portals.get(organization, ()))


def allowed_project_keys_for(rules: Rules, organizations: Iterable[str]) -> set[str] | None:
    """Portals a user may use through its organizations; ``None`` means unrestricted."""
    if rules.portals is None:
        return None
    allowed: set[str] = set()
    for organization in organizations:
        allowed |= project_keys_for(rules, organization)
    return allowed


def plan_organization(
    rules: Rules,
    name: str,
    groups: Iterable[GroupFacts],
    group_members: Mapping[str, Iterable[UserFacts]],
    domain_candidates: Iterable[UserFacts],
) -> DesiredOrganization:
    """Desired state of organization ``name``.

    ``groups`` may be a superset (e.g. all groups whose name matches case-insensitively): only those
    the rules map to ``name`` count. The organization exists while a group maps to it or a domain
    rule gives it at least one member.
    """
    mapped = [g for g in groups if organization_for_group(rules, g.display_name) == name]
    members: dict[str, str] = {}
    for group in mapped:
        for user in group_members.get(group.id, ()):
            _add_member(members, user)
    domain_members = [u for u in domain_candidates if organization_for_email(rules, account_email(u)) == name]
    for user in domain_members:
        _add_member(members, user)
    exists = bool(mapped) or bool(members)
    return DesiredOrganization(name, exists, members, project_keys_for(rules, name) if exists else frozenset())


def _add_member(members: dict[str, str], user: UserFacts) -> None:
    if receives_access(user):
        members[user.id] = account_email(user)  # type: ignore[assignment]


def resolve_accounts(desired: DesiredOrganization, accounts: Mapping[str, str]) -> DesiredMembership:
    """Replace users by their JSM account ids (``accounts``: user id -> account id); users without
    an account yet are left out (the converger creates accounts before calling this)."""
    account_ids = frozenset(accounts[user_id] for user_id in desired.members if user_id in accounts)
    return DesiredMembership(desired.name, desired.exists, account_ids, desired.project_keys)

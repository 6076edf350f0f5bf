"""Desired JSM state from stored SCIM users/groups and the mapping rules. PURE: no I/O.

The one place where mapping decisions are made: the worker, ``sync reconcile``, ``mappings
explain`` and the SAML access check all call these functions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from scim_server.sync.names import organization_key
from scim_server.sync.rules import MAX_ORG_NAME, Rules

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class UserFacts:
    """What the planner needs to know about a SCIM user (``directory``: its directory's name)."""

    id: str
    directory_id: int
    user_name: str
    active: bool
    document: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    directory: str = ""


@dataclass(frozen=True)
class GroupFacts:
    id: str
    directory_id: int
    display_name: str
    directory: str = ""
    created_at: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class Grant:
    """One reason a user belongs to an organization (``mappings explain``); ``refused`` says why
    the grant does not count (the organization belongs to another directory)."""

    organization: str
    reason: str
    refused: str | None = None


@dataclass(frozen=True)
class Owners:
    """Recorded organization owners: organization key -> (name as recorded, owning directory).

    The recorded name is the organization's one spelling in the bridge and in JSM: other
    spellings with the same key (a case-only group rename) lead to it.
    """

    entries: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def canonical(self, name: str) -> str:
        entry = self.entries.get(organization_key(name))
        return entry[0] if entry else name

    def owner(self, name: str) -> str | None:
        entry = self.entries.get(organization_key(name))
        return entry[1] if entry else None


NO_OWNERS = Owners()


@dataclass(frozen=True)
class Lead:
    """A directory's group or domain rule that leads to an organization."""

    directory: str
    source: str  # 'group "Staff"' or 'domain "acme.com"'
    since: Any = None  # the group's creation time (None for domain rules)


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


def organization_for_group(rules: Rules, group_name: str, directory: str = "") -> str | None:
    """The organization an IdP group of ``directory`` maps to: that directory's mapping, else the
    global mapping, else (on the fly) the group's own name after the directory's prefix."""
    own = rules.of(directory)
    folded = group_name.casefold()
    mapped = own.groups.get(folded) or rules.groups.get(folded)
    if mapped is not None:
        return mapped
    on_the_fly = rules.on_the_fly if own.on_the_fly is None else own.on_the_fly
    name = group_name.strip()
    return (own.organization_prefix + name)[:MAX_ORG_NAME] if on_the_fly and name else None


def _group_rule_source(rules: Rules, group_name: str, directory: str) -> str:
    folded = group_name.casefold()
    if folded in rules.of(directory).groups:
        return f"[directories.{directory}.organizations.groups]"
    return "[organizations.groups]" if folded in rules.groups else "on the fly"


def organization_for_email(rules: Rules, email: str | None, directory: str = "") -> str | None:
    """The organization a domain rule assigns to this e-mail (exact domain match): the
    directory's own rule first, else the global one."""
    if not email:
        return None
    domain = email_domain(email)
    return rules.of(directory).domains.get(domain) or rules.domains.get(domain)


def may_lead(rules: Rules, owners: Owners, organization: str, directory: str) -> bool:
    """Whether ``directory``'s groups and rules may put users into ``organization``: it is shared
    with the directory in ``[shared_organizations]``, or not shared and owned by no other directory."""
    shared = rules.shared.get(organization_key(organization))
    if shared is not None:
        return directory in shared
    owner = owners.owner(organization)
    return owner is None or owner == directory


def refusal(rules: Rules, owners: Owners, organization: str, directory: str) -> str | None:
    """Why ``directory`` may not lead to ``organization`` (``None`` when it may)."""
    if may_lead(rules, owners, organization, directory):
        return None
    if organization_key(organization) in rules.shared:
        return f'organization "{organization}" is shared only with other directories ([shared_organizations])'
    return f'organization "{organization}" belongs to directory {owners.owner(organization)}'


def user_grants(rules: Rules, user: UserFacts, group_names: Iterable[str], owners: Owners = NO_OWNERS) -> list[Grant]:
    """Every (organization, reason) the rules give this user, whether or not it is active; a grant
    into another directory's organization carries its refusal."""
    grants = []
    for name in sorted(group_names, key=str.casefold):
        org = organization_for_group(rules, name, user.directory)
        if org is not None:
            how = _group_rule_source(rules, name, user.directory)
            grants.append(_grant(rules, owners, org, f'member of IdP group "{name}" ({how})', user.directory))
    email = account_email(user)
    by_domain = organization_for_email(rules, email, user.directory)
    if by_domain is not None and email is not None:
        domain = email_domain(email)
        how = (f"[directories.{user.directory}.organizations.domains]" if domain in rules.of(user.directory).domains
               else "[organizations.domains]")
        grants.append(_grant(rules, owners, by_domain, f'e-mail domain "{domain}" ({how})', user.directory))
    return grants


def _grant(rules: Rules, owners: Owners, organization: str, reason: str, directory: str) -> Grant:
    canonical = owners.canonical(organization)
    return Grant(canonical, reason, refusal(rules, owners, canonical, directory))


def receives_access(user: UserFacts) -> bool:
    """Inactive users and users without a usable e-mail get no JSM access."""
    return user.active and account_email(user) is not None


def user_organizations(rules: Rules, user: UserFacts, group_names: Iterable[str],
                       owners: Owners = NO_OWNERS) -> set[str]:
    """The organizations the user should be a member of now (empty when inactive), by their
    recorded names; organizations of other directories are left out."""
    if not receives_access(user):
        return set()
    return {grant.organization for grant in user_grants(rules, user, group_names, owners) if grant.refused is None}


def _portal_lists(rules: Rules, directories: Iterable[str]) -> list[Mapping[str, tuple[str, ...]]]:
    lists = [rules.portals] if rules.portals is not None else []
    return lists + [own.portals for own in map(rules.of, sorted(set(directories))) if own.portals is not None]


def project_keys_for(rules: Rules, organization: str, directories: Iterable[str] = ()) -> frozenset[str]:
    """Service desks an organization is linked to: its ``[portals]`` entry and those of the
    directories it belongs to (names compared as JSM does); none without any portals section."""
    key = organization_key(organization)
    keys: set[str] = set()
    for portals in _portal_lists(rules, directories):
        for name, project_keys in portals.items():
            if organization_key(name) == key:
                keys.update(project_keys)
    return frozenset(keys)


def organization_directories(rules: Rules, owners: Owners, organization: str, fallback: str) -> frozenset[str]:
    """The directories an organization belongs to: those it is shared with, else its owner."""
    shared = rules.shared.get(organization_key(organization))
    return shared if shared is not None else frozenset({owners.owner(organization) or fallback})


def allowed_project_keys_for(rules: Rules, organizations: Iterable[str], directory: str = "",
                             owners: Owners = NO_OWNERS) -> set[str] | None:
    """Portals a user of ``directory`` may use through its organizations; ``None`` (unrestricted)
    when neither ``[portals]`` nor the directory's own portals section exists."""
    if rules.portals is None and rules.of(directory).portals is None:
        return None
    allowed: set[str] = set()
    for organization in organizations:
        allowed |= project_keys_for(rules, organization,
                                    organization_directories(rules, owners, organization, directory))
    return allowed


def leads(rules: Rules, name: str, groups: Iterable[GroupFacts], domain_candidates: Iterable[UserFacts]) -> list[Lead]:
    """Every group and domain rule, of any directory, that leads to organization ``name``."""
    key = organization_key(name)
    found = [Lead(g.directory, f'group "{g.display_name}"', g.created_at) for g in groups
             if _leads_to(organization_for_group(rules, g.display_name, g.directory), key)]
    for user in domain_candidates:
        email = account_email(user)
        if _leads_to(organization_for_email(rules, email, user.directory), key):
            found.append(Lead(user.directory, f'domain "{email_domain(email)}"'))  # type: ignore[arg-type]
    return list(dict.fromkeys(found))


def _leads_to(organization: str | None, key: str) -> bool:
    return organization is not None and organization_key(organization) == key


def first_owner(found: Iterable[Lead]) -> str | None:
    """The directory that owns a new organization: the one whose group leading there is oldest
    (then by name); a directory leading only through a domain rule comes after all groups."""
    ordered = sorted(found, key=lambda lead: (lead.since is None, str(lead.since or ""), lead.directory))
    return ordered[0].directory if ordered else None


def mapped_groups(rules: Rules, name: str, groups: Iterable[GroupFacts],
                  allowed: frozenset[str] | None = None) -> list[GroupFacts]:
    """The groups among ``groups`` that map to organization ``name`` (of ``allowed`` directories)."""
    key = organization_key(name)
    return [g for g in groups if _leads_to(organization_for_group(rules, g.display_name, g.directory), key)
            and (allowed is None or g.directory in allowed)]


def plan_organization(
    rules: Rules,
    name: str,
    groups: Iterable[GroupFacts],
    group_members: Mapping[str, Iterable[UserFacts]],
    domain_candidates: Iterable[UserFacts],
    allowed: frozenset[str] | None = None,
    established: bool = False,
) -> DesiredOrganization:
    """Desired state of organization ``name``.

    ``groups`` may be a superset (e.g. all groups whose name matches case-insensitively): only those
    the rules map to ``name`` (compared as JSM compares names) count, and with ``allowed`` only those
    of the allowed directories (the owner, or those sharing it). The organization exists while a
    group maps to it or a domain rule gives it at least one member; once ``established`` (the
    bridge manages it), it also exists while a domain rule still leads there, members or not:
    deactivating the last member empties an organization, it never deletes it.
    """
    key = organization_key(name)
    mapped = mapped_groups(rules, name, groups, allowed)
    members: dict[str, str] = {}
    for group in mapped:
        for user in group_members.get(group.id, ()):
            _add_member(members, user)
    domain_members = [u for u in domain_candidates
                      if _leads_to(organization_for_email(rules, account_email(u), u.directory), key)
                      and (allowed is None or u.directory in allowed)]
    for user in domain_members:
        _add_member(members, user)
    exists = bool(mapped) or bool(members) or (established and domain_rule_leads(rules, name, allowed))
    directories = allowed if allowed is not None else {g.directory for g in mapped} | {u.directory for u in domain_members}
    desks = project_keys_for(rules, name, directories) if exists else frozenset()
    return DesiredOrganization(name, exists, members, desks)


def domain_rule_leads(rules: Rules, name: str, directories: Iterable[str] | None = None) -> bool:
    """Whether a global domain rule, or one of ``directories`` (any directory when ``None``), maps
    some e-mail domain to organization ``name``."""
    key = organization_key(name)
    owns = rules.directories if directories is None else {d: rules.of(d) for d in directories}
    tables = [rules.domains, *(own.domains for own in owns.values())]
    return any(organization_key(org) == key for table in tables for org in table.values())


def _add_member(members: dict[str, str], user: UserFacts) -> None:
    if receives_access(user):
        members[user.id] = account_email(user)  # type: ignore[assignment]


def resolve_accounts(desired: DesiredOrganization, accounts: Mapping[str, str]) -> DesiredMembership:
    """Replace users by their JSM account ids (``accounts``: user id -> account id); users without
    an account yet are left out (the converger creates accounts before calling this)."""
    account_ids = frozenset(accounts[user_id] for user_id in desired.members if user_id in accounts)
    return DesiredMembership(desired.name, desired.exists, account_ids, desired.project_keys)

"""``sync reconcile``: compare desired state with what JSM reports and repair drift.

The same planner and differ as the worker, with "last applied" replaced by JSM's own answer (read
through the paged API). Ownership still comes from the bridge's records: only memberships and desk
links that the bridge granted, and organizations it created, are ever removed.

It also checks the accounts the bridge recorded: a member JSM refuses, or an active user's account
that JSM no longer has, is created again (``Converger.heal_accounts``); organizations it owns get
their ownership property back; organizations Atlassian Guard's SCIM manages are never adopted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jsm_client import JsmBadRequest, JsmClient, JsmNotFound
from scim_server.db import transaction
from scim_server.models import User
from scim_server.models.sync import JsmAccount
from scim_server.sync import facts, ownership, state
from scim_server.sync.applier import ApplyReport, GuardManaged, PropagationError
from scim_server.sync.converge import HEALING_ROUNDS, Converger, all_organization_names, plan_from_store
from scim_server.sync.differ import AppliedOrganization, OrganizationPlan, diff_organization
from scim_server.sync.names import AmbiguousOrganization, match_organization, organization_key
from scim_server.sync.planner import account_email, resolve_accounts
from scim_server.sync.policy import OWNERSHIP_PROPERTY, SyncPolicy
from scim_server.sync.rules import Rules

Progress = Callable[[str, int, int], None]  # (organization, index, total)


@dataclass
class ReconcileResult:
    dry_run: bool
    plans: list[OrganizationPlan] = field(default_factory=list)
    report: ApplyReport = field(default_factory=ApplyReport)
    accounts_missing: int = 0  # desired members without a JSM account (created unless dry run)
    accounts_lost: int = 0  # recorded accounts JSM no longer has (dry run), or created again for that
    properties_missing: int = 0  # owned organizations without the bridge's ownership property (set unless dry run)
    refused: list[str] = field(default_factory=list)  # ambiguous names, Guard-managed organizations
    problems: list[str] = field(default_factory=list)  # what could not be repaired (e.g. an unknown desk)

    @property
    def changes(self) -> list[OrganizationPlan]:
        return [plan for plan in self.plans if not plan.empty]


@dataclass(frozen=True)
class JsmSnapshot:
    """Organizations (name -> id), desk links (org id -> project keys) and the ids of organizations
    Atlassian Guard's SCIM manages, as JSM reports them."""

    organizations: dict[str, str]
    links: dict[str, set[str]]
    guard_managed: frozenset[str] = frozenset()

    @classmethod
    def read(cls, client: JsmClient) -> "JsmSnapshot":
        listing = list(client.iter_organizations())
        links: dict[str, set[str]] = {}
        for desk in client.iter_service_desks():
            for org in client.iter_service_desk_organizations(desk.id):
                links.setdefault(org.id, set()).add(desk.project_key.upper())
        return cls({org.name: org.id for org in listing}, links,
                   frozenset(org.id for org in listing if org.scim_managed))


    def without(self, name: str, org_id: str | None = None) -> "JsmSnapshot":
        """This snapshot without the organizations named like ``name``, or with ``org_id`` as its only one."""
        key = organization_key(name)
        organizations = {n: i for n, i in self.organizations.items() if organization_key(n) != key}
        if org_id is not None:
            organizations[name] = org_id
        return JsmSnapshot(organizations, self.links, self.guard_managed)


def reconcile(session_factory: sessionmaker[Session], client: JsmClient, rules: Rules, *, dry_run: bool,
              batch_size: int = 50, progress: Progress | None = None,
              policy: SyncPolicy | None = None) -> ReconcileResult:
    converger = Converger(session_factory, client, rules, batch_size=batch_size, policy=policy)
    with transaction(session_factory) as session:
        names = sorted(all_organization_names(session, rules))
    snapshot = JsmSnapshot.read(client)
    result = ReconcileResult(dry_run)
    seen: set[str] = set()  # accounts JSM showed as organization members: they exist
    for index, name in enumerate(names, start=1):
        if progress:
            progress(name, index, len(names))
        try:
            _reconcile_one(converger, client, snapshot, name, result, seen)
        except (PropagationError, JsmBadRequest, JsmNotFound) as exc:  # this organization only
            result.problems.append(f"{name}: {exc}")
    _check_accounts(converger, client, result, seen)
    if not dry_run:
        result.accounts_lost = result.report.accounts_replaced
    return result


def _reconcile_one(converger: Converger, client: JsmClient, snapshot: JsmSnapshot, name: str,
                   result: ReconcileResult, seen: set[str]) -> None:
    for index, final in enumerate(HEALING_ROUNDS):
        first = index == 0
        with transaction(converger.session_factory) as session:
            desired, users = plan_from_store(session, converger.rules, name, record=not result.dry_run)
            accounts = state.accounts_matching(session, desired.members)
            recorded = state.applied_organization(session, name)
        if not first:  # the earlier round recreated (or lost) it: the records say which id it has now
            snapshot = snapshot.without(name, recorded.org_id if recorded else None)
        missing = [u for u in desired.members if u not in accounts]
        if first:
            result.accounts_missing += len(missing)
        if missing and not result.dry_run:
            accounts.update(converger.accounts_for_new_members(desired, users, accounts))
        try:
            observed = _observed(client, snapshot, name, recorded)
        except AmbiguousOrganization as exc:
            result.refused.append(str(exc))
            return
        if observed is not None and observed.org_id in snapshot.guard_managed and (
                recorded is None or recorded.org_id != observed.org_id):
            conflict = GuardManaged(name, observed.org_id)
            result.refused.append(str(conflict))
            if not result.dry_run:
                with transaction(converger.session_factory) as session:
                    ownership.record_guard_conflict(session, name, str(conflict))
            return
        seen.update(observed.present_members if observed else ())
        if observed is not None and observed.org_id is None and not desired.exists:
            observed = AppliedOrganization(name, None, owned=False)  # already gone from JSM: just forget it
        if observed is not None and observed.org_id and not result.dry_run and (
            recorded is None or recorded.org_id != observed.org_id
        ):
            with transaction(converger.session_factory) as session:
                state.record_organization(session, name, observed.org_id, observed.owned)
        plan = diff_organization(resolve_accounts(desired, accounts), observed,
                                 keep_deleted=converger.policy.keep_deleted_organizations)
        if first:
            result.plans.append(plan)
            _check_property(converger, client, name, observed, desired.exists, result)
        if plan.empty or result.dry_run:
            return
        report = ApplyReport()
        again = converger.apply_round(plan, observed, report, final=final, name=name)
        result.report.merge(report)
        result.problems.extend(f"{name}: {problem}" for problem in report.problems)
        report.problems.clear()
        if not again:
            return


def _check_property(converger: Converger, client: JsmClient, name: str, observed: AppliedOrganization | None,
                    exists: bool, result: ReconcileResult) -> None:
    """An organization the bridge owns carries its ownership property; set it where it is missing."""
    if observed is None or not observed.owned or observed.org_id is None or not exists:
        return
    if converger.applier.owns_property(name, client.get_organization_property(observed.org_id, OWNERSHIP_PROPERTY)):
        return
    result.properties_missing += 1
    if not result.dry_run:
        converger.applier.mark_ownership(name, observed.org_id)


def _check_accounts(converger: Converger, client: JsmClient, result: ReconcileResult, seen: set[str]) -> None:
    """Active users' recorded accounts that no organization listing showed: ask JSM for each, and
    create the ones it no longer has again (one call per account outside every organization)."""
    with transaction(converger.session_factory) as session:
        recorded = _current_accounts(session)
    lost = {account_id for account_id in sorted(recorded - seen) if client.get_customer(account_id) is None}
    if not lost:
        return
    if result.dry_run:
        result.accounts_lost += len(lost)
        return
    replaced, problems = converger.heal_accounts(lost, None)
    result.report.accounts_replaced += replaced
    result.problems.extend(problems)


def _current_accounts(session: Session) -> set[str]:
    """The recorded accounts of active users made for their current e-mail (those JSM must have)."""
    found = set()
    for account, user in session.execute(select(JsmAccount, User).join(User, User.id == JsmAccount.user_id)
                                         .where(User.active.is_(True))):
        email = account_email(facts.user_facts(user, session))
        if email is not None and email.casefold() == account.email.casefold():
            found.add(account.account_id)
    return found


def _observed(client: JsmClient, snapshot: JsmSnapshot, name: str,
              recorded: AppliedOrganization | None) -> AppliedOrganization | None:
    """JSM's state of ``name``, with the bridge's records deciding what it owns."""
    org_id = (recorded.org_id if recorded and recorded.org_id in snapshot.organizations.values()
              else match_organization(snapshot.organizations.items(), name))
    if org_id is None:
        # Missing in JSM: recreate if desired (the differ adds Ensure); nothing to remove.
        return AppliedOrganization(name, None, recorded.owned) if recorded else None
    members = frozenset(customer.account_id for customer in client.iter_organization_users(org_id))
    desks = frozenset(snapshot.links.get(org_id, set()))
    owned = recorded.owned if recorded else False
    owned_members = members & recorded.owned_members if recorded else frozenset()
    owned_desks = desks & recorded.owned_desks if recorded else frozenset()
    return AppliedOrganization(name, org_id, owned, members, owned_members, desks, owned_desks)


def organizations_missing_in_jsm(session_factory: sessionmaker[Session], client: JsmClient) -> list[tuple[str, str]]:
    """``(name, recorded id)`` of the organizations the bridge recorded that JSM's listing lacks
    (``sync status``: one paged listing, no write)."""
    present = {org.id for org in client.iter_organizations()}
    with transaction(session_factory) as session:
        recorded = state.recorded_organization_ids(session)
    return sorted((name, org_id) for name, org_id in recorded.items() if org_id not in present)

"""``sync reconcile``: compare desired state with what JSM reports and repair drift.

The same planner and differ as the worker, with "last applied" replaced by JSM's own answer (read
through the paged API). Ownership still comes from the bridge's records: only memberships and desk
links that the bridge granted, and organizations it created, are ever removed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy.orm import Session, sessionmaker

from jsm_client import JsmClient
from scim_server.db import transaction
from scim_server.sync import state
from scim_server.sync.applier import ApplyReport
from scim_server.sync.converge import Converger, all_organization_names, plan_from_store
from scim_server.sync.differ import AppliedOrganization, OrganizationPlan, diff_organization
from scim_server.sync.names import AmbiguousOrganization, match_organization
from scim_server.sync.planner import resolve_accounts
from scim_server.sync.rules import Rules

Progress = Callable[[str, int, int], None]  # (organization, index, total)


@dataclass
class ReconcileResult:
    dry_run: bool
    plans: list[OrganizationPlan] = field(default_factory=list)
    report: ApplyReport = field(default_factory=ApplyReport)
    accounts_missing: int = 0  # desired members without a JSM account (created unless dry run)
    refused: list[str] = field(default_factory=list)  # organizations JSM's names make ambiguous

    @property
    def changes(self) -> list[OrganizationPlan]:
        return [plan for plan in self.plans if not plan.empty]


@dataclass(frozen=True)
class JsmSnapshot:
    """Organizations (name -> id) and desk links (org id -> project keys) as JSM reports them."""

    organizations: dict[str, str]
    links: dict[str, set[str]]

    @classmethod
    def read(cls, client: JsmClient) -> "JsmSnapshot":
        organizations = {org.name: org.id for org in client.iter_organizations()}
        links: dict[str, set[str]] = {}
        for desk in client.iter_service_desks():
            for org in client.iter_service_desk_organizations(desk.id):
                links.setdefault(org.id, set()).add(desk.project_key.upper())
        return cls(organizations, links)


def reconcile(session_factory: sessionmaker[Session], client: JsmClient, rules: Rules, *, dry_run: bool,
              batch_size: int = 50, progress: Progress | None = None) -> ReconcileResult:
    converger = Converger(session_factory, client, rules, batch_size=batch_size)
    with transaction(session_factory) as session:
        names = sorted(all_organization_names(session, rules))
    snapshot = JsmSnapshot.read(client)
    result = ReconcileResult(dry_run)
    for index, name in enumerate(names, start=1):
        if progress:
            progress(name, index, len(names))
        _reconcile_one(converger, client, snapshot, name, result)
    return result


def _reconcile_one(converger: Converger, client: JsmClient, snapshot: JsmSnapshot, name: str,
                   result: ReconcileResult) -> None:
    with transaction(converger.session_factory) as session:
        desired, users = plan_from_store(session, converger.rules, name, record=not result.dry_run)
        accounts = state.accounts_matching(session, desired.members)
        recorded = state.applied_organization(session, name)
    missing = [u for u in desired.members if u not in accounts]
    result.accounts_missing += len(missing)
    if missing and not result.dry_run:
        accounts.update(converger.accounts_for_new_members(desired, users, accounts))
    try:
        observed = _observed(client, snapshot, name, recorded)
    except AmbiguousOrganization as exc:
        result.refused.append(str(exc))
        return
    if observed is not None and observed.org_id is None and not desired.exists:
        observed = AppliedOrganization(name, None, owned=False)  # already gone from JSM: just forget it
    if observed is not None and observed.org_id and not result.dry_run and (
        recorded is None or recorded.org_id != observed.org_id
    ):
        with transaction(converger.session_factory) as session:
            state.record_organization(session, name, observed.org_id, observed.owned)
    plan = diff_organization(resolve_accounts(desired, accounts), observed)
    result.plans.append(plan)
    if not plan.empty and not result.dry_run:
        result.report.merge(converger.applier.apply(plan, observed))


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

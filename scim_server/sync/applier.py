"""Executes an organization plan against JSM and records each step as soon as JSM confirmed it.

Every step is idempotent in JSM (create-organization returns the existing one, membership and link
calls answer 204 when already so), and each is recorded in its own short transaction, so a crash
at any point leaves a state from which the next attempt converges without duplicates.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy.orm import Session, sessionmaker

from jsm_client import JsmAuthError, JsmBadRequest, JsmClient, JsmError, JsmNotFound
from scim_server.db import transaction
from scim_server.sync import ownership, state
from scim_server.sync.differ import (
    AddMembers,
    AppliedOrganization,
    DeleteOrganization,
    EnsureOrganization,
    ForgetOrganization,
    LinkDesk,
    Operation,
    OrganizationPlan,
    RemoveMembers,
    UnlinkDesk,
)
from scim_server.sync.jsm import JsmCatalog
from scim_server.sync.names import AmbiguousOrganization
from scim_server.sync.policy import OWNERSHIP_PROPERTY, SyncPolicy, names_this_bridge

log = logging.getLogger(__name__)


class PropagationError(Exception):
    """A step cannot succeed as configured (e.g. several JSM organizations match one name)."""


class GuardManaged(PropagationError):
    """The JSM organization is synced by Atlassian Guard's own SCIM: the bridge never adopts it."""

    def __init__(self, name: str, org_id: str) -> None:
        super().__init__(
            f"JSM organization {name!r} (id {org_id}) is managed by Atlassian Guard's SCIM (scimManaged); the "
            "bridge never adopts it: map the group to another organization name in the rules file, or stop "
            "syncing that group through Atlassian Guard")


@dataclass
class ApplyReport:
    """What one or more plans changed in JSM (``sync reconcile`` prints it)."""

    created: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    members_added: int = 0
    members_removed: int = 0
    links_added: int = 0
    links_removed: int = 0
    #: Steps that cannot succeed as configured (e.g. a desk JSM does not have); the rest was applied.
    problems: list[str] = field(default_factory=list)
    #: Recorded accounts JSM refused as members one by one (deleted in JSM): the converger heals them.
    missing_accounts: set[str] = field(default_factory=set)
    #: JSM no longer has the recorded organization: its id, members and links were forgotten.
    organization_lost: bool = False
    #: Accounts JSM had lost that were created again (or adopted anew) for their users.
    accounts_replaced: int = 0

    def merge(self, other: "ApplyReport") -> None:
        for name in ("created", "adopted", "deleted", "forgotten", "problems"):
            getattr(self, name).extend(getattr(other, name))
        for name in ("members_added", "members_removed", "links_added", "links_removed", "accounts_replaced"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.missing_accounts |= other.missing_accounts
        self.organization_lost = self.organization_lost or other.organization_lost


def log_effect(effect: str, entity: str, route: str, directory: str | None = None, **extra: object) -> None:
    """One INFO line per change made in JSM: what, on which entity, in which directory, through which route."""
    log.info("JSM %s: %s (directory %s, %s)", effect, entity, directory or "-", route,
             extra={"jsm_effect": effect, "entity": entity, "directory": directory, "route": route, **extra})


class Applier:
    def __init__(self, session_factory: sessionmaker[Session], client: JsmClient, catalog: JsmCatalog,
                 batch_size: int, policy: SyncPolicy | None = None) -> None:
        self.session_factory = session_factory
        self.client = client
        self.catalog = catalog
        self.batch_size = max(1, batch_size)
        self.policy = policy or SyncPolicy()

    def apply(self, plan: OrganizationPlan, applied: AppliedOrganization | None) -> ApplyReport:
        """Run the plan; a step JSM answers 404 for the organization ends it with ``organization_lost``."""
        report = ApplyReport()
        org_id = applied.org_id if applied else None
        try:
            for op in plan.operations:
                org_id = self._step(plan.name, op, org_id, report)
        except JsmNotFound as exc:
            if org_id is None or not self._organization_gone(exc, org_id):
                raise
            # Deleted in JSM behind our back, and with it its memberships and desk links: forget
            # them all, so the next round recreates (or re-adopts) it and grants everything again.
            self._record(functools.partial(state.forget_organization_in_jsm, name=plan.name))
            self.catalog.remember_organization(plan.name, None)
            log.warning("JSM organization %r (id %s) is gone; it will be created again", plan.name, org_id)
            report.organization_lost = True
        return report

    def _organization_gone(self, exc: JsmError, org_id: str) -> bool:
        """Whether a 404 means JSM lost the organization (a desk link's 404 may mean the desk)."""
        if not _is_organization_path(exc):
            return False
        if "/servicedesk/" not in (exc.path or ""):
            return True
        try:
            self.client.get_organization(org_id)
        except JsmNotFound:
            return True
        return False

    def _step(self, name: str, op: Operation, org_id: str | None, report: ApplyReport) -> str | None:
        if isinstance(op, EnsureOrganization):
            return self._ensure(name, report)
        if isinstance(op, DeleteOrganization):
            self._delete(name, _require(org_id, name), report)
            return None
        if isinstance(op, ForgetOrganization):
            self._forget(name, org_id)
            report.forgotten.append(name)
            return None
        org_id = _require(org_id, name)
        if isinstance(op, AddMembers):
            report.members_added += self._members(name, org_id, op.account_ids, add=True, report=report)
        elif isinstance(op, RemoveMembers):
            report.members_removed += self._members(name, org_id, op.account_ids, add=False, report=report)
        elif isinstance(op, LinkDesk):
            if self._link(name, org_id, op.project_key, link=True, report=report):
                report.links_added += 1
        elif isinstance(op, UnlinkDesk):
            self._link(name, org_id, op.project_key, link=False, report=report)
            report.links_removed += 1
        return org_id

    def _ensure(self, name: str, report: ApplyReport) -> str:
        """Adopt an organization JSM already has; otherwise record the intent, then create it.

        Never adopts one that Atlassian Guard's SCIM manages; one that carries this bridge's
        ownership property for the same directory is taken back as the bridge's own.
        """
        with transaction(self.session_factory) as session:
            intended = _owned(session, name)
            directory = ownership.owners_of(session, [name]).owner(name)
        try:
            existing = self.catalog.organization_id(name)
        except AmbiguousOrganization as exc:
            raise PropagationError(str(exc)) from None
        if existing is not None:
            if self.catalog.scim_managed(existing):
                raise GuardManaged(name, existing)
            owned = intended or self._marked_as_ours(existing, directory)
            self._record(lambda s: state.record_organization(s, name, existing, owned=owned))
            (report.created if owned else report.adopted).append(name)
            if not owned:
                log.info("adopted existing JSM organization %r (id %s); it will never be deleted", name, existing)
            elif intended:  # our own create, confirmed by the listing: make sure it is marked
                self._mark_ownership(existing, directory)
            return existing
        self._record(lambda s: state.record_intent_to_create(s, name))
        org = self.client.create_organization(name)
        if org.scim_managed:  # created meanwhile by Atlassian Guard: JSM answered with that one
            self._record(lambda s: state.forget_organization(s, name))
            raise GuardManaged(name, org.id)
        log_effect("organization created", name, "POST /rest/servicedeskapi/organization", directory, org_id=org.id)
        self._record(lambda s: state.record_organization(s, name, org.id, owned=True))
        self.catalog.remember_organization(name, org.id)
        self._mark_ownership(org.id, directory)
        report.created.append(name)
        return org.id

    def mark_ownership(self, name: str, org_id: str) -> None:
        """Set the ownership property on an organization the bridge owns (``sync reconcile``)."""
        with transaction(self.session_factory) as session:
            directory = ownership.owners_of(session, [name]).owner(name)
        self._mark_ownership(org_id, directory)

    def owns_property(self, name: str, value: object) -> bool:
        """Whether ``value`` (the organization's ownership property) is what this bridge sets on ``name``."""
        with transaction(self.session_factory) as session:
            directory = ownership.owners_of(session, [name]).owner(name)
        return names_this_bridge(value, directory, self.policy.bridge_url)

    def _mark_ownership(self, org_id: str, directory: str | None) -> None:
        """PUT the property naming the bridge and the directory (shown in JSM, read back on adoption).

        A failure is logged, not raised: the organization is the bridge's all the same, and
        ``sync reconcile`` sets missing properties.
        """
        try:
            self.client.set_organization_property(org_id, OWNERSHIP_PROPERTY, self.policy.ownership_value(directory))
        except JsmError as exc:
            log.warning("could not mark JSM organization %s as the bridge's (left to sync reconcile): %s", org_id, exc)

    def _marked_as_ours(self, org_id: str, directory: str | None) -> bool:
        try:
            value = self.client.get_organization_property(org_id, OWNERSHIP_PROPERTY)
        except (JsmAuthError, JsmBadRequest) as exc:  # unreadable: adopt it as someone else's
            log.warning("could not read the properties of JSM organization %s: %s", org_id, exc)
            return False
        return names_this_bridge(value, directory, self.policy.bridge_url)

    def _forget(self, name: str, org_id: str | None) -> None:
        """Stop managing ``name``; one the bridge created but keeps (policy) loses its ownership property."""
        with transaction(self.session_factory) as session:
            owned = _owned(session, name)
        if owned and org_id is not None:
            try:
                self.client.delete_organization_property(org_id, OWNERSHIP_PROPERTY)
            except JsmNotFound:
                pass
            except JsmError as exc:
                log.warning("could not remove the bridge's property from JSM organization %s: %s", org_id, exc)
        self._record(lambda s: state.forget_organization(s, name))

    def _delete(self, name: str, org_id: str, report: ApplyReport) -> None:
        try:
            self.client.delete_organization(org_id)
        except JsmNotFound:
            pass  # already gone: the goal is reached
        else:
            log_effect("organization deleted", name, "DELETE /rest/servicedeskapi/organization/{id}", org_id=org_id)
        self._record(lambda s: state.forget_organization(s, name))
        self.catalog.remember_organization(name, None)
        report.deleted.append(name)

    def _members(self, name: str, org_id: str, account_ids: tuple[str, ...], *, add: bool,
                 report: ApplyReport) -> int:
        """Batched membership calls. JSM refuses a whole batch (400) when one account does not exist:
        the batch is then sent one account at a time, and the accounts refused alone are reported
        missing (adding) or counted as removed (an account JSM no longer has is in no organization)."""
        change = self.client.add_organization_users if add else self.client.remove_organization_users
        done = 0
        for start in range(0, len(account_ids), self.batch_size):
            batch = account_ids[start : start + self.batch_size]
            try:
                change(org_id, batch)
                applied = batch
            except JsmBadRequest:
                applied = (self._one_by_one(org_id, batch, add=add, report=report) if len(batch) > 1
                           else _refused_alone(batch, add=add, report=report))
            if applied:
                log_effect("membership added" if add else "membership removed", name,
                           f"{'POST' if add else 'DELETE'} /rest/servicedeskapi/organization/{{id}}/user",
                           org_id=org_id, accounts=len(applied))
            self._record(functools.partial(state.record_members, name=name, account_ids=applied, added=add))
            done += len(applied)
        return done

    def _one_by_one(self, org_id: str, batch: tuple[str, ...], *, add: bool, report: ApplyReport) -> tuple[str, ...]:
        change = self.client.add_organization_users if add else self.client.remove_organization_users
        applied: list[str] = []
        for account_id in batch:
            try:
                change(org_id, [account_id])
                applied.append(account_id)
            except JsmBadRequest:
                applied.extend(_refused_alone((account_id,), add=add, report=report))
        return tuple(applied)

    def _link(self, name: str, org_id: str, project_key: str, *, link: bool, report: ApplyReport) -> bool:
        """Link or unlink one desk; a desk JSM does not have is a problem of this link only."""
        desk_id = self.catalog.desk_id(project_key)
        if desk_id is None and link:
            report.problems.append(f"portal link {project_key}: JSM has no service desk with project key "
                                   f"{project_key!r} (fix [portals] in the rules file, or create the desk)")
            return False
        if desk_id is not None:
            if link:
                self.client.add_service_desk_organization(desk_id, org_id)
            else:
                self.client.remove_service_desk_organization(desk_id, org_id)
            log_effect("desk linked" if link else "desk unlinked", name,
                       f"{'POST' if link else 'DELETE'} /rest/servicedeskapi/servicedesk/{{id}}/organization",
                       project_key=project_key, desk_id=desk_id)
        self._record(lambda s: state.record_link(s, name, project_key, linked=link))
        return True

    def _record(self, change: Callable[[Session], None]) -> None:
        with transaction(self.session_factory) as session:
            change(session)


def _refused_alone(account_ids: tuple[str, ...], *, add: bool, report: ApplyReport) -> tuple[str, ...]:
    """What counts as applied when JSM refuses these accounts one by one: for a removal all of them
    (JSM no longer has them); for an addition none (reported missing, for the converger to heal)."""
    if not add:
        return account_ids
    report.missing_accounts.update(account_ids)
    return ()


def _require(org_id: str | None, name: str) -> str:
    if org_id is None:
        raise PropagationError(f"organization {name!r} has no JSM id yet")
    return org_id


def _owned(session: Session, name: str) -> bool:
    row = state.managed_organization(session, name)
    return bool(row and row.owned)


def _is_organization_path(exc: JsmError) -> bool:
    return bool(exc.path and "/organization" in exc.path)

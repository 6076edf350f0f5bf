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

from jsm_client import JsmClient, JsmError, JsmNotFound
from scim_server.db import transaction
from scim_server.sync import state
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

log = logging.getLogger(__name__)


class PropagationError(Exception):
    """A step cannot succeed as configured (e.g. a rules file names a desk JSM does not have)."""


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

    def merge(self, other: "ApplyReport") -> None:
        for name in ("created", "adopted", "deleted", "forgotten"):
            getattr(self, name).extend(getattr(other, name))
        for name in ("members_added", "members_removed", "links_added", "links_removed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Applier:
    def __init__(self, session_factory: sessionmaker[Session], client: JsmClient, catalog: JsmCatalog,
                 batch_size: int) -> None:
        self.session_factory = session_factory
        self.client = client
        self.catalog = catalog
        self.batch_size = max(1, batch_size)

    def apply(self, plan: OrganizationPlan, applied: AppliedOrganization | None) -> ApplyReport:
        report = ApplyReport()
        org_id = applied.org_id if applied else None
        try:
            for op in plan.operations:
                org_id = self._step(plan.name, op, org_id, report)
        except JsmNotFound as exc:
            if org_id is not None and _is_organization_path(exc):
                # Deleted in JSM behind our back: forget its id so the retry recreates or re-adopts it.
                self._record(lambda s: state.record_organization(s, plan.name, None, _owned(s, plan.name)))
                self.catalog.remember_organization(plan.name, None)
            raise
        return report

    def _step(self, name: str, op: Operation, org_id: str | None, report: ApplyReport) -> str | None:
        if isinstance(op, EnsureOrganization):
            return self._ensure(name, report)
        if isinstance(op, DeleteOrganization):
            self._delete(name, _require(org_id, name), report)
            return None
        if isinstance(op, ForgetOrganization):
            self._record(lambda s: state.forget_organization(s, name))
            report.forgotten.append(name)
            return None
        org_id = _require(org_id, name)
        if isinstance(op, AddMembers):
            report.members_added += self._members(name, org_id, op.account_ids, add=True)
        elif isinstance(op, RemoveMembers):
            report.members_removed += self._members(name, org_id, op.account_ids, add=False)
        elif isinstance(op, LinkDesk):
            self._link(name, org_id, op.project_key, link=True)
            report.links_added += 1
        elif isinstance(op, UnlinkDesk):
            self._link(name, org_id, op.project_key, link=False)
            report.links_removed += 1
        return org_id

    def _ensure(self, name: str, report: ApplyReport) -> str:
        """Adopt an organization JSM already has; otherwise record the intent, then create it."""
        with transaction(self.session_factory) as session:
            intended = _owned(session, name)
        try:
            existing = self.catalog.organization_id(name)
        except AmbiguousOrganization as exc:
            raise PropagationError(str(exc)) from None
        if existing is not None:
            self._record(lambda s: state.record_organization(s, name, existing, owned=intended))
            (report.created if intended else report.adopted).append(name)
            if not intended:
                log.info("adopted existing JSM organization %r (id %s); it will never be deleted", name, existing)
            return existing
        self._record(lambda s: state.record_intent_to_create(s, name))
        org = self.client.create_organization(name)
        self._record(lambda s: state.record_organization(s, name, org.id, owned=True))
        self.catalog.remember_organization(name, org.id)
        report.created.append(name)
        return org.id

    def _delete(self, name: str, org_id: str, report: ApplyReport) -> None:
        try:
            self.client.delete_organization(org_id)
        except JsmNotFound:
            pass  # already gone: the goal is reached
        self._record(lambda s: state.forget_organization(s, name))
        self.catalog.remember_organization(name, None)
        report.deleted.append(name)

    def _members(self, name: str, org_id: str, account_ids: tuple[str, ...], *, add: bool) -> int:
        change = self.client.add_organization_users if add else self.client.remove_organization_users
        for start in range(0, len(account_ids), self.batch_size):
            batch = account_ids[start : start + self.batch_size]
            change(org_id, batch)
            self._record(functools.partial(state.record_members, name=name, account_ids=batch, added=add))
        return len(account_ids)

    def _link(self, name: str, org_id: str, project_key: str, *, link: bool) -> None:
        desk_id = self.catalog.desk_id(project_key)
        if desk_id is None and link:
            raise PropagationError(f"JSM has no service desk with project key {project_key!r} (see [portals])")
        if desk_id is not None:
            if link:
                self.client.add_service_desk_organization(desk_id, org_id)
            else:
                self.client.remove_service_desk_organization(desk_id, org_id)
        self._record(lambda s: state.record_link(s, name, project_key, linked=link))

    def _record(self, change: Callable[[Session], None]) -> None:
        with transaction(self.session_factory) as session:
            change(session)


def _require(org_id: str | None, name: str) -> str:
    if org_id is None:
        raise PropagationError(f"organization {name!r} has no JSM id yet")
    return org_id


def _owned(session: Session, name: str) -> bool:
    row = state.managed_organization(session, name)
    return bool(row and row.owned)


def _is_organization_path(exc: JsmError) -> bool:
    return bool(exc.path and "/organization" in exc.path)

"""Desired vs. applied organization state → the minimal list of JSM operations. PURE: no I/O.

"Applied" is what the bridge recorded (worker) or what JSM reports (reconcile). ``present_*`` is
what is there; ``owned_*`` is what the bridge granted and may therefore take away. For the worker
both are the recorded state; for reconcile ``present`` comes from JSM and ``owned`` is JSM's state
intersected with the bridge's records, so the bridge never removes what someone else added.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from scim_server.sync.planner import DesiredMembership


@dataclass(frozen=True)
class AppliedOrganization:
    name: str
    org_id: str | None  # None: the bridge intended to create it but did not record the id yet
    owned: bool  # created by the bridge (may be deleted) vs adopted (never deleted)
    present_members: frozenset[str] = frozenset()
    owned_members: frozenset[str] = frozenset()
    present_desks: frozenset[str] = frozenset()
    owned_desks: frozenset[str] = frozenset()


@dataclass(frozen=True)
class EnsureOrganization:
    """Create the organization, or adopt the existing one with that name."""


@dataclass(frozen=True)
class AddMembers:
    account_ids: tuple[str, ...]


@dataclass(frozen=True)
class RemoveMembers:
    account_ids: tuple[str, ...]


@dataclass(frozen=True)
class LinkDesk:
    project_key: str


@dataclass(frozen=True)
class UnlinkDesk:
    project_key: str


@dataclass(frozen=True)
class DeleteOrganization:
    """Delete an organization the bridge created (JSM drops its memberships and desk links)."""


@dataclass(frozen=True)
class ForgetOrganization:
    """Stop managing an adopted organization (after removing what the bridge granted in it)."""


Operation = EnsureOrganization | AddMembers | RemoveMembers | LinkDesk | UnlinkDesk | DeleteOrganization | ForgetOrganization


@dataclass(frozen=True)
class OrganizationPlan:
    name: str
    operations: tuple[Operation, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not self.operations


def diff_organization(desired: DesiredMembership, applied: AppliedOrganization | None, *,
                      keep_deleted: bool = False) -> OrganizationPlan:
    """The operations that take ``applied`` to ``desired``; empty when they already agree.

    ``keep_deleted``: an organization the bridge created that is no longer desired is retired like
    an adopted one (its members and desk links taken back, then forgotten) instead of deleted.
    """
    if desired.exists:
        return OrganizationPlan(desired.name, tuple(_converge_existing(desired, applied)))
    if applied is None:
        return OrganizationPlan(desired.name)
    return OrganizationPlan(desired.name, tuple(_retire(applied, keep_deleted)))


def _converge_existing(desired: DesiredMembership, applied: AppliedOrganization | None) -> list[Operation]:
    applied = applied or AppliedOrganization(desired.name, None, owned=True)
    ops: list[Operation] = []
    if applied.org_id is None:
        ops.append(EnsureOrganization())
    add = desired.account_ids - applied.present_members
    remove = applied.owned_members - desired.account_ids
    if add:
        ops.append(AddMembers(tuple(sorted(add))))
    if remove:
        ops.append(RemoveMembers(tuple(sorted(remove))))
    ops += [LinkDesk(key) for key in sorted(desired.project_keys - applied.present_desks)]
    ops += [UnlinkDesk(key) for key in sorted(applied.owned_desks - desired.project_keys)]
    return ops


def _retire(applied: AppliedOrganization, keep: bool) -> list[Operation]:
    if applied.org_id is None:
        # Never confirmed in JSM: an Ensure would be needed to find it; forgetting is safe because
        # a create intent without id is only written by the bridge just before creating.
        return [ForgetOrganization()] if not applied.owned or keep else [EnsureOrganization(), DeleteOrganization()]
    if applied.owned and not keep:
        return [DeleteOrganization()]
    ops: list[Operation] = []
    if applied.owned_members:
        ops.append(RemoveMembers(tuple(sorted(applied.owned_members))))
    ops += [UnlinkDesk(key) for key in sorted(applied.owned_desks)]
    ops.append(ForgetOrganization())
    return ops

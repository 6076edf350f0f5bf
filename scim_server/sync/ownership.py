"""Which directory owns which JSM organization, and the refused cross-directory leads (SQL side).

The decisions are the planner's (``may_lead``, ``first_owner``); this module reads and records.
An owner is recorded by the converge of the organization (one worker at a time holds its mark);
a concurrent first record is resolved by the primary key: the first writer wins, the other reads
it back.
"""
from __future__ import annotations

import logging
from typing import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from scim_server.db import chunked, insert_ignoring_duplicates, utcnow
from scim_server.models import Directory
from scim_server.models.sync import OrganizationConflict, OrganizationOwner
from scim_server.sync import state
from scim_server.sync.names import organization_key
from scim_server.sync.planner import Lead, Owners

log = logging.getLogger(__name__)


def owners_of(session: Session, names: Iterable[str]) -> Owners:
    """The recorded owners of these organizations (by key)."""
    keys = sorted({organization_key(name) for name in names})
    entries: dict[str, tuple[str, str]] = {}
    for chunk in chunked(keys):
        query = (select(OrganizationOwner.key, OrganizationOwner.name, Directory.name)
                 .join(Directory, Directory.id == OrganizationOwner.directory_id)
                 .where(OrganizationOwner.key.in_(chunk)))
        for key, name, directory in session.execute(query):
            entries[key] = (name, directory)
    return Owners(entries)


def canonical_name(session: Session, name: str) -> str:
    """The spelling the bridge uses for organization ``name``: the recorded owner's, else that of an
    organization the bridge manages with the same key (from before ownership), else ``name``."""
    recorded = owners_of(session, [name]).entries.get(organization_key(name))
    if recorded is not None:
        return recorded[0]
    key = organization_key(name)
    managed = state.managed_organization_names(session)
    if name in managed:
        return name
    return next((other for other in sorted(managed) if organization_key(other) == key), name)


def all_owners(session: Session) -> Owners:
    query = select(OrganizationOwner.key, OrganizationOwner.name, Directory.name).join(
        Directory, Directory.id == OrganizationOwner.directory_id)
    return Owners({key: (name, directory) for key, name, directory in session.execute(query)})


def record_owner(session: Session, name: str, directory: str) -> Owners:
    """Record ``directory`` as the owner of ``name`` unless an owner is recorded; returns the owners
    of ``name`` as stored now."""
    directory_id = session.scalar(select(Directory.id).where(Directory.name == directory))
    if directory_id is not None:
        insert_ignoring_duplicates(session, OrganizationOwner, [
            {"key": organization_key(name), "name": name, "directory_id": directory_id, "created_at": utcnow()}])
    return owners_of(session, [name])


def record_conflicts(session: Session, name: str, refused: Iterable[tuple[Lead, str]]) -> None:
    """Replace the recorded conflicts of organization ``name`` by ``refused`` ((lead, why) pairs);
    logs each conflict the first time it is seen."""
    key = organization_key(name)
    ids = dict(session.execute(select(Directory.name, Directory.id)).all())
    known = {(row.directory_id, row.source) for row in
             session.scalars(select(OrganizationConflict).where(OrganizationConflict.org_key == key))}
    rows = {}
    for lead, why in refused:
        message = f"directory {lead.directory}: {lead.source} leads to {why}; refused (see docs/tenants.md)"
        rows[(ids.get(lead.directory, 0), lead.source)] = message
    session.execute(delete(OrganizationConflict).where(OrganizationConflict.org_key == key))
    now = utcnow()
    session.add_all(OrganizationConflict(org_key=key, directory_id=directory_id, source=source, message=message,
                                         detected_at=now) for (directory_id, source), message in rows.items())
    for (directory_id, source), message in rows.items():
        if (directory_id, source) not in known:
            log.warning("organization conflict: %s", message)


GUARD_SOURCE = "JSM organization (scimManaged)"


def record_guard_conflict(session: Session, name: str, message: str) -> None:
    """Record that JSM's organization ``name`` is Atlassian Guard's (``sync status`` lists it as a
    conflict until a converge of ``name`` no longer meets it)."""
    key = organization_key(name)
    directory = owners_of(session, [name]).owner(name)
    directory_id = session.scalar(select(Directory.id).where(Directory.name == directory)) if directory else None
    known = session.get(OrganizationConflict, (key, directory_id or 0, GUARD_SOURCE))
    if known is None:
        log.warning("organization conflict: %s", message)
        session.add(OrganizationConflict(org_key=key, directory_id=directory_id or 0, source=GUARD_SOURCE,
                                         message=message, detected_at=utcnow()))


def conflicts(session: Session) -> list[OrganizationConflict]:
    return list(session.scalars(select(OrganizationConflict).order_by(
        OrganizationConflict.detected_at, OrganizationConflict.org_key, OrganizationConflict.source)))

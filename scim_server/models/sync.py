"""Tables owned by the sync feature: the propagation outbox and the JSM state the bridge applied.

Applied-state tables have no foreign keys to ``users``/``groups`` on purpose: SCIM DELETE removes
those rows, and the bridge must still remember what it granted in JSM in order to take it back.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from scim_server.db import Base, UTCDateTime, utcnow

#: ``directory_id`` of marks that are not scoped to a directory (JSM organizations are site-wide).
GLOBAL_DIRECTORY = 0

#: ``SyncMark.kind`` values.
USER, GROUP, ORGANIZATION = "user", "group", "org"
#: ``SyncMark.priority`` per kind, the claim order: user accounts first, then groups, then
#: organization memberships (see docs/propagation.md).
PRIORITY = {USER: 0, GROUP: 1, ORGANIZATION: 2}
#: ``SyncMark.status`` values.
PENDING, DONE, DEAD, BLOCKED = "pending", "done", "dead", "blocked"


class SyncMark(Base):
    """One "this entity changed, converge it" mark per entity (level-triggered outbox).

    ``generation`` grows on every re-mark: a worker clears the mark only when the generation it
    converged is still current. ``claimed_until`` is a lease: a crashed worker's marks come back.
    ``status`` is ``pending``, ``done``, ``dead`` (gave up after too many attempts) or ``blocked``
    (cannot be converged until the entity changes, e.g. a user without an e-mail address).
    """

    __tablename__ = "sync_marks"
    __table_args__ = (
        UniqueConstraint("kind", "directory_id", "entity_id"),
        Index("ix_sync_marks_claimable", "status", "priority", "available_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    directory_id: Mapped[int] = mapped_column(Integer)
    entity_id: Mapped[str] = mapped_column(String(300))
    priority: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    generation: Mapped[int] = mapped_column(Integer, default=1)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    pending_since: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class JsmAccount(Base):
    """The JSM customer account of a SCIM user (kept after the user is deleted)."""

    __tablename__ = "jsm_accounts"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    directory_id: Mapped[int] = mapped_column(Integer, index=True)
    email: Mapped[str] = mapped_column(String(320))
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    created_by_bridge: Mapped[bool] = mapped_column(Boolean, default=False)
    display_name: Mapped[str] = mapped_column(String(300))
    desired_display_name: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class JsmOrganization(Base):
    """A JSM organization the bridge manages: ``owned`` when the bridge created it, else adopted.

    A row with ``org_id`` NULL is a recorded intent to create: it is written before the create call,
    so that a crash between the call and the bookkeeping never turns a created org into an adopted one.
    """

    __tablename__ = "jsm_organizations"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    org_id: Mapped[str | None] = mapped_column(String(50))
    owned: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class JsmMembership(Base):
    """An organization membership the bridge granted (and therefore may revoke)."""

    __tablename__ = "jsm_memberships"

    org_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)


class JsmPortalLink(Base):
    """A service desk ↔ organization link the bridge made (and therefore may remove)."""

    __tablename__ = "jsm_portal_links"

    org_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    project_key: Mapped[str] = mapped_column(String(50), primary_key=True)


class SyncGroupTarget(Base):
    """Which organization a group was last converged to (so a rename knows the old one)."""

    __tablename__ = "sync_group_targets"

    group_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_name: Mapped[str] = mapped_column(String(200), primary_key=True)


class SyncRulesState(Base):
    """Digest of the mapping rules last propagated (one row); a new digest re-marks organizations."""

    __tablename__ = "sync_rules_state"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class OrganizationOwner(Base):
    """The directory a JSM organization belongs to, by organization key (``sync.names``).

    Recorded the first time a directory's group or rule leads to the organization and kept for
    good (also after the organization is deleted), so a name once used by one company never
    silently passes to another. ``name`` is the organization's one spelling in bridge and JSM.
    """

    __tablename__ = "organization_owners"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)  # lower-casing may lengthen a name
    name: Mapped[str] = mapped_column(String(200))
    directory_id: Mapped[int] = mapped_column(ForeignKey("directories.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class OrganizationConflict(Base):
    """A group or domain rule of a directory that leads to another directory's organization and
    was refused; rewritten by every converge of that organization (``sync status`` lists them)."""

    __tablename__ = "organization_conflicts"

    org_key: Mapped[str] = mapped_column(String(400), primary_key=True)
    directory_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(400), primary_key=True)
    message: Mapped[str] = mapped_column(Text)
    detected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

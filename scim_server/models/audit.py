"""The audit trail: one row per SCIM write, key operation or other administrative action."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from scim_server.db import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    """Who (``actor``: an API key id, ``cli`` or another component) did what to which target, when."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_target", "target_type", "target_id", "at"),
        Index("ix_audit_events_directory_at", "directory_id", "at"),
        Index("ix_audit_events_action_at", "action", "at"),
    )

    # 64-bit on PostgreSQL (an append-only log may outgrow 2**31 rows); SQLite needs INTEGER for rowid.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    directory_id: Mapped[int | None] = mapped_column(ForeignKey("directories.id"))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(300))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)

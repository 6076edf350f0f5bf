"""SCIM Users and Groups.

A resource is stored as its SCIM document (``document``, without ``id``/``meta``) plus index
columns derived from it on every write, so that filters translate to SQL over indexed columns.
Multi-valued attributes (emails, phoneNumbers, ...) are also indexed one row per value in
``user_values`` so that ``emails[type eq "work" and value co "@acme.com"]`` is an indexed subquery.
Group membership is a set in ``group_members``: adds and removes are set operations in SQL.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from scim_server.db import Base, UTCDateTime, utcnow


def _trigram_index(name: str, column: str) -> Index:
    """A pg_trgm GIN index, so that ``co``/``sw``/``ew`` (LIKE '%x%') are index scans on PostgreSQL
    (migration 0001 creates the extension).

    ``fastupdate = off``: with GIN's pending list every search also scans the list of recently
    inserted entries (up to 4 MB), which made a ``co`` filter 3-4 times slower until the next
    vacuum; writing the entries in place costs about 0.1 ms of server time per inserted value.

    SQLite has no trigram index: there the index is declared empty (``WHERE 0``), which costs
    nothing on writes and keeps models and migrations identical on both backends (alembic's
    comparison does not know ``ddl_if``).
    """
    return Index(name, column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"},
                 postgresql_with={"fastupdate": "off"}, sqlite_where=text("0"))


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("directory_id", "user_name_lower"),
        Index("ix_users_directory_external_id", "directory_id", "external_id"),
        Index("ix_users_directory_created", "directory_id", "created_at", "id"),
        _trigram_index("ix_users_user_name_lower_trgm", "user_name_lower"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    directory_id: Mapped[int] = mapped_column(ForeignKey("directories.id"))
    user_name: Mapped[str] = mapped_column(String(300))
    user_name_lower: Mapped[str] = mapped_column(String(300))
    external_id: Mapped[str | None] = mapped_column(String(300))
    display_name: Mapped[str | None] = mapped_column(String(300), index=True)
    given_name: Mapped[str | None] = mapped_column(String(300))
    family_name: Mapped[str | None] = mapped_column(String(300))
    formatted_name: Mapped[str | None] = mapped_column(String(300))
    nick_name: Mapped[str | None] = mapped_column(String(300))
    title: Mapped[str | None] = mapped_column(String(300))
    user_type: Mapped[str | None] = mapped_column(String(300))
    preferred_language: Mapped[str | None] = mapped_column(String(100))
    locale: Mapped[str | None] = mapped_column(String(100))
    timezone: Mapped[str | None] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    employee_number: Mapped[str | None] = mapped_column(String(300))
    cost_center: Mapped[str | None] = mapped_column(String(300))
    organization: Mapped[str | None] = mapped_column(String(300))
    division: Mapped[str | None] = mapped_column(String(300))
    department: Mapped[str | None] = mapped_column(String(300))
    manager_id: Mapped[str | None] = mapped_column(String(300))
    primary_email: Mapped[str | None] = mapped_column(String(320))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserValue(Base):
    """One value of a multi-valued User attribute (emails, phoneNumbers, ims, photos, roles, ...)."""

    __tablename__ = "user_values"
    __table_args__ = (
        Index("ix_user_values_attribute_value", "attribute", "value_lower"),
        _trigram_index("ix_user_values_value_lower_trgm", "value_lower"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    attribute: Mapped[str] = mapped_column(String(50))
    value: Mapped[str | None] = mapped_column(String(1000))
    value_lower: Mapped[str | None] = mapped_column(String(1000))
    type: Mapped[str | None] = mapped_column(String(100))
    primary: Mapped[bool] = mapped_column(Boolean, default=False)
    display: Mapped[str | None] = mapped_column(String(300))


class Group(Base):
    __tablename__ = "groups"
    __table_args__ = (
        UniqueConstraint("directory_id", "display_name_lower"),
        Index("ix_groups_directory_external_id", "directory_id", "external_id"),
        Index("ix_groups_directory_created", "directory_id", "created_at", "id"),
        _trigram_index("ix_groups_display_name_lower_trgm", "display_name_lower"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    directory_id: Mapped[int] = mapped_column(ForeignKey("directories.id"))
    display_name: Mapped[str] = mapped_column(String(300))
    display_name_lower: Mapped[str] = mapped_column(String(300))
    external_id: Mapped[str | None] = mapped_column(String(300))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )

"""Directories (one per customer company / IdP connection), their claimed e-mail domains, and the
bearer API keys that belong to them."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from scim_server.db import Base, UTCDateTime, utcnow


class Directory(Base):
    """A namespace of Users and Groups pushed by one IdP connection."""

    __tablename__ = "directories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DirectoryDomain(Base):
    """An e-mail domain claimed by one directory (lower-case ASCII; IDN domains in punycode).

    A claim covers the domain and its subdomains; claims of different directories never overlap.
    """

    __tablename__ = "directory_domains"

    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    directory_id: Mapped[int] = mapped_column(ForeignKey("directories.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    """A SCIM bearer key. Only a SHA-256 digest of the token is stored, never the token."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    directory_id: Mapped[int] = mapped_column(ForeignKey("directories.id"), index=True)
    token_prefix: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The successor issued by a rotation; this key then has a revoked_at at the end of the grace period.
    rotated_to_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"))
    last_expiry_warning_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    directory: Mapped[Directory] = relationship(lazy="joined")

"""Tables owned by the SAML SSO feature.

- ``sso_idp_config``: the one trusted identity provider (single row, ``id = 1``).
- ``sso_authn_requests``: AuthnRequest IDs we issued and have not yet seen answered; a Response's
  ``InResponseTo`` must consume one of them (the SAML defence against login CSRF and injection).
- ``sso_consumed_assertions``: assertion IDs already accepted, kept until the assertion expires,
  so a captured Response cannot be replayed. Both caches live in the database so that every
  gunicorn worker on every machine sees them.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from scim_server.db import Base, UTCDateTime, utcnow


class IdpConfig(Base):
    __tablename__ = "sso_idp_config"

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(1000))
    sso_url: Mapped[str] = mapped_column(String(2000))
    slo_url: Mapped[str | None] = mapped_column(String(2000))
    certificates_pem: Mapped[str] = mapped_column(Text)  # one or more PEM certificates (rotation)
    attribute_map: Mapped[dict[str, Any]] = mapped_column(JSON)  # field -> IdP attribute name
    allow_idp_initiated: Mapped[bool] = mapped_column(Boolean, default=False)
    jit_directory: Mapped[str] = mapped_column(String(100), default="sso")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuthnRequestRecord(Base):
    __tablename__ = "sso_authn_requests"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20))  # "login" | "test"
    target: Mapped[str | None] = mapped_column(String(200))  # our own /portal/<id> path, or None
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class ConsumedAssertion(Base):
    __tablename__ = "sso_consumed_assertions"

    id: Mapped[str] = mapped_column(String(300), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)

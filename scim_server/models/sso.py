"""Tables owned by the SSO broker's upstream half (the customers' own IdPs, "connections").

- ``sso_connections``: one upstream IdP (SAML or OpenID Connect) bound to one directory. The
  connection named ``default`` is the one ``sso configure`` / ``sso import-metadata`` set.
- ``sso_connection_domains``: e-mail domains routed to a connection by ``/login``; the directory's
  claim of the same domain lives in ``directory_domains`` (tenants).
- ``sso_login_sessions``: server-side login sessions; the browser holds a random token whose
  SHA-256 is the key, so logging out (deleting the row) makes a copied cookie worthless.
- ``sso_pending_logins``: a verified SAML assertion waiting, for a minute, for the browser that
  started the login to come back with its binding cookie (see ``sso/binding.py``).
- ``sso_consumed_assertions``: assertion IDs already accepted, kept until the assertion expires,
  so a captured Response cannot be replayed.
Rows are written only for authenticated logins, never for anonymous visitors (whose pending
requests live in a signed, encrypted cookie).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from scim_server.db import Base, UTCDateTime, utcnow


class SsoConnection(Base):
    __tablename__ = "sso_connections"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # "saml" | "oidc"
    directory_id: Mapped[int] = mapped_column(ForeignKey("directories.id"), index=True)
    jit: Mapped[bool | None] = mapped_column(Boolean)  # None: on unless the directory has a SCIM key
    attribute_map: Mapped[dict[str, Any]] = mapped_column(JSON)  # field -> IdP attribute / claim name
    allow_idp_initiated: Mapped[bool] = mapped_column(Boolean, default=False)
    saml_entity_id: Mapped[str | None] = mapped_column(String(1000), index=True)
    saml_sso_url: Mapped[str | None] = mapped_column(String(2000))
    saml_slo_url: Mapped[str | None] = mapped_column(String(2000))
    saml_certificates_pem: Mapped[str | None] = mapped_column(Text)  # one or more PEMs (rotation)
    oidc_issuer: Mapped[str | None] = mapped_column(String(2000))
    oidc_client_id: Mapped[str | None] = mapped_column(String(500))
    oidc_client_secret_sealed: Mapped[str | None] = mapped_column(Text)  # encrypted, see sso/sealed.py
    oidc_scopes: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SsoConnectionDomain(Base):
    __tablename__ = "sso_connection_domains"

    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    connection_name: Mapped[str] = mapped_column(
        ForeignKey("sso_connections.name", ondelete="CASCADE"), index=True
    )


class LoginSessionRecord(Base):
    __tablename__ = "sso_login_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 hex of the cookie token
    user_id: Mapped[str] = mapped_column(String(100), index=True)
    email: Mapped[str] = mapped_column(String(320))
    directory: Mapped[str] = mapped_column(String(100))
    connection: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class PendingLoginRecord(Base):
    __tablename__ = "sso_pending_logins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 hex of the handle
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class ConsumedAssertion(Base):
    __tablename__ = "sso_consumed_assertions"

    id: Mapped[str] = mapped_column(String(300), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)

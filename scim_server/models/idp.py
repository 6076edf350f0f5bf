"""Tables owned by the downstream IdP feature (the bridge as the SAML IdP that JSM trusts).

- ``idp_service_provider``: the one registered service provider (Atlassian's customer SSO, or the
  emulator's), single row ``id = 1``; ``jsm-scim sso atlassian`` replaces it.
- ``idp_answered_requests``: AuthnRequest IDs we have answered, kept until the request could no
  longer be fresh, so that a captured AuthnRequest is answered once. A row is written only when a
  signed-in, active customer gets a Response: anonymous visitors write nothing.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from scim_server.db import Base, UTCDateTime, utcnow


class RegisteredServiceProvider(Base):
    __tablename__ = "idp_service_provider"

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(1000))
    acs_url: Mapped[str] = mapped_column(String(2000))
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AnsweredRequest(Base):
    __tablename__ = "idp_answered_requests"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256(SP entity ID, request ID)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)

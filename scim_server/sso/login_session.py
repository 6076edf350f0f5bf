"""The visitor's login session, kept server-side (interface 3: ``idp`` reads ``current_login()``).

The browser's Flask session cookie (HttpOnly, SameSite=Lax, Secure on https; see ``app.py``)
carries only a random token; the database keeps its SHA-256 with who logged in, through which
connection, into which directory, and until when. Logging out deletes the row, so a copied
cookie stops working at once. Rows exist only for completed logins and are purged when expired.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from flask import session
from sqlalchemy import delete

from scim_server.db import transaction, utcnow
from scim_server.models.sso import LoginSessionRecord
from scim_server.services import current_services as services
from scim_server.services import db_session

SESSION_KEY = "sso_sid"
SESSION_LIFETIME = dt.timedelta(hours=8)


@dataclass(frozen=True)
class Login:
    user_id: str
    email: str
    directory: str
    connection: str
    expires_at: dt.datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def start_session(user_id: str, email: str, directory: str, connection: str,
                  idp_limit: dt.datetime | None = None) -> Login:
    """Log the visitor in until 8 hours from now, or the IdP's session limit if sooner."""
    now = utcnow()
    expires_at = min(now + SESSION_LIFETIME, idp_limit) if idp_limit is not None else now + SESSION_LIFETIME
    end_session()  # nothing from before the login survives it
    token = secrets.token_urlsafe(32)
    with transaction(services().session_factory) as db:
        db.execute(delete(LoginSessionRecord).where(LoginSessionRecord.expires_at < now))
        db.add(LoginSessionRecord(id=_digest(token), user_id=user_id, email=email, directory=directory,
                                  connection=connection, created_at=now, expires_at=expires_at))
    session.clear()
    session.permanent = False
    session[SESSION_KEY] = token
    return Login(user_id, email, directory, connection, expires_at)


def current_login() -> Login | None:
    """The visitor's live login, or None (no cookie, unknown or ended session, expired)."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or len(token) > 100:
        return None
    row = db_session().get(LoginSessionRecord, _digest(token))
    if row is None or row.expires_at <= utcnow():
        return None
    return Login(row.user_id, row.email, row.directory, row.connection, row.expires_at)


def end_session() -> None:
    """Forget the visitor's login here and server-side (the token no longer opens anything)."""
    token = session.pop(SESSION_KEY, None)
    if isinstance(token, str) and len(token) <= 100:
        with transaction(services().session_factory) as db:
            db.execute(delete(LoginSessionRecord).where(LoginSessionRecord.id == _digest(token)))

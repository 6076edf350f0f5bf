"""The visitor's login session: a signed Flask session cookie holding who logged in and until when.

The cookie is signed (not encrypted) with the installation secret; it carries only the SCIM user
ID, the e-mail and an expiry. ``app.py`` makes it HttpOnly, SameSite=Lax, and Secure when the
public URL is https.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import session

from scim_server.db import utcnow

SESSION_KEY = "sso_login"
SESSION_LIFETIME = dt.timedelta(hours=8)


@dataclass(frozen=True)
class Login:
    user_id: str
    email: str
    expires_at: dt.datetime


def start_session(user_id: str, email: str, idp_limit: dt.datetime | None = None) -> Login:
    """Log the visitor in until 8 hours from now, or the IdP's SessionNotOnOrAfter if sooner."""
    expires_at = utcnow() + SESSION_LIFETIME
    if idp_limit is not None:
        expires_at = min(expires_at, idp_limit)
    session.clear()  # nothing from before the login survives it
    session.permanent = False
    session[SESSION_KEY] = {"uid": user_id, "email": email, "exp": int(expires_at.timestamp())}
    return Login(user_id, email, expires_at)


def current_login() -> Login | None:
    data = session.get(SESSION_KEY)
    if not isinstance(data, dict):
        return None
    try:
        expires_at = dt.datetime.fromtimestamp(int(data["exp"]), dt.timezone.utc)
        login = Login(str(data["uid"]), str(data["email"]), expires_at)
    except (KeyError, TypeError, ValueError):
        return None
    return login if login.expires_at > utcnow() else None


def end_session() -> None:
    session.pop(SESSION_KEY, None)

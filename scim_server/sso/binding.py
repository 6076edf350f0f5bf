"""Login requests bound to the browser that started them, with no server-side state.

Starting a login (SAML AuthnRequest or OIDC authorization request) adds a ``PendingLogin`` to
the ``jsm_scim_login`` cookie: encrypted and authenticated with the installation secret
(``sso/sealed.py``), HttpOnly, at most ``MAX_PENDING`` entries (one per open tab), each for
``PENDING_TTL``. The answer is accepted only in a browser whose cookie holds the matching
request (SAML InResponseTo, OIDC ``state``), and the entry is removed when used: a request ID
obtained in one browser cannot complete a login in another (login CSRF), and anonymous visitors
write nothing to the database.

SameSite: with an https public URL the cookie is ``SameSite=None; Secure``, so the IdP's
cross-site POST to ``/saml/acs`` carries it. Over plain http (labs) browsers refuse
``SameSite=None`` without ``Secure``, so it is ``Lax``; the ACS then finds no cookie on the
cross-site POST, parks the verified assertion for a minute and redirects the browser (a
top-level GET, which carries Lax cookies) to ``/saml/continue``, where the binding is checked.
The OIDC callback is a top-level GET redirect and always carries it.
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass

from flask import Request, Response

from scim_server.services import Services
from scim_server.sso.sealed import SealBroken, seal, unseal

COOKIE = "jsm_scim_login"
PURPOSE = "login-binding"
PENDING_TTL = 600  # seconds: long enough for an IdP login with MFA
MAX_PENDING = 4
MAX_COOKIE_CHARS = 3800


@dataclass(frozen=True)
class PendingLogin:
    id: str  # SAML AuthnRequest ID or OIDC state
    connection: str
    purpose: str  # "login" | "test"
    target: str | None  # where to go after the login (a checked relative path)
    nonce: str | None = None  # OIDC
    verifier: str | None = None  # OIDC PKCE code_verifier
    expires: int = 0


def new_pending(request_id: str, connection: str, purpose: str, target: str | None,
                nonce: str | None = None, verifier: str | None = None) -> PendingLogin:
    return PendingLogin(request_id, connection, purpose, target, nonce, verifier, int(time.time()) + PENDING_TTL)


def new_state() -> str:
    return secrets.token_urlsafe(32)


def read_pending(services: Services, request: Request) -> list[PendingLogin] | None:
    """The browser's live pending logins; None when it sent no (readable) binding cookie at all."""
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > MAX_COOKIE_CHARS:
        return None
    try:
        entries = json.loads(unseal(services, PURPOSE, raw, PENDING_TTL))
        pending = [PendingLogin(**entry) for entry in entries]
    except (SealBroken, ValueError, TypeError):
        return None
    now = int(time.time())
    return [p for p in pending if p.expires > now]


def find_pending(pending: list[PendingLogin] | None, request_id: str | None) -> PendingLogin | None:
    if not pending or not request_id:
        return None
    return next((p for p in pending if secrets.compare_digest(p.id, request_id)), None)


def write_pending(services: Services, response: Response, pending: list[PendingLogin]) -> None:
    """Store ``pending`` (newest last, at most MAX_PENDING) in the cookie, or delete it when empty."""
    secure = services.settings.effective_public_url.startswith("https://")
    samesite = "None" if secure else "Lax"
    if not pending:
        response.delete_cookie(COOKIE, path="/", secure=secure, httponly=True, samesite=samesite)
        return
    kept = pending[-MAX_PENDING:]
    value = seal(services, PURPOSE, json.dumps([asdict(p) for p in kept]))
    while len(value) > MAX_COOKIE_CHARS and len(kept) > 1:  # browsers keep about 4 KB per cookie
        kept = kept[1:]
        value = seal(services, PURPOSE, json.dumps([asdict(p) for p in kept]))
    response.set_cookie(COOKIE, value, max_age=PENDING_TTL, path="/", secure=secure, httponly=True,
                        samesite=samesite)


def add_pending(services: Services, request: Request, response: Response, entry: PendingLogin) -> None:
    write_pending(services, response, (read_pending(services, request) or []) + [entry])


def remove_pending(services: Services, request: Request, response: Response, request_id: str) -> None:
    remaining = [p for p in read_pending(services, request) or [] if p.id != request_id]
    write_pending(services, response, remaining)

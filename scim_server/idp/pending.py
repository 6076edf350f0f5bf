"""A checked AuthnRequest carried through the login in a signed, short-lived token.

An anonymous visitor's AuthnRequest writes nothing to the database: the checked request travels
in the resume URL, signed (HMAC, itsdangerous) with the installation secret, and expires after
:data:`TOKEN_LIFETIME`. The database is touched only when a signed-in, active customer is
answered: :func:`mark_answered` records the request ID so that it is answered once.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from urllib.parse import urlencode

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scim_server.idp.authn_request import MAX_REQUEST_AGE, PendingRequest, RequestRefused
from scim_server.models.idp import AnsweredRequest
from scim_server.services import Services, installation_secret
from scim_server.sso.response import CLOCK_SKEW

TOKEN_LIFETIME = dt.timedelta(minutes=15)
RESUME_PATH = "/idp/resume"
_SALT = "jsm-scim downstream AuthnRequest"
#: Long enough that a request cannot be both forgotten here and still fresh or carried in a token.
ANSWERED_KEEP = TOKEN_LIFETIME + MAX_REQUEST_AGE + 2 * CLOCK_SKEW


def _serializer(services: Services) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(installation_secret(services), salt=_SALT)


def seal(services: Services, pending: PendingRequest) -> str:
    return _serializer(services).dumps(
        [pending.request_id, pending.sp_entity_id, pending.acs_url, pending.relay_state, pending.login_hint]
    )


def unseal(services: Services, token: str | None) -> PendingRequest:
    """The request sealed in ``token``; :class:`RequestRefused` if forged, altered or expired."""
    if not token or len(token) > 8192:
        raise RequestRefused("no pending sign-in request in the resume link")
    try:
        values = _serializer(services).loads(token, max_age=int(TOKEN_LIFETIME.total_seconds()))
        request_id, entity_id, acs_url, relay_state, login_hint = values
    except BadSignature as exc:  # SignatureExpired is a BadSignature
        raise RequestRefused(f"resume token refused ({type(exc).__name__})") from None
    except (TypeError, ValueError):
        raise RequestRefused("resume token has an unexpected shape") from None
    return PendingRequest(request_id, entity_id, acs_url, relay_state, login_hint)


def resume_path(token: str) -> str:
    """Our own relative resume URL (what ``/login?next=`` gets)."""
    return f"{RESUME_PATH}?{urlencode({'request': token})}"


def _key(pending: PendingRequest) -> str:
    return hashlib.sha256(f"{pending.sp_entity_id}\n{pending.request_id}".encode("utf-8")).hexdigest()


def was_answered(session: Session, pending: PendingRequest, now: dt.datetime) -> bool:
    row = session.get(AnsweredRequest, _key(pending))
    return row is not None and row.expires_at > now


def mark_answered(session: Session, pending: PendingRequest, now: dt.datetime) -> None:
    """Record the answer (atomically: a primary key); :class:`RequestRefused` if it was answered."""
    session.execute(delete(AnsweredRequest).where(AnsweredRequest.expires_at < now))
    try:
        with session.begin_nested():
            session.add(AnsweredRequest(key=_key(pending), expires_at=now + ANSWERED_KEEP))
    except IntegrityError:
        raise RequestRefused("AuthnRequest was already answered (replay)", pending.request_id) from None

"""Bearer-key authentication of SCIM requests.

Successful authentication records ``last_used_at`` (at most once a minute per key) and triggers the
expiry warning check. Those bookkeeping writes run in their own short transaction, so they are
kept even when the request itself only reads or fails, and most requests cause no write at all.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from scim_server import key_cache
from scim_server.db import utcnow
from scim_server.key_expiry import warn_if_expiring, warning_due
from scim_server.keys import hash_token, key_status, looks_like_token
from scim_server.models import ApiKey
from scim_server.scim.errors import ScimError

log = logging.getLogger(__name__)

# last_used_at is written at most this often per key, so reads do not each cost a write.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
REJECTED = "Invalid, expired or revoked API key"


def unauthorized(detail: str) -> ScimError:
    return ScimError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="SCIM"'})


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(session: Session, authorization: str | None, now: dt.datetime | None = None, *,
                 warning_days: int, cache_seconds: float = 0.0) -> ApiKey:
    """The key that the ``Authorization`` header carries; raises a 401 ScimError otherwise.

    ``warning_days`` is the ``key_expiry_warning_days`` setting (when a use warns of expiry). With
    ``cache_seconds`` > 0 a key verified at most that long ago in this process is used without a
    database lookup (``scim_server.key_cache``); it is then returned detached from ``session``.
    """
    token = bearer_token(authorization)
    if token is None or not looks_like_token(token):
        raise unauthorized("Missing bearer token" if token is None else REJECTED)
    digest = hash_token(token)
    key = key_cache.get(digest, cache_seconds)
    cached = key is not None
    if key is None:
        key = session.scalar(select(ApiKey).where(ApiKey.token_hash == digest))
    if key is None:
        raise unauthorized(REJECTED)
    now = now or utcnow()
    status = key_status(key, now)
    if status != "active":
        if cached:
            key_cache.forget(key.id)
        log.info("rejected %s API key %s (%r)", status, key.id, key.name, extra={"key_id": key.id})
        raise unauthorized(REJECTED)
    if not cached and cache_seconds > 0:
        session.expunge(key)
        key_cache.put(digest, key)
    record_use(session, key, now, warning_days)
    return key


def record_use(session: Session, key: ApiKey, now: dt.datetime, warning_days: int) -> None:
    """Update ``last_used_at`` and run the expiry warning check, in a separate short transaction."""
    stale = key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION
    if not stale and not warning_due(key, warning_days, now, used=True):
        return
    try:
        with Session(session.get_bind()) as side, side.begin():
            if stale:
                side.execute(
                    update(ApiKey)
                    .where(ApiKey.id == key.id, or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now))
                    .values(last_used_at=now)
                    .execution_options(synchronize_session=False)
                )
            warn_if_expiring(side, key, warning_days, now, used=True)
    except Exception:  # bookkeeping must never turn a valid request into an error
        log.warning("could not record use of API key %s", key.id, exc_info=True)
        return
    if stale:
        set_committed_value(key, "last_used_at", now)

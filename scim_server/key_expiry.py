"""Keys must not expire silently.

While a key that has been used expires within ``settings.key_expiry_warning_days``, a WARNING is
logged at most once per day per key. The "once" is claimed with a conditional UPDATE of
``last_expiry_warning_at``, so several processes (gunicorn workers, sync workers) never log the
same warning twice. Two triggers share this logic: authentication (a cheap in-memory check on the
key that was just loaded) and ``warn_expiring_keys``, which a periodic task calls.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from scim_server.db import utcnow
from scim_server.models import ApiKey
from scim_server.settings import Settings

log = logging.getLogger(__name__)

WARNING_INTERVAL = dt.timedelta(days=1)


def warning_due(key: ApiKey, warning_days: int, now: dt.datetime, used: bool = False) -> bool:
    """True when ``key`` (used before, or being used now) expires soon and was not warned about today."""
    if key.revoked_at is not None or not (used or key.last_used_at is not None):
        return False
    if not now < key.expires_at <= now + dt.timedelta(days=warning_days):
        return False
    return key.last_expiry_warning_at is None or now - key.last_expiry_warning_at >= WARNING_INTERVAL


def _not_warned_since(moment: dt.datetime):
    """SQL: the key was never warned about, or last warned at or before ``moment``."""
    return or_(ApiKey.last_expiry_warning_at.is_(None), ApiKey.last_expiry_warning_at <= moment)


def claim_warning(session: Session, key_id: str, now: dt.datetime) -> bool:
    """Atomically mark the key as warned today; False when another process already did."""
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, _not_warned_since(now - WARNING_INTERVAL))
        .values(last_expiry_warning_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def log_expiry_warning(key: ApiKey, now: dt.datetime) -> None:
    days = max(0, (key.expires_at - now).days)
    log.warning(
        "API key %s (%r) expires in %d days on %s; it is still in use: rotate it with `jsm-scim keys rotate %s`",
        key.id,
        key.name,
        days,
        key.expires_at.date().isoformat(),
        key.id,
        extra={"key_id": key.id, "expires_at": key.expires_at.isoformat(), "days_left": days},
    )


def warn_if_expiring(session: Session, key: ApiKey, warning_days: int, now: dt.datetime, used: bool = False) -> bool:
    """Log the warning for ``key`` when due and not yet claimed by another process; True if logged."""
    if not warning_due(key, warning_days, now, used) or not claim_warning(session, key.id, now):
        return False
    set_committed_value(key, "last_expiry_warning_at", now)
    log_expiry_warning(key, now)
    return True


def warn_expiring_keys(session: Session, settings: Settings, now: dt.datetime | None = None) -> list[ApiKey]:
    """Periodic check over all keys; returns the keys warned about now. The caller commits."""
    now = now or utcnow()
    candidates = session.scalars(
        select(ApiKey).where(
            ApiKey.revoked_at.is_(None),
            ApiKey.last_used_at.is_not(None),
            ApiKey.expires_at > now,
            ApiKey.expires_at <= now + dt.timedelta(days=settings.key_expiry_warning_days),
            _not_warned_since(now - WARNING_INTERVAL),
        )
    ).all()
    return [key for key in candidates if warn_if_expiring(session, key, settings.key_expiry_warning_days, now)]

"""API key lifecycle: create, verify, list, revoke, rotate.

Tokens are ``jsmscim_`` followed by 43 URL-safe characters (256 random bits). Because they carry
that much entropy, a single SHA-256 digest is a safe verifier (no slow KDF is needed) and lets the
server find the key with one indexed lookup.

A key is bound to one directory for its whole life. Revocation sets ``revoked_at``; rotation issues
a new key in the same directory and sets the old key's ``revoked_at`` to the end of the grace period
(a revocation scheduled in the future), linking old to new through ``rotated_to_id``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from scim_server import key_cache
from scim_server.db import utcnow
from scim_server.models import ApiKey, Directory
from scim_server.store.directories import (  # noqa: F401  (directory helpers keys callers use)
    ensure_directory,
    find_directory,
    validate_directory_name,
)

get_or_create_directory = ensure_directory

TOKEN_PREFIX = "jsmscim_"
TOKEN_RANDOM_BYTES = 32
DISPLAY_PREFIX_CHARS = 6  # random characters shown after TOKEN_PREFIX in listings
DEFAULT_EXPIRY_DAYS = 365
MAX_EXPIRY_DAYS = 5 * 365
DEFAULT_DIRECTORY = "default"
DEFAULT_GRACE_HOURS = 24
MAX_GRACE_HOURS = 30 * 24
MAX_NAME_LENGTH = 200
EXPIRY_WARNING_DAYS = 30  # default of settings.key_expiry_warning_days: listings flag keys this close to the end

_TOKEN_SHAPE = re.compile(r"^jsmscim_[A-Za-z0-9_-]{43}$")


class KeyNotFound(LookupError):
    """No key has the given id."""


class KeyStateError(ValueError):
    """The key is in a state that does not allow the operation (e.g. rotating a revoked key)."""


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    token: str


# --------------------------------------------------------------------------------------------
# Tokens and validation
# --------------------------------------------------------------------------------------------
def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_RANDOM_BYTES)


def looks_like_token(token: str) -> bool:
    """True when ``token`` has the exact shape of a token we issue (cheap pre-check before hashing)."""
    return bool(_TOKEN_SHAPE.match(token))


def validate_key_name(name: str) -> str:
    """A key name is 1..200 printable characters; surrounding whitespace is dropped."""
    cleaned = (name or "").strip()
    if not cleaned:
        raise ValueError("key name must not be empty")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise ValueError(f"key name must be at most {MAX_NAME_LENGTH} characters")
    if not cleaned.isprintable():
        raise ValueError("key name must not contain control characters")
    return cleaned


def _validate_range(value: float, low: float, high: float, what: str) -> None:
    if not low <= value <= high:
        raise ValueError(f"{what} must be between {low:g} and {high:g}")


# --------------------------------------------------------------------------------------------
# Lifecycle
# --------------------------------------------------------------------------------------------
def create_key(
    session: Session,
    name: str,
    directory: str = DEFAULT_DIRECTORY,
    expires_in_days: int = DEFAULT_EXPIRY_DAYS,
    now: dt.datetime | None = None,
) -> IssuedKey:
    """Issue a key; the returned token is the only copy that will ever exist."""
    name = validate_key_name(name)
    _validate_range(expires_in_days, 1, MAX_EXPIRY_DAYS, "expires_in_days")
    now = now or utcnow()
    token = new_token()
    key = ApiKey(
        id=secrets.token_hex(6),
        name=name,
        directory=get_or_create_directory(session, directory),
        token_prefix=token[: len(TOKEN_PREFIX) + DISPLAY_PREFIX_CHARS],
        token_hash=hash_token(token),
        created_at=now,
        expires_at=now + dt.timedelta(days=expires_in_days),
    )
    session.add(key)
    session.flush()
    return IssuedKey(key, token)


def get_key(session: Session, key_id: str) -> ApiKey:
    key = session.get(ApiKey, key_id.strip()) if key_id else None
    if key is None:
        raise KeyNotFound(f"no API key with id {key_id!r}")
    return key


def list_keys(session: Session, directory: str | None = None) -> list[ApiKey]:
    """All keys (optionally of one directory), oldest first."""
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if directory is not None:
        query = query.join(Directory).where(Directory.name == directory)
    return list(session.scalars(query))


def revoke_key(session: Session, key_id: str, now: dt.datetime | None = None) -> ApiKey:
    """Stop the key at once (also ends a running rotation grace period). Idempotent."""
    key = get_key(session, key_id)
    now = now or utcnow()
    if key.revoked_at is None or key.revoked_at > now:
        key.revoked_at = now
    session.flush()
    key_cache.forget_after_commit(session, key.id)
    return key


def rotate_key(
    session: Session,
    key_id: str,
    grace_hours: float = DEFAULT_GRACE_HOURS,
    expires_in_days: int = DEFAULT_EXPIRY_DAYS,
    now: dt.datetime | None = None,
) -> IssuedKey:
    """Issue a successor in the same directory; the old key keeps working for ``grace_hours``."""
    _validate_range(grace_hours, 0, MAX_GRACE_HOURS, "grace_hours")
    now = now or utcnow()
    old = get_key(session, key_id)
    status = key_status(old, now)
    if status != "active":
        raise KeyStateError(f"API key {old.id} is {status} and cannot be rotated")
    if old.rotated_to_id is not None:
        raise KeyStateError(f"API key {old.id} was already rotated to {old.rotated_to_id}")
    issued = create_key(session, old.name, old.directory.name, expires_in_days, now=now)
    old.rotated_to_id = issued.key.id
    old.revoked_at = now + dt.timedelta(hours=grace_hours)
    session.flush()
    key_cache.forget_after_commit(session, old.id)
    return issued


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------
def key_status(key: ApiKey, now: dt.datetime | None = None) -> str:
    """``active``, ``expired`` or ``revoked`` (a key in its rotation grace period is ``active``)."""
    now = now or utcnow()
    if key.revoked_at is not None and key.revoked_at <= now:
        return "revoked"
    if key.expires_at <= now:
        return "expired"
    return "active"


def display_status(key: ApiKey, now: dt.datetime | None = None, warning_days: int = EXPIRY_WARNING_DAYS) -> str:
    """Like ``key_status`` for people: a working key is ``rotating`` (in its rotation grace period),
    ``expiring`` (its expiry is at most ``warning_days`` away) or ``active``."""
    now = now or utcnow()
    status = key_status(key, now)
    if status != "active":
        return status
    if key.revoked_at is not None:
        return "rotating"
    if key.expires_at - now <= dt.timedelta(days=warning_days):
        return "expiring"
    return "active"


def effective_end(key: ApiKey) -> dt.datetime:
    """When the key stops working: its expiry or its scheduled revocation, whichever is first."""
    if key.revoked_at is not None and key.revoked_at < key.expires_at:
        return key.revoked_at
    return key.expires_at


def days_left(key: ApiKey, now: dt.datetime | None = None) -> int:
    """Whole days until the key stops working; 0 once it no longer works."""
    remaining = effective_end(key) - (now or utcnow())
    return max(0, remaining.days)


def describe_key(
    key: ApiKey, now: dt.datetime | None = None, warning_days: int = EXPIRY_WARNING_DAYS
) -> dict[str, object]:
    """Everything an admin may see about a key (never the token or its hash)."""
    now = now or utcnow()

    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": key.id,
        "name": key.name,
        "directory": key.directory.name,
        "token_prefix": key.token_prefix,
        "created": iso(key.created_at),
        "expires": iso(effective_end(key)),  # a rotating key's grace end, not its nominal expiry
        "days_left": days_left(key, now),
        "last_used": iso(key.last_used_at),
        "revoked": iso(key.revoked_at),
        "rotated_to": key.rotated_to_id,
        "status": display_status(key, now, warning_days),
    }


def key_for_token(session: Session, token: str) -> ApiKey | None:
    """The key whose token this is, in whatever state; None for unknown or malformed tokens."""
    if not looks_like_token(token):
        return None
    return session.scalar(select(ApiKey).where(ApiKey.token_hash == hash_token(token)))


def find_valid_key(session: Session, token: str, now: dt.datetime | None = None) -> ApiKey | None:
    """The active key for ``token``, or None when it is unknown, expired or revoked."""
    key = key_for_token(session, token)
    if key is None or key_status(key, now) != "active":
        return None
    return key

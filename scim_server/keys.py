"""API key lifecycle: create, verify, list, revoke, rotate.

Tokens are ``jsmscim_`` followed by 43 URL-safe characters (256 random bits). Because they carry
that much entropy, a single SHA-256 digest is a safe verifier (no slow KDF is needed) and lets the
server find the key with one indexed lookup.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from scim_server.db import utcnow
from scim_server.models import ApiKey, Directory

TOKEN_PREFIX = "jsmscim_"
DEFAULT_EXPIRY_DAYS = 365
DEFAULT_DIRECTORY = "default"


class KeyError_(LookupError):
    """No such key (named to avoid shadowing the builtin)."""


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def get_or_create_directory(session: Session, name: str) -> Directory:
    directory = session.scalar(select(Directory).where(Directory.name == name))
    if directory is None:
        directory = Directory(name=name)
        session.add(directory)
        session.flush()
    return directory


def create_key(
    session: Session,
    name: str,
    directory: str = DEFAULT_DIRECTORY,
    expires_in_days: int = DEFAULT_EXPIRY_DAYS,
    now: dt.datetime | None = None,
) -> IssuedKey:
    """Issue a key; the returned token is the only copy that will ever exist."""
    if expires_in_days < 1:
        raise ValueError("expires_in_days must be at least 1")
    now = now or utcnow()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=secrets.token_hex(6),
        name=name,
        directory_id=get_or_create_directory(session, directory).id,
        token_prefix=token[: len(TOKEN_PREFIX) + 6],
        token_hash=hash_token(token),
        created_at=now,
        expires_at=now + dt.timedelta(days=expires_in_days),
    )
    session.add(key)
    session.flush()
    return IssuedKey(key, token)


def key_status(key: ApiKey, now: dt.datetime | None = None) -> str:
    """``active``, ``expired`` or ``revoked``."""
    now = now or utcnow()
    if key.revoked_at is not None and key.revoked_at <= now:
        return "revoked"
    if key.expires_at <= now:
        return "expired"
    return "active"


def find_valid_key(session: Session, token: str, now: dt.datetime | None = None) -> ApiKey | None:
    """The active key for ``token``, or None when it is unknown, expired or revoked."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.token_hash == hash_token(token)))
    if key is None or key_status(key, now) != "active":
        return None
    return key

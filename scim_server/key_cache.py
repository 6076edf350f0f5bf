"""Verified API keys, remembered for a few seconds per process (``key_cache_seconds``, default 10).

Looking the key up costs a database round trip and ORM loading on every SCIM request, about a
quarter of a request's CPU. An entry is the key as loaded (detached), found by its token's SHA-256
digest, so the token itself is never kept. Its state is re-checked on every use: expiry and a
scheduled revocation (the end of a rotation's grace period) take effect exactly. A revocation by
another process (``jsm-scim keys revoke``) takes effect within ``key_cache_seconds``; in the process
that revokes, at once (``keys.revoke_key``/``rotate_key`` call :func:`forget`, again after commit).
Unknown and rejected tokens are never cached, so guessing cannot fill the cache.
"""
from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

MAX_ENTRIES = 1024  # keys in use at once per process; far more than any deployment has

_lock = threading.Lock()
_entries: dict[str, tuple[float, Any]] = {}  # token digest -> (monotonic time verified, detached ApiKey)


def get(token_digest: str, max_age_seconds: float) -> Any | None:
    """The key verified for this digest at most ``max_age_seconds`` ago, else None."""
    if max_age_seconds <= 0:
        return None
    entry = _entries.get(token_digest)
    if entry is None or time.monotonic() - entry[0] > max_age_seconds:
        return None
    return entry[1]


def put(token_digest: str, key: Any) -> None:
    with _lock:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()  # crude but bounded; a full cache only costs one lookup per key
        _entries[token_digest] = (time.monotonic(), key)


def forget(key_id: str) -> None:
    """Drop the key (revoked or rotated in this process) so its next use reads the database."""
    with _lock:
        for digest in [d for d, (_, key) in _entries.items() if key.id == key_id]:
            del _entries[digest]


def forget_after_commit(session: Session, key_id: str) -> None:
    """:func:`forget` now and once more when ``session`` commits: a request of this process that
    reads the key between the two would otherwise cache the state from before the commit."""
    forget(key_id)
    event.listen(session, "after_commit", lambda _session: forget(key_id), once=True)


def clear() -> None:
    with _lock:
        _entries.clear()

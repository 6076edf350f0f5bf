"""Backoff policy for JSM calls: exponential backoff with full jitter, Retry-After first.

Atlassian's guidance (https://developer.atlassian.com/cloud/jira/platform/rate-limiting/):
any endpoint may answer 429 with ``Retry-After`` (seconds) and ``X-RateLimit-Reset``
(ISO 8601, ``yyyy-MM-ddTHH:mmZ``); retrying earlier fails again with the same or a longer
period. Some transient 5xx (e.g. 503) carry ``Retry-After`` too. Without the header, back
off exponentially with a cap and jitter.

A wait the server asked for (``Retry-After``) is not the call's own backoff: it is bounded by
``max_rate_limit_seconds`` (default 15 minutes), not by ``max_retry_seconds``, so a long
rate-limit pause is waited out instead of failing the call (and the job behind it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

#: HTTP statuses worth retrying; 429 is rate limiting, the rest are transient server faults.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class BackoffPolicy:
    """When to retry and how long to wait; bounded by attempts and by total time."""

    max_attempts: int = 8
    max_retry_seconds: float = 60.0
    base: float = 0.5
    cap: float = 30.0
    max_rate_limit_seconds: float = 900.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Full-jitter delay after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.cap, self.base * (2 ** (attempt - 1)))
        return self.rng.uniform(0, ceiling)

    def next_wait(self, attempt: int, elapsed: float, retry_after: float | None = None,
                  directed: float = 0.0) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up.

        ``retry_after`` is the server's minimum; a little jitter is added on top (never
        subtracted) so that many workers limited together do not return in lockstep.
        ``directed``: seconds of ``elapsed`` already spent waiting as the server asked (not
        counted in ``max_retry_seconds``). Gives up when the attempts are used, when the
        server-directed waits would pass ``max_rate_limit_seconds``, or when our own backoff
        would overrun ``max_retry_seconds``.
        """
        if attempt >= self.max_attempts:
            return None
        if retry_after is not None:
            wait = retry_after + self.rng.uniform(0, self.base)
            return wait if directed + wait <= self.max_rate_limit_seconds else None
        wait = self.backoff(attempt)
        if elapsed - directed + wait > self.max_retry_seconds:
            return None
        return wait


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return _seconds_until(when, now)


def parse_rate_limit_reset(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (ISO 8601, e.g. ``2024-05-01T10:15Z``)."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return _seconds_until(when, now)


def _seconds_until(when: datetime, now: datetime | None) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())

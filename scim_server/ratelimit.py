"""Per-key rate limiting of SCIM requests: a token bucket per API key.

Each bucket holds up to ``rate_limit_burst`` tokens and refills at ``rate_limit_per_key`` tokens per
second; a request takes one token. Buckets live in the process (one limiter per Flask app), so
under gunicorn each worker limits separately: the effective limit per key is at most
``workers x rate``. That is acceptable for protecting the service from a runaway IdP; it is not a
billing-grade quota. A rate of 0 or less disables limiting.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

from flask import current_app

from scim_server import metrics
from scim_server.scim.errors import ScimError
from scim_server.services import services_of

_EXTENSION = "jsm_scim_ratelimiter"
_IDLE_BUCKET_SECONDS = 3600  # forget buckets of keys idle this long (bounded memory)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """Thread-safe token buckets keyed by API key id."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.burst = max(1, int(burst))
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._last_sweep = clock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def try_acquire(self, key_id: str) -> float:
        """Take one token; returns 0.0 on success, else the seconds until a token is available."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        with self._lock:
            self._sweep(now)
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(float(self.burst), now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < _IDLE_BUCKET_SECONDS:
            return
        self._last_sweep = now
        idle = [k for k, b in self._buckets.items() if now - b.updated >= _IDLE_BUCKET_SECONDS]
        for key_id in idle:
            del self._buckets[key_id]


def limiter() -> TokenBucketLimiter:
    """The current app's limiter, built from its settings on first use."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    existing = app.extensions.get(_EXTENSION)
    if existing is None:
        settings = services_of(app).settings
        existing = app.extensions.setdefault(
            _EXTENSION, TokenBucketLimiter(settings.rate_limit_per_key, settings.rate_limit_burst)
        )
    return existing


def too_many_requests(wait_seconds: float) -> ScimError:
    retry_after = max(1, math.ceil(wait_seconds))
    return ScimError(
        429,
        f"Too many requests for this API key; retry after {retry_after} seconds",
        headers={"Retry-After": str(retry_after)},
    )


def check(key_id: str) -> None:
    """Raise ScimError(429, with a Retry-After header) when ``key_id`` exceeds its rate."""
    wait = limiter().try_acquire(key_id)
    if wait > 0:
        metrics.scim_rate_limited_total.inc()
        raise too_many_requests(wait)

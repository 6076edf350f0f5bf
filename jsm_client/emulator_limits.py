"""The emulator's burst rate limit: at most N requests per route (method + path template) per window.

Atlassian applies burst limits per tenant, endpoint and HTTP method ("jira-burst-based",
https://developer.atlassian.com/cloud/jira/platform/rate-limiting/): over the limit a request is
answered 429 with ``Retry-After`` (seconds), ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``,
``X-RateLimit-Reset`` (ISO 8601) and ``RateLimit-Reason``; answers under the limit carry the
``X-RateLimit-*`` headers too. Modelled here as a fixed window per route. Not thread-safe by itself:
the emulator calls it under its lock.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

BURST_REASON = "jira-burst-based"


@dataclass
class _Window:
    started: float
    used: int = 0


@dataclass(frozen=True)
class Verdict:
    """The outcome for one request: allowed or not, and the headers to send."""

    allowed: bool
    headers: dict[str, str]


class BurstLimiter:
    """``limit`` requests per ``window_s`` seconds for each route label."""

    def __init__(self, limit: int, window_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("burst_limit must be >= 1 and burst_window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def admit(self, route: str) -> Verdict:
        now = self._clock()
        window = self._windows.get(route)
        if window is None or now - window.started >= self.window_s:
            window = self._windows[route] = _Window(now)
        left = window.started + self.window_s - now
        reset = (datetime.now(timezone.utc) + timedelta(seconds=left)).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Reset": reset}
        if window.used >= self.limit:
            headers.update({"X-RateLimit-Remaining": "0", "Retry-After": str(max(1, math.ceil(left))),
                            "RateLimit-Reason": BURST_REASON})
            return Verdict(False, headers)
        window.used += 1
        headers["X-RateLimit-Remaining"] = str(self.limit - window.used)
        return Verdict(True, headers)

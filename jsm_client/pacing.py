"""Client-side pacing of JSM calls, shared by every client of one site in a process.

Atlassian's burst limits apply per tenant, endpoint and HTTP method, per second
(https://developer.atlassian.com/cloud/jira/platform/rate-limiting/). A client that only reacts
to 429 hits the limit over and over; one that paces itself rarely does. The :class:`Pacer` spaces
the calls of each route (method + path template) evenly at this process's share of the route's
limit, and learns from every answer:

- ``X-RateLimit-Limit``: the route's limit per window (``window_s``, one second); the process
  sends at most ``limit * headroom / processes`` per window, where ``processes`` is how many
  processes share the site (``set_processes``; the sync worker counts the live workers through
  the database).
- ``X-RateLimit-Remaining: 0`` (not yet refused): the route waits until ``X-RateLimit-Reset``.
- 429: the route pauses for ``Retry-After`` (or until ``X-RateLimit-Reset``) for every thread of
  the process, and its pace is slowed (``backoff_factor``) and recovers with each success. With
  ``RateLimit-Reason`` other than a burst or per-issue limit (a site or quota limit), every route
  of the site pauses.

Pacing waits happen before an attempt and are not part of its deadline (``bounded_http``).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from jsm_client.retry import parse_rate_limit_reset, parse_retry_after

#: ``RateLimit-Reason`` values that concern one route (or one issue); anything else pauses the site.
ROUTE_REASONS = frozenset({"jira-burst-based", "jira-per-issue-on-write"})
MIN_FACTOR = 0.2
RECOVERY_STEP = 0.01
#: The longest pause ``X-RateLimit-Remaining: 0`` alone may impose (its reset may be minute-rounded).
MAX_RESET_WAIT_S = 60.0


@dataclass
class _Route:
    limit: float | None = None  # requests per window, as JSM last said
    next_slot: float = 0.0  # the monotonic time the next request may go
    paused_until: float = 0.0
    factor: float = 1.0  # slowed after a 429, recovers with successes


class Pacer:
    """Per-route pacing for one JSM site; thread-safe, meant to be shared (``pacer_for``)."""

    def __init__(self, *, window_s: float = 1.0, headroom: float = 0.9, rate: float | None = None,
                 clock: Callable[[], float] = time.monotonic, backoff_factor: float = 0.7) -> None:
        self.window_s = window_s
        self.headroom = headroom
        self.rate = rate  # configured requests per window per route (all processes), if any
        self.backoff_factor = backoff_factor
        self._clock = clock
        self._lock = threading.Lock()
        self._routes: dict[str, _Route] = {}
        self._site_paused_until = 0.0
        self._processes = 1

    @property
    def processes(self) -> int:
        return self._processes

    def set_processes(self, count: int) -> None:
        """How many processes share the site's limits (this one included)."""
        with self._lock:
            self._processes = max(1, int(count))

    def reserve(self, route: str) -> float:
        """Take the route's next slot; the seconds to wait before sending (0: at once)."""
        with self._lock:
            now = self._clock()
            state = self._routes.setdefault(route, _Route())
            start = max(now, state.paused_until, self._site_paused_until, state.next_slot)
            interval = self._interval(state)
            state.next_slot = start + interval if interval else start
            return start - now

    def observe(self, route: str, status: int | None, headers: Mapping[str, str]) -> None:
        """Learn from an answer (``status`` None: no answer arrived)."""
        if status is None:
            return
        limit = _number(headers.get("X-RateLimit-Limit"))
        remaining = _number(headers.get("X-RateLimit-Remaining"))
        with self._lock:
            now = self._clock()
            state = self._routes.setdefault(route, _Route())
            if limit is not None and limit > 0:
                state.limit = limit
            if status == 429:
                self._limited(state, now, headers)
            elif status < 400:
                state.factor = min(1.0, state.factor + RECOVERY_STEP)
                if remaining is not None and remaining <= 0:
                    reset = parse_rate_limit_reset(headers.get("X-RateLimit-Reset"))
                    wait = min(reset, MAX_RESET_WAIT_S) if reset else self.window_s
                    state.paused_until = max(state.paused_until, now + wait)

    def _limited(self, state: _Route, now: float, headers: Mapping[str, str]) -> None:
        wait = parse_retry_after(headers.get("Retry-After"))
        if wait is None:
            wait = parse_rate_limit_reset(headers.get("X-RateLimit-Reset"))
        wait = self.window_s if wait is None else wait
        state.factor = max(MIN_FACTOR, state.factor * self.backoff_factor)
        reason = (headers.get("RateLimit-Reason") or "").strip().lower()
        if reason and reason not in ROUTE_REASONS:
            self._site_paused_until = max(self._site_paused_until, now + wait)
        else:
            state.paused_until = max(state.paused_until, now + wait)

    def _interval(self, state: _Route) -> float:
        """Seconds between two requests of this process on the route (0: not paced)."""
        limits = [x for x in (state.limit, self.rate) if x]
        if not limits:
            return 0.0
        per_window = min(limits) * self.headroom * state.factor / self._processes
        return self.window_s / max(per_window, 1e-6)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


_shared: dict[tuple[str, float | None], Pacer] = {}
_shared_lock = threading.Lock()


def pacer_for(base_url: str, rate: float | None = None) -> Pacer:
    """The process-wide pacer of a site: every client (and so every worker thread) shares it."""
    key = (base_url.rstrip("/").lower(), rate)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Pacer(rate=rate)
        return _shared[key]

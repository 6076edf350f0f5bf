"""HTTP exchanges (on ``requests``) with a total deadline and a body size cap.

``requests`` timeouts apply to each socket operation: a server that sends one byte every few
seconds never trips them and holds the caller for as long as it likes. Here every exchange gets
an absolute deadline covering connect, TLS, headers and the whole body. A single watchdog thread
shuts down the sockets of an exchange whose deadline passed, which wakes the blocked read at once;
the exchange then fails with :class:`DeadlineExceeded`. Bodies are read in chunks and abandoned
past ``max_bytes`` (:class:`BodyTooLarge`), after decompression.

Sessions must mount :class:`BoundedAdapter` (see :func:`bounded_session`): its connections report
their sockets to the exchange running in the current thread and can check the connected peer's
address (``peer_check``), which defeats DNS rebinding because the check sees the address the
socket actually connected to.
"""
from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from typing import Any, Callable

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

PeerCheck = Callable[[str], None]  # raises (any OSError subclass is fine) when the address is refused

_CHUNK = 16 * 1024  # small: a compressed chunk cannot inflate to much past the cap
# Per-read socket timeout beyond the deadline: the watchdog ends the exchange first (one error
# type, DeadlineExceeded), the socket timeout only backs it up should the watchdog be starved.
_READ_TIMEOUT_SLACK_S = 1.0


class DeadlineExceeded(requests.Timeout):
    """The exchange did not complete (connect + headers + whole body) within its deadline."""


class BodyTooLarge(requests.RequestException):
    """The response body is larger than the exchange allows."""


class PeerRefused(OSError):
    """The socket connected to an address the exchange does not allow."""


class _Exchange:
    """One bounded exchange: its deadline, peer policy and the sockets it uses."""

    def __init__(self, deadline: float, peer_check: PeerCheck | None) -> None:
        self.deadline = deadline
        self.peer_check = peer_check
        self.expired = False
        self._done = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def track(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.expired:
                _shut(sock)
            else:
                self._sockets.append(sock)

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def finish(self) -> None:
        with self._lock:
            self._done = True
            self._sockets.clear()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


class _Watchdog:
    """One daemon thread expiring exchanges whose deadline passed (earliest first)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Exchange]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, exchange: _Exchange) -> None:
        with self._cond:
            heapq.heappush(self._heap, (exchange.deadline, next(self._order), exchange))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="http-deadlines", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, _, exchange = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            exchange.expire()


_WATCHDOG = _Watchdog()
_current = threading.local()


def _current_exchange() -> _Exchange | None:
    return getattr(_current, "exchange", None)


class _TrackedConnectionMixin:
    """Connections that register their socket with the current exchange and check the peer."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        exchange = _current_exchange()
        if exchange is not None:
            exchange.track(sock)
            if exchange.peer_check is not None:
                try:
                    exchange.peer_check(sock.getpeername()[0])
                except Exception:
                    sock.close()
                    raise
        return sock

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        exchange = _current_exchange()
        if exchange is not None:
            exchange.track(self.sock)  # after TLS: the wrapped socket replaces the raw one

    def request(self, *args: Any, **kwargs: Any) -> None:
        exchange = _current_exchange()
        if exchange is not None:
            exchange.track(self.sock)  # a pooled connection: its socket, possibly TLS-wrapped
        super().request(*args, **kwargs)  # type: ignore[misc]


class _TrackedHTTPConnection(_TrackedConnectionMixin, HTTPConnection):
    pass


class _TrackedHTTPSConnection(_TrackedConnectionMixin, HTTPSConnection):
    pass


class _TrackedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


class BoundedAdapter(HTTPAdapter):
    """An adapter whose connections take part in bounded exchanges (no urllib3 retries)."""

    def __init__(self, pool_size: int = 10) -> None:
        super().__init__(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}


def bounded_session(pool_size: int = 10) -> requests.Session:
    """A session whose http and https exchanges can be bounded by :func:`send`."""
    session = requests.Session()
    adapter = BoundedAdapter(pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    deadline_s: float,
    max_bytes: int,
    peer_check: PeerCheck | None = None,
    **kwargs: Any,
) -> requests.Response:
    """One exchange, finished within ``deadline_s`` seconds, body read (at most ``max_bytes``).

    Redirects are never followed here. The response's ``content`` is loaded. Raises
    :class:`DeadlineExceeded`, :class:`BodyTooLarge` or any other ``requests`` exception.
    """
    if deadline_s <= 0:
        raise DeadlineExceeded(f"no time left for {method} {url.split('?', 1)[0]}")
    exchange = _Exchange(time.monotonic() + deadline_s, peer_check)
    _WATCHDOG.watch(exchange)
    previous, _current.exchange = _current_exchange(), exchange
    try:
        response = session.request(method, url, stream=True, allow_redirects=False,
                                   timeout=(deadline_s, deadline_s + _READ_TIMEOUT_SLACK_S), **kwargs)
        try:
            response._content = _read_capped(response, max_bytes)  # what Response.content would set
        finally:
            response.close()
    except requests.RequestException as exc:
        if exchange.expired and not isinstance(exc, BodyTooLarge):
            raise DeadlineExceeded(f"{method} took longer than {deadline_s:g}s") from exc
        raise
    finally:
        _current.exchange = previous
        expired = exchange.expired
        exchange.finish()
    if expired:  # the shutdown may have looked like a clean end of a body without Content-Length
        raise DeadlineExceeded(f"{method} took longer than {deadline_s:g}s")
    return response


def _read_capped(response: requests.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"response body of {declared} bytes exceeds the {max_bytes}-byte limit")
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_content(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(f"response body exceeds the {max_bytes}-byte limit")
        parts.append(chunk)
    return b"".join(parts)

"""Typed errors raised by :class:`jsm_client.JsmClient`.

Every error carries the HTTP status (``None`` when no response arrived), JSM's own
error text, and the request's method and path (never the query string, which may hold
an e-mail address, and never credentials).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsm_client.models import Customer


class JsmError(Exception):
    """A JSM REST call failed."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.path = path
        self.attempts = attempts

    def __str__(self) -> str:
        where = f"{self.method} {self.path}" if self.method else (self.path or "JSM")
        status = self.status if self.status is not None else "no response"
        return f"{where} -> {status}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class JsmBadRequest(JsmError):
    """400 (or another 4xx without a more specific class): the request was invalid."""


class JsmAuthError(JsmError):
    """401/403: bad credentials or missing permission."""


class JsmNotFound(JsmError):
    """404: the object does not exist."""


class JsmConflict(JsmError):
    """The object already exists (409, or 400 for a duplicate customer e-mail).

    ``existing`` holds the existing customer when the client already looked it up.
    """

    def __init__(self, message: str, *, existing: Customer | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.existing = existing


class JsmRateLimited(JsmError):
    """Gave up after repeated 429 responses (or Retry-After beyond the time budget)."""


class JsmUnavailable(JsmError):
    """Gave up after 5xx responses, timeouts or connection errors."""


_BY_STATUS: dict[int, type[JsmError]] = {
    400: JsmBadRequest,
    401: JsmAuthError,
    403: JsmAuthError,
    404: JsmNotFound,
    409: JsmConflict,
    429: JsmRateLimited,
}


def error_class_for(status: int | None) -> type[JsmError]:
    """The exception class matching an HTTP status (``None``: no response)."""
    if status is None or status >= 500:
        return JsmUnavailable
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return JsmBadRequest if 400 <= status < 500 else JsmError

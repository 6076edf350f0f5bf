"""Structured logging: request IDs, an access log line per request, and redaction of secrets.

``configure_logging(settings)`` installs one handler on the root logger (plain text, or JSON lines
when ``settings.log_json``). Every record carries ``request_id`` (``-`` outside a request). The
redaction filter removes bearer tokens, ``jsmscim_`` tokens, Authorization values, API token
values and the configured secrets from every message, and the formatters redact tracebacks too.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from typing import IO, Iterable

from flask import Flask, Response, g, request

from scim_server.settings import Settings

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_HANDLER_MARK = "_jsm_scim_handler"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
REDACTED = "[REDACTED]"

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
access_log = logging.getLogger("jsm_scim.access")

_SECRET_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"jsmscim_[A-Za-z0-9_-]+"), "jsmscim_" + REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\"',}\s][^\"',}]*"), r"\1" + REDACTED),
    (
        re.compile(r"(?i)((?:api[_-]?token|password|secret(?:_key)?|access[_-]?token)[\"']?\s*[:=]\s*[\"']?)[^\"',}\s&]+"),
        r"\1" + REDACTED,
    ),
]


# Every pattern above needs one of these words: a line without any (an access line, most messages)
# costs one scan instead of one per pattern.
_TRIGGER = re.compile(r"(?i)jsmscim_|bearer|basic|authorization|token|password|secret")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every token-like value and every given secret replaced by ``[REDACTED]``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    if _TRIGGER.search(text) is None:
        return text
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactionFilter(logging.Filter):
    """Rewrites each record's message so secrets never reach a handler's output."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw template
            message = str(record.msg)
        redacted = redact(message, self.secrets)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        return True


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class RedactingTextFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__(TEXT_FORMAT)
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


# Attributes every LogRecord has; anything else was passed through ``extra=`` and is emitted in JSON.
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, extras, exception."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage(), self.secrets),
            "request_id": getattr(record, "request_id", request_id_var.get()),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRS and not name.startswith("_"):
                entry[name] = redact(value, self.secrets) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info), self.secrets)
        # Redacted value by value, before encoding: a pattern run over the encoded line could eat an
        # escaped quote and leave a line that is no JSON.
        return json.dumps(entry, default=str)


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Install (or replace) our handler on the root logger; idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    # Values this short would redact ordinary words; real tokens and generated keys are far longer.
    secrets = [s for s in (settings.jsm_api_token, settings.secret_key) if s and len(s) >= 8]
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactionFilter(secrets))
    handler.setFormatter(JsonFormatter(secrets) if settings.log_json else RedactingTextFormatter(secrets))
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # alembic narrates every start-up migration check at INFO; keep that for DEBUG only
    logging.getLogger("alembic").setLevel(logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING)
    return handler


# --------------------------------------------------------------------------------------------
# Per-request: request ID and access log
# --------------------------------------------------------------------------------------------
def incoming_request_id(value: str | None) -> str:
    """The caller's request ID when it is short and harmless, else a fresh one."""
    if value and _SANE_REQUEST_ID.match(value):
        return value
    return uuid.uuid4().hex


def install_request_logging(app: Flask) -> None:
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.teardown_request(_forget_request_id)


def _start_request() -> None:
    g.request_started = time.perf_counter()
    g.request_id = incoming_request_id(request.headers.get(REQUEST_ID_HEADER))
    g.request_id_token = request_id_var.set(g.request_id)


def _finish_request(response: Response) -> Response:
    request_id = g.get("request_id") or incoming_request_id(None)
    response.headers[REQUEST_ID_HEADER] = request_id
    if not access_log.isEnabledFor(logging.INFO):
        return response
    started = g.get("request_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
    key = g.get("api_key")
    access_log.info(
        "%s %s %s %sms",
        request.method,
        request.path,
        response.status_code,
        duration_ms,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": duration_ms,
            "key_id": getattr(key, "id", None),
            "remote_addr": request.remote_addr,
        },
    )
    return response


def _forget_request_id(_exc: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        try:
            request_id_var.reset(token)
        except ValueError:  # set in another context (should not happen); fall back to clearing
            request_id_var.set("-")

"""Structured logging: redaction of secrets, JSON lines, request IDs in every line."""
from __future__ import annotations

import io
import json
import logging

import pytest

from scim_server.app import create_app
from scim_server.logging_setup import RedactionFilter, configure_logging, redact
from scim_server.services import services_of
from scim_server.settings import Settings

TOKEN = "jsmscim_" + "Q" * 20 + "secretpart" + "z" * 13


@pytest.fixture
def captured():
    """Our handler writing to a buffer; restored to stderr afterwards."""
    stream = io.StringIO()

    def configure(**overrides):
        settings = Settings(**{"jsm_api_token": "atl-api-token-VALUE-123", "secret_key": "flask-secret-key-xyz", **overrides})
        configure_logging(settings, stream=stream)
        return stream

    yield configure
    configure_logging(Settings())


@pytest.mark.parametrize(
    "message",
    [
        f"token is {TOKEN}",
        f"Authorization: Bearer {TOKEN}",
        f"headers={{'Authorization': 'Bearer {TOKEN}'}}",
        "auth Basic dXNlckBleGFtcGxlLmNvbTpzZWNyZXRwYXJ0",
        '{"api_token": "secretpart-1234"}',
        "api_token=secretpart-1234&x=1",
        "password: secretpart",
    ],
)
def test_redact_known_shapes(message):
    assert "secretpart" not in redact(message)
    assert "dXNlckBleGFtcGxlLmNvbTpzZWNyZXRwYXJ0" not in redact(message)


def test_redact_keeps_ordinary_text():
    assert redact("created API key 1a2b3c for directory okta") == "created API key 1a2b3c for directory okta"


def test_filter_redacts_message_and_arguments(captured):
    stream = captured()
    log = logging.getLogger("tests.redaction")
    log.warning("leaked %s and %s", TOKEN, "atl-api-token-VALUE-123")
    log.error("configured secret flask-secret-key-xyz in a message")
    try:
        raise RuntimeError(f"boom with {TOKEN}")
    except RuntimeError:
        log.exception("failure")
    output = stream.getvalue()
    assert "secretpart" not in output
    assert "atl-api-token-VALUE-123" not in output
    assert "flask-secret-key-xyz" not in output
    assert "[REDACTED]" in output and "leaked" in output and "boom with" in output


def test_filter_on_any_handler():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "Bearer %s", (TOKEN,), None)
    assert RedactionFilter().filter(record) is True
    assert "secretpart" not in record.getMessage()


def test_json_lines_with_request_id(captured, settings):
    stream = captured(log_json=True)
    app = create_app(settings.with_overrides(log_json=True), migrate=False)
    configure_logging(settings.with_overrides(log_json=True), stream=stream)  # create_app re-installed stderr
    try:
        app.test_client().get("/healthz", headers={"X-Request-ID": "json-req-1", "Authorization": f"Bearer {TOKEN}"})
    finally:
        services_of(app).engine.dispose()
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "jsm_scim.access"]
    assert len(access) == 1
    assert access[0]["request_id"] == "json-req-1"
    assert access[0]["status"] == 200 and access[0]["path"] == "/healthz"
    assert {"ts", "level", "message"} <= set(access[0])
    assert "secretpart" not in stream.getvalue()


def test_text_lines_have_request_id(captured, settings):
    app = create_app(settings, migrate=False)
    stream = captured()
    try:
        app.test_client().get("/healthz", headers={"X-Request-ID": "text-req-9"})
    finally:
        services_of(app).engine.dispose()
    line = next(entry for entry in stream.getvalue().splitlines() if "jsm_scim.access" in entry)
    assert "[text-req-9]" in line and "GET /healthz 200" in line


def test_configure_logging_is_idempotent(captured):
    captured()
    captured()
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_jsm_scim_handler", False)]
    assert len(ours) == 1

"""A JSM site that misbehaves: drip-fed answers, huge bodies, redirects, plain http.

Every case runs against a real socket server (tests.fixtures.hostile_http) and checks that the call
ends within its total deadline, reads no more than the cap and never follows a redirect.
"""
from __future__ import annotations

import logging
import time

import pytest

from jsm_client import JsmClient, JsmError, JsmUnavailable
from tests.fixtures.hostile_http import drip, endless_body, fixed, headers_then_drip, hostile_server

FAST = {"backoff_base": 0.01, "backoff_cap": 0.02}
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"


def _client(url: str, **options) -> JsmClient:
    return JsmClient(url, "bot@example.com", "secret-token", **{**FAST, **options})


@pytest.mark.parametrize("reply", [
    pytest.param(headers_then_drip(200, every_s=0.2), id="body-dripped"),
    pytest.param(drip(HEAD, every_s=0.2), id="status-line-dripped"),
])
def test_drip_fed_answer_fails_within_the_call_deadline(reply, caplog):
    caplog.set_level(logging.WARNING, logger="jsm_client")
    with hostile_server(reply) as server, _client(server.url, timeout=0.6, max_retry_seconds=1.5,
                                                   max_attempts=5) as client:
        started = time.monotonic()
        with pytest.raises(JsmUnavailable) as info:
            client.get_organization("1")
        elapsed = time.monotonic() - started

    # Each byte came well within any per-read timeout; the total deadline still ended the call.
    assert "DeadlineExceeded" in info.value.message
    assert elapsed < 1.5 + 1.0
    assert len(server.requests) >= 2  # retried, visibly:
    assert any("DeadlineExceeded" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_one_attempt_cannot_outlast_the_call_budget():
    """timeout 30 s per attempt, but 1 s for the whole call: the call ends after about 1 s."""
    with hostile_server(headers_then_drip(500, every_s=0.1)) as server, \
            _client(server.url, timeout=30, max_retry_seconds=1.0) as client:
        started = time.monotonic()
        with pytest.raises(JsmUnavailable):
            client.iter_service_desks().__next__()
        assert time.monotonic() - started < 2.0


def test_huge_body_is_abandoned_at_the_cap_and_not_retried():
    with hostile_server(endless_body()) as server, _client(server.url, max_body_bytes=1_000_000) as client:
        with pytest.raises(JsmError) as info:
            client.get_organization("1")

    assert "BodyTooLarge" in info.value.message
    assert len(server.requests) == 1


def test_declared_huge_body_is_refused_before_reading():
    reply = fixed("200 OK", {"Content-Type": "application/json"}, b'{"values": [], "isLastPage": true}')
    lying = fixed("200 OK", {"Content-Type": "application/json"}, b"[" + b" " * 2_000_000 + b"]")
    with hostile_server(lying) as server, _client(server.url, max_body_bytes=1_000_000) as client:
        with pytest.raises(JsmError, match="exceeds the 1000000-byte limit"):
            client.get_organization("1")
    with hostile_server(reply) as server, _client(server.url, max_body_bytes=1_000_000) as client:
        assert list(client.iter_organizations()) == []


@pytest.mark.parametrize("status", ["301 Moved Permanently", "302 Found", "307 Temporary Redirect"])
def test_redirect_is_never_followed(status):
    """A POST carrying an e-mail must not be replayed (or turned into a GET) towards another host."""
    with hostile_server(fixed("201 Created", {"Content-Type": "application/json"}, b'{"accountId":"x"}')) as other:
        redirect = fixed(status, {"Location": f"{other.url}/steal"})
        with hostile_server(redirect) as server, _client(server.url) as client:
            with pytest.raises(JsmError, match="redirect .*not followed") as info:
                client.create_customer("ada@acme.com", "Ada")

    assert info.value.status == int(status.split()[0])
    assert other.requests == []
    assert len(server.requests) == 1


@pytest.mark.parametrize("url", ["http://acme.atlassian.net", "http://10.0.0.5:8080", "ftp://acme.atlassian.net",
                                 "https://"])
def test_site_must_be_https_unless_loopback(url):
    with pytest.raises(ValueError, match="https"):
        _client(url)


@pytest.mark.parametrize("url", ["https://acme.atlassian.net", "http://127.0.0.1:8080", "http://localhost:1",
                                 "http://[::1]:8080"])
def test_https_sites_and_the_loopback_emulator_are_accepted(url):
    _client(url).close()


def test_http_elsewhere_only_when_allowed_explicitly():
    _client("http://emulator.internal:8080", allow_http=True).close()


def test_a_healthy_answer_still_works_through_the_bounded_transport(jsm_client):
    org = jsm_client.create_organization("Bounded")
    assert jsm_client.get_organization(org.id).name == "Bounded"

"""Every retry path of the client, with the number of attempts asserted."""

from __future__ import annotations

import base64
import logging
import socket
import struct
import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Callable, Iterator

import pytest

from jsm_client import JsmAuthError, JsmConflict, JsmRateLimited, JsmUnavailable
from jsm_client.emulator import EmulatorServer, JsmEmulator
from tests.fixtures.emulator import TEST_EMAIL, TEST_TOKEN
from tests.fixtures.server import serve_wsgi

CREATE_ORG = "POST /rest/servicedeskapi/organization"


class SleepRecorder:
    """Injected ``sleep``: records waits without sleeping and can run an action on each."""

    def __init__(self, on_sleep: Callable[[float], None] | None = None) -> None:
        self.waits: list[float] = []
        self._on_sleep = on_sleep

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self._on_sleep is not None:
            self._on_sleep(seconds)


def _clear_faults(emulator: JsmEmulator) -> Callable[[float], None]:
    return lambda _seconds: emulator.set_faults()


# ----------------------------------------------------------------------- 429


def test_429_waits_retry_after_then_succeeds(jsm_emulator, jsm_client_factory, jsm_calls, caplog):
    emulator = jsm_emulator.emulator
    emulator.set_faults(rate_limit_every=1, retry_after_s=7)
    sleep = SleepRecorder(_clear_faults(emulator))
    client = jsm_client_factory(sleep=sleep, backoff_base=0.01, max_retry_seconds=60)

    with caplog.at_level(logging.WARNING, logger="jsm_client"):
        org = client.create_organization("Acme")

    assert org.name == "Acme"
    assert jsm_calls.statuses(CREATE_ORG) == [429, 201]
    assert len(sleep.waits) == 1 and 7 <= sleep.waits[0] <= 7.01
    assert emulator.stats_dict()["by_route"][CREATE_ORG] == 2
    (record,) = [r for r in caplog.records if r.name == "jsm_client"]
    assert record.levelno == logging.WARNING
    assert CREATE_ORG in record.getMessage() and "429" in record.getMessage()
    assert "attempt 1/" in record.getMessage()


def test_429_retry_after_as_http_date(jsm_client_factory, jsm_calls):
    answered: list[int] = []

    def limited_once(environ, start_response):
        if not answered:
            answered.append(429)
            when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=3), usegmt=True)
            start_response("429 Too Many Requests", [("Retry-After", when), ("Content-Type", "application/json")])
            return [b'{"errorMessage": "Rate limit exceeded."}']
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"id": "5", "name": "Acme"}']

    sleep = SleepRecorder()
    with serve_wsgi(limited_once) as url:
        client = jsm_client_factory(base_url=url, sleep=sleep)
        assert client.get_organization("5").name == "Acme"

    assert len(sleep.waits) == 1 and 1.5 <= sleep.waits[0] <= 3.5
    assert jsm_calls.statuses() == [429, 200]


def test_429_gives_up_after_max_attempts(jsm_emulator, jsm_client_factory, jsm_calls):
    jsm_emulator.emulator.set_faults(rate_limit_every=1, retry_after_s=0)
    sleep = SleepRecorder()
    client = jsm_client_factory(sleep=sleep, max_attempts=3)

    with pytest.raises(JsmRateLimited) as info:
        client.create_organization("Acme")

    assert info.value.status == 429
    assert info.value.attempts == 3
    assert "gave up after 3 attempts" in str(info.value)
    assert jsm_calls.statuses(CREATE_ORG) == [429, 429, 429]
    assert len(sleep.waits) == 2
    assert jsm_emulator.emulator.state_dict()["organizations"] == []  # faulted requests change nothing


def test_long_retry_after_is_waited_out_beyond_the_call_budget(jsm_emulator, jsm_client_factory, jsm_calls):
    """A 120 s Retry-After exceeds the call's own 60 s budget: the client waits instead of failing."""
    emulator = jsm_emulator.emulator
    emulator.set_faults(rate_limit_every=1, retry_after_s=120)
    sleep = SleepRecorder(_clear_faults(emulator))
    client = jsm_client_factory(sleep=sleep, max_retry_seconds=60, backoff_base=0.01)

    assert client.create_organization("Acme").name == "Acme"

    assert len(sleep.waits) == 1 and 120 <= sleep.waits[0] <= 120.01
    assert jsm_calls.statuses() == [429, 201]


def test_retry_after_beyond_the_rate_limit_budget_gives_up_at_once(jsm_emulator, jsm_client_factory, jsm_calls):
    jsm_emulator.emulator.set_faults(rate_limit_every=1, retry_after_s=120)
    sleep = SleepRecorder()
    client = jsm_client_factory(sleep=sleep, max_retry_seconds=60, max_rate_limit_seconds=100)

    with pytest.raises(JsmRateLimited):
        client.create_organization("Acme")

    assert sleep.waits == []
    assert jsm_calls.statuses() == [429]


def test_backoff_stops_at_the_time_budget(jsm_emulator, jsm_client_factory, jsm_calls):
    """With a fake clock advanced only by the waits, their sum never exceeds the budget."""
    jsm_emulator.emulator.set_faults(error_every=1)
    now = [0.0]

    def advance(seconds: float) -> None:
        now[0] += seconds

    sleep = SleepRecorder(advance)
    client = jsm_client_factory(sleep=sleep, clock=lambda: now[0], max_attempts=1000,
                             backoff_base=0.4, backoff_cap=0.4, max_retry_seconds=2.0)

    with pytest.raises(JsmUnavailable):
        client.get_organization("1")

    assert sum(sleep.waits) <= 2.0
    assert len(jsm_calls.calls) == len(sleep.waits) + 1 < 1000


# ----------------------------------------------------------------------- 5xx


def test_503_backs_off_then_succeeds(jsm_emulator, jsm_client_factory, jsm_calls):
    emulator = jsm_emulator.emulator
    emulator.set_faults(error_every=1)
    sleep = SleepRecorder(_clear_faults(emulator))
    client = jsm_client_factory(sleep=sleep, backoff_base=0.2)

    assert len(list(client.iter_service_desks())) == 2
    assert jsm_calls.statuses() == [503, 200]
    assert len(sleep.waits) == 1 and 0 <= sleep.waits[0] <= 0.2  # full jitter in [0, base]


def test_503_with_retry_after_is_honoured(jsm_emulator, jsm_client_factory):
    emulator = jsm_emulator.emulator
    emulator.set_faults(error_every=1, error_retry_after_s=3)
    sleep = SleepRecorder(_clear_faults(emulator))
    client = jsm_client_factory(sleep=sleep)

    client.create_organization("Acme")

    assert len(sleep.waits) == 1 and sleep.waits[0] >= 3


def test_503_gives_up_with_exponential_backoff(jsm_emulator, jsm_client_factory, jsm_calls):
    jsm_emulator.emulator.set_faults(error_every=1)
    sleep = SleepRecorder()
    client = jsm_client_factory(sleep=sleep, max_attempts=5, backoff_base=0.01, backoff_cap=0.03)

    with pytest.raises(JsmUnavailable) as info:
        client.add_organization_users("1", ["qm:x:1"])

    assert info.value.status == 503 and info.value.attempts == 5
    assert jsm_calls.statuses() == [503] * 5
    ceilings = [0.01, 0.02, 0.03, 0.03]  # base * 2**(n-1), capped
    assert len(sleep.waits) == 4
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(sleep.waits, ceilings, strict=True))


def test_every_nth_request_fault_is_absorbed(jsm_emulator, jsm_client_factory, jsm_calls):
    jsm_emulator.emulator.set_faults(rate_limit_every=4, retry_after_s=0, error_every=5)
    client = jsm_client_factory()

    for i in range(12):
        client.create_organization(f"Org {i}")

    assert len(jsm_emulator.emulator.state_dict()["organizations"]) == 12
    statuses = jsm_calls.statuses(CREATE_ORG)
    assert statuses.count(201) == 12 and {429, 503} <= set(statuses)


# ---------------------------------------------------------- timeouts, sockets


def test_read_timeout_is_retried(jsm_emulator, jsm_client_factory, jsm_calls):
    emulator = jsm_emulator.emulator
    emulator.set_faults(latency_ms=400)
    sleep = SleepRecorder(_clear_faults(emulator))
    client = jsm_client_factory(sleep=sleep, timeout=0.1)

    org = client.create_organization("Acme")  # idempotent by name, so the late first attempt is harmless

    assert org.name == "Acme"
    assert jsm_calls.statuses(CREATE_ORG) == [None, 201]


def test_read_timeouts_give_up_as_unavailable(jsm_emulator, jsm_client_factory, jsm_calls):
    jsm_emulator.emulator.set_faults(latency_ms=300)
    client = jsm_client_factory(timeout=0.05, max_attempts=2)

    with pytest.raises(JsmUnavailable) as info:
        client.get_organization("1")

    assert info.value.status is None
    assert "DeadlineExceeded" in info.value.message
    assert jsm_calls.statuses() == [None, None]


def test_create_customer_retried_after_timeout_conflicts_and_ensure_resolves(jsm_emulator, jsm_client_factory):
    """The timed-out first attempt still creates the account; the retry meets a 409."""
    emulator = jsm_emulator.emulator
    emulator.set_faults(latency_ms=300)

    def let_first_attempt_finish(_seconds: float) -> None:
        emulator.set_faults()
        threading.Event().wait(0.45)

    client = jsm_client_factory(sleep=SleepRecorder(let_first_attempt_finish), timeout=0.1)
    with pytest.raises(JsmConflict):
        client.create_customer("erin@example.com", "Erin")

    customer, created = client.ensure_customer("erin@example.com", "Erin")
    assert created is False and customer.email == "erin@example.com"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_gives_up_as_unavailable(jsm_client_factory, jsm_calls):
    sleep = SleepRecorder()
    client = jsm_client_factory(base_url=f"http://127.0.0.1:{_closed_port()}", sleep=sleep, max_attempts=3)

    with pytest.raises(JsmUnavailable) as info:
        list(client.iter_organizations())

    assert info.value.status is None and info.value.attempts == 3
    assert jsm_calls.statuses() == [None, None, None]
    assert len(sleep.waits) == 2


@pytest.fixture
def resetting_server() -> Iterator[tuple[str, list[int]]]:
    """A socket server that accepts and resets every connection at once."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    accepted: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(1)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join(2)
        listener.close()


def test_connection_reset_is_retried_then_gives_up(resetting_server, jsm_client_factory, jsm_calls):
    url, accepted = resetting_server
    client = jsm_client_factory(base_url=url, max_attempts=4, sleep=SleepRecorder())

    with pytest.raises(JsmUnavailable) as info:
        client.create_organization("Acme")

    assert info.value.attempts == 4
    assert jsm_calls.statuses() == [None] * 4
    assert len(accepted) == 4


# -------------------------------------------------------------------- secrets


SECRET = "s3cr3t-API-token-ZZZ"


def _secret_forms() -> list[str]:
    return [SECRET, base64.b64encode(f"{TEST_EMAIL}:{SECRET}".encode()).decode()]


def _assert_no_secret(text: str) -> None:
    for secret in _secret_forms():
        assert secret not in text


def test_auth_error_carries_no_secret(jsm_client_factory):
    emulator = JsmEmulator(expected_email=TEST_EMAIL, expected_token=TEST_TOKEN)
    with EmulatorServer(emulator=emulator) as server:
        client = jsm_client_factory(base_url=server.url, api_token=SECRET)
        with pytest.raises(JsmAuthError) as info:
            client.get_organization("1")
        good = jsm_client_factory(base_url=server.url)
        assert len(list(good.iter_service_desks())) == 2

    err = info.value
    assert err.status == 401
    for text in (str(err), repr(err), err.message, str(err.args), repr(client)):
        _assert_no_secret(text)


def test_secret_echoed_by_server_is_redacted_everywhere(jsm_client_factory, caplog):
    """Even a server that echoes the credentials back never gets them into errors or logs."""
    def echo_auth(environ, start_response):
        header = environ.get("HTTP_AUTHORIZATION", "")
        start_response("503 Service Unavailable", [("Content-Type", "application/json")])
        return [f'{{"errorMessage": "bad header {header} token {SECRET}"}}'.encode()]

    with caplog.at_level(logging.DEBUG), serve_wsgi(echo_auth) as url:
        client = jsm_client_factory(base_url=url, api_token=SECRET, max_attempts=2)
        with pytest.raises(JsmUnavailable) as info:
            client.get_organization("1")

    assert "***" in info.value.message
    _assert_no_secret(str(info.value))
    _assert_no_secret(caplog.text)
    assert any(r.levelno == logging.WARNING and r.name == "jsm_client" for r in caplog.records)

"""Burst limits: the emulator enforces them with JSM's headers; the client paces itself within them."""
from __future__ import annotations

import threading
import time

import pytest
import requests

from jsm_client import JsmClient
from jsm_client.pacing import Pacer
from tests.fixtures.emulator import FAST_CLIENT_SETTINGS, TEST_EMAIL, TEST_TOKEN
from tests.fixtures.server import serve_wsgi

AUTH = (TEST_EMAIL, TEST_TOKEN)
ORGS = "/rest/servicedeskapi/organization"
DESKS = "/rest/servicedeskapi/servicedesk"


def test_emulator_burst_limit_per_route_with_jsm_headers(jsm_emulator):
    url = jsm_emulator.url
    requests.post(f"{url}/_emulator/faults", json={"burst_limit": 3, "burst_window_s": 30}, timeout=5).raise_for_status()
    answers = [requests.get(f"{url}{ORGS}", auth=AUTH, timeout=5) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["X-RateLimit-Limit"] == "3" for a in answers)
    limited = answers[-1]
    assert 1 <= int(limited.headers["Retry-After"]) <= 30
    assert limited.headers["RateLimit-Reason"] == "jira-burst-based"
    assert limited.json()["errorMessage"] == "Rate limit exceeded."
    assert requests.get(f"{url}{DESKS}", auth=AUTH, timeout=5).status_code == 200  # another route: own budget
    # A refused create changes nothing; the stats count every answer, 429s apart too.
    for _ in range(3):
        requests.post(f"{url}{ORGS}", json={"name": "Acme"}, auth=AUTH, timeout=5)
    assert requests.post(f"{url}{ORGS}", json={"name": "Other"}, auth=AUTH, timeout=5).status_code == 429
    assert [o["name"] for o in jsm_emulator.emulator.state_dict()["organizations"]] == ["Acme"]
    stats = requests.get(f"{url}/_emulator/stats", timeout=5).json()
    assert stats["rate_limited"] == 2 and stats["by_route"][f"GET {ORGS}"] == 4
    # {} clears the limit, as every fault.
    requests.post(f"{url}/_emulator/faults", json={}, timeout=5).raise_for_status()
    assert "X-RateLimit-Limit" not in requests.get(f"{url}{ORGS}", auth=AUTH, timeout=5).headers
    assert requests.post(f"{url}/_emulator/faults", json={"burst_limit": 2, "burst_window_s": 0},
                         timeout=5).status_code == 400


def _burst(client: JsmClient, calls: int, threads: int) -> None:
    def work(n: int) -> None:
        for _ in range(n):
            list(client.iter_service_desks())

    pool = [threading.Thread(target=work, args=(calls // threads,)) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def test_client_paces_itself_within_the_limit_it_learns(jsm_emulator, jsm_client_factory, jsm_calls):
    """10 requests per 0.25 s: 60 calls from 4 threads finish with (almost) no 429, not in one burst."""
    jsm_emulator.emulator.set_faults(burst_limit=10, burst_window_s=0.25)
    client = jsm_client_factory(pacer=Pacer(window_s=0.25))
    started = time.monotonic()
    _burst(client, 60, 4)
    elapsed = time.monotonic() - started

    statuses = jsm_calls.statuses()
    assert statuses.count(200) == 60
    assert statuses.count(429) <= 4  # only the threads' first calls, sent before the limit was learnt
    assert elapsed >= 60 / 10 * 0.25 * 0.8  # spread over the windows, not sent at once


def test_unpaced_burst_is_refused_often(jsm_emulator, jsm_client_factory, jsm_calls):
    """The control: without a known limit (no pacing, X-RateLimit headers ignored) the same burst is
    refused many times, so the previous test measures the pacer, not a lenient emulator."""
    jsm_emulator.emulator.set_faults(burst_limit=10, burst_window_s=0.25)

    class Blind(Pacer):
        def observe(self, route, status, headers):  # forgets every limit
            return None

    client = jsm_client_factory(pacer=Blind(window_s=0.25))
    _burst(client, 60, 4)
    assert jsm_calls.statuses().count(429) >= 10


def test_processes_share_the_limit(jsm_emulator, jsm_calls):
    """Two "processes" (two pacers, each told there are two) together stay within one limit."""
    jsm_emulator.emulator.set_faults(burst_limit=10, burst_window_s=0.25)
    clients = []
    for _ in range(2):
        pacer = Pacer(window_s=0.25, rate=10)
        pacer.set_processes(2)
        clients.append(JsmClient(jsm_emulator.url, TEST_EMAIL, TEST_TOKEN, on_call=jsm_calls, pacer=pacer,
                                 **FAST_CLIENT_SETTINGS))
    pool = [threading.Thread(target=_burst, args=(client, 40, 2)) for client in clients]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    for client in clients:
        client.close()
    assert jsm_calls.statuses().count(200) == 80
    assert jsm_calls.statuses().count(429) == 0


def test_a_site_wide_limit_pauses_every_route_and_retry_after_wins(jsm_client_factory, jsm_calls):
    answered: list[str] = []

    def site(environ, start_response):
        answered.append(environ["PATH_INFO"])
        if len(answered) == 1:
            start_response("429 Too Many Requests", [("Retry-After", "2"), ("RateLimit-Reason", "jira-quota-global-based"),
                                                      ("Content-Type", "application/json")])
            return [b'{"errorMessage": "Rate limit exceeded."}']
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"id": "5", "name": "Acme"}']

    waits: list[float] = []
    pacer = Pacer()
    with serve_wsgi(site) as url:
        client = jsm_client_factory(base_url=url, sleep=waits.append, pacer=pacer)
        assert client.get_organization("5").name == "Acme"
        assert len(waits) == 1 and 2 <= waits[0] <= 2.1  # the retry waited Retry-After once
        other = pacer.reserve("GET /rest/servicedeskapi/servicedesk")
    assert 1.5 <= other <= 2.1  # another route waits too: the reason was not a burst limit


def test_remaining_zero_waits_for_the_reset():
    pacer = Pacer()
    route = "POST /rest/servicedeskapi/customer"
    pacer.observe(route, 201, {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0"})
    assert 0.9 <= pacer.reserve(route) <= 1.0  # no parsable reset: one window
    assert pacer.reserve("GET /rest/servicedeskapi/organization") == 0


@pytest.mark.parametrize("processes, interval", [(1, 1 / 90), (3, 3 / 90)])
def test_pace_is_a_share_of_the_learnt_limit(processes, interval):
    pacer = Pacer(headroom=0.9)
    pacer.set_processes(processes)
    route = "GET x"
    pacer.observe(route, 200, {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "50"})
    pacer.reserve(route)
    assert pacer.reserve(route) == pytest.approx(interval, abs=0.003)

"""Slow clients (slowloris) against the shipped servers: ``gunicorn -c gunicorn.conf.py wsgi:app`` on
PostgreSQL and ``jsm-scim serve`` on SQLite. 200 connections send part of their headers and then
one byte now and then; /healthz and SCIM requests must still be answered within 2 seconds."""
from __future__ import annotations

import contextlib
import socket
import time

import pytest
import requests

from benchmarks.common import bridge_stack
from tests.fixtures.db import BACKENDS, POSTGRES_URL

SLOW_CLIENTS = 200
HOLD_SECONDS = 4.0


def _half_open(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    return sock


@pytest.mark.parametrize("backend", [pytest.param(b, id={"postgresql": "gunicorn", "sqlite": "serve"}[b])
                                     for b in BACKENDS])
def test_slow_clients_cannot_stop_the_server_answering(backend, tmp_path):
    with bridge_stack(backend=backend, workdir=tmp_path, postgres_admin_url=POSTGRES_URL) as stack:
        port = int(stack.base_url.rsplit(":", 1)[1])
        scim = {"Authorization": f"Bearer {stack.token}"}
        with contextlib.ExitStack() as sockets:
            slow = [sockets.enter_context(_half_open(port)) for _ in range(SLOW_CLIENTS)]
            deadline = time.monotonic() + HOLD_SECONDS
            answered = 0
            while time.monotonic() < deadline:
                for sock in slow[::10]:  # keep them sending, a byte at a time
                    sock.sendall(b"x")
                health = requests.get(stack.base_url + "/healthz", timeout=2, headers={"Connection": "close"})
                users = requests.get(stack.scim_url + "/Users?count=1", timeout=2, headers=scim)
                assert health.status_code == 200 and users.status_code == 200
                assert health.elapsed.total_seconds() < 2.0 and users.elapsed.total_seconds() < 2.0
                answered += 1
                time.sleep(0.2)
            assert answered >= 3
            stack.check_alive()

"""No ``Server`` header names a software version: waitress (``serve``), gunicorn, the worker's metrics server."""
from __future__ import annotations

import threading

import requests
from waitress.server import create_server

from scim_server.cli.serve import SERVER_OPTIONS
from scim_server.metrics import serve_metrics


def test_serve_waitress_names_no_version(app):
    server = create_server(app, host="127.0.0.1", port=0, **SERVER_OPTIONS)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for path in ("/", "/login", "/healthz", "/scim/v2/Users"):
            response = requests.get(f"http://127.0.0.1:{server.effective_port}{path}", timeout=10, allow_redirects=False)
            assert response.headers["Server"] == "jsm-scim-bridge", path
    finally:
        server.close()


def test_gunicorn_names_no_version():
    from gunicorn import SERVER  # what gunicorn's responses send as Server (gunicorn/http/wsgi.py)

    assert SERVER == "gunicorn"


def test_worker_metrics_server_names_no_version():
    server = serve_metrics("127.0.0.1", 0)
    try:
        response = requests.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10)
        assert response.status_code == 200 and response.headers["Server"] == "jsm-scim-bridge"
    finally:
        server.shutdown()

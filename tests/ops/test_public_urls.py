"""URLs the bridge hands out come from JSM_SCIM_PUBLIC_URL or the bind address, never from the
client's Host header; the built-in emulator's test endpoints can require a token; metrics of a
worker bind to loopback unless told otherwise."""
from __future__ import annotations

import pytest
import requests
from click.testing import CliRunner

from jsm_client.emulator import EmulatorServer, JsmEmulator
from scim_server.app import create_app
from scim_server.cli import main
from scim_server.settings import Settings
from tests.fixtures.db import issue_token
from tests.scim.resources_helpers import user_body


@pytest.mark.parametrize("public_url,expected", [(None, "http://127.0.0.1:8123"),
                                                 ("https://bridge.example.com", "https://bridge.example.com")])
def test_host_header_never_becomes_location(database_url, public_url, expected):
    app = create_app(Settings(database_url=database_url, secret_key="s", public_url=public_url, host="127.0.0.1",
                              port=8123), migrate=False)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {issue_token(app.extensions['jsm_scim'].session_factory)}",
            "Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    created = client.post("/scim/v2/Users", json=user_body("host@example.com"), headers=auth)
    assert created.status_code == 201
    location = f"{expected}/scim/v2/Users/{created.get_json()['id']}"
    assert created.headers["Location"] == location and created.get_json()["meta"]["location"] == location
    config = client.get("/scim/v2/ServiceProviderConfig", headers=auth).get_json()
    assert config["meta"]["location"] == f"{expected}/scim/v2/ServiceProviderConfig"
    assert "evil.example" not in client.get("/saml/metadata", headers={"Host": "evil.example"}).get_data(as_text=True)
    app.extensions["jsm_scim"].engine.dispose()


def test_emulator_test_endpoints_need_the_token_when_one_is_set():
    emulator = JsmEmulator(expected_email="bot@x", expected_token="run-token", admin_token="run-token")
    with EmulatorServer(emulator=emulator) as server:
        for path in ("/_emulator/reset", "/_emulator/faults"):
            assert requests.post(server.url + path, json={}, timeout=5).status_code == 401
            wrong = requests.post(server.url + path, json={}, headers={"Authorization": "Bearer nope"}, timeout=5)
            assert wrong.status_code == 401
        good = requests.post(server.url + "/_emulator/reset", headers={"Authorization": "Bearer run-token"}, timeout=5)
        assert good.status_code == 200
        assert requests.get(server.url + "/_emulator/state", timeout=5).status_code == 200  # reading stays open
    with EmulatorServer() as open_server:  # tests and `jsm-scim emulator` alone: no token
        assert requests.post(open_server.url + "/_emulator/reset", timeout=5).status_code == 200


def test_worker_metrics_bind_to_loopback_by_default():
    help_text = CliRunner().invoke(main, ["worker", "--help"]).output
    assert "--metrics-host TEXT" in help_text and "[default: 127.0.0.1]" in help_text

"""No secret reaches the log across a whole flow, at DEBUG level, as JSON lines.

The flow: keys created and rotated with the CLI; SCIM writes over real HTTP (one with a password,
one with an unknown token, one with a revoked token); propagation to JSM with basic auth (the JSM
API token) through injected JSM errors; a SAML login (the SP signs with its private key, the user
is provisioned just in time). Then neither the bearer tokens, the JSM API token (plain or inside
the basic-auth header), the session secret, the SP private key nor the password appear in the log.
"""
from __future__ import annotations

import base64
import io
import json
import threading

import pytest
import requests
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from scim_server.app import create_app
from scim_server.cli import main
from scim_server.logging_setup import configure_logging
from scim_server.services import services_of
from scim_server.settings import Settings
from scim_server.sso.sp import service_provider
from scim_server.sync.jsm import make_jsm_client
from scim_server.sync.worker import run_worker
from tests.fixtures.emulator import FAST_CLIENT_SETTINGS
from tests.fixtures.server import serve_wsgi
from tests.sso.conftest import Browser, configure_idp
from tests.sso.idp import SamlIdp

JSM_EMAIL = "bridge-bot@acme.example"
JSM_TOKEN = "ATATT3xFfGF0-jsm-api-token-value-7Q9w"
SESSION_SECRET = "session-signing-secret-Zx81kq"
PASSWORD = "Pa55word-never-logged"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


@pytest.fixture
def json_log():
    stream = io.StringIO()
    yield stream
    configure_logging(Settings())  # back to the default handler on stderr


def cli_token(runner: CliRunner, env: dict[str, str], *args: str) -> str:
    result = runner.invoke(main, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.stdout.rstrip("\n").splitlines()[-1]


def test_no_secret_in_json_logs_across_a_whole_flow(database_url, jsm_emulator, tmp_path, monkeypatch, json_log):
    settings = Settings(database_url=database_url, jsm_url=jsm_emulator.url, jsm_email=JSM_EMAIL,
                        jsm_api_token=JSM_TOKEN, secret_key=SESSION_SECRET, public_url="http://testserver",
                        run_worker_in_process=False, log_json=True, log_level="DEBUG")
    app = create_app(settings, migrate=False)
    app.config["TESTING"] = True
    configure_logging(settings, stream=json_log)  # create_app installed stderr
    services = services_of(app)
    monkeypatch.chdir(tmp_path)
    runner, env = CliRunner(), {"JSM_SCIM_DATABASE_URL": database_url}
    try:
        token = cli_token(runner, env, "keys", "create", "--name", "okta", "--directory", "okta")
        key_id = json.loads(runner.invoke(main, ["keys", "list", "--json"], env=env).stdout)[0]["id"]
        with serve_wsgi(app) as base:
            scim = requests.Session()
            scim.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"})
            user = scim.post(f"{base}/scim/v2/Users", timeout=10, json={
                "schemas": [USER], "userName": "ada@acme.example", "password": PASSWORD,
                "emails": [{"value": "ada@acme.example", "type": "work", "primary": True}]})
            assert user.status_code == 201
            group = scim.post(f"{base}/scim/v2/Groups", timeout=10, json={
                "schemas": [GROUP], "displayName": "Customers", "members": [{"value": user.json()["id"]}]})
            assert group.status_code == 201
            bad = scim.post(f"{base}/scim/v2/Users", timeout=10, data=json.dumps({"userName": PASSWORD, "password": 1}))
            assert bad.status_code == 400
            # a client that puts the token in the query string: the server's request line must not show it
            assert requests.get(f"{base}/scim/v2/Users", params={"access_token": token}, timeout=10).status_code == 401
            unknown = token[:-4] + "AAAA"
            assert requests.get(f"{base}/scim/v2/Users", headers={"Authorization": f"Bearer {unknown}"},
                                timeout=10).status_code == 401

            successor = cli_token(runner, env, "keys", "rotate", key_id, "--grace-hours", "0")
            assert scim.get(f"{base}/scim/v2/Users", timeout=10).status_code == 401  # revoked: logged as such
            scim.headers["Authorization"] = f"Bearer {successor}"
            assert scim.get(f"{base}/scim/v2/Users", params={"filter": 'userName eq "ada@acme.example"'},
                            timeout=10).json()["totalResults"] == 1

        jsm_emulator.emulator.set_faults(error_every=3)  # retries and error paths log JSM answers
        client = make_jsm_client(settings, **FAST_CLIENT_SETTINGS)
        try:
            run_worker(services, threading.Event(), once=True, client=client)
        finally:
            client.close()
        jsm_emulator.emulator.set_faults()

        web = app.test_client()
        idp = SamlIdp(tmp_path / "idp", web.get("/saml/metadata").get_data(as_text=True))
        configure_idp(services.session_factory, idp.settings())
        landing = Browser(web, idp).login("/portal/1", email="grace@acme.example")
        assert landing.status_code == 302 and "/servicedesk/customer/portal/1" in landing.headers["Location"]
        sp_key = service_provider(services).private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
    finally:
        services.engine.dispose()

    customers = {c["emailAddress"] for c in jsm_emulator.emulator.state_dict()["customers"]}
    assert customers == {"ada@acme.example", "grace@acme.example"}  # the flow really reached JSM
    output = json_log.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]  # every line is one JSON object
    loggers = {line["logger"] for line in lines}
    assert {"jsm_scim.access", "scim_server.auth", "urllib3.connectionpool"} <= loggers
    assert all(line["request_id"] != "-" for line in lines if line["logger"] == "jsm_scim.access")
    assert "access_token=[REDACTED]" in output or "access_token=jsmscim_[REDACTED]" in output

    basic = base64.b64encode(f"{JSM_EMAIL}:{JSM_TOKEN}".encode()).decode()
    key_lines = [line for line in sp_key.splitlines() if line and not line.startswith("-----")]
    secrets = {"bearer token": token[len("jsmscim_"):], "rotated token": successor[len("jsmscim_"):],
               "unknown token": unknown[len("jsmscim_"):], "JSM API token": JSM_TOKEN, "basic auth": basic,
               "session secret": SESSION_SECRET, "password": PASSWORD, **{f"SP key line {n}": line for n, line in
                                                                         enumerate(key_lines)}}
    leaked = [name for name, value in secrets.items() if value in output]
    assert leaked == [], leaked

"""Fixtures of the OIDC tests: Canaille (pytest-iam) as the real OpenID provider, a scriptable
one for the refusals, and a Flask test client standing in for the browser."""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Iterator

import pytest
import requests

from scim_server.db import transaction
from scim_server.services import services_of
from scim_server.settings import Settings
from scim_server.sso.connections import OIDC, SECRET_PURPOSE, Connection, OidcSettings, save_connection
from scim_server.sso.sealed import seal
from tests.fixtures.server import serve_wsgi
from tests.oidc.fake_op import CLIENT_ID, CLIENT_SECRET, FakeOp

CALLBACK = "http://testserver/oidc/callback"


@pytest.fixture
def settings(database_url: str, jsm_emulator) -> Settings:
    return Settings(
        database_url=database_url, secret_key="test-secret", public_url="http://testserver",
        jsm_url=jsm_emulator.url, jsm_email="bridge@example.com", jsm_api_token="emulator-token",
        run_worker_in_process=False, allow_private_idp_urls=True,
    )


def add_oidc_connection(app, name: str, issuer: str, client_id: str, secret: str, directory: str = "acme",
                        domains: tuple[str, ...] = (), jit: bool | None = None, **options) -> Connection:
    services = services_of(app)
    connection = Connection(name, OIDC, directory, jit, options.pop("attribute_map", {}), domains,
                            oidc=OidcSettings(issuer, client_id, seal(services, SECRET_PURPOSE, secret),
                                              options.pop("scopes", ("openid", "email", "profile"))))
    with transaction(services.session_factory) as session:
        save_connection(session, connection)
    return connection


@dataclass
class Canaille:
    server: object
    issuer: str
    client: object
    client_id: str
    client_secret: str

    def user(self, user_name: str, email: str, groups: tuple[str, ...] = (), **fields):
        made = [self.server.random_group(display_name=g) for g in groups]
        person = self.server.random_user(user_name=user_name, emails=[email], groups=made, **fields)
        self.server.login(person)
        self.server.consent(person, self.client)
        return person


@pytest.fixture
def canaille(iam_server) -> Iterator[Canaille]:
    """Canaille with a confidential client for the bridge (redirect URI PUBLIC_URL/oidc/callback)."""
    issuer = requests.get(iam_server.url + ".well-known/openid-configuration", timeout=10).json()["issuer"]
    client_id, secret = f"bridge-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    client = iam_server.models.Client(
        client_id=client_id, client_secret=secret, client_name="JSM SCIM bridge", redirect_uris=[CALLBACK],
        grant_types=["authorization_code"], response_types=["code"], token_endpoint_auth_method="client_secret_basic",
        scope=["openid", "email", "profile", "groups"], client_id_issued_at=dt.datetime.now(dt.timezone.utc),
    )
    iam_server.backend.save(client)
    client.audience = [client]
    iam_server.backend.save(client)
    yield Canaille(iam_server, issuer, client, client_id, secret)
    iam_server.logout()


@pytest.fixture
def fake_op() -> Iterator[FakeOp]:
    op = FakeOp()
    with serve_wsgi(op) as url:
        op.url = url
        yield op


@pytest.fixture
def fake_connection(app, fake_op) -> Connection:
    return add_oidc_connection(app, "fake", fake_op.url, CLIENT_ID, CLIENT_SECRET, directory="ops",
                               domains=("op.test",))


class OidcBrowser:
    """Follows the redirects of an OIDC login: our app in a Flask test client, the provider over HTTP."""

    def __init__(self, client) -> None:
        self.client = client

    def start(self, path: str) -> str:
        """The provider's authorization URL our ``/login`` sent the browser to."""
        response = self.client.get(path)
        assert response.status_code == 302, response.data
        return response.headers["Location"]

    def authorize(self, authorization_url: str) -> str:
        """The provider's redirect back to us (its Location: PUBLIC_URL/oidc/callback?code=...&state=...)."""
        answer = requests.get(authorization_url, allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text[:500]
        location = answer.headers["Location"]
        assert location.startswith(CALLBACK), location
        return location

    def callback(self, location: str, client=None):
        return (client or self.client).get(location.removeprefix("http://testserver"))

    def login(self, path: str):
        return self.callback(self.authorize(self.start(path)))


@pytest.fixture
def browser(client) -> OidcBrowser:
    return OidcBrowser(client)

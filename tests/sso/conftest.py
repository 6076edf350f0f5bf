"""Fixtures of the SAML tests: the app talks to a JSM emulator and trusts a pysaml2 test IdP."""
from __future__ import annotations

import re
from typing import Callable

import pytest

from scim_server.app import create_app
from scim_server.db import transaction
from scim_server.services import services_of
from scim_server.settings import Settings
from scim_server.sso.connections import save_idp
from scim_server.sso.idp_config import IdpSettings
from tests.sso.idp import SamlIdp, form

ACS = "/saml/acs"


@pytest.fixture
def settings(database_url: str, jsm_emulator) -> Settings:
    """The default app of these tests: public URL http://testserver, JSM = the emulator."""
    return Settings(
        database_url=database_url,
        secret_key="test-secret",
        public_url="http://testserver",
        jsm_url=jsm_emulator.url,
        jsm_email="bridge@example.com",
        jsm_api_token="emulator-token",
        run_worker_in_process=False,
    )


@pytest.fixture
def make_app(settings: Settings):
    """Build another app on the same database with changed settings (e.g. a rules file)."""
    apps = []

    def build(**overrides):
        application = create_app(settings.with_overrides(**overrides), migrate=False)
        application.config["TESTING"] = True
        apps.append(application)
        return application

    yield build
    for application in apps:
        services_of(application).engine.dispose()


@pytest.fixture
def sp_metadata(client) -> str:
    return client.get("/saml/metadata").data.decode()


@pytest.fixture
def idp(tmp_path, sp_metadata, session_factory) -> SamlIdp:
    """The trusted test IdP, configured in the database."""
    provider = SamlIdp(tmp_path / "idp", sp_metadata)
    configure_idp(session_factory, provider.settings())
    return provider


@pytest.fixture
def rogue_idp(tmp_path, sp_metadata) -> SamlIdp:
    """Same entity ID as the trusted IdP, but its own key: nobody configured its certificate."""
    return SamlIdp(tmp_path / "rogue", sp_metadata, name="rogue")


def configure_idp(session_factory, idp_settings: IdpSettings) -> None:
    with transaction(session_factory) as session:
        save_idp(session, idp_settings)


def session_cookie(response) -> str | None:
    """The Set-Cookie header of the login session cookie in ``response``, if it sets one."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith("session="):
            return header
    return None


class Browser:
    """Drives the SP-initiated flow through a Flask test client, following no redirect itself."""

    def __init__(self, client, idp: SamlIdp) -> None:
        self.client = client
        self.idp = idp

    def start(self, path: str = "/portal/1") -> tuple[str, str | None]:
        response = self.client.get(path)
        assert response.status_code == 302, response.data
        return self.idp.read_request(response.headers["Location"])

    def post(self, xml: bytes, relay_state: str | None = None):
        """POST to the ACS and, like a browser, follow the hop to ``/saml/continue`` when there is one."""
        return self.follow(self.client.post(ACS, data=form(xml, relay_state)))

    def follow(self, response):
        """The ACS's 303s, as a browser follows them: the hop to ``/saml/continue``, a refusal's page."""
        location = response.headers.get("Location", "")
        if response.status_code == 303 and location.startswith("/saml/continue?"):
            return self.follow(self.client.get(location))
        if response.status_code == 303 and location.startswith("/refused?"):  # post-redirect-get of a refusal
            assert session_cookie(response) is None
            page = self.client.get(location)
            again = self.client.get(location)  # a reload shows the same page (but its CSP nonce), resubmits nothing
            assert re.sub(rb'nonce="[^"]+"', b"", again.data) == re.sub(rb'nonce="[^"]+"', b"", page.data)
            return page
        return response

    def login(self, path: str = "/portal/1", **response_options):
        request_id, relay = self.start(path)
        return self.post(self.idp.response_xml(request_id, **response_options), relay)


@pytest.fixture
def browser(client, idp) -> Browser:
    return Browser(client, idp)


@pytest.fixture
def new_request(browser) -> Callable[[], str]:
    """The ID of a fresh AuthnRequest we issued (as the IdP read it)."""
    return lambda: browser.start()[0]

"""Logins whose IdP is another site than the bridge, in headless Chromium with its default
SameSite=Lax cookies: OpenID Connect through Canaille (a real OpenID provider), and SAML whose
HTTP-POST to /saml/acs is cross-site (the browser-binding cookie comes back on the hop's GET)."""
from __future__ import annotations

import base64
import datetime as dt
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import select
from werkzeug.wrappers import Request, Response

from scim_server.db import transaction
from scim_server.models import Directory, User
from scim_server.sso.connections import SAML, Connection, save_connection
from tests.browser.conftest import _LateBound, auto_post_page
from tests.browser.test_login_chromium import TIMEOUT_SECONDS, _wait_for_url
from tests.fixtures.server import serve_wsgi
from tests.oidc.conftest import add_oidc_connection
from tests.sso.idp import SamlIdp


def _users(session_factory) -> list[tuple[str, str]]:
    with session_factory() as session:
        return [tuple(r) for r in session.execute(
            select(User.user_name, Directory.name).join(Directory, Directory.id == User.directory_id))]


def _cookie_names(driver) -> list[str]:
    return sorted(c["name"] for c in driver.get_cookies())


def test_oidc_login_through_canaille_in_chromium(chromium, live_server, iam_server, jsm_emulator):
    issuer = requests.get(iam_server.url + ".well-known/openid-configuration", timeout=10).json()["issuer"]
    assert "localhost" in issuer and "127.0.0.1" in live_server.url  # two sites: the callback is cross-site
    client_id, secret = f"chromium-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    client = iam_server.models.Client(
        client_id=client_id, client_secret=secret, client_name="bridge", redirect_uris=[f"{live_server.url}/oidc/callback"],
        grant_types=["authorization_code"], response_types=["code"], token_endpoint_auth_method="client_secret_basic",
        scope=["openid", "email", "profile", "groups"], client_id_issued_at=dt.datetime.now(dt.timezone.utc))
    iam_server.backend.save(client)
    client.audience = [client]
    iam_server.backend.save(client)
    person = iam_server.random_user(user_name="cleo", emails=["cleo@acme.test"], given_name="Cleo", family_name="Oidc")
    iam_server.login(person)  # the visitor is signed in at the provider
    iam_server.consent(person, client)
    add_oidc_connection(live_server.app, "acme", issuer, client_id, secret, directory="acme", domains=("acme.test",))
    try:
        chromium.get(f"{live_server.url}/login?login_hint=cleo@acme.test&next=/portal/1")
        _wait_for_url(chromium, f"{jsm_emulator.url}/servicedesk/customer/portal/1")
    finally:
        iam_server.logout()
    assert "Customer portal 1 of Help Desk" in chromium.page_source
    assert _users(live_server.session_factory) == [("cleo@acme.test", "acme")]
    assert [c["emailAddress"] for c in jsm_emulator.emulator.state_dict()["customers"]] == ["cleo@acme.test"]
    chromium.get(f"{live_server.url}/portals")
    assert "signed in as cleo@acme.test" in chromium.find_element("tag name", "body").text
    assert _cookie_names(chromium) == ["session"]  # the used binding entry was removed with its cookie


@pytest.fixture
def cross_site_idp(live_server, tmp_path: Path):
    """A SAML IdP reached as http://localhost:PORT (another site than the bridge's 127.0.0.1)."""
    late = _LateBound()
    with serve_wsgi(late) as url:
        url = url.replace("127.0.0.1", "localhost")
        sp_metadata = requests.get(f"{live_server.url}/saml/metadata", timeout=10).text
        saml = SamlIdp(tmp_path / "cross-site-idp", sp_metadata, name="cross", sso_url=f"{url}/sso",
                       entity_id="https://cross-site-idp.example/metadata")
        seen: list[str] = []

        @Request.application
        def sso(request: Request) -> Response:
            request_id, relay_state = saml.read_request(request.url)
            seen.append(request_id)
            xml = saml.response_xml(request_id, sp_entity_id=f"{live_server.url}/saml/metadata",
                                    acs_url=f"{live_server.url}/saml/acs", email="sid@bravo.test",
                                    attributes={"email": ["sid@bravo.test"]})
            page = auto_post_page(f"{live_server.url}/saml/acs", base64.b64encode(xml).decode("ascii"), relay_state)
            return Response(page, mimetype="text/html")

        late.target = sso
        with transaction(live_server.session_factory) as session:
            save_connection(session, Connection("bravo", SAML, "bravo", None, {}, ("bravo.test",),
                                                saml=saml.settings()))
        yield seen


def test_cross_site_saml_post_with_lax_cookies(chromium, live_server, cross_site_idp, jsm_emulator):
    chromium.get(f"{live_server.url}/login?login_hint=sid@bravo.test&next=/portal/2")
    _wait_for_url(chromium, f"{jsm_emulator.url}/servicedesk/customer/portal/2")
    assert len(cross_site_idp) == 1
    assert _users(live_server.session_factory) == [("sid@bravo.test", "bravo")]
    chromium.get(f"{live_server.url}/portals")
    assert "signed in as sid@bravo.test" in chromium.find_element("tag name", "body").text


def test_saml_response_of_another_browsers_login_is_refused(chromium, live_server, cross_site_idp, tmp_path):
    """Login CSRF: the attacker starts a login in their own client and makes the victim's browser
    post the IdP's answer (an auto-posting page on another site). The victim never started it."""
    from selenium.webdriver.support.ui import WebDriverWait

    start = requests.get(f"{live_server.url}/login?login_hint=sid@bravo.test", allow_redirects=False, timeout=10)
    attacker_page = tmp_path / "attack.html"
    attacker_page.write_text(requests.get(start.headers["Location"], timeout=10).text)
    chromium.get(attacker_page.as_uri())

    WebDriverWait(chromium, TIMEOUT_SECONDS).until(lambda d: "Sign-in failed" in d.page_source)
    assert "unknown or has expired" in chromium.page_source
    assert _users(live_server.session_factory) == []
    assert "session" not in _cookie_names(chromium)

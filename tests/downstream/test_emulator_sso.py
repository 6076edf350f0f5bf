"""The emulator's customer SSO against the bridge's IdP, on real sockets.

The emulated JSM site sends visitors of its portal to the bridge with an AuthnRequest and checks
the bridge's Response with its own code (no code shared with the bridge's signer).
"""
from __future__ import annotations

import base64
import re

import pytest
import requests
from lxml import etree

from tests.browser.conftest import live_idp, live_server  # noqa: F401  (shared fixtures)
from tests.downstream.conftest import register
from tests.downstream.sp import posted_form


def _submit(session: requests.Session, html: str) -> requests.Response:
    """What the browser does with an auto-POST page."""
    form = posted_form(html)
    fields = {k: v for k, v in form.items() if k != "action"}
    return session.post(form["action"], data=fields, allow_redirects=False)


@pytest.fixture
def sso_on(live_server, jsm_emulator):  # noqa: F811
    """The emulator registered as the bridge's SP and trusting the bridge's IdP metadata."""
    described = requests.get(f"{jsm_emulator.url}/_emulator/sso", timeout=10).json()
    assert described["enabled"] is False
    register(live_server.session_factory, described["entity_id"], described["acs_url"])
    turned_on = requests.post(f"{jsm_emulator.url}/_emulator/sso",
                              json={"idp_metadata_url": f"{live_server.url}/idp/metadata"}, timeout=10)
    assert turned_on.status_code == 200 and turned_on.json()["enabled"] is True
    assert turned_on.json()["idp_entity_id"] == f"{live_server.url}/idp/metadata"
    return described


def _sign_in_upstream(session: requests.Session, live_server, live_idp) -> None:  # noqa: F811
    """The bridge session, through the upstream pysaml2 IdP (its auto-POST page submitted by hand)."""
    page = session.get(f"{live_server.url}/saml/login", timeout=10)
    assert _submit(session, page.text).status_code == 302


def test_portal_needs_a_session_and_the_bridge_signs_the_customer_in(
    sso_on, live_server, live_idp, jsm_emulator  # noqa: F811
):
    browser = requests.Session()
    _sign_in_upstream(browser, live_server, live_idp)
    portal = f"{jsm_emulator.url}/servicedesk/customer/portal/1"

    to_idp = browser.get(portal, allow_redirects=False)
    assert to_idp.status_code == 302 and to_idp.headers["Location"].startswith(f"{live_server.url}/idp/sso?SAMLRequest=")
    post_page = browser.get(to_idp.headers["Location"], timeout=10)
    assert post_page.status_code == 200
    back = _submit(browser, post_page.text)
    assert back.status_code == 302 and back.headers["Location"] == "/servicedesk/customer/portal/1"
    landed = browser.get(portal, allow_redirects=False)
    assert landed.status_code == 200
    assert f"signed in as {live_idp.email}" in landed.text
    customers = jsm_emulator.emulator.state_dict()["customers"]
    assert live_idp.email in [c["emailAddress"] for c in customers]  # created if absent

    stranger = requests.Session().get(portal, allow_redirects=False)  # no portal session: back to the IdP
    assert stranger.status_code == 302 and "/idp/sso?" in stranger.headers["Location"]


def _fresh_response(browser, live_server, live_idp, jsm_emulator) -> str:  # noqa: F811
    _sign_in_upstream(browser, live_server, live_idp)
    to_idp = browser.get(f"{jsm_emulator.url}/servicedesk/customer/portal/2", allow_redirects=False)
    return browser.get(to_idp.headers["Location"], timeout=10).text


def test_the_emulator_refuses_a_tampered_or_replayed_response(sso_on, live_server, live_idp, jsm_emulator):  # noqa: F811
    browser = requests.Session()
    page = _fresh_response(browser, live_server, live_idp, jsm_emulator)
    form = posted_form(page)
    xml = base64.b64decode(form["SAMLResponse"])
    forged = re.sub(rb"(<saml:NameID[^>]*>)[^<]+", rb"\1mallory@example.com", xml)
    assert forged != xml
    refused = browser.post(form["action"], data={"SAMLResponse": base64.b64encode(forged).decode(),
                                                 "RelayState": form["RelayState"]}, allow_redirects=False)
    assert refused.status_code == 403 and "signature does not verify" in refused.text
    assert _submit(browser, page).status_code == 302  # the genuine one still works once
    replayed = _submit(browser, page)
    assert replayed.status_code == 403 and "already answered" in replayed.text


def test_sso_off_again_leaves_the_portal_open(sso_on, jsm_emulator):
    assert requests.post(f"{jsm_emulator.url}/_emulator/sso", json={}, timeout=10).json()["enabled"] is False
    page = requests.get(f"{jsm_emulator.url}/servicedesk/customer/portal/1", allow_redirects=False, timeout=10)
    assert page.status_code == 200 and "signed in" not in page.text


def test_emulator_sp_metadata_registers_with_the_cli(sso_on, jsm_emulator):
    root = etree.fromstring(requests.get(f"{jsm_emulator.url}/_emulator/sso/sp", timeout=10).content)
    assert root.get("entityID") == sso_on["entity_id"]
    from scim_server.idp.registration import parse_sp_metadata

    parsed = parse_sp_metadata(etree.tostring(root))
    assert (parsed.entity_id, parsed.acs_url) == (sso_on["entity_id"], sso_on["acs_url"])

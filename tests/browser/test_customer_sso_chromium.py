"""JSM's customer SSO in a real browser: the emulated portal → the bridge's IdP → back, signed in."""
from __future__ import annotations

import requests

from tests.browser.test_login_chromium import TIMEOUT_SECONDS, _wait_for_url
from tests.downstream.conftest import register


def _wait_for_text(driver, text: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, TIMEOUT_SECONDS).until(lambda d: text in d.find_element("tag name", "body").text)


def _turn_emulator_sso_on(live_server, jsm_emulator) -> None:
    described = requests.get(f"{jsm_emulator.url}/_emulator/sso", timeout=10).json()
    register(live_server.session_factory, described["entity_id"], described["acs_url"])
    response = requests.post(f"{jsm_emulator.url}/_emulator/sso",
                             json={"idp_metadata_url": f"{live_server.url}/idp/metadata"}, timeout=10)
    assert response.json()["enabled"] is True


def test_emulated_portal_signs_the_customer_in_through_the_bridge(chromium, live_server, live_idp, jsm_emulator):
    _turn_emulator_sso_on(live_server, jsm_emulator)
    # The customer's bridge session, made by the upstream SAML login (auto-posted by the browser).
    chromium.get(f"{live_server.url}/saml/login")
    _wait_for_url(chromium, f"{live_server.url}/portals")
    assert len(live_idp.requests_seen) == 1

    portal = f"{jsm_emulator.url}/servicedesk/customer/portal/1"
    chromium.get(portal)  # → bridge /idp/sso → auto-POSTed signed Response → emulator ACS → portal
    _wait_for_text(chromium, "signed in as")
    assert chromium.current_url == portal
    body = chromium.find_element("tag name", "body").text
    assert f"signed in as {live_idp.email}" in body
    assert "Customer portal 1 of Help Desk" in body
    assert live_idp.email in [c["emailAddress"] for c in jsm_emulator.emulator.state_dict()["customers"]]

    # The portal session holds: portal 2 opens without another trip to the bridge or the IdP.
    chromium.get(f"{jsm_emulator.url}/servicedesk/customer/portal/2")
    assert f"signed in as {live_idp.email}" in chromium.find_element("tag name", "body").text
    assert len(live_idp.requests_seen) == 1

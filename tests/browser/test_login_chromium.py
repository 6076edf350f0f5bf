"""The whole SAML login in a real browser: portal link → IdP → auto-posted Response → JSM portal."""
from __future__ import annotations

from sqlalchemy import select

from scim_server.models import User

TIMEOUT_SECONDS = 20


def _wait_for_url(driver, fragment: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, TIMEOUT_SECONDS).until(lambda d: fragment in d.current_url)


def test_portal_link_logs_in_through_the_idp_and_lands_on_the_jsm_portal(
    chromium, live_server, live_idp, jsm_emulator
):
    chromium.get(f"{live_server.url}/portal/1")
    _wait_for_url(chromium, f"{jsm_emulator.url}/servicedesk/customer/portal/1")

    # The emulator's portal page, reached through the IdP and our ACS.
    assert chromium.current_url == f"{jsm_emulator.url}/servicedesk/customer/portal/1"
    assert "Customer portal 1 of Help Desk" in chromium.page_source
    assert len(live_idp.requests_seen) == 1

    # Just in time: the customer exists in the bridge and in JSM.
    with live_server.session_factory() as session:
        assert session.scalars(select(User.user_name)).all() == [live_idp.email]
    customers = jsm_emulator.emulator.state_dict()["customers"]
    assert [c["emailAddress"] for c in customers] == [live_idp.email]

    # The browser holds an HttpOnly, SameSite session cookie for the bridge (Secure only over https).
    chromium.get(f"{live_server.url}/portals")
    assert f"signed in as {live_idp.email}" in chromium.find_element("tag name", "body").text
    cookies = chromium.get_cookies()
    assert [c["name"] for c in cookies] == ["session"]
    assert cookies[0]["httpOnly"] is True and cookies[0]["sameSite"] == "Lax" and cookies[0]["secure"] is False
    assert chromium.execute_script("return document.cookie") == ""  # invisible to scripts

    # With the session, another portal link goes straight to JSM without the IdP.
    chromium.get(f"{live_server.url}/portal/2")
    _wait_for_url(chromium, f"{jsm_emulator.url}/servicedesk/customer/portal/2")
    assert len(live_idp.requests_seen) == 1

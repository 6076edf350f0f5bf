"""SP-initiated and IdP-initiated logins with real signed responses, JIT provisioning, portals."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from scim_server.models import Directory, Group, GroupMember, User
from tests.sso.conftest import Browser, configure_idp, session_cookie
from tests.sso.idp import form


def jit_user(session_factory, email: str) -> User | None:
    with session_factory() as session:
        return session.scalar(select(User).where(User.user_name_lower == email.lower()))


@pytest.mark.parametrize("sign", ["response", "assertion", "both"])
def test_login_provisions_user_and_lands_on_portal(browser, session_factory, jsm_emulator, sign):
    response = browser.login("/portal/2", sign=sign)
    assert response.status_code == 302, response.data
    assert response.headers["Location"] == f"{jsm_emulator.url}/servicedesk/customer/portal/2"
    user = jit_user(session_factory, "alice@example.com")
    assert user is not None and user.active
    assert user.display_name == "Alice Example" and user.primary_email == "alice@example.com"
    with session_factory() as session:
        assert session.get(Directory, user.directory_id).name == "default"
        groups = session.scalars(
            select(Group.display_name).join(GroupMember).where(GroupMember.user_id == user.id)
        ).all()
    assert groups == ["Customers"]
    state = jsm_emulator.emulator.state_dict()
    assert [c["emailAddress"] for c in state["customers"]] == ["alice@example.com"]
    # Pushed through the propagation engine at once: the group became a JSM organization.
    account_id = state["customers"][0]["accountId"]
    assert [(o["name"], o["accountIds"]) for o in state["organizations"]] == [("Customers", [account_id])]


def test_authn_request_is_signed_redirect_with_relay_state(client, idp):
    response = client.get("/portal/7")
    location = response.headers["Location"]
    assert location.startswith("https://idp.example.test/sso?")
    query = parse_qs(urlsplit(location).query)
    assert query["RelayState"] == ["/portal/7"]
    assert query["SigAlg"] == ["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"]
    assert query["Signature"][0]
    request_id, relay = idp.read_request(location)
    assert request_id.startswith("_") and relay == "/portal/7"


def test_session_then_portal_link_redirects_without_idp(browser, client, jsm_emulator):
    assert browser.login("/portal/1").status_code == 302
    again = client.get("/portal/2")
    assert again.status_code == 302
    assert again.headers["Location"] == f"{jsm_emulator.url}/servicedesk/customer/portal/2"
    listing = client.get("/portals")
    assert listing.status_code == 200 and b"/portal/1" in listing.data and b"/portal/2" in listing.data


def test_session_cookie_flags(browser):
    response = browser.login("/portal/1")
    cookie = session_cookie(response)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # public URL is http in this test


def test_secure_cookie_when_public_url_is_https(make_app, tmp_path, session_factory, jsm_emulator):
    """A real login on an https public URL: the session cookie is Secure, HttpOnly and SameSite=Lax."""
    from tests.sso.idp import SamlIdp

    app = make_app(public_url="https://sso.example.test")
    client = app.test_client()
    idp = SamlIdp(tmp_path / "idp-https", client.get("/saml/metadata").data.decode())
    configure_idp(session_factory, idp.settings())
    start = client.get("https://sso.example.test/portal/1")
    request_id, relay = idp.read_request(start.headers["Location"])
    xml = idp.response_xml(
        request_id, sp_entity_id="https://sso.example.test/saml/metadata", acs_url="https://sso.example.test/saml/acs"
    )
    response = client.post("https://sso.example.test/saml/acs", data=form(xml, relay))
    assert response.status_code == 302, response.data
    assert response.headers["Location"] == f"{jsm_emulator.url}/servicedesk/customer/portal/1"
    cookie = session_cookie(response)
    assert "; Secure" in cookie and "; HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("https://sso.example.test/portal/2").headers["Location"].endswith("/portal/2")


def test_existing_scim_user_is_reused_and_not_modified(browser, session_factory, auth, client):
    created = client.post(
        "/scim/v2/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "bob@example.com",
            "displayName": "Bob From SCIM",
            "emails": [{"value": "Bob@Example.com", "primary": True}],
        },
        headers=auth,
    )
    assert created.status_code == 201, created.data
    response = browser.login("/portal/1", email="bob@example.com", attributes={
        "email": ["bob@example.com"], "displayName": ["Other Name"], "groups": ["Evil Admins"]
    })
    assert response.status_code == 302
    with session_factory() as session:
        users = session.scalars(select(User).where(User.user_name_lower == "bob@example.com")).all()
        assert len(users) == 1 and users[0].display_name == "Bob From SCIM"
        assert session.scalars(select(Group)).all() == []  # the SCIM directory's groups are untouched


def test_deactivated_user_cannot_log_in(browser, session_factory, auth, client, caplog):
    client.post(
        "/scim/v2/Users",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "carol@example.com", "active": False},
        headers=auth,
    )
    response = browser.login("/portal/1", email="carol@example.com")
    assert response.status_code == 403
    assert b"Your account is deactivated" in response.data
    assert session_cookie(response) is None
    assert any("SAML login refused" in r.getMessage() and "deactivated" in r.getMessage() for r in caplog.records)
    assert client.get("/portals").status_code == 302  # not logged in: the list starts a new login


def test_second_login_updates_jit_groups(browser, session_factory):
    browser.login("/portal/1", attributes={"email": ["dan@example.com"], "groups": ["A", "B"]}, email="dan@example.com")
    browser.client.post("/logout")
    browser.login("/portal/1", attributes={"email": ["dan@example.com"], "groups": ["B", "C"]}, email="dan@example.com")
    user = jit_user(session_factory, "dan@example.com")
    with session_factory() as session:
        names = sorted(session.scalars(
            select(Group.display_name).join(GroupMember).where(GroupMember.user_id == user.id)
        ))
    assert names == ["B", "C"]


def test_entra_claims_are_understood(browser, session_factory):
    claims = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
    response = browser.login("/portal/1", email="erin@contoso.example", attributes={
        claims + "emailaddress": ["erin@contoso.example"],
        claims + "givenname": ["Erin"],
        claims + "surname": ["Entra"],
        claims + "name": ["erin@contoso.example"],
        "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups": ["1b2c3d4e-0000-1111-2222-333344445555"],
    })
    assert response.status_code == 302
    user = jit_user(session_factory, "erin@contoso.example")
    assert (user.given_name, user.family_name, user.display_name) == ("Erin", "Entra", "Erin Entra")


def test_nameid_email_fallback(browser, session_factory):
    response = browser.login("/portal/1", email="frank@example.com", attributes={"userName": ["frank"]})
    assert response.status_code == 302
    assert jit_user(session_factory, "frank@example.com") is not None


def test_idp_initiated_login_when_enabled(client, idp, session_factory, jsm_emulator):
    configure_idp(session_factory, idp.settings(allow_idp_initiated=True))
    response = Browser(client, idp).post(idp.response_xml(None), relay_state="2")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/servicedesk/customer/portal/2")


def test_portals_restricted_by_rules_file(make_app, idp, tmp_path, jsm_emulator):
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[organizations]\non_the_fly = true\n\n[organizations.domains]\n"example.com" = "Acme Corp"\n\n'
        '[portals]\n"Acme Corp" = ["HELP"]\n'
    )
    app = make_app(mappings_path=str(rules))
    browser = Browser(app.test_client(), idp)
    refused = browser.login("/portal/2")
    assert refused.status_code == 403
    page = refused.data.decode()
    assert "http://testserver/portal/1" in page and "http://testserver/portal/2" not in page
    allowed = browser.client.get("/portal/1")
    assert allowed.status_code == 302
    assert allowed.headers["Location"] == f"{jsm_emulator.url}/servicedesk/customer/portal/1"


def test_login_over_a_real_socket(make_app, idp, jsm_emulator):
    import requests

    from tests.fixtures.server import serve_wsgi

    with serve_wsgi(make_app()) as base:
        # The app's public URL stays http://testserver: we post to the socket with those URLs inside.
        http = requests.Session()
        start = http.get(f"{base}/portal/1", allow_redirects=False, timeout=10)
        assert start.status_code == 302
        request_id, relay = idp.read_request(start.headers["Location"])
        xml = idp.response_xml(request_id)
        done = http.post(f"{base}/saml/acs", data=form(xml, relay), allow_redirects=False, timeout=10)
        assert done.status_code == 302
        assert done.headers["Location"] == f"{jsm_emulator.url}/servicedesk/customer/portal/1"
        assert "HttpOnly" in done.headers["Set-Cookie"] and "session=" in done.headers["Set-Cookie"]
        again = http.get(f"{base}/portal/2", allow_redirects=False, timeout=10)
        assert again.headers["Location"] == f"{jsm_emulator.url}/servicedesk/customer/portal/2"
        portal = requests.get(again.headers["Location"], timeout=10, allow_redirects=False)
        assert portal.status_code < 500


def test_authn_request_signature_verifies_with_sp_metadata_certificate(client, idp, sp_metadata):
    """pysaml2 checks our HTTP-Redirect signature with the certificate published in our metadata."""
    from lxml import etree
    from saml2.sigver import verify_redirect_signature

    cert = etree.fromstring(sp_metadata.encode()).findtext(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate")
    query = {k: v[0] for k, v in parse_qs(urlsplit(client.get("/portal/3").headers["Location"]).query).items()}
    assert verify_redirect_signature(query, idp.server.sec.sec_backend, cert=cert)
    query["RelayState"] = "/portal/4"
    assert not verify_redirect_signature(query, idp.server.sec.sec_backend, cert=cert)

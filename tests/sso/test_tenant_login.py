"""Tenant-safe logins: routing by domain, one directory per connection, SCIM as the source of truth,
exact e-mails, browser-bound requests, no rows for anonymous visitors, no waiting on a slow JSM."""
from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import func, select

from scim_server.db import Base, transaction
from scim_server.models import Directory, User
from scim_server.sso.connections import SAML, Connection, save_connection
from scim_server.sso.identity import login_user_state
from scim_server.store.directories import ensure_directory
from tests.fixtures.db import issue_token
from tests.sso.conftest import Browser, session_cookie
from tests.sso.idp import SamlIdp

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture(autouse=True)
def _capture(caplog):
    caplog.set_level(logging.INFO, logger="scim_server.sso")


@pytest.fixture
def alpha(tmp_path, sp_metadata, session_factory) -> SamlIdp:
    """Company A's IdP: connection ``alpha`` of directory ``alpha``, routing alpha.test."""
    return _company(tmp_path, sp_metadata, session_factory, "alpha")


@pytest.fixture
def bravo(tmp_path, sp_metadata, session_factory) -> SamlIdp:
    return _company(tmp_path, sp_metadata, session_factory, "bravo")


def _company(tmp_path, sp_metadata, session_factory, name: str, domains: tuple[str, ...] | None = None,
             jit: bool | None = None) -> SamlIdp:
    idp = SamlIdp(tmp_path / name, sp_metadata, name=name, entity_id=f"https://{name}-idp.example/metadata",
                  sso_url=f"https://{name}-idp.example/sso")
    with transaction(session_factory) as session:
        save_connection(session, Connection(name, SAML, name, jit, {}, (f"{name}.test",) if domains is None else domains,
                                            saml=idp.settings()))
    return idp


def users(session_factory) -> list[tuple[str, str, bool]]:
    with session_factory() as session:
        rows = session.execute(select(User.user_name, Directory.name, User.active)
                               .join(Directory, Directory.id == User.directory_id).order_by(User.user_name))
        return sorted(tuple(r) for r in rows)


def scim_user(client, token: str, user_name: str, **fields):
    created = client.post("/scim/v2/Users", headers={"Authorization": f"Bearer {token}"},
                          json={"schemas": [USER_SCHEMA], "userName": user_name, **fields})
    assert created.status_code == 201, created.data
    return created.json["id"]


def login(client, idp: SamlIdp, email: str, path: str = None, **attributes):
    """A SAML login through ``/login?login_hint=EMAIL``; returns the final response."""
    start = client.get(path or f"/login?login_hint={email}")
    assert start.status_code == 302, start.data
    assert start.headers["Location"].startswith(idp.sso_url), start.headers["Location"]
    request_id, relay = idp.read_request(start.headers["Location"])
    xml = idp.response_xml(request_id, email=email, attributes={"email": [email], **attributes})
    return Browser(client, idp).post(xml, relay)


def refused_with(response, caplog, page: str, reason: str, status: int = 403) -> None:
    assert response.status_code == status, response.data
    assert page in response.data.decode()
    assert session_cookie(response) is None and "Location" not in response.headers
    assert any("login refused" in r.getMessage() and reason in r.getMessage() for r in caplog.records), \
        [r.getMessage() for r in caplog.records]


# -- routing ---------------------------------------------------------------------------------------
def test_login_hint_routes_to_the_connection_of_the_domain(client, alpha, bravo, session_factory, jsm_emulator):
    assert client.get("/login?login_hint=ann@alpha.test").headers["Location"].startswith(alpha.sso_url)
    assert client.get("/login?login_hint=Bob@Sales.Bravo.test").headers["Location"].startswith(bravo.sso_url)
    done = login(client, bravo, "bob@bravo.test", "/login?login_hint=bob@bravo.test&next=/portal/2")
    assert done.headers["Location"] == f"{jsm_emulator.url}/servicedesk/customer/portal/2"
    assert users(session_factory) == [("bob@bravo.test", "bravo", True)]


def test_unclaimed_domain_when_every_directory_claims_one(client, alpha, bravo, caplog):
    response = client.get("/login?login_hint=eve@elsewhere.test")
    refused_with(response, caplog, "no sign-in for this e-mail address", "no connection serves")


def test_chooser_when_several_connections_could_serve(client, tmp_path, sp_metadata, session_factory):
    one = _company(tmp_path, sp_metadata, session_factory, "one", domains=())
    _company(tmp_path, sp_metadata, session_factory, "two", domains=())
    page = client.get("/login?login_hint=zoe@any.test&next=/portal/1")
    assert page.status_code == 200 and b"Choose how to sign in" in page.data
    text = page.data.decode()
    assert "connection=one" in text and "connection=two" in text and "next=%2Fportal%2F1" in text
    chosen = client.get("/login?connection=one&login_hint=zoe@any.test&next=/portal/1")
    assert chosen.headers["Location"].startswith(one.sso_url)
    assert client.get("/login?connection=nope").status_code == 404


def test_portal_link_with_several_connections_asks_for_the_e_mail(client, alpha, bravo):
    form = client.get("/portal/1")
    assert form.status_code == 200 and b'name="email"' in form.data and b'value="/portal/1"' in form.data
    posted = client.post("/login", data={"email": "ann@alpha.test", "next": "/portal/1"})
    assert posted.status_code == 303
    assert posted.headers["Location"] == "/login?login_hint=ann%40alpha.test&next=%2Fportal%2F1"
    assert client.get(posted.headers["Location"]).headers["Location"].startswith(alpha.sso_url)


def test_next_must_stay_on_this_host(client, alpha):
    for foreign in ("https://evil.example/x", "//evil.example", "/\\evil.example"):
        start = client.get(f"/login?login_hint=ann@alpha.test&next={foreign}")
        _request_id, relay = alpha.read_request(start.headers["Location"])
        assert relay is None
    response = login(client, alpha, "ann@alpha.test", "/login?login_hint=ann@alpha.test&next=//evil.example")
    assert response.headers["Location"] == "/portals"


# -- one directory per connection ------------------------------------------------------------------
def test_cross_directory_domain_is_refused(client, alpha, bravo, session_factory, caplog):
    """Company A's IdP asserts an address of company B's domain: refused, nobody created."""
    start = client.get("/login?login_hint=ann@alpha.test")
    request_id, relay = alpha.read_request(start.headers["Location"])
    xml = alpha.response_xml(request_id, email="mallory@bravo.test", attributes={"email": ["mallory@bravo.test"]})
    response = Browser(client, alpha).post(xml, relay)
    refused_with(response, caplog, "belongs to another company", "claimed by another directory")
    assert users(session_factory) == []


def test_a_login_never_uses_another_directorys_user(client, session_factory, tmp_path, sp_metadata):
    bravo_token = issue_token(session_factory, directory="bravo")
    scim_user(client, bravo_token, "sam@shared.test", displayName="Sam of Bravo")
    alpha = _company(tmp_path, sp_metadata, session_factory, "alpha", domains=())
    response = login(client, alpha, "sam@shared.test", "/login")
    assert response.status_code == 302
    assert users(session_factory) == [("sam@shared.test", "alpha", True), ("sam@shared.test", "bravo", True)]


def test_scim_managed_directory_deactivated_and_deleted_users_refused(client, alpha, session_factory, caplog):
    token = issue_token(session_factory, directory="alpha")
    inactive = scim_user(client, token, "ina@alpha.test", active=False)
    response = login(client, alpha, "ina@alpha.test")
    refused_with(response, caplog, "Your account is deactivated", "deactivated in directory alpha")

    gone = scim_user(client, token, "del@alpha.test")
    assert client.delete(f"/scim/v2/Users/{gone}", headers={"Authorization": f"Bearer {token}"}).status_code == 204
    response = login(client, alpha, "del@alpha.test")
    refused_with(response, caplog, "There is no account for you here", "SCIM-managed directory alpha and JIT is off")
    assert users(session_factory) == [("ina@alpha.test", "alpha", False)]  # never re-created
    with session_factory() as session:
        assert login_user_state(session, "alpha", inactive) is None


def test_jit_defaults_on_without_a_scim_key_and_can_be_forced_off(client, tmp_path, sp_metadata, session_factory, caplog):
    auto = _company(tmp_path, sp_metadata, session_factory, "auto")
    assert login(client, auto, "new@auto.test").status_code == 302
    client.post("/logout")
    off = _company(tmp_path, sp_metadata, session_factory, "off", jit=False)
    refused_with(login(client, off, "new@off.test"), caplog, "no account", "JIT is off")
    assert [u[0] for u in users(session_factory)] == ["new@auto.test"]


def test_kelvin_sign_look_alike_never_matches_an_ascii_address(client, alpha, session_factory, caplog):
    token = issue_token(session_factory, directory="alpha")
    kate = scim_user(client, token, "kate@alpha.test", emails=[{"value": "kate@alpha.test", "primary": True}])
    look_alike = "\u212aate@alpha.test"  # KELVIN SIGN; str.lower() would make it "kate@alpha.test"
    response = login(client, alpha, look_alike)
    refused_with(response, caplog, "no account", "JIT is off")
    assert client.get("/portals").status_code == 302
    with session_factory() as session:
        assert login_user_state(session, "alpha", kate) is not None  # Kate is untouched


def test_kelvin_sign_in_a_jit_directory_does_not_take_over_the_account(client, alpha, session_factory, caplog):
    assert login(client, alpha, "kim@alpha.test").status_code == 302
    client.post("/logout")
    response = login(client, alpha, "\u212aim@alpha.test")
    assert response.status_code == 400 and session_cookie(response) is None
    assert users(session_factory) == [("kim@alpha.test", "alpha", True)]


def test_uppercase_ascii_still_matches(client, alpha, session_factory):
    token = issue_token(session_factory, directory="alpha")
    scim_user(client, token, "lee@alpha.test")
    assert login(client, alpha, "LEE@Alpha.TEST").status_code == 302
    assert users(session_factory) == [("lee@alpha.test", "alpha", True)]


def test_login_user_state(session_factory, client, alpha):
    assert login(client, alpha, "max@alpha.test").status_code == 302
    with session_factory() as session:
        user = session.scalars(select(User)).one()
        ensure_directory(session, "bravo")
        session.commit()
        assert login_user_state(session, "alpha", user.id).id == user.id
        assert login_user_state(session, "bravo", user.id) is None
        assert login_user_state(session, "alpha", "no-such-user") is None


# -- browser binding -------------------------------------------------------------------------------
def test_request_id_of_one_browser_cannot_log_in_another(app, client, alpha, session_factory, caplog):
    """Login CSRF: the attacker's own AuthnRequest, answered for the attacker, posted from the victim."""
    start = client.get("/login?login_hint=attacker@alpha.test")
    request_id, relay = alpha.read_request(start.headers["Location"])
    xml = alpha.response_xml(request_id, email="attacker@alpha.test", attributes={"email": ["attacker@alpha.test"]})
    victim = app.test_client()
    victim.get("/login?login_hint=victim@alpha.test")  # the victim has a binding cookie of their own
    response = Browser(victim, alpha).post(xml, relay)
    assert response.status_code == 400 and session_cookie(response) is None
    assert any("started in this browser" in r.getMessage() for r in caplog.records)
    assert users(session_factory) == []
    assert Browser(client, alpha).post(xml, relay).status_code == 400  # the assertion is burnt now


def test_cross_site_post_without_the_cookie_hops_to_a_top_level_get(app, client, alpha, session_factory, jsm_emulator):
    """What a SameSite=Lax browser does: no cookie on the IdP's POST, the cookie again on the GET."""
    from tests.sso.idp import form

    start = client.get("/login?login_hint=ann@alpha.test&next=/portal/1")
    request_id, relay = alpha.read_request(start.headers["Location"])
    xml = alpha.response_xml(request_id, email="ann@alpha.test", attributes={"email": ["ann@alpha.test"]})
    cookieless = app.test_client()  # the same browser, as seen on a cross-site POST
    posted = cookieless.post("/saml/acs", data=form(xml, relay))
    assert posted.status_code == 303 and posted.headers["Location"].startswith("/saml/continue?h=")
    assert session_cookie(posted) is None
    assert cookieless.get(posted.headers["Location"]).status_code == 400  # a browser without the login: refused
    posted_again = cookieless.post("/saml/acs", data=form(xml, relay))
    assert posted_again.status_code == 303  # replay: refused, post-redirect-get
    assert cookieless.get(posted_again.headers["Location"]).status_code == 400

    start = client.get("/login?login_hint=ann@alpha.test&next=/portal/1")
    request_id, relay = alpha.read_request(start.headers["Location"])
    xml = alpha.response_xml(request_id, email="ann@alpha.test", attributes={"email": ["ann@alpha.test"]})
    hop = app.test_client().post("/saml/acs", data=form(xml, relay)).headers["Location"]
    done = client.get(hop)  # the browser that started the login follows the hop
    assert done.status_code == 302
    assert done.headers["Location"] == f"{jsm_emulator.url}/servicedesk/customer/portal/1"
    assert session_cookie(done) is not None
    assert client.get(hop).status_code == 400  # the hop is single-use


def test_binding_cookie_flags(client, alpha, make_app):
    cookie = client.get("/login?login_hint=ann@alpha.test").headers["Set-Cookie"]
    assert cookie.startswith("jsm_scim_login=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    https = make_app(public_url="https://sso.example.test").test_client()
    cookie = https.get("https://sso.example.test/login?login_hint=ann@alpha.test").headers["Set-Cookie"]
    assert "Secure" in cookie and "SameSite=None" in cookie and "HttpOnly" in cookie


def test_tampered_binding_cookie_is_ignored(client, alpha):
    start = client.get("/login?login_hint=ann@alpha.test")
    request_id, relay = alpha.read_request(start.headers["Location"])
    value = client.get_cookie("jsm_scim_login").value
    client.set_cookie("jsm_scim_login", value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB"))
    xml = alpha.response_xml(request_id, email="ann@alpha.test", attributes={"email": ["ann@alpha.test"]})
    assert Browser(client, alpha).post(xml, relay).status_code == 400


# -- no rows for anonymous visitors, no waiting on JSM ---------------------------------------------
def _row_counts(session_factory) -> dict[str, int]:
    with session_factory() as session:
        return {t.name: session.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def test_anonymous_login_links_write_no_rows(client, alpha, bravo, session_factory):
    before = _row_counts(session_factory)
    for _ in range(25):
        assert client.get("/login?login_hint=ann@alpha.test&next=/portal/1").status_code == 302
        assert client.get("/portal/1").status_code == 200
        assert client.get("/saml/continue?h=guess").status_code == 400
        assert client.get("/oidc/callback?state=guess&code=x").status_code == 400
    assert _row_counts(session_factory) == before


def test_login_does_not_wait_for_a_slow_jsm(make_app, tmp_path, session_factory, jsm_emulator):
    app = make_app(login_converge_deadline_s=0.5)
    client = app.test_client()
    alpha = SamlIdp(tmp_path / "slow", client.get("/saml/metadata").data.decode(), name="slow",
                    entity_id="https://slow-idp.example/metadata", sso_url="https://slow-idp.example/sso")
    with transaction(session_factory) as session:
        save_connection(session, Connection("slow", SAML, "slow", None, {}, (), saml=alpha.settings()))
    jsm_emulator.emulator.set_faults(latency_ms=4000)
    try:
        started = time.monotonic()
        response = login(client, alpha, "sue@slow.test", "/login?next=/portals")
        waited = time.monotonic() - started
    finally:
        jsm_emulator.emulator.set_faults()
    assert response.status_code == 302 and session_cookie(response) is not None
    assert waited < 4.0, waited  # one JSM request alone takes 4 s: the login did not wait for it


def test_many_tabs_with_long_targets_keep_the_cookie_small_and_the_newest_login(client, alpha, jsm_emulator):
    long_next = "/portals?" + "x" * 1500
    for _ in range(6):
        start = client.get(f"/login?login_hint=ann@alpha.test&next={long_next}")
    assert len(client.get_cookie("jsm_scim_login").value) <= 3800
    request_id, relay = alpha.read_request(start.headers["Location"])
    xml = alpha.response_xml(request_id, email="ann@alpha.test", attributes={"email": ["ann@alpha.test"]})
    done = Browser(client, alpha).post(xml, relay)
    assert done.status_code == 302 and done.headers["Location"] == long_next

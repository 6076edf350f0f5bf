"""OpenID Connect logins against Canaille, a real OpenID provider (pytest-iam): PKCE, groups, sessions."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from scim_server.models import Directory, Group, GroupMember, User
from scim_server.models.sso import LoginSessionRecord
from tests.oidc.conftest import add_oidc_connection
from tests.sso.conftest import session_cookie


def _users(session_factory):
    with session_factory() as session:
        rows = session.execute(select(User.user_name, Directory.name).join(Directory, Directory.id == User.directory_id))
        return sorted(tuple(r) for r in rows)


def test_login_through_canaille_lands_on_the_portal(app, browser, canaille, session_factory, jsm_emulator):
    add_oidc_connection(app, "acme-oidc", canaille.issuer, canaille.client_id, canaille.client_secret,
                        directory="acme", domains=("acme.test",), scopes=("openid", "email", "profile", "groups"))
    canaille.user("ann", "ann@acme.test", groups=("Customers",), given_name="Ann", family_name="Acme")

    authorization = browser.start("/login?login_hint=ann@acme.test&next=/portal/2")
    query = parse_qs(urlsplit(authorization).query)
    assert authorization.startswith(canaille.issuer)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"] == ["http://testserver/oidc/callback"] and query["login_hint"] == ["ann@acme.test"]
    assert query["state"][0] and query["nonce"][0] and query["state"] != query["nonce"]

    done = browser.callback(browser.authorize(authorization))
    assert done.status_code == 302, done.data
    assert done.headers["Location"] == f"{jsm_emulator.url}/servicedesk/customer/portal/2"
    assert session_cookie(done) is not None
    assert _users(session_factory) == [("ann@acme.test", "acme")]
    with session_factory() as session:
        groups = session.scalars(select(Group.display_name).join(GroupMember)).all()
        record = session.scalars(select(LoginSessionRecord)).one()
    assert groups == ["Customers"]
    assert (record.email, record.directory, record.connection) == ("ann@acme.test", "acme", "acme-oidc")
    assert [c["emailAddress"] for c in jsm_emulator.emulator.state_dict()["customers"]] == ["ann@acme.test"]


def test_second_login_with_a_session_skips_the_provider(app, browser, canaille, jsm_emulator):
    add_oidc_connection(app, "acme-oidc", canaille.issuer, canaille.client_id, canaille.client_secret)
    canaille.user("ben", "ben@acme.test")
    assert browser.login("/login?next=/portal/1").status_code == 302
    again = browser.client.get("/login?login_hint=ben@acme.test&next=/portal/2")
    assert again.status_code == 302
    assert again.headers["Location"] == f"{jsm_emulator.url}/servicedesk/customer/portal/2"
    assert browser.client.get("/portal/1").headers["Location"].endswith("/servicedesk/customer/portal/1")


def test_logout_ends_the_server_side_session_for_every_copy_of_the_cookie(app, browser, canaille, session_factory):
    add_oidc_connection(app, "acme-oidc", canaille.issuer, canaille.client_id, canaille.client_secret)
    canaille.user("cat", "cat@acme.test")
    browser.login("/login")
    cookie = browser.client.get_cookie("session").value
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    assert thief.get("/portals").status_code == 200  # a copied cookie works while the session lives...
    assert browser.client.get("/logout").status_code == 200  # GET only shows the sign-out button
    assert browser.client.get("/portals").status_code == 200
    assert browser.client.post("/logout").status_code == 200
    with session_factory() as session:
        assert session.scalars(select(LoginSessionRecord)).all() == []
    for visitor in (browser.client, thief):  # ...and no longer after the logout
        again = visitor.get("/portals")
        assert again.status_code == 302 and again.headers["Location"].startswith(canaille.issuer)


def test_state_is_used_once(app, browser, canaille, caplog):
    add_oidc_connection(app, "acme-oidc", canaille.issuer, canaille.client_id, canaille.client_secret)
    canaille.user("dan", "dan@acme.test")
    location = browser.authorize(browser.start("/login"))
    assert browser.callback(location).status_code == 302
    browser.client.post("/logout")
    replay = browser.callback(location)
    assert replay.status_code == 400 and b"unknown or has expired" in replay.data
    assert session_cookie(replay) is None
    assert any("state matches no login started in this browser" in r.getMessage() for r in caplog.records)

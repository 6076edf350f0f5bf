"""Every refused AuthnRequest ends on the refusal page with a logged reason and no Response at all."""
from __future__ import annotations

import base64
import datetime as dt
import logging

import pytest

from scim_server.db import transaction
from scim_server.idp.registration import RegisteredSp, register_sp
from tests.downstream.conftest import EMAIL
from tests.downstream.sp import SP_ACS_URL, SP_ENTITY_ID, crafted_request, posted_form, redirect_query
from tests.fixtures.db import issue_token

NOW = dt.datetime.now


@pytest.fixture(autouse=True)
def _capture(caplog):
    caplog.set_level(logging.WARNING, logger="scim_server.idp")


def assert_refused(response, caplog, reason: str, status: int = 400) -> None:
    """The refusal page, no SAML Response or form toward the SP, and the reason in the log."""
    body = response.data.decode()
    assert response.status_code == status, body
    assert "SAMLResponse" not in body and SP_ACS_URL not in body and "<form" not in body
    assert reason in caplog.text, caplog.text


def _utc(minutes: float = 0) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: crafted_request(issuer="https://rogue.example.test/sp"), "is not the registered service provider"),
        (lambda: crafted_request(acs_url="https://rogue.example.test/acs"), "not the registered one"),
        (lambda: crafted_request(issue_instant=_utc(-10)), "is stale"),
        (lambda: crafted_request(issue_instant=_utc(+10)), "issued in the future"),
        (lambda: crafted_request(request_id=None), "ID missing"),
        (lambda: crafted_request(binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"), "only HTTP-POST is answered"),
        (lambda: crafted_request(destination="https://elsewhere.example.test/sso"), "is not this IdP's SSO URL"),
        (lambda: b"<samlp:AuthnRequest xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol'", "not well-formed"),
        (lambda: b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>', "unsafe XML"),
        (lambda: b"<samlp:Response xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol'/>", "not a samlp:AuthnRequest"),
    ],
    ids=["foreign-sp", "foreign-acs", "stale", "future", "no-id", "artifact-binding", "foreign-destination",
         "malformed", "xxe", "not-a-request"],
)
def test_bad_requests_are_refused_before_any_login(client, independent_sp, caplog, make, reason):
    response = client.get(redirect_query(make()))  # built now: IssueInstant is fresh unless meant stale
    assert "Location" not in response.headers  # not even sent to /login
    assert_refused(response, caplog, reason)


@pytest.mark.parametrize("options, reason", [({"issuer": "https://rogue.example.test/sp"}, "not the registered service"),
                                             ({"acs_url": "https://rogue.example.test/acs"}, "not the registered one")])
def test_foreign_sp_or_acs_is_refused_for_a_signed_in_customer_too(signed_in, independent_sp, caplog, options, reason):
    assert_refused(signed_in.client.get(redirect_query(crafted_request(**options))), caplog, reason)


def test_request_without_acs_url_is_answered_at_the_registered_acs(signed_in, independent_sp):
    form = posted_form(signed_in.client.get(redirect_query(crafted_request(), "rs")).data.decode())
    assert form["action"] == SP_ACS_URL


@pytest.mark.parametrize(
    "query, reason",
    [("/idp/sso", "no SAMLRequest"), ("/idp/sso?SAMLRequest=%%%", "not valid base64"),
     ("/idp/sso?SAMLRequest=" + base64.b64encode(b"plain, not deflated").decode(), "not DEFLATE")],
)
def test_undecodable_requests_are_refused(client, independent_sp, caplog, query, reason):
    assert_refused(client.get(query), caplog, reason)


def test_a_deflate_bomb_is_refused_without_inflating_it(client, independent_sp, caplog):
    import zlib

    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = compressor.compress(b"<a>" + b" " * 50_000_000) + compressor.flush()
    query = "/idp/sso?SAMLRequest=" + base64.urlsafe_b64encode(bomb).decode().replace("-", "+").replace("_", "/")
    assert_refused(client.get(query.replace("+", "%2B").replace("/", "%2F")), caplog, "larger than")


def test_no_registered_sp_means_no_answer(client, caplog):
    assert_refused(client.get(redirect_query(crafted_request())), caplog, "no service provider registered", 503)


def test_a_request_is_answered_once(signed_in, independent_sp, caplog):
    request_id, path = independent_sp.redirect_request()
    assert signed_in.client.get(path).status_code == 200
    assert_refused(signed_in.client.get(path), caplog, "already answered (replay)")


def test_a_resume_link_is_answered_once_and_cannot_be_forged(client, independent_sp, browser, caplog):
    _, path = independent_sp.redirect_request()
    resume = client.get(path).headers["Location"].split("next=", 1)[1]
    from urllib.parse import unquote

    resume = unquote(resume.split("&", 1)[0])
    assert browser.login("/saml/login", email=EMAIL).status_code == 302
    assert client.get(resume).status_code == 200
    assert_refused(client.get(resume), caplog, "already answered (replay)")
    assert_refused(client.get(resume[:-3] + "xyz"), caplog, "resume token refused (BadTimeSignature)")


def test_a_resume_link_expires(client, independent_sp, browser, caplog, monkeypatch):
    _, path = independent_sp.redirect_request()
    from urllib.parse import parse_qs, urlsplit

    resume = parse_qs(urlsplit(client.get(path).headers["Location"]).query)["next"][0]
    assert browser.login("/saml/login", email=EMAIL).status_code == 302
    import time

    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 16 * 60)  # itsdangerous reads the clock
    assert_refused(client.get(resume), caplog, "SignatureExpired")


def test_changing_the_registered_sp_invalidates_pending_requests(client, independent_sp, browser, session_factory, caplog):
    _, path = independent_sp.redirect_request()
    from urllib.parse import parse_qs, urlsplit

    resume = parse_qs(urlsplit(client.get(path).headers["Location"]).query)["next"][0]
    assert browser.login("/saml/login", email=EMAIL).status_code == 302
    with transaction(session_factory) as session:
        register_sp(session, RegisteredSp(SP_ENTITY_ID, "https://other.example.test/acs"))
    assert_refused(client.get(resume), caplog, "registration changed")


def _scim_patch_active(client, session_factory, user_id: str, active: bool) -> None:
    token = issue_token(session_factory, directory="default")  # the default connection's directory
    response = client.patch(
        f"/scim/v2/Users/{user_id}",
        json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations": [{"op": "replace", "path": "active", "value": active}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.data


def _user_id(session_factory) -> str:
    from sqlalchemy import select

    from scim_server.models import User

    with session_factory() as session:
        return session.scalars(select(User.id)).one()


def test_deactivated_customer_gets_no_response_and_loses_the_session(signed_in, independent_sp, session_factory, caplog):
    _scim_patch_active(signed_in.client, session_factory, _user_id(session_factory), False)
    _, path = independent_sp.redirect_request()
    assert_refused(signed_in.client.get(path), caplog, "is deleted or inactive", 403)
    _, again = independent_sp.redirect_request()
    assert signed_in.client.get(again).headers["Location"].startswith("/login?")  # the session is gone


def test_deleted_customer_gets_no_response(signed_in, independent_sp, session_factory, caplog):
    token = issue_token(session_factory, directory="default")  # the default connection's directory
    deleted = signed_in.client.delete(f"/scim/v2/Users/{_user_id(session_factory)}",
                                      headers={"Authorization": f"Bearer {token}"})
    assert deleted.status_code == 204
    _, path = independent_sp.redirect_request()
    assert_refused(signed_in.client.get(path), caplog, "is deleted or inactive", 403)

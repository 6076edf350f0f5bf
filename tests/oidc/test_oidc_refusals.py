"""Every way an OIDC callback must be refused: no session, no user, a clear page, a logged reason."""
from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import func, select

from scim_server.models import User
from tests.oidc.fake_op import code_of
from tests.sso.conftest import session_cookie

NOT_VALID = "The sign-in response was not valid."


@pytest.fixture(autouse=True)
def _capture_warnings(caplog):
    caplog.set_level(logging.WARNING, logger="scim_server.sso")


@pytest.fixture
def assert_refused(browser, caplog, session_factory, fake_op):
    def check(response, reason_fragment: str, status: int = 400, page: str = NOT_VALID) -> None:
        assert response.status_code == status, response.data
        assert page in response.data.decode()
        assert "Location" not in response.headers
        assert session_cookie(response) is None
        messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("OIDC login refused" in m and reason_fragment in m for m in messages), messages
        assert not any(fake_op.email in m for m in messages)
        with session_factory() as session:
            assert session.scalar(select(func.count()).select_from(User)) == 0
        after = browser.client.get("/portals")
        assert after.status_code == 302 and after.headers["Location"].startswith(fake_op.url)

    return check


def test_fake_op_happy_path_sends_pkce_verifier_and_logs_in(browser, fake_connection, fake_op, jsm_emulator):
    response = browser.login("/login?login_hint=olga@op.test&next=/portal/1")
    assert response.status_code == 302
    assert response.headers["Location"] == f"{jsm_emulator.url}/servicedesk/customer/portal/1"
    sent = fake_op.token_requests[0]
    assert sent["grant_type"] == "authorization_code" and len(sent["code_verifier"]) >= 43
    assert "client_secret" not in sent  # client_secret_basic: in the Authorization header only


def _now_plus(**offsets: int) -> dict[str, int]:
    return {claim: int(time.time()) + offset for claim, offset in offsets.items()}


@pytest.mark.parametrize("change, reason", [
    (lambda: {"aud": "someone-else"}, "aud"),
    (lambda: {"iss": "https://evil.example"}, "iss"),
    (lambda: _now_plus(exp=-600), "expired"),
    (lambda: _now_plus(iat=3600), "future"),
    (lambda: _now_plus(iat=-7200, exp=120), "issued too long ago"),
    (lambda: {"nonce": "a-nonce-of-another-login"}, "nonce"),
    (lambda: {"aud": ["bridge-client", "other-client"]}, "azp"),
], ids=["wrong-aud", "wrong-iss", "expired", "iat-in-future", "too-old", "nonce-mismatch", "several-aud-no-azp"])
def test_claim_checks(browser, fake_connection, fake_op, assert_refused, change, reason):
    fake_op.claims = change()
    assert_refused(browser.login("/login"), reason)


def test_missing_nonce(browser, fake_connection, fake_op, assert_refused):
    fake_op.drop = ("nonce",)
    assert_refused(browser.login("/login"), "nonce")


def test_tampered_signature(browser, fake_connection, fake_op, assert_refused):
    def flip(token: str) -> str:
        head, body, signature = token.split(".")
        return ".".join((head, body, ("A" if signature[5] != "A" else "B").join((signature[:5], signature[6:]))))

    fake_op.mutate_token = flip
    assert_refused(browser.login("/login"), "signature")


def test_changed_claims_after_signing(browser, fake_connection, fake_op, assert_refused):
    import base64
    import json

    def swap_email(token: str) -> str:
        head, body, signature = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        claims["email"] = "ceo@op.test"
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return ".".join((head, forged, signature))

    fake_op.mutate_token = swap_email
    assert_refused(browser.login("/login"), "signature")


def test_unsigned_token_refused(browser, fake_connection, fake_op, assert_refused):
    import base64
    import json

    def unsigned(token: str) -> str:
        _head, body, _signature = token.split(".")
        head = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).rstrip(b"=").decode()
        return f"{head}.{body}."

    fake_op.mutate_token = unsigned
    assert_refused(browser.login("/login"), "ID token")


def test_key_of_another_issuer_refused(browser, fake_connection, fake_op, assert_refused):
    from joserfc.jwk import RSAKey

    fake_op.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})  # same kid, foreign key
    fake_op.published = [RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})]
    assert_refused(browser.login("/login"), "signature")


def test_email_verified_false_refused(browser, fake_connection, fake_op, assert_refused):
    fake_op.claims = {"email_verified": False}
    assert_refused(browser.login("/login"), "email_verified: false", status=403, page="not verified")


def test_no_email_claim_refused(browser, fake_connection, fake_op, assert_refused):
    fake_op.drop = ("email",)
    fake_op.claims = {"preferred_username": "olga@op.test"}  # a user name is not a verified address
    assert_refused(browser.login("/login"), "no e-mail claim", page="did not send an e-mail address")


def test_callback_in_a_fresh_browser_refused(app, browser, fake_connection, fake_op, assert_refused):
    """The state was issued to another browser (login CSRF): the victim's browser never started it."""
    location = browser.authorize(browser.start("/login"))
    victim = app.test_client()
    response = browser.callback(location, client=victim)
    assert response.status_code == 400 and b"unknown or has expired" in response.data
    assert session_cookie(response) is None and fake_op.fetches["token"] == 0  # the code was never redeemed
    browser.client = victim
    assert_refused(response, "state matches no login started in this browser", page="unknown or has expired")


def test_state_of_one_tab_does_not_answer_another(browser, fake_connection, fake_op):
    first = browser.authorize(browser.start("/login"))
    second = browser.authorize(browser.start("/login"))
    forged = first.replace(code_of(first)["state"], code_of(second)["state"]).replace(
        code_of(first)["code"], "not-a-code")
    assert browser.callback(forged).status_code == 400  # a bad code under a valid state: refused, state burnt
    assert browser.callback(second).status_code == 400  # ...so the second tab must start again
    assert browser.callback(first).status_code == 302  # the first tab's own state still works


def test_mix_up_issuer_in_callback_refused(browser, fake_connection, fake_op, assert_refused):
    location = browser.authorize(browser.start("/login")) + "&iss=https%3A%2F%2Fother-op.example"
    assert_refused(browser.callback(location), "callback iss")


def test_provider_error_refused(browser, fake_connection, fake_op, assert_refused):
    location = browser.start("/login")
    state = code_of(location)["state"]
    response = browser.client.get(f"/oidc/callback?error=access_denied&state={state}")
    assert_refused(response, "error='access_denied'", status=403, page="did not sign you in")


def test_key_rotation_refetches_the_jwks_once(browser, fake_connection, fake_op, jsm_emulator):
    assert browser.login("/login").status_code == 302
    browser.client.post("/logout")
    assert fake_op.fetches["jwks"] == 1
    fake_op.rotate("k2")
    assert browser.login("/login").status_code == 302  # unknown kid: the JWKS is fetched again
    assert fake_op.fetches["jwks"] == 2
    browser.client.post("/logout")
    fake_op.header = {"alg": "RS256", "kid": "k3-never-published"}
    refused = browser.login("/login")
    assert refused.status_code == 400 and fake_op.fetches["jwks"] == 2  # refetches are bounded (30 s)

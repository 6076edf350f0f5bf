"""Every way a Response must be refused: a clear page for the visitor, a WARNING for the admin."""
from __future__ import annotations

import copy
import datetime as dt
import logging
import re
import time

import pytest
from lxml import etree
from sqlalchemy import func, select

from scim_server.models import User
from tests.fixtures.server import serve_wsgi
from tests.sso.conftest import configure_idp, session_cookie
from tests.sso.idp import NS, SAML, SAMLP, set_attribute, set_text, shift_times

REJECTED = "SAML response rejected"  # in the "SAML login refused [ref R-...]" line
NOT_VALID = "The sign-in response was not valid."


@pytest.fixture(autouse=True)
def _capture_warnings(caplog):
    caplog.set_level(logging.WARNING, logger="scim_server.sso")


def user_count(session_factory) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(User))


@pytest.fixture
def assert_refused(browser, caplog, session_factory):
    """Check a refusal end to end: the page, the admin's log line, and that nobody is logged in.

    ``users`` is how many users must exist afterwards (0: nobody was provisioned just in time).
    """

    def check(response, reason_fragment: str, status: int = 400, page: str = NOT_VALID, users: int = 0) -> None:
        assert response.status_code == status, response.data
        body = response.data.decode()
        assert "Sign-in failed" in body and page in body, body
        assert "Location" not in response.headers
        assert session_cookie(response) is None  # no session cookie
        messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(REJECTED in m and reason_fragment in m for m in messages), messages
        assert not any("alice@example.com" in m or "mallory" in m for m in messages)  # no assertion contents
        assert user_count(session_factory) == users  # nobody provisioned just in time
        after = browser.client.get("/portals")  # no login state: the portal list starts a new login
        assert after.status_code == 302 and after.headers["Location"].startswith(browser.idp.settings().sso_url)

    return check


def test_wrong_certificate(browser, new_request, rogue_idp, assert_refused):
    xml = browser.idp.response_xml(new_request(), signer=rogue_idp)
    assert_refused(browser.post(xml), "signature verification failed")


def test_unsigned(browser, new_request, assert_refused):
    xml = browser.idp.response_xml(new_request(), sign="none")
    assert_refused(browser.post(xml), "neither the Response nor the Assertion is signed")


@pytest.mark.parametrize("sign", ["response", "assertion"])
def test_attribute_changed_after_signing(browser, new_request, assert_refused, sign):
    xml = browser.idp.response_xml(new_request(), sign=sign)
    tampered = xml.replace(b">alice@example.com<", b">mallory@example.com<")
    assert tampered != xml
    assert_refused(browser.post(tampered), "signature verification failed")


def test_certificate_rotation_accepts_either_configured_cert(browser, new_request, rogue_idp, session_factory):
    both = browser.idp.settings().certificates + rogue_idp.settings().certificates
    configure_idp(session_factory, browser.idp.settings(certificates=both))
    xml = browser.idp.response_xml(new_request(), signer=rogue_idp)
    assert browser.post(xml).status_code == 302


EXPIRED = "The sign-in response has expired. Please sign in again."


@pytest.mark.parametrize(
    "mutation, reason, page",
    [
        (set_text(".//saml:Audience", "https://someone-else.example/sp"), "Audience", NOT_VALID),
        (set_attribute(".", "Destination", "https://evil.example/acs"), "Destination", NOT_VALID),
        (set_attribute(".//saml:SubjectConfirmationData", "Recipient", "https://evil.example/acs"), "Recipient", NOT_VALID),
        (set_text(".//saml:Assertion/saml:Issuer", "https://evil-idp.example"), "Issuer", NOT_VALID),
        (set_attribute(".//saml:SubjectConfirmationData", "NotOnOrAfter", None), "no NotOnOrAfter", NOT_VALID),
        (shift_times(dt.timedelta(hours=-1)), "expired", EXPIRED),
        (shift_times(dt.timedelta(hours=1)), "not yet valid", NOT_VALID),
        (set_attribute(".//saml:Conditions", "NotOnOrAfter", "2030-13-45T25:61:00Z"), "malformed time", NOT_VALID),
    ],
    ids=["audience", "destination", "recipient", "issuer", "no-expiry", "expired", "not-yet-valid", "bad-time"],
)
@pytest.mark.parametrize("sign", ["response", "assertion"])
def test_protocol_checks(browser, new_request, assert_refused, mutation, reason, page, sign):
    xml = browser.idp.response_xml(new_request(), mutate=mutation, sign=sign)
    assert_refused(browser.post(xml), reason, page=page)


def test_clock_skew_tolerated(browser, new_request):
    xml = browser.idp.response_xml(new_request(), mutate=shift_times(dt.timedelta(seconds=60)))
    assert browser.post(xml).status_code == 302


REPLAYED = "This sign-in response was already used."


def test_replayed_response(browser, new_request, assert_refused):
    xml = browser.idp.response_xml(new_request())
    assert browser.post(xml).status_code == 302
    browser.client.post("/logout")
    assert_refused(browser.post(xml), "replayed", page=REPLAYED, users=1)


def test_replayed_idp_initiated_response(browser, session_factory, assert_refused):
    """Without InResponseTo only the assertion-ID cache stops a replay: it must."""
    configure_idp(session_factory, browser.idp.settings(allow_idp_initiated=True))
    xml = browser.idp.response_xml(None)
    assert browser.post(xml, relay_state="1").status_code == 302
    browser.client.post("/logout")
    assert_refused(browser.post(xml, relay_state="1"), "replayed", page=REPLAYED, users=1)


def test_replay_from_another_browser(browser, new_request, app, assert_refused):
    """The response captured and posted from a fresh browser (no cookies at all) is refused too."""
    xml = browser.idp.response_xml(new_request())
    assert browser.post(xml).status_code == 302
    browser.client = app.test_client()
    assert_refused(browser.post(xml), "replayed", page=REPLAYED, users=1)


def test_unknown_in_response_to(browser, assert_refused):
    xml = browser.idp.response_xml("_never-issued-by-us")
    assert_refused(browser.post(xml), "InResponseTo matches no pending AuthnRequest", page="unknown or has expired")


def test_unsolicited_response_refused_by_default(browser, assert_refused):
    xml = browser.idp.response_xml(None)
    assert_refused(browser.post(xml), "unsolicited", page="start signing in from the portal link")


def test_unsigned_in_response_to_is_not_trusted(browser, new_request, assert_refused):
    """Assertion-only signing: an InResponseTo added to the unsigned Response envelope does not count."""
    request_id = new_request()
    xml = browser.idp.response_xml(None, sign="assertion")
    root = etree.fromstring(xml)
    root.set("InResponseTo", request_id)
    assert_refused(browser.post(etree.tostring(root)), "unsolicited", page="start signing in from the portal link")


def test_idp_error_status(browser, new_request, assert_refused):
    def failed(root):
        root.find("samlp:Status/samlp:StatusCode", NS).set("Value", "urn:oasis:names:tc:SAML:2.0:status:Responder")

    xml = browser.idp.response_xml(new_request(), mutate=failed, sign="none")
    assert_refused(browser.post(xml), "status", status=403, page="The identity provider did not sign you in")


def test_encrypted_assertion_refused(browser, new_request, assert_refused):
    def encrypt(root):
        assertion = root.find("saml:Assertion", NS)
        encrypted = etree.Element(f"{{{SAML}}}EncryptedAssertion")
        assertion.addprevious(encrypted)
        root.remove(assertion)

    xml = browser.idp.response_xml(new_request(), mutate=encrypt, sign="response")
    assert_refused(browser.post(xml), "EncryptedAssertion", page="encrypted the sign-in assertion")


def test_sha1_signature_refused(browser, new_request, assert_refused, monkeypatch):
    from saml2.xmldsig import DIGEST_SHA1, SIG_RSA_SHA1

    from tests.sso import idp as idp_module

    original = idp_module.pre_signature_part
    monkeypatch.setattr(
        idp_module, "pre_signature_part",
        lambda **kw: original(**{**kw, "sign_alg": SIG_RSA_SHA1, "digest_alg": DIGEST_SHA1}),
    )
    xml = browser.idp.response_xml(new_request())
    assert b"rsa-sha1" in xml
    assert_refused(browser.post(xml), "signature verification failed")


def test_no_email_refused_with_clear_page(browser, new_request, caplog, session_factory):
    """A valid response that does not say who the visitor is: refused, logged, nobody logged in."""
    xml = browser.idp.response_xml(new_request(), email="not-an-email", attributes={"firstName": ["Nobody"]})
    response = browser.post(xml)
    assert response.status_code == 400
    assert b"did not send an e-mail address" in response.data
    assert session_cookie(response) is None
    assert any("SAML login refused" in r.getMessage() and "no e-mail" in r.getMessage() for r in caplog.records)
    assert user_count(session_factory) == 0
    assert browser.client.get("/portals").status_code == 302


# -- the "comment inside NameID" truncation trick -------------------------------------------------
@pytest.mark.parametrize("where", ["nameid", "attribute"])
def test_comment_inside_nameid_does_not_truncate_identity(browser, new_request, session_factory, where):
    """The IdP vouches for alice@example.com.evil.test; a comment inserted after signing (c14n ignores
    comments, so the signature still verifies) must not make us read only "alice@example.com"."""
    attacker = "alice@example.com.evil.test"
    attributes = {"firstName": ["Mallory"]} if where == "nameid" else {"email": [attacker]}
    xml = browser.idp.response_xml(new_request(), email=attacker, attributes=attributes)
    tricked = xml.replace(f">{attacker}<".encode(), b">alice@example.com<!---->.evil.test<")
    assert tricked != xml and b"<!---->" in tricked
    response = browser.post(tricked)
    assert response.status_code == 302, response.data
    with session_factory() as session:
        names = session.scalars(select(User.user_name)).all()
    assert names == [attacker]  # nobody called alice@example.com was provisioned
    page = browser.client.get("/portals").data.decode()
    assert f"signed in as <strong>{attacker}</strong>" in page


# -- unsafe XML -------------------------------------------------------------------------------------
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" Version="2.0">&x;</samlp:Response>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" Version="2.0">&lol9;</samlp:Response>"""


@pytest.mark.parametrize("payload", [XXE, BILLION_LAUGHS], ids=["xxe", "billion-laughs"])
def test_unsafe_xml_refused_quickly(browser, assert_refused, payload):
    started = time.monotonic()
    response = browser.post(payload)
    assert time.monotonic() - started < 2
    assert_refused(response, "unsafe XML")
    assert b"root:" not in response.data


def _with_doctype(signed: bytes, doctype: str, reference: str) -> bytes:
    """A real signed response with a DTD added and an entity referenced inside the e-mail value."""
    body = re.sub(rb"^<\?xml[^>]*\?>\s*", b"", signed)
    assert b">alice@example.com<" in body
    body = body.replace(b">alice@example.com<", f">{reference}<".encode(), 1)
    return f'<?xml version="1.0"?>\n{doctype}\n'.encode() + body


@pytest.fixture
def dtd_server():
    """A web server counting requests: an external DTD or entity must never be fetched."""
    hits = []

    def app(environ, start_response):
        hits.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "application/xml-dtd")])
        return [b'<!ENTITY x "alice@example.com">']

    with serve_wsgi(app) as url:
        yield url, hits


@pytest.mark.parametrize("variant", ["file-entity", "http-entity", "parameter-entity", "external-dtd", "billion-laughs"])
def test_unsafe_xml_in_signed_response(browser, new_request, assert_refused, dtd_server, variant):
    url, hits = dtd_server
    doctypes = {
        "file-entity": ('<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "&x;"),
        "http-entity": (f'<!DOCTYPE r [<!ENTITY x SYSTEM "{url}/entity">]>', "&x;"),
        "parameter-entity": (f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{url}/param.dtd"> %p;]>', "&x;"),
        "external-dtd": (f'<!DOCTYPE samlp:Response SYSTEM "{url}/external.dtd">', "&x;"),
        "billion-laughs": (BILLION_LAUGHS.split(b"\n<samlp:Response")[0].split(b"?>", 1)[1].decode(), "&lol9;"),
    }
    doctype, reference = doctypes[variant]
    xml = _with_doctype(browser.idp.response_xml(new_request()), doctype, reference)
    started = time.monotonic()
    response = browser.post(xml)
    assert time.monotonic() - started < 2
    assert_refused(response, "unsafe XML")
    assert b"root:" not in response.data
    assert hits == []  # nothing was fetched


def test_not_base64_and_not_xml(browser, assert_refused):
    assert_refused(browser.follow(browser.client.post("/saml/acs", data={"SAMLResponse": "%%%"})), "base64")
    assert_refused(browser.post(b"<not-closed"), "well-formed")
    assert_refused(browser.follow(browser.client.post("/saml/acs", data={})), "no SAMLResponse",
                   page="The sign-in response was missing.")


# -- signature wrapping ------------------------------------------------------------------------------
def _forged_copy(assertion: etree._Element, new_id: str | None = None) -> etree._Element:
    evil = copy.deepcopy(assertion)
    for signature in evil.findall("ds:Signature", NS):
        evil.remove(signature)
    for value in evil.iter(f"{{{SAML}}}AttributeValue", f"{{{SAML}}}NameID"):
        if value.text == "alice@example.com":
            value.text = "mallory@example.com"
    if new_id:
        evil.set("ID", new_id)
    return evil


def _signed_assertion_response(browser, new_request) -> etree._Element:
    return etree.fromstring(browser.idp.response_xml(new_request(), sign="assertion"))


@pytest.mark.parametrize("position", ["before", "after"])
def test_wrapping_forged_assertion_beside_signed_one(browser, new_request, assert_refused, position):
    root = _signed_assertion_response(browser, new_request)
    signed = root.find("saml:Assertion", NS)
    forged = _forged_copy(signed, "_evil")
    signed.addprevious(forged) if position == "before" else signed.addnext(forged)
    assert_refused(browser.post(etree.tostring(root)), "exactly one Assertion")


def test_wrapping_forged_assertion_inside_signed_one(browser, new_request, assert_refused):
    root = _signed_assertion_response(browser, new_request)
    signed = root.find("saml:Assertion", NS)
    advice = etree.SubElement(signed, f"{{{SAML}}}Advice")
    advice.append(_forged_copy(signed, "_evil"))
    assert_refused(browser.post(etree.tostring(root)), "exactly one Assertion")


def test_wrapping_signed_assertion_moved_into_extensions(browser, new_request, assert_refused):
    """XSW: the forged assertion (same ID) takes the signed one's place, which hides in Extensions."""
    root = _signed_assertion_response(browser, new_request)
    signed = root.find("saml:Assertion", NS)
    evil = _forged_copy(signed)
    signed.addprevious(evil)
    root.remove(signed)
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    root.find("saml:Issuer", NS).addnext(extensions)
    extensions.append(signed)
    assert_refused(browser.post(etree.tostring(root)), "Assertion")


def test_wrapping_signed_assertion_moved_into_signature_object(browser, new_request, assert_refused):
    """XSW: the forged assertion keeps the original signature, the signed original sits in ds:Object."""
    root = _signed_assertion_response(browser, new_request)
    signed = root.find("saml:Assertion", NS)
    evil = _forged_copy(signed)
    signature = copy.deepcopy(signed.find("ds:Signature", NS))
    evil.find("saml:Issuer", NS).addnext(signature)
    obj = etree.SubElement(signature, "{http://www.w3.org/2000/09/xmldsig#}Object")
    root.remove(signed)
    obj.append(signed)
    root.find("samlp:Status", NS).addnext(evil)
    assert_refused(browser.post(etree.tostring(root)), "Assertion")


def test_wrapping_signed_response_inside_forged_response(browser, new_request, assert_refused):
    """XSW on a signed Response: a forged envelope carries the signed original in Extensions."""
    original = etree.fromstring(browser.idp.response_xml(new_request(), sign="response"))
    forged = copy.deepcopy(original)
    forged.remove(forged.find("ds:Signature", NS))
    forged.remove(forged.find("saml:Assertion", NS))
    forged.append(_forged_copy(original.find("saml:Assertion", NS), "_evil"))
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    forged.find("saml:Issuer", NS).addnext(extensions)
    extensions.append(original)
    assert_refused(browser.post(etree.tostring(forged)), "Assertion")


def test_wrapping_response_signature_moved_into_forged_assertion(browser, new_request, assert_refused):
    """The Response's signature (over the whole Response) moved into a forged, unsigned assertion:
    it still verifies for the Response, but it must not count as the assertion's signature."""
    root = etree.fromstring(browser.idp.response_xml(new_request(), sign="response"))
    signature = root.find("ds:Signature", NS)
    root.remove(signature)
    assertion = root.find("saml:Assertion", NS)
    forged = _forged_copy(assertion)
    forged.find("saml:Issuer", NS).addnext(signature)
    root.replace(assertion, forged)
    assert_refused(browser.post(etree.tostring(root)), "signature")


def test_wrapping_duplicate_id_in_response_extensions(browser, new_request, assert_refused):
    """A second element carrying the signed assertion's ID (outside any Assertion) must not let a
    forged assertion borrow the signature."""
    root = _signed_assertion_response(browser, new_request)
    signed = root.find("saml:Assertion", NS)
    decoy = etree.Element(f"{{{SAMLP}}}Extensions", ID=signed.get("ID"))
    root.find("saml:Issuer", NS).addnext(decoy)
    for value in signed.iter(f"{{{SAML}}}AttributeValue"):
        if value.text == "alice@example.com":
            value.text = "mallory@example.com"
    assert_refused(browser.post(etree.tostring(root)), "signature verification failed")


# -- open redirect through RelayState ---------------------------------------------------------------
FOREIGN_RELAY_STATES = [
    "https://evil.example",
    "//evil.example",
    "/\\evil.example",
    "javascript:alert(1)",
    "http://testserver.evil.example/portal/1",
    "/portal/1\n",
]
OUTSIDE = "This sign-in link points outside this service"


@pytest.mark.parametrize("relay_state", FOREIGN_RELAY_STATES)
def test_open_redirect_relay_state_refused_idp_initiated(browser, session_factory, assert_refused, relay_state):
    configure_idp(session_factory, browser.idp.settings(allow_idp_initiated=True))
    response = browser.post(browser.idp.response_xml(None), relay_state=relay_state)
    assert_refused(response, "RelayState is not one of our portal links", page=OUTSIDE)


def test_open_redirect_relay_state_refused_sp_initiated(browser, new_request, assert_refused):
    """A RelayState swapped on the way back is refused even though the stored target is safe, and the
    response is not burned (the genuine post still works)."""
    request_id, relay = browser.start("/portal/2")
    xml = browser.idp.response_xml(request_id)
    assert_refused(browser.post(xml, "https://evil.example/phish"), "RelayState", page=OUTSIDE)
    genuine = browser.post(xml, relay)
    assert genuine.status_code == 302 and genuine.headers["Location"].endswith("/servicedesk/customer/portal/2")

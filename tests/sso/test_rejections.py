"""Every way a Response must be refused: a clear page for the visitor, a WARNING for the admin."""
from __future__ import annotations

import copy
import datetime as dt
import logging
import time

import pytest
from lxml import etree
from sqlalchemy import func, select

from scim_server.models import User
from tests.sso.conftest import configure_idp
from tests.sso.idp import NS, SAML, SAMLP, set_attribute, set_text, shift_times

REJECTED = "SAML response rejected"


@pytest.fixture(autouse=True)
def _capture_warnings(caplog):
    caplog.set_level(logging.WARNING, logger="scim_server.sso")


def assert_refused(response, caplog, reason_fragment: str, status: int = 400) -> None:
    assert response.status_code == status, response.data
    assert b"Sign-in failed" in response.data
    assert "Location" not in response.headers
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(REJECTED in m and reason_fragment in m for m in messages), messages
    assert not any("alice@example.com" in m or "mallory" in m for m in messages)  # no assertion contents


def no_user_created(session_factory) -> bool:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(User)) == 0


def test_wrong_certificate(browser, new_request, rogue_idp, caplog, session_factory):
    xml = browser.idp.response_xml(new_request(), signer=rogue_idp)
    assert_refused(browser.post(xml), caplog, "signature verification failed")
    assert no_user_created(session_factory)


def test_unsigned(browser, new_request, caplog, session_factory):
    xml = browser.idp.response_xml(new_request(), sign="none")
    assert_refused(browser.post(xml), caplog, "neither the Response nor the Assertion is signed")
    assert no_user_created(session_factory)


@pytest.mark.parametrize("sign", ["response", "assertion"])
def test_attribute_changed_after_signing(browser, new_request, caplog, session_factory, sign):
    xml = browser.idp.response_xml(new_request(), sign=sign)
    tampered = xml.replace(b">alice@example.com<", b">mallory@example.com<")
    assert tampered != xml
    assert_refused(browser.post(tampered), caplog, "signature verification failed")
    assert no_user_created(session_factory)


def test_certificate_rotation_accepts_either_configured_cert(browser, new_request, rogue_idp, session_factory):
    both = browser.idp.settings().certificates + rogue_idp.settings().certificates
    configure_idp(session_factory, browser.idp.settings(certificates=both))
    xml = browser.idp.response_xml(new_request(), signer=rogue_idp)
    assert browser.post(xml).status_code == 302


@pytest.mark.parametrize(
    "mutation, reason",
    [
        (set_text(".//saml:Audience", "https://someone-else.example/sp"), "Audience"),
        (set_attribute(".", "Destination", "https://evil.example/acs"), "Destination"),
        (set_attribute(".//saml:SubjectConfirmationData", "Recipient", "https://evil.example/acs"), "Recipient"),
        (set_text(".//saml:Assertion/saml:Issuer", "https://evil-idp.example"), "Issuer"),
        (set_attribute(".//saml:SubjectConfirmationData", "NotOnOrAfter", None), "no NotOnOrAfter"),
        (shift_times(dt.timedelta(hours=-1)), "expired"),
        (shift_times(dt.timedelta(hours=1)), "not yet valid"),
    ],
    ids=["audience", "destination", "recipient", "issuer", "no-expiry", "expired", "not-yet-valid"],
)
@pytest.mark.parametrize("sign", ["response", "assertion"])
def test_protocol_checks(browser, new_request, caplog, session_factory, mutation, reason, sign):
    xml = browser.idp.response_xml(new_request(), mutate=mutation, sign=sign)
    assert_refused(browser.post(xml), caplog, reason)
    assert no_user_created(session_factory)


def test_clock_skew_tolerated(browser, new_request):
    xml = browser.idp.response_xml(new_request(), mutate=shift_times(dt.timedelta(seconds=60)))
    assert browser.post(xml).status_code == 302


def test_replayed_response(browser, new_request, caplog):
    xml = browser.idp.response_xml(new_request())
    assert browser.post(xml).status_code == 302
    browser.client.get("/saml/logout")
    assert_refused(browser.post(xml), caplog, "replayed")


def test_unknown_in_response_to(browser, caplog, session_factory):
    xml = browser.idp.response_xml("_never-issued-by-us")
    assert_refused(browser.post(xml), caplog, "InResponseTo matches no pending AuthnRequest")
    assert no_user_created(session_factory)


def test_unsolicited_response_refused_by_default(browser, caplog, session_factory):
    xml = browser.idp.response_xml(None)
    assert_refused(browser.post(xml), caplog, "unsolicited")
    assert no_user_created(session_factory)


def test_unsigned_in_response_to_is_not_trusted(browser, new_request, caplog, session_factory):
    """Assertion-only signing: an InResponseTo added to the unsigned Response envelope does not count."""
    request_id = new_request()
    xml = browser.idp.response_xml(None, sign="assertion")
    root = etree.fromstring(xml)
    root.set("InResponseTo", request_id)
    assert_refused(browser.post(etree.tostring(root)), caplog, "unsolicited")


def test_idp_error_status(browser, new_request, caplog):
    def failed(root):
        root.find("samlp:Status/samlp:StatusCode", NS).set("Value", "urn:oasis:names:tc:SAML:2.0:status:Responder")

    xml = browser.idp.response_xml(new_request(), mutate=failed, sign="none")
    assert_refused(browser.post(xml), caplog, "status", status=403)


def test_encrypted_assertion_refused(browser, new_request, caplog):
    def encrypt(root):
        assertion = root.find("saml:Assertion", NS)
        encrypted = etree.Element(f"{{{SAML}}}EncryptedAssertion")
        assertion.addprevious(encrypted)
        root.remove(assertion)

    xml = browser.idp.response_xml(new_request(), mutate=encrypt, sign="response")
    assert_refused(browser.post(xml), caplog, "EncryptedAssertion")


def test_sha1_signature_refused(browser, new_request, caplog, monkeypatch):
    from tests.sso import idp as idp_module
    from saml2.xmldsig import DIGEST_SHA1, SIG_RSA_SHA1

    original = idp_module.pre_signature_part
    monkeypatch.setattr(
        idp_module, "pre_signature_part",
        lambda **kw: original(**{**kw, "sign_alg": SIG_RSA_SHA1, "digest_alg": DIGEST_SHA1}),
    )
    xml = browser.idp.response_xml(new_request())
    assert b"rsa-sha1" in xml
    assert_refused(browser.post(xml), caplog, "signature verification failed")


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
def test_unsafe_xml_refused_quickly(browser, caplog, payload):
    started = time.monotonic()
    response = browser.post(payload)
    assert time.monotonic() - started < 2
    assert_refused(response, caplog, "unsafe XML")
    assert b"root:" not in response.data


def test_not_base64_and_not_xml(browser, caplog):
    assert_refused(browser.client.post("/saml/acs", data={"SAMLResponse": "%%%"}), caplog, "base64")
    assert_refused(browser.post(b"<not-closed"), caplog, "well-formed")
    assert_refused(browser.client.post("/saml/acs", data={}), caplog, "no SAMLResponse")


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


def test_wrapping_forged_assertion_beside_signed_one(browser, new_request, caplog, session_factory):
    root = _signed_assertion_response(browser, new_request)
    signed = root.find("saml:Assertion", NS)
    signed.addprevious(_forged_copy(signed, "_evil"))
    assert_refused(browser.post(etree.tostring(root)), caplog, "exactly one Assertion")
    assert no_user_created(session_factory)


def test_wrapping_forged_assertion_inside_signed_one(browser, new_request, caplog, session_factory):
    root = _signed_assertion_response(browser, new_request)
    signed = root.find("saml:Assertion", NS)
    advice = etree.SubElement(signed, f"{{{SAML}}}Advice")
    advice.append(_forged_copy(signed, "_evil"))
    assert_refused(browser.post(etree.tostring(root)), caplog, "exactly one Assertion")


def test_wrapping_signed_assertion_moved_into_extensions(browser, new_request, caplog, session_factory):
    """XSW: the forged assertion (same ID) takes the signed one's place, which hides in Extensions."""
    root = _signed_assertion_response(browser, new_request)
    signed = root.find("saml:Assertion", NS)
    evil = _forged_copy(signed)
    signed.addprevious(evil)
    root.remove(signed)
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    root.find("saml:Issuer", NS).addnext(extensions)
    extensions.append(signed)
    assert_refused(browser.post(etree.tostring(root)), caplog, "Assertion")
    assert no_user_created(session_factory)


def test_wrapping_signed_assertion_moved_into_signature_object(browser, new_request, caplog, session_factory):
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
    assert_refused(browser.post(etree.tostring(root)), caplog, "Assertion")
    assert no_user_created(session_factory)


def test_wrapping_signed_response_inside_forged_response(browser, new_request, caplog, session_factory):
    """XSW on a signed Response: a forged envelope carries the signed original in Extensions."""
    original = etree.fromstring(browser.idp.response_xml(new_request(), sign="response"))
    forged = copy.deepcopy(original)
    forged.remove(forged.find("ds:Signature", NS))
    forged.remove(forged.find("saml:Assertion", NS))
    forged.append(_forged_copy(original.find("saml:Assertion", NS), "_evil"))
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    forged.find("saml:Issuer", NS).addnext(extensions)
    extensions.append(original)
    assert_refused(browser.post(etree.tostring(forged)), caplog, "Assertion")
    assert no_user_created(session_factory)

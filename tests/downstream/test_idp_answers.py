"""The bridge answers the registered SP with Responses an independent SP (pysaml2) accepts."""
from __future__ import annotations

import base64
import datetime as dt

from lxml import etree
from sqlalchemy import func, select

from scim_server.db import Base
from tests.downstream.conftest import EMAIL
from tests.downstream.sp import SP_ACS_URL, crafted_request, posted_form, query_of, redirect_query

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
NS = {"samlp": "urn:oasis:names:tc:SAML:2.0:protocol", "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
      "ds": "http://www.w3.org/2000/09/xmldsig#", "md": MD}
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


def _instant(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def test_metadata_names_entity_sso_bindings_and_a_kept_certificate(client, make_app):
    response = client.get("/idp/metadata")
    assert response.status_code == 200 and response.mimetype == "application/samlmetadata+xml"
    root = etree.fromstring(response.data)
    assert root.get("entityID") == "http://testserver/idp/metadata"
    services = {s.get("Binding"): s.get("Location") for s in root.findall(".//md:SingleSignOnService", NS)}
    assert services == {
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect": "http://testserver/idp/sso",
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST": "http://testserver/idp/sso",
    }
    assert root.findtext(".//md:NameIDFormat", namespaces=NS) == "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    certificate = root.findtext(".//md:KeyDescriptor[@use='signing']//ds:X509Certificate", namespaces=NS)
    assert len(certificate) > 500
    sp_certificate = etree.fromstring(client.get("/saml/metadata").data).findtext(".//ds:X509Certificate", namespaces=NS)
    assert certificate != sp_certificate  # the IdP has its own key pair
    # Another process on the same database (a restart) publishes the same certificate.
    assert make_app().test_client().get("/idp/metadata").data == response.data


def test_signed_in_customer_gets_a_response_the_independent_sp_accepts(signed_in, independent_sp):
    request_id, path = independent_sp.redirect_request(relay_state="https://help.example.test/portal/1")
    page = signed_in.client.get(path)
    assert page.status_code == 200, page.data
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]  # /idp/post.js submits the form
    assert page.headers["Cache-Control"] == "no-store"
    form = posted_form(page.data.decode())
    assert form["action"] == SP_ACS_URL
    assert form["RelayState"] == "https://help.example.test/portal/1"

    verdict = independent_sp.accept(form["SAMLResponse"], request_id)  # xmlsec1 + pysaml2's checks
    assert verdict.name_id.text == EMAIL
    assert verdict.name_id.format == "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    assert verdict.in_response_to == request_id
    attributes = {a.name: [v.text for v in a.attribute_value] for a in verdict.assertion.attribute_statement[0].attribute}
    assert attributes["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"] == [EMAIL]
    assert attributes["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"] == ["Alice"]


def test_response_and_assertion_are_both_signed_rsa_sha256_with_short_validity(signed_in, independent_sp):
    request_id, path = independent_sp.redirect_request()
    form = posted_form(signed_in.client.get(path).data.decode())
    root = etree.fromstring(base64.b64decode(form["SAMLResponse"]))
    assertion = root.find("saml:Assertion", NS)
    for element in (root, assertion):
        signature = element.find("ds:Signature", NS)
        assert signature is not None and signature.getprevious().tag == f"{{{NS['saml']}}}Issuer"
        assert signature.find("ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm") == RSA_SHA256
        assert signature.find("ds:SignedInfo/ds:Reference", NS).get("URI") == "#" + element.get("ID")
    assert root.get("Destination") == SP_ACS_URL and root.get("InResponseTo") == request_id
    issued = _instant(root.get("IssueInstant"))
    data = assertion.find("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", NS)
    assert data.get("Recipient") == SP_ACS_URL and data.get("InResponseTo") == request_id
    assert dt.timedelta(0) < _instant(data.get("NotOnOrAfter")) - issued <= dt.timedelta(minutes=5)
    conditions = assertion.find("saml:Conditions", NS)
    assert _instant(conditions.get("NotOnOrAfter")) - issued <= dt.timedelta(hours=1)
    assert assertion.findtext("saml:Conditions/saml:AudienceRestriction/saml:Audience", namespaces=NS) == \
        independent_sp.entity_id
    assert assertion.findtext("saml:Subject/saml:NameID", namespaces=NS) == EMAIL


def test_post_binding_goes_through_a_get_and_is_answered(signed_in, independent_sp):
    request_id, saml_request = independent_sp.post_request("http://testserver/idp/sso")
    posted = signed_in.client.post("/idp/sso", data={"SAMLRequest": saml_request, "RelayState": "r1"})
    assert posted.status_code == 303  # the Lax session cookie comes with the GET that follows
    assert posted.headers["Location"].startswith("/idp/resume?request=")
    form = posted_form(signed_in.client.get(posted.headers["Location"]).data.decode())
    assert form["RelayState"] == "r1"
    assert independent_sp.accept(form["SAMLResponse"], request_id).name_id.text == EMAIL


def _row_counts(session_factory) -> dict[str, int]:
    with session_factory() as session:
        return {t.name: session.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def test_without_a_session_the_visitor_is_sent_to_login_and_nothing_is_stored(
    client, independent_sp, session_factory, browser
):
    before = _row_counts(session_factory)
    request_id, path = independent_sp.redirect_request()
    response = client.get(path)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/login?")
    next_url = query_of(location)["next"]
    assert next_url.startswith("/idp/resume?request=")
    assert _row_counts(session_factory) == before  # an anonymous AuthnRequest writes nothing

    # Signed in upstream, the resume link is answered.
    assert browser.login("/saml/login", email=EMAIL).status_code == 302
    form = posted_form(client.get(next_url).data.decode())
    assert independent_sp.accept(form["SAMLResponse"], request_id).name_id.text == EMAIL


def test_login_hint_from_the_request_subject_is_passed_to_login(client, independent_sp):
    xml = crafted_request().replace(
        b"</saml:Issuer>",
        b"</saml:Issuer><saml:Subject><saml:NameID>carol@example.com</saml:NameID></saml:Subject>",
    )
    response = client.get(redirect_query(xml))
    assert response.status_code == 302
    assert query_of(response.headers["Location"])["login_hint"] == "carol@example.com"


def test_nameid_is_the_stored_email_exactly(signed_in, independent_sp, session_factory):
    """A login asserted as ALICE@EXAMPLE.COM still gets the address the bridge stored (what JSM knows)."""
    from scim_server.models import User

    with session_factory() as session, session.begin():
        user = session.scalars(select(User)).one()
        user.document = {**user.document, "emails": [{"value": "Alice.Stored@Example.com", "primary": True}]}
    request_id, path = independent_sp.redirect_request()
    form = posted_form(signed_in.client.get(path).data.decode())
    assert independent_sp.accept(form["SAMLResponse"], request_id).name_id.text == "Alice.Stored@Example.com"


def test_portal_links_go_to_the_jsm_portal_once_an_sp_is_registered(client, independent_sp, jsm_emulator):
    response = client.get("/portal/2")
    assert response.status_code == 302  # no bridge login first: JSM's login comes back through /idp/sso
    assert response.headers["Location"] == f"{jsm_emulator.url}/servicedesk/customer/portal/2"
    assert client.get("/portal/not-a-number").status_code == 404

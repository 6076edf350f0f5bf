"""The signed SAML Response the bridge sends to the registered SP (Web Browser SSO profile).

Built with lxml (never by string formatting). The Assertion is signed first, then the Response
around it, both enveloped RSA-SHA256 signatures with SHA-256 digests and exclusive
canonicalization (signxml), each placed right after its Issuer as the schema requires.
"""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from lxml import etree
from signxml import XMLSigner
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

from scim_server.idp.authn_request import PendingRequest
from scim_server.idp.identity import IdentityProvider
from scim_server.sso.response import BEARER, STATUS_SUCCESS
from scim_server.sso.safexml import DS, SAML, SAMLP
from scim_server.sso.sp import NAMEID_EMAIL

CONFIRMATION_LIFETIME = dt.timedelta(minutes=5)  # contract: at most 5 minutes
CONDITIONS_LIFETIME = dt.timedelta(minutes=10)  # contract: at most 1 hour
CONDITIONS_SKEW = dt.timedelta(seconds=60)  # NotBefore slightly in the past for SP clocks
AUTHN_CONTEXT = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
ATTRNAME_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"


@dataclass(frozen=True)
class Subject:
    """Who the assertion is about: the stored user, as JSM knows them."""

    email: str
    given_name: str | None = None
    family_name: str | None = None
    display_name: str | None = None
    session_not_on_or_after: dt.datetime | None = None


def new_id() -> str:
    return "_" + secrets.token_hex(20)


def instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def signed_response(idp: IdentityProvider, pending: PendingRequest, subject: Subject, now: dt.datetime) -> bytes:
    """The serialized Response, Response and Assertion both signed."""
    assertion = _sign(idp, _assertion(idp, pending, subject, now))
    response = _response(idp, pending, now)
    response.append(assertion)
    return etree.tostring(_sign(idp, response), xml_declaration=True, encoding="UTF-8")


def _response(idp: IdentityProvider, pending: PendingRequest, now: dt.datetime) -> etree._Element:
    response = etree.Element(
        f"{{{SAMLP}}}Response",
        nsmap={"samlp": SAMLP, "saml": SAML},
        ID=new_id(),
        Version="2.0",
        IssueInstant=instant(now),
        Destination=pending.acs_url,
        InResponseTo=pending.request_id,
    )
    _issuer(response, idp)
    status = etree.SubElement(response, f"{{{SAMLP}}}Status")
    etree.SubElement(status, f"{{{SAMLP}}}StatusCode", Value=STATUS_SUCCESS)
    return response


def _assertion(idp: IdentityProvider, pending: PendingRequest, subject: Subject, now: dt.datetime) -> etree._Element:
    assertion_id = new_id()
    assertion = etree.Element(
        f"{{{SAML}}}Assertion", nsmap={"saml": SAML}, ID=assertion_id, Version="2.0", IssueInstant=instant(now)
    )
    _issuer(assertion, idp)
    _subject(assertion, pending, subject, now)
    conditions = etree.SubElement(
        assertion,
        f"{{{SAML}}}Conditions",
        NotBefore=instant(now - CONDITIONS_SKEW),
        NotOnOrAfter=instant(now + CONDITIONS_LIFETIME),
    )
    audience = etree.SubElement(conditions, f"{{{SAML}}}AudienceRestriction")
    etree.SubElement(audience, f"{{{SAML}}}Audience").text = pending.sp_entity_id
    _authn_statement(assertion, assertion_id, subject, now)
    _attributes(assertion, subject)
    return assertion


def _issuer(parent: etree._Element, idp: IdentityProvider) -> None:
    etree.SubElement(parent, f"{{{SAML}}}Issuer").text = idp.entity_id


def _subject(assertion: etree._Element, pending: PendingRequest, subject: Subject, now: dt.datetime) -> None:
    element = etree.SubElement(assertion, f"{{{SAML}}}Subject")
    name_id = etree.SubElement(element, f"{{{SAML}}}NameID", Format=NAMEID_EMAIL)
    name_id.text = subject.email
    confirmation = etree.SubElement(element, f"{{{SAML}}}SubjectConfirmation", Method=BEARER)
    etree.SubElement(
        confirmation,
        f"{{{SAML}}}SubjectConfirmationData",
        NotOnOrAfter=instant(now + CONFIRMATION_LIFETIME),
        Recipient=pending.acs_url,
        InResponseTo=pending.request_id,
    )


def _authn_statement(assertion: etree._Element, assertion_id: str, subject: Subject, now: dt.datetime) -> None:
    attributes = {"AuthnInstant": instant(now), "SessionIndex": assertion_id}
    if subject.session_not_on_or_after is not None:
        attributes["SessionNotOnOrAfter"] = instant(subject.session_not_on_or_after)
    statement = etree.SubElement(assertion, f"{{{SAML}}}AuthnStatement", attributes)
    context = etree.SubElement(statement, f"{{{SAML}}}AuthnContext")
    etree.SubElement(context, f"{{{SAML}}}AuthnContextClassRef").text = AUTHN_CONTEXT


def _attributes(assertion: etree._Element, subject: Subject) -> None:
    """E-mail and names under the claim URIs Atlassian Cloud reads (the NameID is what counts)."""
    values = {
        CLAIMS + "emailaddress": subject.email,
        CLAIMS + "givenname": subject.given_name,
        CLAIMS + "surname": subject.family_name,
        "http://schemas.microsoft.com/identity/claims/displayname": subject.display_name,
    }
    statement = etree.SubElement(assertion, f"{{{SAML}}}AttributeStatement")
    for name, value in values.items():
        if value:
            attribute = etree.SubElement(statement, f"{{{SAML}}}Attribute", Name=name, NameFormat=ATTRNAME_URI)
            etree.SubElement(attribute, f"{{{SAML}}}AttributeValue").text = value


def _sign(idp: IdentityProvider, element: etree._Element) -> etree._Element:
    """``element`` with an enveloped signature as the child right after its Issuer."""
    placeholder = etree.Element(f"{{{DS}}}Signature", nsmap={"ds": DS}, Id="placeholder")
    element.find(f"{{{SAML}}}Issuer").addnext(placeholder)
    signer = XMLSigner(
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    return signer.sign(element, key=idp.private_key, cert=idp.certificate_pem, reference_uri=element.get("ID"))

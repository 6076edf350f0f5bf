"""Validation of a SAML Response received with the HTTP-POST binding.

Order of work: safe parsing (no DTD, entities or external references), structure (one plain
Assertion, no EncryptedAssertion), Status, XML signature (signxml, with the configured IdP
certificates only), then the protocol checks of the Web Browser SSO profile. Every value used
afterwards is read from the element signxml returns as signed (``VerifyResult.signed_xml``),
never from the document as received: that is the defence against signature wrapping.

Database-backed checks (InResponseTo consumption, assertion replay) are done by the caller with
:mod:`scim_server.sso.state`, using the values returned here.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass, field

from lxml import etree
from signxml import InvalidInput, InvalidSignature, SignatureConfiguration, XMLVerifier
from signxml.exceptions import InvalidCertificate, InvalidDigest, SignXMLException

from scim_server.sso.idp_config import IdpSettings
from scim_server.sso.safexml import NS, SAMLP, MalformedXml, UnsafeXml, hardened_parser, parse_untrusted, text_of

MAX_RESPONSE_BYTES = 256 * 1024
CLOCK_SKEW = dt.timedelta(seconds=120)
MAX_ID_LENGTH = 256
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"


class SamlRejected(Exception):
    """A Response we refuse. ``reason`` is for the admin's log, ``visitor_message`` for the page."""

    def __init__(self, reason: str, visitor_message: str, status: int = 400, **ids: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.visitor_message = visitor_message
        self.status = status
        self.ids = {name: value for name, value in ids.items() if value}


def _reject(reason: str, visitor_message: str = "The sign-in response was not valid.", **ids: str | None):
    raise SamlRejected(reason, visitor_message, 400, **ids)


@dataclass(frozen=True)
class ValidatedAssertion:
    """What a verified assertion tells us about the visitor."""

    assertion_id: str
    response_id: str | None
    issuer: str
    name_id: str | None
    name_id_format: str | None
    in_response_to: str | None  # from signed content only
    attributes: dict[str, list[str]] = field(default_factory=dict)
    valid_until: dt.datetime | None = None  # latest NotOnOrAfter: keep the replay entry this long
    session_not_on_or_after: dt.datetime | None = None
    response_signed: bool = False


@dataclass(frozen=True)
class Expectations:
    """What the Response must say to be for us, now."""

    idp: IdpSettings
    sp_entity_id: str
    acs_url: str
    now: dt.datetime
    skew: dt.timedelta = CLOCK_SKEW


# ------------------------------------------------------------------------------------------------
# Decoding, parsing, structure
# ------------------------------------------------------------------------------------------------
def decode_post_binding(form_value: str | None) -> bytes:
    """The XML bytes of a ``SAMLResponse`` form field (base64, no compression)."""
    if not form_value:
        _reject("no SAMLResponse in the POST", "The sign-in response was missing.")
    if len(form_value) > MAX_RESPONSE_BYTES * 4 // 3 + 4:
        _reject("SAMLResponse too large")
    try:
        return base64.b64decode("".join(form_value.split()), validate=True)
    except (binascii.Error, ValueError):
        _reject("SAMLResponse is not valid base64")


def parse_response(xml: bytes) -> etree._Element:
    try:
        root = parse_untrusted(xml, MAX_RESPONSE_BYTES)
    except UnsafeXml as exc:
        _reject(f"unsafe XML refused ({exc})")
    except MalformedXml:
        _reject("SAMLResponse is not well-formed XML")
    if root.tag != f"{{{SAMLP}}}Response":
        _reject(f"root element is {root.tag!r}, not a samlp:Response")
    return root


def _single_assertion(root: etree._Element) -> etree._Element:
    """The one Assertion, a direct child of the Response; anything else is refused."""
    response_id = root.get("ID")
    if root.xpath(".//saml:EncryptedAssertion", namespaces=NS):
        _reject(
            "EncryptedAssertion is not supported (turn off assertion encryption at the IdP)",
            "The identity provider encrypted the sign-in assertion, which this service does not accept.",
            response_id=response_id,
        )
    everywhere = root.xpath(".//saml:Assertion", namespaces=NS)
    if len(everywhere) != 1:
        _reject(f"expected exactly one Assertion, found {len(everywhere)}", response_id=response_id)
    assertion = everywhere[0]
    if assertion.getparent() is not root:
        _reject("the Assertion is not a direct child of the Response", response_id=response_id)
    return assertion


def check_status(root: etree._Element) -> None:
    """Refuse a non-success Status (informational only, so checked before the signature)."""
    code = root.find("samlp:Status/samlp:StatusCode", NS)
    value = code.get("Value") if code is not None else None
    if value != STATUS_SUCCESS:
        inner = code.find("samlp:StatusCode", NS) if code is not None else None
        detail = inner.get("Value") if inner is not None else None
        message = text_of(root.find("samlp:Status/samlp:StatusMessage", NS))
        reason = f"IdP returned status {value} {detail or ''}".strip()
        raise SamlRejected(
            reason,
            "The identity provider did not sign you in" + (f": {message[:200]}" if message else "."),
            403,
            response_id=root.get("ID"),
        )


# ------------------------------------------------------------------------------------------------
# Signature
# ------------------------------------------------------------------------------------------------
def _verified(element: etree._Element, idp: IdpSettings) -> etree._Element:
    """``element`` as signed by one of the IdP certificates; the signature must be its direct child
    and must reference the element itself."""
    config = SignatureConfiguration(location="./", expect_references=1)
    failure = "no certificate configured"
    for cert in idp.certificates:
        try:
            result = XMLVerifier().verify(
                element, x509_cert=cert, expect_config=config, parser=hardened_parser()
            )
        except (InvalidSignature, InvalidDigest, InvalidCertificate, InvalidInput, SignXMLException) as exc:
            failure = f"{type(exc).__name__}: {exc}"
            continue
        signed = result.signed_xml
        if signed is None or signed.tag != element.tag or signed.get("ID") != element.get("ID"):
            failure = "the signature does not cover the element that carries it"
            continue
        return signed
    _reject(f"signature verification failed ({failure})", response_id=element.get("ID"))


def _has_direct_signature(element: etree._Element) -> bool:
    return element.find("ds:Signature", NS) is not None


def verified_parts(root: etree._Element, idp: IdpSettings) -> tuple[etree._Element, etree._Element, bool]:
    """(response, assertion, response_signed): the assertion always comes from signed content;
    the response element is the signed one when the Response itself is signed."""
    assertion = _single_assertion(root)
    if _has_direct_signature(root):
        signed_response = _verified(root, idp)
        signed_assertions = signed_response.findall("saml:Assertion", NS)
        if len(signed_assertions) != 1:
            _reject("the signed Response does not hold exactly one Assertion", response_id=root.get("ID"))
        return signed_response, signed_assertions[0], True
    if _has_direct_signature(assertion):
        return root, _verified(assertion, idp), False
    _reject("neither the Response nor the Assertion is signed", response_id=root.get("ID"))


# ------------------------------------------------------------------------------------------------
# Protocol checks
# ------------------------------------------------------------------------------------------------
_INSTANT = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


def parse_instant(value: str | None) -> dt.datetime | None:
    """An xs:dateTime (UTC when no offset is given; fractions beyond microseconds dropped)."""
    if value is None:
        return None
    match = _INSTANT.match(value.strip())
    if not match:
        _reject(f"malformed time value {value[:40]!r}")
    base, fraction, zone = match.groups()
    fraction = (fraction or ".0")[:7]
    offset = "+00:00" if zone in (None, "Z") else zone
    try:
        return dt.datetime.fromisoformat(f"{base}{fraction}{offset}").astimezone(dt.timezone.utc)
    except ValueError:  # shaped like a time but not one (month 13, hour 25, offset +99:00...)
        _reject(f"malformed time value {value[:40]!r}")


def _check_window(element: etree._Element, what: str, expect: Expectations, assertion_id: str) -> dt.datetime | None:
    not_before = parse_instant(element.get("NotBefore"))
    not_on_or_after = parse_instant(element.get("NotOnOrAfter"))
    if not_before is not None and expect.now + expect.skew < not_before:
        _reject(f"{what} not yet valid (NotBefore {not_before.isoformat()})", assertion_id=assertion_id)
    if not_on_or_after is not None and expect.now - expect.skew >= not_on_or_after:
        _reject(
            f"{what} expired (NotOnOrAfter {not_on_or_after.isoformat()})",
            "The sign-in response has expired. Please sign in again.",
            assertion_id=assertion_id,
        )
    return not_on_or_after


def _check_issuer(element: etree._Element, expect: Expectations, required: bool, assertion_id: str | None) -> str | None:
    issuer = text_of(element.find("saml:Issuer", NS))
    if issuer is None and not required:
        return None
    if issuer != expect.idp.entity_id:
        _reject(f"Issuer {issuer!r} is not the configured IdP", assertion_id=assertion_id)
    return issuer


def _check_conditions(assertion: etree._Element, expect: Expectations, assertion_id: str) -> dt.datetime | None:
    conditions = assertion.find("saml:Conditions", NS)
    if conditions is None:
        _reject("the Assertion has no Conditions", assertion_id=assertion_id)
    until = _check_window(conditions, "Assertion Conditions", expect, assertion_id)
    restrictions = conditions.findall("saml:AudienceRestriction", NS)
    if not restrictions:
        _reject("the Assertion has no AudienceRestriction", assertion_id=assertion_id)
    for restriction in restrictions:
        audiences = [text_of(a) for a in restriction.findall("saml:Audience", NS)]
        if expect.sp_entity_id not in audiences:
            _reject(f"our entity ID is not in the Audience {audiences!r}", assertion_id=assertion_id)
    return until


def _check_subject_confirmation(
    assertion: etree._Element, expect: Expectations, assertion_id: str
) -> tuple[str | None, dt.datetime | None]:
    """(InResponseTo, NotOnOrAfter) of the bearer SubjectConfirmation that passes every check."""
    confirmations = [
        c
        for c in assertion.findall("saml:Subject/saml:SubjectConfirmation", NS)
        if c.get("Method") == BEARER
    ]
    if not confirmations:
        _reject("no bearer SubjectConfirmation", assertion_id=assertion_id)
    first_failure: SamlRejected | None = None
    for confirmation in confirmations:
        try:
            return _check_confirmation_data(confirmation, expect, assertion_id)
        except SamlRejected as exc:
            first_failure = first_failure or exc
    raise first_failure  # type: ignore[misc]


def _check_confirmation_data(
    confirmation: etree._Element, expect: Expectations, assertion_id: str
) -> tuple[str | None, dt.datetime | None]:
    data = confirmation.find("saml:SubjectConfirmationData", NS)
    if data is None:
        _reject("bearer SubjectConfirmation without SubjectConfirmationData", assertion_id=assertion_id)
    recipient = data.get("Recipient")
    if recipient != expect.acs_url:
        _reject(f"SubjectConfirmationData Recipient {recipient!r} is not our ACS URL", assertion_id=assertion_id)
    if data.get("NotOnOrAfter") is None:
        _reject("SubjectConfirmationData has no NotOnOrAfter", assertion_id=assertion_id)
    until = _check_window(data, "SubjectConfirmationData", expect, assertion_id)
    return data.get("InResponseTo"), until


def _attributes(assertion: etree._Element) -> dict[str, list[str]]:
    """Attribute values by Name (and by FriendlyName, when that is not also a Name)."""
    values: dict[str, list[str]] = {}
    aliases: dict[str, list[str]] = {}
    for attribute in assertion.findall("saml:AttributeStatement/saml:Attribute", NS):
        name = attribute.get("Name")
        if not name:
            continue
        texts = [text_of(v) or "" for v in attribute.findall("saml:AttributeValue", NS)]
        values.setdefault(name, []).extend(t for t in texts if t)
        friendly = attribute.get("FriendlyName")
        if friendly:
            aliases.setdefault(friendly, []).extend(t for t in texts if t)
    for friendly, texts in aliases.items():
        values.setdefault(friendly, texts)
    return values


def _checked_id(value: str | None, what: str) -> str:
    if not value or len(value) > MAX_ID_LENGTH:
        _reject(f"{what} ID missing or longer than {MAX_ID_LENGTH} characters")
    return value


def validate_response(xml: bytes, expect: Expectations) -> ValidatedAssertion:
    """Everything that can be checked without the database; raise :class:`SamlRejected` otherwise."""
    root = parse_response(xml)
    check_status(root)
    response, assertion, response_signed = verified_parts(root, expect.idp)
    response_id = response.get("ID")
    assertion_id = _checked_id(assertion.get("ID"), "Assertion")
    destination = response.get("Destination")
    if destination is not None and destination != expect.acs_url:
        _reject(f"Response Destination {destination!r} is not our ACS URL", response_id=response_id)
    _check_issuer(response, expect, required=False, assertion_id=assertion_id)
    issuer = _check_issuer(assertion, expect, required=True, assertion_id=assertion_id)
    conditions_until = _check_conditions(assertion, expect, assertion_id)
    confirmed_in_response_to, confirmation_until = _check_subject_confirmation(assertion, expect, assertion_id)
    in_response_to = _signed_in_response_to(response, response_signed, confirmed_in_response_to, assertion_id)
    authn = assertion.find("saml:AuthnStatement", NS)
    if authn is None:
        _reject("the Assertion has no AuthnStatement", assertion_id=assertion_id)
    name_id = assertion.find("saml:Subject/saml:NameID", NS)
    return ValidatedAssertion(
        assertion_id=assertion_id,
        response_id=response_id,
        issuer=issuer or "",
        name_id=text_of(name_id),
        name_id_format=name_id.get("Format") if name_id is not None else None,
        in_response_to=in_response_to,
        attributes=_attributes(assertion),
        valid_until=max(t for t in (conditions_until, confirmation_until) if t is not None),
        session_not_on_or_after=parse_instant(authn.get("SessionNotOnOrAfter")),
        response_signed=response_signed,
    )


def _signed_in_response_to(
    response: etree._Element, response_signed: bool, confirmed: str | None, assertion_id: str
) -> str | None:
    """InResponseTo as vouched for by signed content; an unsigned Response's claim is not trusted
    (only checked for consistency)."""
    claimed = response.get("InResponseTo")
    if claimed is not None and confirmed is not None and claimed != confirmed:
        _reject("Response and SubjectConfirmationData disagree on InResponseTo", assertion_id=assertion_id)
    if confirmed is not None:
        return confirmed
    return claimed if response_signed else None

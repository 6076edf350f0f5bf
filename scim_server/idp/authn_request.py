"""Reading and checking an AuthnRequest from the registered SP (HTTP-Redirect or HTTP-POST binding).

Everything is checked before anything is stored or anyone is redirected: safe parsing (no DTD,
entities, network), the Issuer is the registered SP, the ACS URL (when given) is its registered
one, the binding asked for is HTTP-POST, the request is fresh and has an ID. A request that fails
any check is refused with a reason for the log; the SP gets no Response at all.

AuthnRequest signatures are not required (Atlassian does not sign its requests): the Response
goes only to the registered ACS, so a forged request cannot send an assertion anywhere else.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import zlib
from dataclasses import dataclass

from lxml import etree

from scim_server.idp.registration import RegisteredSp
from scim_server.sso.response import CLOCK_SKEW, SamlRejected, parse_instant
from scim_server.sso.safexml import NS, SAMLP, MalformedXml, UnsafeXml, parse_untrusted, text_of
from scim_server.sso.sp import BINDING_POST, NAMEID_EMAIL, NAMEID_UNSPECIFIED

MAX_REQUEST_BYTES = 64 * 1024
MAX_REQUEST_AGE = dt.timedelta(minutes=5)
MAX_RELAY_STATE = 1024
MAX_ID_LENGTH = 256
_NCNAME = re.compile(r"^[A-Za-z_][\w.\-]*\Z")
_EMAIL_HINT = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\Z")
ACCEPTED_NAMEID_FORMATS = frozenset({NAMEID_EMAIL, NAMEID_UNSPECIFIED})


class RequestRefused(Exception):
    """An AuthnRequest we do not answer; ``reason`` goes to the log, never to the visitor."""

    def __init__(self, reason: str, request_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.request_id = request_id


@dataclass(frozen=True)
class PendingRequest:
    """A checked AuthnRequest, waiting for the visitor to be signed in."""

    request_id: str
    sp_entity_id: str
    acs_url: str
    relay_state: str | None
    login_hint: str | None


def decode_redirect(value: str | None) -> bytes:
    """HTTP-Redirect binding: base64 of raw DEFLATE, inflated with a size cap (no zip bomb)."""
    compressed = _base64(value)
    inflater = zlib.decompressobj(-15)
    try:
        xml = inflater.decompress(compressed, MAX_REQUEST_BYTES + 1)
    except zlib.error:
        raise RequestRefused("SAMLRequest is not DEFLATE-compressed") from None
    if len(xml) > MAX_REQUEST_BYTES or inflater.unconsumed_tail:
        raise RequestRefused(f"SAMLRequest larger than {MAX_REQUEST_BYTES} bytes")
    return xml


def decode_post(value: str | None) -> bytes:
    """HTTP-POST binding: plain base64."""
    return _base64(value)


def _base64(value: str | None) -> bytes:
    if not value:
        raise RequestRefused("no SAMLRequest parameter")
    if len(value) > MAX_REQUEST_BYTES * 4 // 3 + 4:
        raise RequestRefused("SAMLRequest too large")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RequestRefused("SAMLRequest is not valid base64") from None


def check_request(
    xml: bytes, relay_state: str | None, sp: RegisteredSp, sso_url: str, now: dt.datetime
) -> PendingRequest:
    """The checked request, or :class:`RequestRefused`."""
    root = _parse(xml)
    request_id = root.get("ID")
    if not request_id or len(request_id) > MAX_ID_LENGTH or not _NCNAME.match(request_id):
        raise RequestRefused("AuthnRequest ID missing or not a valid XML ID")
    refuse = _refuser(request_id)
    if root.get("Version") != "2.0":
        refuse(f"AuthnRequest Version {root.get('Version')!r} is not 2.0")
    _check_fresh(root.get("IssueInstant"), now, refuse)
    issuer = text_of(root.find("saml:Issuer", NS))
    if issuer != sp.entity_id:
        refuse(f"AuthnRequest Issuer {issuer!r} is not the registered service provider")
    acs_url = root.get("AssertionConsumerServiceURL")
    if acs_url is not None and acs_url != sp.acs_url:
        refuse(f"AuthnRequest asks for ACS URL {acs_url[:300]!r}, not the registered one")
    binding = root.get("ProtocolBinding")
    if binding is not None and binding != BINDING_POST:
        refuse(f"AuthnRequest asks for binding {binding[:100]!r}; only HTTP-POST is answered")
    destination = root.get("Destination")
    if destination is not None and destination != sso_url:
        refuse(f"AuthnRequest Destination {destination[:300]!r} is not this IdP's SSO URL")
    name_id_format = root.find("samlp:NameIDPolicy", NS)
    wanted = name_id_format.get("Format") if name_id_format is not None else None
    if wanted is not None and wanted not in ACCEPTED_NAMEID_FORMATS:
        refuse(f"AuthnRequest asks for NameID format {wanted[:100]!r}; only emailAddress is issued")
    if relay_state is not None and len(relay_state) > MAX_RELAY_STATE:
        refuse(f"RelayState longer than {MAX_RELAY_STATE} characters")
    return PendingRequest(request_id, sp.entity_id, sp.acs_url, relay_state or None, _login_hint(root))


def _parse(xml: bytes) -> etree._Element:
    try:
        root = parse_untrusted(xml, MAX_REQUEST_BYTES)
    except UnsafeXml as exc:
        raise RequestRefused(f"unsafe XML refused ({exc})") from None
    except MalformedXml:
        raise RequestRefused("SAMLRequest is not well-formed XML") from None
    if root.tag != f"{{{SAMLP}}}AuthnRequest":
        raise RequestRefused(f"root element is {root.tag[:100]!r}, not a samlp:AuthnRequest")
    return root


def _refuser(request_id: str):
    def refuse(reason: str):
        raise RequestRefused(reason, request_id)

    return refuse


def _check_fresh(value: str | None, now: dt.datetime, refuse) -> None:
    if value is None:
        refuse("AuthnRequest has no IssueInstant")
    try:
        issued = parse_instant(value)
    except SamlRejected as exc:
        refuse(f"AuthnRequest IssueInstant: {exc.reason}")
    if issued > now + CLOCK_SKEW:
        refuse(f"AuthnRequest issued in the future ({issued.isoformat()})")
    if issued < now - MAX_REQUEST_AGE - CLOCK_SKEW:
        refuse(f"AuthnRequest is stale (issued {issued.isoformat()})")


def _login_hint(root: etree._Element) -> str | None:
    """The e-mail the SP already knows (Subject/NameID), to route the login; only a hint."""
    hint = text_of(root.find("saml:Subject/saml:NameID", NS))
    return hint if hint and _EMAIL_HINT.match(hint) else None

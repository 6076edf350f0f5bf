"""The emulator's model of JSM Cloud customer SSO (Atlassian Guard): a SAML service provider.

With SSO on (``POST /_emulator/sso`` with the IdP's metadata), the customer portal page needs a
portal session. A visitor without one is sent to the IdP with an AuthnRequest (HTTP-Redirect
binding); the IdP's Response comes back to ``/_emulator/sso/acs`` (HTTP-POST binding), where it is
validated here, the customer is created if absent, and the visitor lands on the portal "signed in
as EMAIL".

This is a second, independent implementation: it shares no code with the bridge (its own
metadata reading, its own signxml verification and SAML checks), so a bridge bug cannot hide by
being made twice.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import secrets
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlencode

import requests
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier
from signxml.exceptions import SignXMLException
from werkzeug.wrappers import Request, Response

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"samlp": SAMLP, "saml": SAML, "md": MD, "ds": DS}
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
COOKIE = "jsm_emulator_portal_session"
SP_PATH = "/_emulator/sso/sp"
ACS_PATH = "/_emulator/sso/acs"
PORTAL = re.compile(r"^/servicedesk/customer/portal/[0-9]{1,10}\Z")
REQUEST_SECONDS = 600
SESSION_SECONDS = 8 * 3600
SKEW = dt.timedelta(seconds=60)
MAX_XML = 512 * 1024


class SsoError(ValueError):
    """Metadata or a Response the emulated site refuses (message shown on its page)."""


@dataclass(frozen=True)
class TrustedIdp:
    entity_id: str
    sso_url: str
    certificates: tuple[str, ...]  # PEM


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True, remove_comments=True,
                           remove_pis=True)


def _parse(data: bytes) -> etree._Element:
    if len(data) > MAX_XML or b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise SsoError("XML refused (too large, or has a DTD)")
    try:
        return etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise SsoError(f"not well-formed XML: {exc}") from None


def read_idp_metadata(data: bytes) -> TrustedIdp:
    root = _parse(data)
    descriptor = root.find(".//md:IDPSSODescriptor", NS)
    entity = descriptor.getparent() if descriptor is not None else None
    if entity is None or not entity.get("entityID"):
        raise SsoError("the metadata describes no SAML identity provider")
    sso_url = next((s.get("Location") for s in descriptor.findall("md:SingleSignOnService", NS)
                    if s.get("Binding") == REDIRECT and s.get("Location")), None)
    certificates = tuple(
        "-----BEGIN CERTIFICATE-----\n" + "".join(c.text.split()) + "\n-----END CERTIFICATE-----\n"
        for c in descriptor.findall("md:KeyDescriptor/ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS) if c.text
    )
    if sso_url is None or not certificates:
        raise SsoError("the IdP metadata needs an HTTP-Redirect SingleSignOnService and a signing certificate")
    return TrustedIdp(entity.get("entityID"), sso_url, certificates)


def _instant(value: str | None) -> dt.datetime:
    if not value:
        raise SsoError("a required time is missing")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SsoError(f"malformed time {value[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


class EmulatorSso:
    """Customer SSO state of one emulated site: trusted IdP, outstanding requests, portal sessions."""

    def __init__(self, sign_in: Callable[[str, str | None], None], page: Callable[..., Response],
                 json_response: Callable[..., Response]) -> None:
        self._sign_in = sign_in  # creates the customer if absent (under the emulator's lock)
        self._page, self._json = page, json_response  # the emulator's own page and JSON renderers
        self._lock = threading.Lock()
        self.idp: TrustedIdp | None = None
        self._requests: dict[str, tuple[float, str]] = {}  # request ID -> (expires, portal path)
        self._sessions: dict[str, tuple[float, str]] = {}  # cookie -> (expires, e-mail)

    # ------------------------------------------------------------------ configuration
    def enable(self, metadata: bytes) -> TrustedIdp:
        idp = read_idp_metadata(metadata)
        with self._lock:
            self.idp, self._requests, self._sessions = idp, {}, {}
        return idp

    def disable(self) -> None:
        with self._lock:
            self.idp, self._requests, self._sessions = None, {}, {}

    @staticmethod
    def sp_entity_id(base_url: str) -> str:
        return base_url + SP_PATH

    @staticmethod
    def acs_url(base_url: str) -> str:
        return base_url + ACS_PATH

    def describe(self, base_url: str) -> dict[str, Any]:
        return {"enabled": self.idp is not None, "entity_id": self.sp_entity_id(base_url),
                "acs_url": self.acs_url(base_url), "idp_entity_id": self.idp.entity_id if self.idp else None}

    def admin(self, request: Request) -> Response:
        """``GET``/``POST /_emulator/sso`` (and the SP metadata at ``/_emulator/sso/sp``)."""
        base = request.host_url.rstrip("/")
        if request.method == "GET" and request.path == SP_PATH:
            return Response(self.sp_metadata(base), mimetype="application/samlmetadata+xml")
        if request.method == "POST" and request.path == ACS_PATH:
            return self.acs(request)
        if request.path.rstrip("/") != "/_emulator/sso" or request.method not in ("GET", "POST"):
            return self._json({"error": f"no test endpoint {request.method} {request.path}"}, 404)
        if request.method == "POST":
            try:
                body = json.loads(request.get_data() or b"{}")
                if not isinstance(body, dict):
                    raise SsoError("body must be a JSON object")
                self._configure(body)
            except (ValueError, requests.RequestException) as exc:
                return self._json({"error": str(exc)}, 400)
        return self._json(self.describe(base))

    def _configure(self, body: dict[str, Any]) -> None:
        if body.get("idp_metadata"):
            self.enable(str(body["idp_metadata"]).encode("utf-8"))
        elif body.get("idp_metadata_url"):
            response = requests.get(str(body["idp_metadata_url"]), timeout=10)
            response.raise_for_status()
            self.enable(response.content)
        elif not body:
            self.disable()
        else:
            raise SsoError("expected {\"idp_metadata_url\": URL}, {\"idp_metadata\": XML} or {}")

    def sp_metadata(self, base_url: str) -> bytes:
        root = etree.Element(f"{{{MD}}}EntityDescriptor", nsmap={"md": MD}, entityID=self.sp_entity_id(base_url))
        descriptor = etree.SubElement(root, f"{{{MD}}}SPSSODescriptor", protocolSupportEnumeration=SAMLP,
                                      WantAssertionsSigned="true")
        etree.SubElement(descriptor, f"{{{MD}}}NameIDFormat").text = EMAIL_FORMAT
        etree.SubElement(descriptor, f"{{{MD}}}AssertionConsumerService", Binding=POST,
                         Location=self.acs_url(base_url), index="0", isDefault="true")
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))

    # ------------------------------------------------------------------ portal gate
    def signed_in_email(self, request: Request) -> str | None:
        token = request.cookies.get(COOKIE)
        with self._lock:
            entry = self._sessions.get(token or "")
        return entry[1] if entry and entry[0] > time.time() else None

    def login_redirect(self, request: Request) -> Response:
        """Send the visitor to the IdP with a fresh AuthnRequest; the portal path rides in RelayState."""
        base = request.host_url.rstrip("/")
        request_id = "_emu" + secrets.token_hex(16)
        with self._lock:
            idp = self.idp
            if idp is None:
                return self._page("Sign-in unavailable", "Customer SSO is off.", 503)
            now = time.time()
            self._requests = {k: v for k, v in self._requests.items() if v[0] > now}
            self._requests[request_id] = (now + REQUEST_SECONDS, request.path)
        xml = self._authn_request(request_id, base, idp)
        deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        encoded = base64.b64encode(deflater.compress(xml) + deflater.flush()).decode("ascii")
        separator = "&" if "?" in idp.sso_url else "?"
        location = idp.sso_url + separator + urlencode({"SAMLRequest": encoded, "RelayState": request.path})
        return Response(status=302, headers={"Location": location})

    def _authn_request(self, request_id: str, base: str, idp: TrustedIdp) -> bytes:
        root = etree.Element(
            f"{{{SAMLP}}}AuthnRequest", nsmap={"samlp": SAMLP, "saml": SAML}, ID=request_id, Version="2.0",
            IssueInstant=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), Destination=idp.sso_url,
            AssertionConsumerServiceURL=self.acs_url(base), ProtocolBinding=POST,
        )
        etree.SubElement(root, f"{{{SAML}}}Issuer").text = self.sp_entity_id(base)
        etree.SubElement(root, f"{{{SAMLP}}}NameIDPolicy", Format=EMAIL_FORMAT, AllowCreate="true")
        return bytes(etree.tostring(root))

    # ------------------------------------------------------------------ assertion consumer
    def acs(self, request: Request) -> Response:
        base = request.host_url.rstrip("/")
        try:
            email, name, target = self._validated(request, base)
        except SsoError as exc:
            return self._page("Sign-in failed", f"The identity provider's response was refused: {exc}", 403)
        self._sign_in(email, name)
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[token] = (time.time() + SESSION_SECONDS, email)
        response = Response(status=302, headers={"Location": target})
        response.set_cookie(COOKIE, token, httponly=True, samesite="Lax", path="/")
        return response

    def _validated(self, request: Request, base: str) -> tuple[str, str | None, str]:
        idp = self.idp
        if idp is None:
            raise SsoError("customer SSO is off")
        try:
            xml = base64.b64decode(request.form.get("SAMLResponse", ""), validate=True)
        except (binascii.Error, ValueError):
            raise SsoError("SAMLResponse is not base64") from None
        root = _parse(xml)
        if root.tag != f"{{{SAMLP}}}Response":
            raise SsoError("not a SAML Response")
        response = self._verify(root, idp)  # the Response as signed
        assertions = response.findall("saml:Assertion", NS)
        if len(assertions) != 1:
            raise SsoError("expected exactly one Assertion")
        assertion = self._verify(assertions[0], idp)  # and the Assertion signed on its own
        self._check(response, assertion, idp, base)
        target = self._consume(assertion.find("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData",
                                              NS).get("InResponseTo"))
        name_id = assertion.find("saml:Subject/saml:NameID", NS)
        if name_id is None or name_id.get("Format") != EMAIL_FORMAT or not (name_id.text or "").strip():
            raise SsoError("the NameID is not an e-mail address")
        relay = request.form.get("RelayState") or ""
        return name_id.text.strip(), _display_name(assertion), relay if PORTAL.match(relay) else target

    @staticmethod
    def _verify(element: etree._Element, idp: TrustedIdp) -> etree._Element:
        if element.find("ds:Signature", NS) is None:
            raise SsoError(f"the {etree.QName(element).localname} is not signed")
        config = SignatureConfiguration(location="./", expect_references=1)
        for certificate in idp.certificates:
            try:
                result = XMLVerifier().verify(element, x509_cert=certificate, expect_config=config, parser=_parser())
            except (SignXMLException, ValueError):
                continue
            if isinstance(result, list):  # only with expect_references > 1
                continue
            signed = result.signed_xml
            if signed is not None and signed.tag == element.tag and signed.get("ID") == element.get("ID"):
                algorithm = element.find("ds:Signature/ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm")
                if algorithm != "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256":
                    raise SsoError(f"signature algorithm {algorithm} is not RSA-SHA256")
                return signed
        raise SsoError(f"the {etree.QName(element).localname} signature does not verify with the IdP certificate")

    def _check(self, response: etree._Element, assertion: etree._Element, idp: TrustedIdp, base: str) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        acs = self.acs_url(base)
        status = response.find("samlp:Status/samlp:StatusCode", NS)
        if status is None or status.get("Value") != SUCCESS:
            raise SsoError("the Response status is not Success")
        if response.get("Destination") != acs:
            raise SsoError("the Response Destination is not this site's ACS")
        for element in (response, assertion):
            if (element.findtext("saml:Issuer", namespaces=NS) or "").strip() != idp.entity_id:
                raise SsoError("the Issuer is not the trusted IdP")
        conditions = assertion.find("saml:Conditions", NS)
        if conditions is None:
            raise SsoError("the Assertion has no Conditions")
        if now + SKEW < _instant(conditions.get("NotBefore") or response.get("IssueInstant")) or \
                now - SKEW >= _instant(conditions.get("NotOnOrAfter")):
            raise SsoError("the Assertion is not valid now")
        audiences = [a.text for a in conditions.findall("saml:AudienceRestriction/saml:Audience", NS)]
        if self.sp_entity_id(base) not in audiences:
            raise SsoError("this site is not the Audience")
        confirmation = assertion.find(f"saml:Subject/saml:SubjectConfirmation[@Method='{BEARER}']", NS)
        data = confirmation.find("saml:SubjectConfirmationData", NS) if confirmation is not None else None
        if data is None or data.get("Recipient") != acs or now - SKEW >= _instant(data.get("NotOnOrAfter")):
            raise SsoError("no valid bearer SubjectConfirmation for this ACS")
        if response.get("InResponseTo") != data.get("InResponseTo"):
            raise SsoError("InResponseTo differs between Response and Assertion")

    def _consume(self, request_id: str | None) -> str:
        with self._lock:
            entry = self._requests.pop(request_id or "", None)
        if entry is None or entry[0] <= time.time():
            raise SsoError("the Response answers no request this site sent (or one already answered)")
        return entry[1]


def _display_name(assertion: etree._Element) -> str | None:
    for attribute in assertion.findall("saml:AttributeStatement/saml:Attribute", NS):
        if attribute.get("Name", "").endswith("/displayname"):
            value = attribute.findtext("saml:AttributeValue", namespaces=NS)
            return str(value) if value else None
    return None

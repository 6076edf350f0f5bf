"""An independent SAML service provider standing in for Atlassian: pysaml2 + xmlsec1.

It reads the bridge's IdP metadata, writes AuthnRequests with pysaml2 and validates the bridge's
Responses with pysaml2's own checks (xmlsec1 signature verification, audience, destination,
recipient, InResponseTo, times). Nothing here shares code with the bridge's signer.
"""
from __future__ import annotations

import base64
import datetime as dt
import zlib
from urllib.parse import parse_qs, urlencode, urlsplit

from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS

SP_ENTITY_ID = "https://auth.example-atlassian.test/saml/7f3c"
SP_ACS_URL = "https://auth.example-atlassian.test/login/callback?connection=saml-7f3c"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


class IndependentSp:
    def __init__(self, idp_metadata_xml: str, entity_id: str = SP_ENTITY_ID, acs_url: str = SP_ACS_URL) -> None:
        self.entity_id = entity_id
        self.acs_url = acs_url
        config = SPConfig()
        config.load(
            {
                "entityid": entity_id,
                "service": {
                    "sp": {
                        "endpoints": {"assertion_consumer_service": [(acs_url, BINDING_HTTP_POST)]},
                        "want_response_signed": True,
                        "want_assertions_signed": True,
                        "allow_unsolicited": False,
                        "authn_requests_signed": False,
                        "name_id_format": NAMEID_FORMAT_EMAILADDRESS,
                    }
                },
                "metadata": {"inline": [idp_metadata_xml]},
                "xmlsec_binary": "/usr/bin/xmlsec1",
                "delete_tmpfiles": True,
            }
        )
        self.client = Saml2Client(config=config)
        self.idp_entity_id = next(iter(self.client.metadata.identity_providers()))

    def redirect_request(self, relay_state: str | None = "portal-1") -> tuple[str, str]:
        """(request ID, /idp/sso path with query) for the HTTP-Redirect binding."""
        request_id, info = self.client.prepare_for_authenticate(
            entityid=self.idp_entity_id, relay_state=relay_state or "", binding=BINDING_HTTP_REDIRECT
        )
        location = dict(info["headers"])["Location"]
        parts = urlsplit(location)
        return request_id, f"{parts.path}?{parts.query}"

    def post_request(self, destination: str) -> tuple[str, str]:
        """(request ID, base64 SAMLRequest) for the HTTP-POST binding."""
        request_id, request = self.client.create_authn_request(destination, binding=BINDING_HTTP_POST)
        return request_id, base64.b64encode(str(request).encode()).decode("ascii")

    def accept(self, saml_response: str, request_id: str):
        """pysaml2's verdict on a Response (raises on anything it refuses)."""
        return self.client.parse_authn_request_response(
            saml_response, BINDING_HTTP_POST, outstanding={request_id: "/"}
        )


def crafted_request(
    issuer: str = SP_ENTITY_ID,
    *,
    request_id: str | None = "_crafted0123456789",
    acs_url: str | None = None,
    issue_instant: dt.datetime | None = None,
    binding: str | None = None,
    destination: str | None = None,
) -> bytes:
    """An AuthnRequest with chosen flaws (built with lxml, as an attacker or a broken SP might)."""
    moment = issue_instant or dt.datetime.now(dt.timezone.utc)
    attributes = {"Version": "2.0", "IssueInstant": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}
    for name, value in (("ID", request_id), ("AssertionConsumerServiceURL", acs_url),
                        ("ProtocolBinding", binding), ("Destination", destination)):
        if value is not None:
            attributes[name] = value
    root = etree.Element(f"{{{SAMLP}}}AuthnRequest", attributes, nsmap={"samlp": SAMLP, "saml": SAML})
    etree.SubElement(root, f"{{{SAML}}}Issuer").text = issuer
    return etree.tostring(root)


def redirect_query(xml: bytes, relay_state: str | None = None) -> str:
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    query = {"SAMLRequest": base64.b64encode(compressor.compress(xml) + compressor.flush()).decode("ascii")}
    if relay_state is not None:
        query["RelayState"] = relay_state
    return "/idp/sso?" + urlencode(query)


def posted_form(html: str) -> dict[str, str]:
    """action, SAMLResponse and RelayState of the auto-POST page."""
    page = etree.HTML(html)
    form = page.find(".//form")
    fields = {i.get("name"): i.get("value") for i in form.findall(".//input")}
    return {"action": form.get("action"), **fields}


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

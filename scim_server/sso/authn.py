"""SP-initiated login: an AuthnRequest sent with the HTTP-Redirect binding (SAML Bindings §3.4).

The request is DEFLATE-compressed, base64- and URL-encoded, and signed over the exact query
string ``SAMLRequest=...&RelayState=...&SigAlg=...`` with the SP key.
"""
from __future__ import annotations

import base64
import datetime as dt
import secrets
import zlib
from urllib.parse import quote_plus

from lxml import etree

from scim_server.sso.idp_config import IdpSettings
from scim_server.sso.safexml import SAML, SAMLP
from scim_server.sso.sp import BINDING_POST, NAMEID_UNSPECIFIED, RSA_SHA256, ServiceProvider


def new_request_id() -> str:
    """A fresh, unguessable ID (an XML NCName: it must not start with a digit)."""
    return "_" + secrets.token_hex(20)


def saml_instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def authn_request_xml(sp: ServiceProvider, idp: IdpSettings, request_id: str, now: dt.datetime) -> bytes:
    root = etree.Element(
        f"{{{SAMLP}}}AuthnRequest",
        nsmap={"samlp": SAMLP, "saml": SAML},
        ID=request_id,
        Version="2.0",
        IssueInstant=saml_instant(now),
        Destination=idp.sso_url,
        AssertionConsumerServiceURL=sp.acs_url,
        ProtocolBinding=BINDING_POST,
    )
    etree.SubElement(root, f"{{{SAML}}}Issuer").text = sp.entity_id
    etree.SubElement(root, f"{{{SAMLP}}}NameIDPolicy", Format=NAMEID_UNSPECIFIED, AllowCreate="true")
    return etree.tostring(root)


def deflate_and_encode(xml: bytes) -> str:
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)  # raw DEFLATE
    return base64.b64encode(compressor.compress(xml) + compressor.flush()).decode("ascii")


def redirect_url(sp: ServiceProvider, idp: IdpSettings, xml: bytes, relay_state: str | None) -> str:
    """The IdP SSO URL carrying the signed request (and RelayState, when given)."""
    query = "SAMLRequest=" + quote_plus(deflate_and_encode(xml))
    if relay_state:
        query += "&RelayState=" + quote_plus(relay_state)
    query += "&SigAlg=" + quote_plus(RSA_SHA256)
    signature = base64.b64encode(sp.sign(query.encode("ascii"))).decode("ascii")
    query += "&Signature=" + quote_plus(signature)
    separator = "&" if "?" in idp.sso_url else "?"
    return idp.sso_url + separator + query

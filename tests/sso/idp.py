"""An independent SAML identity provider for tests: pysaml2 builds the messages, xmlsec1 signs them.

``SamlIdp`` generates its own RSA key and self-signed certificate, reads our SP metadata, parses
our AuthnRequests (HTTP-Redirect binding) and produces real signed Responses. ``mutate`` callbacks
change the unsigned document before signing (times, audience, recipient...), so every variant
still carries a valid signature made by xmlsec1, not by our code.
"""
from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.sigver import pre_signature_part
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from scim_server.sso.idp_config import IdpSettings, parse_certificates

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
NS = {"samlp": SAMLP, "saml": SAML, "ds": "http://www.w3.org/2000/09/xmldsig#"}
RESPONSE_NODE = f"{SAMLP}:Response"
ASSERTION_NODE = f"{SAML}:Assertion"

ENTITY_ID = "https://idp.example.test/metadata"
SSO_URL = "https://idp.example.test/sso"

Mutation = Callable[[etree._Element], None]


_generated: dict[str, tuple[bytes, bytes]] = {}  # common name -> (key PEM, cert PEM), once per process


def _key_and_cert(directory: Path, common_name: str) -> tuple[Path, Path]:
    if common_name not in _generated:
        _generated[common_name] = _new_key_and_cert(common_name)
    key_pem, cert_pem = _generated[common_name]
    key_path, cert_path = directory / f"{common_name}.key", directory / f"{common_name}.crt"
    key_path.write_bytes(key_pem)
    cert_path.write_bytes(cert_pem)
    return key_path, cert_path


def _new_key_and_cert(common_name: str) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


class SamlIdp:
    def __init__(
        self, directory: Path, sp_metadata: str, name: str = "idp", entity_id: str = ENTITY_ID, sso_url: str = SSO_URL
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.entity_id = entity_id
        self.sso_url = sso_url
        self.key_path, self.cert_path = _key_and_cert(directory, name)
        config = IdPConfig()
        config.load(
            {
                "entityid": entity_id,
                "service": {
                    "idp": {
                        "endpoints": {"single_sign_on_service": [(sso_url, BINDING_HTTP_REDIRECT)]},
                        "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"}},
                    }
                },
                "key_file": str(self.key_path),
                "cert_file": str(self.cert_path),
                "xmlsec_binary": "/usr/bin/xmlsec1",
                "metadata": {"inline": [sp_metadata]},
                "delete_tmpfiles": True,
            }
        )
        self.config = config
        self.server = Server(config=config)

    # -- configuration --------------------------------------------------------------------------
    @property
    def cert_pem(self) -> str:
        return self.cert_path.read_text()

    def settings(self, **overrides) -> IdpSettings:
        values = {
            "entity_id": self.entity_id,
            "sso_url": self.sso_url,
            "certificates": parse_certificates(self.cert_pem),
            **overrides,
        }
        return IdpSettings(**values)

    def metadata_xml(self) -> str:
        return str(entity_descriptor(self.config))

    # -- protocol ---------------------------------------------------------------------------------
    def read_request(self, location: str) -> tuple[str, str | None]:
        """(AuthnRequest ID, RelayState) of our redirect to the IdP, as pysaml2 parses them."""
        query = parse_qs(urlsplit(location).query)
        request = self.server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
        relay = query.get("RelayState", [None])[0]
        return request.message.id, relay

    def response_xml(
        self,
        in_response_to: str | None,
        *,
        sp_entity_id: str = "http://testserver/saml/metadata",
        acs_url: str = "http://testserver/saml/acs",
        email: str = "alice@example.com",
        attributes: dict[str, list[str]] | None = None,
        sign: str = "response",  # "response" | "assertion" | "both" | "none"
        mutate: Mutation | None = None,
        signer: "SamlIdp | None" = None,
    ) -> bytes:
        identity = attributes if attributes is not None else {
            "email": [email], "firstName": ["Alice"], "lastName": ["Example"], "groups": ["Customers"]
        }
        response = self.server.create_authn_response(
            identity,
            in_response_to,
            acs_url,
            sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
            sign_response=False,
            sign_assertion=False,
        )
        root = etree.fromstring(str(response).encode())
        if mutate is not None:
            mutate(root)
        return (signer or self).sign(root, sign)

    def sign(self, root: etree._Element, what: str) -> bytes:
        """Insert signature templates and let xmlsec1 (through pysaml2) sign them."""
        assertion = root.find("saml:Assertion", NS)
        if what in ("assertion", "both"):
            _insert_template(assertion, self.cert_b64)
        if what in ("response", "both"):
            _insert_template(root, self.cert_b64)
        xml = etree.tostring(root).decode()
        if what in ("assertion", "both"):
            xml = self.server.sec.sign_statement(xml, ASSERTION_NODE, node_id=assertion.get("ID"))
        if what in ("response", "both"):
            xml = self.server.sec.sign_statement(xml, RESPONSE_NODE, node_id=root.get("ID"))
        return xml.encode() if isinstance(xml, str) else xml

    @property
    def cert_b64(self) -> str:
        return "".join(self.cert_pem.strip().splitlines()[1:-1])


def _insert_template(element: etree._Element, cert_b64: str) -> None:
    template = pre_signature_part(
        ident=element.get("ID"), public_key=cert_b64, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256
    )
    signature = etree.fromstring(str(template).encode())
    issuer = element.find("saml:Issuer", NS)
    issuer.addnext(signature)


def form(xml: bytes, relay_state: str | None = None) -> dict[str, str]:
    data = {"SAMLResponse": base64.b64encode(xml).decode("ascii")}
    if relay_state is not None:
        data["RelayState"] = relay_state
    return data


# -- mutations used by the tests --------------------------------------------------------------------
def shift_times(delta: dt.timedelta) -> Mutation:
    """Move every NotBefore/NotOnOrAfter/IssueInstant by ``delta``."""

    def mutate(root: etree._Element) -> None:
        for element in root.iter():
            for attribute in ("NotBefore", "NotOnOrAfter", "IssueInstant", "AuthnInstant"):
                value = element.get(attribute)
                if value:
                    moment = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ") + delta
                    element.set(attribute, moment.strftime("%Y-%m-%dT%H:%M:%SZ"))

    return mutate


def set_attribute(xpath: str, attribute: str, value: str | None) -> Mutation:
    def mutate(root: etree._Element) -> None:
        for element in root.xpath(xpath, namespaces=NS):
            if value is None:
                element.attrib.pop(attribute, None)
            else:
                element.set(attribute, value)

    return mutate


def set_text(xpath: str, value: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        for element in root.xpath(xpath, namespaces=NS):
            element.text = value

    return mutate

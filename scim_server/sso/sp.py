"""This installation as a SAML service provider: identity, key pair, certificate and metadata.

The SP key pair and self-signed certificate are generated on first use and kept in
``instance_values`` so every process and restart uses the same ones. The private key is stored
encrypted with the installation's session secret (never in plain text). It signs our
AuthnRequests (HTTP-Redirect binding); the certificate is published in the SP metadata.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import weakref
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.x509.oid import NameOID
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scim_server.db import transaction
from scim_server.models import InstanceValue
from scim_server.services import Services, installation_secret, instance_value
from scim_server.sso.safexml import DS, MD

log = logging.getLogger(__name__)

KEY_NAME = "saml_sp_private_key"
CERT_NAME = "saml_sp_certificate"
CERT_VALIDITY_DAYS = 3650
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


@dataclass(frozen=True)
class ServiceProvider:
    entity_id: str
    acs_url: str
    public_url: str
    certificate_pem: str
    private_key: RSAPrivateKey = field(repr=False)

    @property
    def certificate_base64(self) -> str:
        return certificate_base64(self.certificate_pem)

    def sign(self, data: bytes) -> bytes:
        """RSA-SHA256 (PKCS#1 v1.5) signature, as the HTTP-Redirect binding requires."""
        return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


_cache: "weakref.WeakKeyDictionary[sessionmaker[Session], ServiceProvider]" = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def service_provider(services: Services) -> ServiceProvider:
    """This process's SP identity (loaded or generated once, then cached)."""
    with _cache_lock:
        sp = _cache.get(services.session_factory)
        if sp is None:
            sp = _load_service_provider(services)
            _cache[services.session_factory] = sp
        return sp


def stored_key_pair(services: Services, key_name: str, cert_name: str) -> tuple[RSAPrivateKey, str]:
    """An RSA key and its self-signed certificate, generated on first use and kept in
    ``instance_values`` (the key encrypted with the installation secret). The SP and the
    downstream IdP each keep their own pair under their own names."""
    public_url = services.settings.effective_public_url
    passphrase = installation_secret(services).encode("utf-8")
    key = _load_or_create_key(services.session_factory, passphrase, key_name)
    cert_pem = instance_value(services.session_factory, cert_name, lambda: _self_signed_cert(key, public_url))
    if not _cert_matches_key(cert_pem, key):
        cert_pem = _replace_value(services.session_factory, cert_name, _self_signed_cert(key, public_url))
    return key, cert_pem


def _load_service_provider(services: Services) -> ServiceProvider:
    public_url = services.settings.effective_public_url
    key, cert_pem = stored_key_pair(services, KEY_NAME, CERT_NAME)
    return ServiceProvider(
        entity_id=f"{public_url}/saml/metadata",
        acs_url=f"{public_url}/saml/acs",
        public_url=public_url,
        certificate_pem=cert_pem,
        private_key=key,
    )


def _load_or_create_key(factory: sessionmaker[Session], passphrase: bytes, key_name: str) -> RSAPrivateKey:
    stored = instance_value(factory, key_name, lambda: _encrypted_new_key(passphrase))
    try:
        key = serialization.load_pem_private_key(stored.encode("ascii"), password=passphrase)
    except (ValueError, TypeError):
        log.warning(
            "the stored SAML key %s cannot be decrypted with the current secret key (was "
            "JSM_SCIM_SECRET_KEY changed?); generating a new key pair: re-upload the metadata "
            "to the parties that trust it", key_name,
        )
        stored = _replace_value(factory, key_name, _encrypted_new_key(passphrase))
        key = serialization.load_pem_private_key(stored.encode("ascii"), password=passphrase)
    assert isinstance(key, RSAPrivateKey)
    return key


def _replace_value(factory: sessionmaker[Session], name: str, value: str) -> str:
    with transaction(factory) as session:
        row = session.scalar(select(InstanceValue).where(InstanceValue.name == name).with_for_update())
        row.value = value
    return value


def _encrypted_new_key(passphrase: bytes) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    ).decode("ascii")


def _self_signed_cert(key: RSAPrivateKey, public_url: str) -> str:
    host = urlsplit(public_url).hostname or "jsm-scim-bridge"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=CERT_VALIDITY_DAYS))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _cert_matches_key(cert_pem: str, key: RSAPrivateKey) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    return cert.public_key().public_numbers() == key.public_key().public_numbers()


def certificate_base64(certificate_pem: str) -> str:
    """The certificate's base64 body (PEM without armour), as metadata and KeyInfo carry it."""
    return "".join(certificate_pem.strip().splitlines()[1:-1])


def add_signing_key(descriptor: etree._Element, certificate_pem: str) -> None:
    """A metadata role descriptor's ``KeyDescriptor use="signing"`` holding the certificate."""
    key_descriptor = etree.SubElement(descriptor, f"{{{MD}}}KeyDescriptor", use="signing")
    x509_data = etree.SubElement(etree.SubElement(key_descriptor, f"{{{DS}}}KeyInfo"), f"{{{DS}}}X509Data")
    etree.SubElement(x509_data, f"{{{DS}}}X509Certificate").text = certificate_base64(certificate_pem)


def metadata_xml(sp: ServiceProvider) -> bytes:
    """SP metadata (SAML 2.0 metadata schema): entity ID, signing certificate, ACS (HTTP-POST)."""
    root = etree.Element(f"{{{MD}}}EntityDescriptor", nsmap={"md": MD, "ds": DS}, entityID=sp.entity_id)
    descriptor = etree.SubElement(
        root,
        f"{{{MD}}}SPSSODescriptor",
        AuthnRequestsSigned="true",
        WantAssertionsSigned="true",
        protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol",
    )
    add_signing_key(descriptor, sp.certificate_pem)
    for name_id_format in (NAMEID_EMAIL, NAMEID_UNSPECIFIED):
        etree.SubElement(descriptor, f"{{{MD}}}NameIDFormat").text = name_id_format
    etree.SubElement(
        descriptor,
        f"{{{MD}}}AssertionConsumerService",
        Binding=BINDING_POST,
        Location=sp.acs_url,
        index="0",
        isDefault="true",
    )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

"""This installation as a SAML identity provider: entity ID, SSO URL and signing key pair.

The key pair is generated on first use and kept like the SP's (``sso.sp.stored_key_pair``: the
private key encrypted with the installation secret), under its own names, so the certificate
pasted into Atlassian Administration stays valid across restarts and processes.
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from sqlalchemy.orm import Session, sessionmaker

from scim_server.services import Services
from scim_server.sso.sp import certificate_base64, stored_key_pair

KEY_NAME = "saml_idp_private_key"
CERT_NAME = "saml_idp_certificate"
METADATA_PATH = "/idp/metadata"
SSO_PATH = "/idp/sso"


@dataclass(frozen=True)
class IdentityProvider:
    entity_id: str
    sso_url: str
    certificate_pem: str
    private_key: RSAPrivateKey = field(repr=False)

    @property
    def certificate_base64(self) -> str:
        return certificate_base64(self.certificate_pem)


_cache: "weakref.WeakKeyDictionary[sessionmaker[Session], IdentityProvider]" = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def identity_provider(services: Services) -> IdentityProvider:
    """This process's IdP identity (loaded or generated once, then cached)."""
    with _cache_lock:
        idp = _cache.get(services.session_factory)
        if idp is None:
            public_url = services.settings.effective_public_url
            key, cert_pem = stored_key_pair(services, KEY_NAME, CERT_NAME)
            idp = IdentityProvider(public_url + METADATA_PATH, public_url + SSO_PATH, cert_pem, key)
            _cache[services.session_factory] = idp
        return idp

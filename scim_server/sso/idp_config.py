"""A SAML connection's identity provider settings: validation and certificate handling.

Stored as part of a connection (``sso/connections.py``).
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

MAPPABLE_FIELDS = ("email", "user_name", "display_name", "first_name", "last_name", "groups")

_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class IdpConfigError(ValueError):
    """The IdP configuration given by the admin is unusable."""


@dataclass(frozen=True)
class IdpSettings:
    entity_id: str
    sso_url: str
    certificates: tuple[str, ...]  # PEM, one per trusted signing certificate
    slo_url: str | None = None
    attribute_map: dict[str, str] = field(default_factory=dict)  # field -> IdP attribute name
    allow_idp_initiated: bool = False

    def validated(self) -> "IdpSettings":
        """Return self after checking every field; raise :class:`IdpConfigError` otherwise."""
        if not self.entity_id.strip() or len(self.entity_id) > 1000:
            raise IdpConfigError("the IdP entity ID must be 1 to 1000 characters")
        _check_url(self.sso_url, "SSO URL")
        if self.slo_url:
            _check_url(self.slo_url, "SLO URL")
        if not self.certificates:
            raise IdpConfigError("at least one IdP signing certificate is required")
        check_attribute_map(self.attribute_map)
        return self


def check_attribute_map(attribute_map: dict[str, str]) -> None:
    unknown = set(attribute_map) - set(MAPPABLE_FIELDS)
    if unknown:
        raise IdpConfigError(f"unknown attribute mapping field(s): {', '.join(sorted(unknown))}")


def _check_url(url: str, what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc or len(url) > 2000:
        raise IdpConfigError(f"the IdP {what} must be an absolute http(s) URL, got {url!r}")


def parse_certificates(text: str) -> tuple[str, ...]:
    """PEM certificates (one or more blocks) or one bare base64 DER body, as normalized PEMs."""
    blocks = _PEM_BLOCK.findall(text)
    if not blocks:
        return (_pem_from_base64(text),)
    return tuple(_normalized_pem(block) for block in blocks)


def _pem_from_base64(body: str) -> str:
    compact = "".join(body.split())
    try:
        der = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise IdpConfigError("not a PEM or base64 X.509 certificate") from None
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        raise IdpConfigError("not a valid X.509 certificate") from None
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _normalized_pem(pem: str) -> str:
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError:
        raise IdpConfigError("not a valid X.509 certificate") from None
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def describe_certificate(pem: str) -> dict[str, str | bool]:
    """Subject, validity and SHA-256 fingerprint of a certificate, for ``sso show``."""
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    return {
        "subject": cert.subject.rfc4514_string(),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "sha256": cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        "expired": cert.not_valid_after_utc < dt.datetime.now(dt.timezone.utc),
    }


def as_dict(idp: IdpSettings) -> dict[str, Any]:
    data = asdict(idp)
    data["certificates"] = [describe_certificate(pem) for pem in idp.certificates]
    return data

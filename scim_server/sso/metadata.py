"""Import of the IdP's SAML metadata from a file or an https URL, parsed safely.

A URL is fetched with ``scim_server.outbound.fetch``: bounded (total deadline, size cap), https
on a public address only (the metadata carries the certificate we will trust), redirects
checked the same way; http and loopback/private addresses only with
``JSM_SCIM_ALLOW_PRIVATE_IDP_URLS=true``. The metadata's own signature is not verified: the
admin chooses the source, as with a manually entered certificate.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree

from scim_server import outbound
from scim_server.sso.idp_config import IdpConfigError, parse_certificates
from scim_server.sso.safexml import NS, MalformedXml, UnsafeXml, parse_untrusted, text_of
from scim_server.sso.sp import BINDING_REDIRECT

MAX_METADATA_BYTES = 2 * 1024 * 1024


class MetadataError(IdpConfigError):
    """The metadata cannot be fetched or does not describe a usable SAML IdP."""


@dataclass(frozen=True)
class IdpMetadata:
    entity_id: str
    sso_url: str
    slo_url: str | None
    certificates: tuple[str, ...]


def read_source(source: str, allow_private: bool = False) -> bytes:
    """The bytes of ``source``: a local file path, a ``file://`` URL or an ``https://`` URL
    (``http://`` too when ``allow_private``)."""
    parts = urlsplit(source)
    scheme = parts.scheme.lower()
    if scheme == "https" or (scheme == "http" and allow_private):
        try:
            return outbound.fetch(source, allow_private=allow_private, max_bytes=MAX_METADATA_BYTES,
                                  accept="application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8")
        except outbound.OutboundRefused as exc:
            raise MetadataError(str(exc)) from None
    if scheme == "file":
        path = Path(parts.path)
    elif scheme == "":
        path = Path(source)
    else:
        raise MetadataError(f"unsupported metadata source {source!r}: use a file path or an https URL")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_METADATA_BYTES + 1)
    except OSError as exc:
        raise MetadataError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _capped(data)


def _capped(data: bytes) -> bytes:
    if len(data) > MAX_METADATA_BYTES:
        raise MetadataError(f"metadata larger than {MAX_METADATA_BYTES} bytes")
    return data


def parse_idp_metadata(data: bytes, entity_id: str | None = None) -> IdpMetadata:
    """The IdP described by ``data`` (an EntityDescriptor, or the one chosen from EntitiesDescriptor)."""
    try:
        root = parse_untrusted(data, MAX_METADATA_BYTES)
    except (UnsafeXml, MalformedXml) as exc:
        raise MetadataError(f"metadata is not safe, well-formed XML: {exc}") from None
    entity = _idp_entity(root, entity_id)
    descriptor = entity.find("md:IDPSSODescriptor", NS)
    sso_url = _endpoint(descriptor, "SingleSignOnService")
    if sso_url is None:
        raise MetadataError("the IdP has no SingleSignOnService with the HTTP-Redirect binding")
    return IdpMetadata(
        entity_id=entity.get("entityID", ""),
        sso_url=sso_url,
        slo_url=_endpoint(descriptor, "SingleLogoutService"),
        certificates=_signing_certificates(descriptor),
    )


def _idp_entity(root: etree._Element, entity_id: str | None) -> etree._Element:
    candidates = [root] if root.tag == f"{{{NS['md']}}}EntityDescriptor" else root.findall(".//md:EntityDescriptor", NS)
    idps = [e for e in candidates if e.find("md:IDPSSODescriptor", NS) is not None]
    if entity_id is not None:
        idps = [e for e in idps if e.get("entityID") == entity_id]
    if not idps:
        raise MetadataError("the metadata describes no SAML identity provider" + (f" {entity_id!r}" if entity_id else ""))
    if len(idps) > 1:
        names = ", ".join(e.get("entityID", "?") for e in idps[:10])
        raise MetadataError(f"the metadata describes several identity providers ({names}): choose one with --entity-id")
    return idps[0]


def _endpoint(descriptor: etree._Element, kind: str) -> str | None:
    for service in descriptor.findall(f"md:{kind}", NS):
        if service.get("Binding") == BINDING_REDIRECT and service.get("Location"):
            return service.get("Location")
    return None


def _signing_certificates(descriptor: etree._Element) -> tuple[str, ...]:
    certificates: list[str] = []
    for key in descriptor.findall("md:KeyDescriptor", NS):
        if key.get("use") not in (None, "signing"):
            continue
        for cert in key.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS):
            for pem in parse_certificates(text_of(cert) or ""):
                if pem not in certificates:
                    certificates.append(pem)
    if not certificates:
        raise MetadataError("the IdP metadata has no signing certificate")
    return tuple(certificates)

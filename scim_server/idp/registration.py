"""The one service provider the bridge answers (Atlassian's customer SSO, or the emulator's).

Registered with ``jsm-scim sso atlassian`` from the SP's metadata or from its entity ID and ACS
URL; registering again replaces it. Responses only ever go to the registered ACS URL.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from lxml import etree
from sqlalchemy.orm import Session

from scim_server.db import utcnow
from scim_server.models.idp import RegisteredServiceProvider
from scim_server.sso.safexml import NS, MalformedXml, UnsafeXml, parse_untrusted
from scim_server.sso.sp import BINDING_POST

MAX_METADATA_BYTES = 2 * 1024 * 1024
ROW_ID = 1


class RegistrationError(ValueError):
    """The SP's metadata or values cannot be registered (one-line message for the CLI)."""


@dataclass(frozen=True)
class RegisteredSp:
    entity_id: str
    acs_url: str
    registered_at: dt.datetime | None = None


def registered_sp(session: Session) -> RegisteredSp | None:
    row = session.get(RegisteredServiceProvider, ROW_ID)
    return None if row is None else RegisteredSp(row.entity_id, row.acs_url, row.registered_at)


def register_sp(session: Session, sp: RegisteredSp) -> RegisteredSp:
    """Store ``sp`` (validated) as the one registered SP, replacing any earlier one."""
    checked = validated(sp)
    row = session.get(RegisteredServiceProvider, ROW_ID, with_for_update=True)
    if row is None:
        row = RegisteredServiceProvider(id=ROW_ID)
        session.add(row)
    row.entity_id, row.acs_url, row.registered_at = checked.entity_id, checked.acs_url, utcnow()
    return RegisteredSp(row.entity_id, row.acs_url, row.registered_at)


def validated(sp: RegisteredSp) -> RegisteredSp:
    entity_id, acs_url = sp.entity_id.strip(), sp.acs_url.strip()
    if not entity_id or len(entity_id) > 1000:
        raise RegistrationError("the SP entity ID must be 1 to 1000 characters")
    if len(acs_url) > 2000 or not _acceptable_acs(acs_url):
        raise RegistrationError(
            f"the ACS URL {acs_url[:200]!r} must be an absolute https URL (http only on a loopback host)"
        )
    return RegisteredSp(entity_id, acs_url, sp.registered_at)


def _acceptable_acs(url: str) -> bool:
    parts = urlsplit(url)
    if not parts.hostname or parts.username or parts.password or any(c.isspace() for c in url):
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and _is_loopback(parts.hostname)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_sp_metadata(data: bytes) -> RegisteredSp:
    """Entity ID and HTTP-POST ACS URL (the default one, else the lowest index) of SP metadata."""
    try:
        root = parse_untrusted(data, MAX_METADATA_BYTES)
    except (UnsafeXml, MalformedXml) as exc:
        raise RegistrationError(f"the SP metadata is not safe, well-formed XML: {exc}") from None
    entity = _sp_entity(root)
    services = [
        s for s in entity.findall("md:SPSSODescriptor/md:AssertionConsumerService", NS)
        if s.get("Binding") == BINDING_POST and s.get("Location")
    ]
    if not services:
        raise RegistrationError("the SP metadata has no AssertionConsumerService with the HTTP-POST binding")
    chosen = next((s for s in services if s.get("isDefault") == "true"), None)
    if chosen is None:
        chosen = min(services, key=_index)
    return validated(RegisteredSp(entity.get("entityID", ""), chosen.get("Location", "")))


def _sp_entity(root: etree._Element) -> etree._Element:
    candidates = [root] if root.tag == f"{{{NS['md']}}}EntityDescriptor" else root.findall(".//md:EntityDescriptor", NS)
    sps = [e for e in candidates if e.find("md:SPSSODescriptor", NS) is not None]
    if len(sps) != 1:
        raise RegistrationError(f"the metadata must describe exactly one SAML service provider (found {len(sps)})")
    return sps[0]


def _index(service: etree._Element) -> int:
    try:
        return int(service.get("index", "0"))
    except ValueError:
        return 0

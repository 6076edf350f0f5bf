"""From SAML attributes to a person: e-mail, names and groups, with defaults for common IdPs.

An attribute name configured by the admin (``IdpSettings.attribute_map``) is tried first, then
the names Okta, Microsoft Entra ID, JumpCloud, Keycloak and ADFS send by default. The e-mail
falls back to an e-mail-shaped user name, then to an e-mail-shaped NameID.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from scim_server.sso.response import ValidatedAssertion

_CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"

DEFAULT_NAMES: dict[str, tuple[str, ...]] = {
    "email": (
        "email",
        "Email",
        "emailAddress",
        "mail",
        _CLAIMS + "emailaddress",
        "urn:oid:0.9.2342.19200300.100.1.3",
    ),
    # Entra's ".../claims/name" is the user principal name (often e-mail shaped), not a display name.
    "user_name": ("userName", "username", "login", _CLAIMS + "name", _CLAIMS + "upn"),
    "display_name": (
        "displayName",
        "http://schemas.microsoft.com/identity/claims/displayname",
        "urn:oid:2.16.840.1.113730.3.1.241",
        "cn",
    ),
    "first_name": ("firstName", "givenName", "given_name", _CLAIMS + "givenname", "urn:oid:2.5.4.42"),
    "last_name": ("lastName", "surname", "sn", "familyName", _CLAIMS + "surname", "urn:oid:2.5.4.4"),
    "groups": (
        "groups",
        "Groups",
        "memberOf",
        "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
        "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",
    ),
}

# Persistent and transient NameIDs are opaque handles even when they happen to contain an "@".
_OPAQUE_NAMEID_FORMATS = (
    "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
)
MAX_GROUPS = 500
MAX_VALUE_LENGTH = 300
_EMAIL = re.compile(r"^[^@\s<>\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z0-9-]{2,63}$")


def looks_like_email(value: str | None) -> bool:
    return bool(value) and len(value) <= 320 and bool(_EMAIL.match(value))


@dataclass(frozen=True)
class Identity:
    """The person an assertion describes. ``groups`` is None when the IdP sent no group attribute."""

    email: str
    user_name: str
    display_name: str
    first_name: str | None
    last_name: str | None
    groups: tuple[str, ...] | None


class IdentityError(ValueError):
    """The assertion does not say who the visitor is (no usable e-mail)."""


def _candidates(field: str, attribute_map: dict[str, str]) -> tuple[str, ...]:
    configured = attribute_map.get(field)
    return ((configured,) if configured else ()) + DEFAULT_NAMES[field]


def _values(attributes: dict[str, list[str]], field: str, attribute_map: dict[str, str]) -> list[str] | None:
    for name in _candidates(field, attribute_map):
        if name in attributes:
            return attributes[name]
    return None


def _first(attributes: dict[str, list[str]], field: str, attribute_map: dict[str, str]) -> str | None:
    values = _values(attributes, field, attribute_map) or []
    for value in values:
        if value.strip():
            return value.strip()[:MAX_VALUE_LENGTH]
    return None


def _email(assertion: ValidatedAssertion, user_name: str | None, attribute_map: dict[str, str]) -> str:
    for candidate in (
        _first(assertion.attributes, "email", attribute_map),
        user_name,
        assertion.name_id if assertion.name_id_format not in _OPAQUE_NAMEID_FORMATS else None,
    ):
        if looks_like_email(candidate):
            return candidate.lower()
    raise IdentityError("the assertion carries no e-mail address (attribute, user name or NameID)")


def _groups(attributes: dict[str, list[str]], attribute_map: dict[str, str]) -> tuple[str, ...] | None:
    values = _values(attributes, "groups", attribute_map)
    if values is None:
        return None
    unique: dict[str, str] = {}
    for value in values:
        name = value.strip()
        if name and len(name) <= MAX_VALUE_LENGTH:
            unique.setdefault(name.lower(), name)
    return tuple(sorted(unique.values(), key=str.lower)[:MAX_GROUPS])


def identity_from(assertion: ValidatedAssertion, attribute_map: dict[str, str]) -> Identity:
    """Map ``assertion`` to an :class:`Identity`; raise :class:`IdentityError` without an e-mail."""
    attributes = assertion.attributes
    user_name = _first(attributes, "user_name", attribute_map)
    email = _email(assertion, user_name, attribute_map)
    first = _first(attributes, "first_name", attribute_map)
    last = _first(attributes, "last_name", attribute_map)
    display = (
        _first(attributes, "display_name", attribute_map)
        or " ".join(part for part in (first, last) if part)
        or email
    )
    return Identity(
        email=email,
        user_name=email,
        display_name=display[:MAX_VALUE_LENGTH],
        first_name=first,
        last_name=last,
        groups=_groups(attributes, attribute_map),
    )

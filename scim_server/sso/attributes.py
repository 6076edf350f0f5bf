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


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(value: str) -> str:
    """Lower-case A-Z only: ``str.lower`` would turn U+212A KELVIN SIGN into ``k``."""
    return value.translate(_ASCII_LOWER)


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


# OpenID Connect standard claims (OIDC Core §5.1), then the group claims of common providers:
# Keycloak/Okta/Entra ID "groups", AWS Cognito "cognito:groups", Entra ID app "roles".
OIDC_DEFAULT_NAMES: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "user_name": ("preferred_username",),
    "display_name": ("name",),
    "first_name": ("given_name",),
    "last_name": ("family_name",),
    "groups": ("groups", "cognito:groups", "roles"),
}


@dataclass(frozen=True)
class _Reader:
    attributes: dict[str, list[str]]
    attribute_map: dict[str, str]
    defaults: dict[str, tuple[str, ...]]

    def values(self, field: str) -> list[str] | None:
        configured = self.attribute_map.get(field)
        for name in ((configured,) if configured else ()) + self.defaults[field]:
            if name in self.attributes:
                return self.attributes[name]
        return None

    def first(self, field: str) -> str | None:
        for value in self.values(field) or []:
            if value.strip():
                return value.strip()[:MAX_VALUE_LENGTH]
        return None

    def groups(self) -> tuple[str, ...] | None:
        values = self.values("groups")
        if values is None:
            return None
        unique: dict[str, str] = {}
        for value in values:
            name = value.strip()
            if name and len(name) <= MAX_VALUE_LENGTH:
                unique.setdefault(name.lower(), name)
        return tuple(sorted(unique.values(), key=str.lower)[:MAX_GROUPS])

    def identity(self, *fallback_emails: str | None) -> Identity:
        for candidate in (self.first("email"), *fallback_emails):
            if looks_like_email(candidate):
                email = ascii_lower(candidate)
                break
        else:
            raise IdentityError("no e-mail address (attribute, user name or NameID)")
        first, last = self.first("first_name"), self.first("last_name")
        display = self.first("display_name") or " ".join(part for part in (first, last) if part) or email
        return Identity(email=email, user_name=email, display_name=display[:MAX_VALUE_LENGTH],
                        first_name=first, last_name=last, groups=self.groups())


def identity_from(assertion: ValidatedAssertion, attribute_map: dict[str, str]) -> Identity:
    """Map ``assertion`` to an :class:`Identity`; raise :class:`IdentityError` without an e-mail."""
    name_id = assertion.name_id if assertion.name_id_format not in _OPAQUE_NAMEID_FORMATS else None
    reader = _Reader(assertion.attributes, attribute_map, DEFAULT_NAMES)
    return reader.identity(reader.first("user_name"), name_id)


def identity_from_claims(claims: dict[str, object], attribute_map: dict[str, str]) -> Identity:
    """Map verified ID token claims to an :class:`Identity` (strings and lists of strings only).

    The e-mail comes from the ``email`` claim (or the claim mapped to ``email``) only, never from a
    user name: Entra ID's ``preferred_username`` is not a verified address.
    """
    attributes: dict[str, list[str]] = {}
    for name, value in claims.items():
        if isinstance(value, str):
            attributes[name] = [value]
        elif isinstance(value, list):
            attributes[name] = [item for item in value if isinstance(item, str)]
    return _Reader(attributes, attribute_map, OIDC_DEFAULT_NAMES).identity()

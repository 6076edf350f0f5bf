"""Authenticated encryption of small secrets with a key derived from the installation secret.

Used for OIDC client secrets at rest and for the browser's login-binding cookie. Each use has its
own ``purpose``, so a value sealed for one purpose never opens for another. Fernet (AES-128-CBC
+ HMAC-SHA256, with a timestamp) comes from ``cryptography``.
"""
from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from scim_server.services import Services, installation_secret


class SealBroken(ValueError):
    """The value was not sealed by this installation for this purpose, was altered, or expired."""


def _fernet(secret: str, purpose: str) -> Fernet:
    digest = hashlib.sha256(f"jsm-scim.sealed.{purpose}\x00{secret}".encode("utf-8")).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(services: Services, purpose: str, plaintext: str) -> str:
    return _fernet(installation_secret(services), purpose).encrypt(plaintext.encode("utf-8")).decode("ascii")


def unseal(services: Services, purpose: str, token: str, max_age_seconds: int | None = None) -> str:
    try:
        data = _fernet(installation_secret(services), purpose).decrypt(token.encode("ascii"), ttl=max_age_seconds)
    except (InvalidToken, UnicodeError, ValueError):
        raise SealBroken(purpose) from None
    return data.decode("utf-8")

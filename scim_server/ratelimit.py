"""Per-key rate limiting of SCIM requests (placeholder until the hardening feature lands)."""
from __future__ import annotations


def check(key_id: str) -> None:
    """Raise ScimError(429, with a Retry-After header) when ``key_id`` exceeds its rate."""

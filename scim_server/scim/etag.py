"""Weak entity tags for SCIM resources (RFC 7644 §3.14) built from the resource version."""
from __future__ import annotations


def etag_for(version: int) -> str:
    return f'W/"{version}"'


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def _opaque(tag: str) -> str:
    """The tag without its weakness marker: weak comparison (RFC 7232 §2.3.2)."""
    return tag[2:] if tag.startswith(("W/", "w/")) else tag


def header_matches(header: str | None, version: int) -> bool:
    """Whether an If-Match / If-None-Match header names this version (``*`` names any)."""
    if header is None:
        return False
    current = _opaque(etag_for(version))
    return any(tag == "*" or _opaque(tag) == current for tag in _tags(header))


def precondition_holds(if_match: str | None, version: int) -> bool:
    """If-Match: no header, ``*`` or the current tag lets a write proceed."""
    return if_match is None or not if_match.strip() or header_matches(if_match, version)

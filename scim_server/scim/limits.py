"""Limits on what one SCIM request may ask for, so that no request can cost minutes of CPU.

Each limit is published in README ("Limits") and, where RFC 7644 §5 has a field for it, in
``/ServiceProviderConfig`` (``filter.maxResults`` = :data:`MAX_COUNT`; bulk is not supported).

:func:`check_json` walks a parsed request body once (iteratively, so no recursion limit is hit)
and refuses nesting deeper than :data:`MAX_JSON_DEPTH`, strings that cannot be stored (lone
surrogates, NUL), integers outside 64 bits and non-finite numbers.
"""
from __future__ import annotations

import math
from typing import Any

from scim_server.scim.errors import ScimError

MAX_JSON_DEPTH = 32  # the deepest SCIM message (PATCH value with members) nests about 6 levels
MAX_PATCH_OPERATIONS = 10_000  # Okta removes members with one operation each: cheap set operations
MAX_ATTRIBUTE_OPERATIONS = 1_000  # PATCH operations on attributes (not members) in one request
MAX_MULTI_VALUES = 200  # values of one multi-valued attribute (emails, phoneNumbers, roles, ...)
MAX_FILTER_TERMS = 100  # attribute comparisons (and presence tests) in one filter
MAX_FILTER_LENGTH = 10_000  # characters
MAX_START_INDEX = 2**31 - 1
MAX_COUNT = 1000  # resources per page (filter.maxResults); a larger count is served as this many
MAX_INTEGER = 2**63 - 1  # integers in documents must fit a signed 64-bit value


def check_json(value: Any) -> None:
    """400 when a parsed JSON body nests too deep or holds a value that cannot be stored."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            _check_depth(depth)
            for key, child in item.items():
                check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            _check_depth(depth)
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            check_text(item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_INTEGER:
                raise ScimError(400, f"Integer values must lie within ±{MAX_INTEGER}", "invalidValue")
        elif isinstance(item, float) and not math.isfinite(item):
            raise ScimError(400, "Numbers must be finite", "invalidValue")


def _check_depth(depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ScimError(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", "invalidSyntax")


def check_text(text: str) -> None:
    """400 for strings no database stores faithfully: lone UTF-16 surrogates and NUL characters."""
    if "\x00" in text:
        raise ScimError(400, "Strings must not contain NUL characters", "invalidValue")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ScimError(400, "Strings must be valid Unicode (no lone surrogates)", "invalidValue") from None


def check_start_index(value: int | None) -> None:
    if value is not None and value > MAX_START_INDEX:
        raise ScimError(400, f"startIndex must be at most {MAX_START_INDEX}", "invalidValue")


def check_patch_operations(count: int, limit: int = MAX_PATCH_OPERATIONS, what: str = "operations") -> None:
    if count > limit:
        # 413 as for a bulk request over bulk.maxOperations (RFC 7644 §3.7.4)
        raise ScimError(413, f"A PATCH may carry at most {limit} {what}; send several requests")


def check_multi_values(count: int, name: str) -> None:
    if count > MAX_MULTI_VALUES:
        raise ScimError(400, f"'{name}' may hold at most {MAX_MULTI_VALUES} values", "invalidValue")

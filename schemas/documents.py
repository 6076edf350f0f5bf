"""The RFC 7643 discovery documents shipped as JSON beside this module.

The files are the single source of truth: the attribute registry (``scim_server.scim.attributes``)
is derived from the schema documents, and the discovery endpoints serve them. Every function
returns a fresh deep copy, so callers may add ``meta.location`` without touching the cache.
"""
from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from scim_server.scim import limits

DIRECTORY = Path(__file__).resolve().parent
SCHEMA_FILES = ("user.json", "enterprise_user.json", "group.json")


@functools.cache
def _load(name: str) -> Any:
    return json.loads((DIRECTORY / name).read_text(encoding="utf-8"))


def schema_documents() -> list[dict[str, Any]]:
    """The schema documents (core User, enterprise User extension, core Group), without locations."""
    return [copy.deepcopy(_load(name)) for name in SCHEMA_FILES]


def resource_types() -> list[dict[str, Any]]:
    """The ResourceType documents (User with the optional enterprise extension, Group)."""
    return copy.deepcopy(_load("resource_types.json"))


def service_provider_config() -> dict[str, Any]:
    """The ServiceProviderConfig document, accurate to what the server implements."""
    document = copy.deepcopy(_load("service_provider_config.json"))
    document["filter"]["maxResults"] = limits.MAX_COUNT
    return document

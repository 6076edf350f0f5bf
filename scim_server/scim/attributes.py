"""The SCIM attribute registry, derived from the RFC 7643 schema documents in ``schemas/``.

Lookups are case-insensitive (RFC 7643 §2.1: attribute names and schema URIs are case
insensitive) and answer with canonical definitions, so that output always uses the proper case.
Besides the schema documents, every resource type has the common attributes of RFC 7643 §3.1
(``id``, ``externalId``, ``meta``), registered under the resource type's core schema. ``schemas``
itself is not in the registry: it is handled by the resource code.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from schemas.documents import schema_documents

USER, GROUP = "User", "Group"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"

RESOURCE_TYPES = (USER, GROUP)
_SCHEMAS_BY_RESOURCE_TYPE: dict[str, tuple[str, ...]] = {
    USER: (USER_SCHEMA, ENTERPRISE_SCHEMA),
    GROUP: (GROUP_SCHEMA,),
}

_EMPTY: Mapping[str, "AttributeDef"] = MappingProxyType({})


@dataclass(frozen=True)
class AttributeDef:
    """One attribute (or sub-attribute) definition; ``sub_attributes`` is keyed by lowercase name."""

    name: str
    type: str
    multi_valued: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    required: bool = False
    canonical_values: tuple[str, ...] = ()
    sub_attributes: Mapping[str, "AttributeDef"] = field(default_factory=lambda: _EMPTY, compare=False, hash=False)
    schema: str = ""
    reference_types: tuple[str, ...] = ()

    @property
    def is_complex(self) -> bool:
        return self.type == "complex"

    def sub(self, name: str) -> "AttributeDef | None":
        """The sub-attribute called ``name`` (any case), or None."""
        return self.sub_attributes.get(name.lower())


def _definition(raw: Mapping[str, Any], schema: str) -> AttributeDef:
    subs = {s["name"].lower(): _definition(s, schema) for s in raw.get("subAttributes", ())}
    return AttributeDef(
        name=raw["name"],
        type=raw["type"],
        multi_valued=bool(raw.get("multiValued", False)),
        case_exact=bool(raw.get("caseExact", False)),
        mutability=raw.get("mutability", "readWrite"),
        returned=raw.get("returned", "default"),
        uniqueness=raw.get("uniqueness", "none"),
        required=bool(raw.get("required", False)),
        canonical_values=tuple(raw.get("canonicalValues", ())),
        sub_attributes=MappingProxyType(subs) if subs else _EMPTY,
        schema=schema,
        reference_types=tuple(raw.get("referenceTypes", ())),
    )


def _common_attributes(schema: str) -> dict[str, AttributeDef]:
    """RFC 7643 §3.1 common attributes, registered under the resource type's core schema."""
    meta_subs = {
        "resourcetype": AttributeDef("resourceType", "string", case_exact=True, mutability="readOnly", schema=schema),
        "created": AttributeDef("created", "dateTime", mutability="readOnly", schema=schema),
        "lastmodified": AttributeDef("lastModified", "dateTime", mutability="readOnly", schema=schema),
        "location": AttributeDef("location", "reference", case_exact=True, mutability="readOnly", schema=schema),
        "version": AttributeDef("version", "string", case_exact=True, mutability="readOnly", schema=schema),
    }
    return {
        "id": AttributeDef("id", "string", case_exact=True, mutability="readOnly", returned="always",
                           uniqueness="server", schema=schema),
        "externalid": AttributeDef("externalId", "string", case_exact=True, schema=schema),
        "meta": AttributeDef("meta", "complex", mutability="readOnly", sub_attributes=MappingProxyType(meta_subs),
                             schema=schema),
    }


@functools.cache
def _registry() -> dict[str, dict[str, AttributeDef]]:
    """Schema URN (lowercase) -> attribute name (lowercase) -> definition."""
    registry: dict[str, dict[str, AttributeDef]] = {}
    for document in schema_documents():
        urn = document["id"]
        registry[urn.lower()] = {a["name"].lower(): _definition(a, urn) for a in document["attributes"]}
    for resource_type in RESOURCE_TYPES:
        core = core_schema(resource_type)
        registry[core.lower()] = {**_common_attributes(core), **registry[core.lower()]}
    return registry


def core_schema(resource_type: str) -> str:
    """The core schema URN of a resource type."""
    return schemas_for(resource_type)[0]


def schemas_for(resource_type: str) -> tuple[str, ...]:
    """Core schema URN first, then the extension schema URNs of the resource type."""
    try:
        return _SCHEMAS_BY_RESOURCE_TYPE[resource_type]
    except KeyError:
        raise ValueError(f"unknown resource type {resource_type!r}") from None


def extension_schemas(resource_type: str) -> tuple[str, ...]:
    return schemas_for(resource_type)[1:]


def resolve_schema(resource_type: str, urn: str) -> str | None:
    """The canonical spelling of ``urn`` if it is one of the resource type's schemas, else None."""
    return next((s for s in schemas_for(resource_type) if s.lower() == urn.lower()), None)


@functools.lru_cache(maxsize=256)  # names come from requests: bounded, though the schemas are static
def schema_attributes(resource_type: str, schema_urn: str | None = None) -> Mapping[str, AttributeDef]:
    """All top-level attributes of one schema of the resource type, keyed by lowercase name.

    The core schema (the default) includes the common attributes ``id``, ``externalId`` and ``meta``.
    """
    schema = resolve_schema(resource_type, schema_urn) if schema_urn else core_schema(resource_type)
    if schema is None:
        return _EMPTY
    return MappingProxyType(_registry()[schema.lower()])


@functools.lru_cache(maxsize=4096)
def find_attribute(
    resource_type: str, schema_urn: str | None, name: str, sub: str | None = None
) -> AttributeDef | None:
    """The definition of ``name`` (or of its sub-attribute ``sub``), case-insensitively, or None.

    ``schema_urn`` None means the core schema (RFC 7644 §3.10: extension attributes are written
    with their schema URN prefix).
    """
    definition = schema_attributes(resource_type, schema_urn).get(name.lower())
    if definition is None or sub is None:
        return definition
    return definition.sub(sub)


def canonical_name(resource_type: str, schema_urn: str | None, name: str, sub: str | None = None) -> str | None:
    """The proper-case name of an attribute (or of its sub-attribute when ``sub`` is given), or None."""
    definition = find_attribute(resource_type, schema_urn, name, sub)
    return definition.name if definition else None

"""Resolved SCIM attribute paths (RFC 7644 §3.10): ``AttrPath`` and its resolution against the
schema registry. Names resolve case-insensitively to their canonical case; ``schema`` is the core
URN when omitted. Parsing text into paths is the grammar's job (``scim_server.scim.parser``)."""
from __future__ import annotations

from dataclasses import dataclass

from scim_server.scim.attributes import (
    GROUP_SCHEMA,
    USER_SCHEMA,
    AttributeDef,
    core_schema,
    find_attribute,
    resolve_schema,
)
from scim_server.scim.errors import ScimError


@dataclass(frozen=True)
class AttrPath:
    """A resolved attribute path: canonical schema URN, attribute and optional sub-attribute."""

    schema: str
    attribute: str
    sub_attribute: str | None = None

    def __str__(self) -> str:
        name = f"{self.attribute}.{self.sub_attribute}" if self.sub_attribute else self.attribute
        return name if self.schema in (USER_SCHEMA, GROUP_SCHEMA) else f"{self.schema}:{name}"

    def parent(self) -> "AttrPath":
        """The path without its sub-attribute."""
        return AttrPath(self.schema, self.attribute)


def attribute_definition(resource_type: str, path: AttrPath) -> AttributeDef:
    """The definition a resolved path points at (the sub-attribute when there is one)."""
    definition = find_attribute(resource_type, path.schema, path.attribute, path.sub_attribute)
    assert definition is not None, f"unresolved path {path}"
    return definition


def resolve_attr_path(
    resource_type: str, uri: str | None, name: str, sub: str | None, *, scim_type: str = "invalidPath"
) -> AttrPath:
    """Resolve the parts of an attribute path to canonical names, or raise a 400 ``scim_type``."""
    schema = core_schema(resource_type) if uri is None else resolve_schema(resource_type, uri)
    if schema is None:
        raise ScimError(400, f"Unknown schema {uri!r} for resource type {resource_type}", scim_type)
    definition = find_attribute(resource_type, schema, name)
    if definition is None:
        raise ScimError(400, f"Unknown attribute {_spelled(uri, name)!r} for resource type {resource_type}",
                        scim_type)
    if sub is None:
        return AttrPath(schema, definition.name)
    sub_definition = definition.sub(sub)
    if sub_definition is None:
        raise ScimError(400, f"Unknown sub-attribute {_spelled(uri, name)}.{sub!r}", scim_type)
    return AttrPath(schema, definition.name, sub_definition.name)


def _spelled(uri: str | None, name: str) -> str:
    return f"{uri}:{name}" if uri else name

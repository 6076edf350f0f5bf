"""SCIM attribute paths (RFC 7644 §3.10) and PATCH paths (RFC 7644 §3.5.2).

- ``parse_attr_path(resource_type, text) -> AttrPath``: ``userName``, ``name.givenName``,
  ``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value``. Names are resolved
  case-insensitively to their canonical case; ``schema`` is the core URN when omitted.
- ``parse_patch_path(resource_type, text) -> PatchPath``: ``attrPath`` or ``valuePath [subAttr]``,
  e.g. ``emails[type eq "work"].value``, ``members[value eq "x"]``, ``manager[value eq "x"]``.

Both raise ``ScimError(400, ..., "invalidPath")`` for syntax errors and unknown attributes (a path
inside a filter reports ``invalidFilter`` instead). Tokenising and parsing live in
``scim_server.scim.filters``, which shares one grammar between filters and paths.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from scim_server.scim.attributes import (
    GROUP_SCHEMA,
    USER_SCHEMA,
    AttributeDef,
    core_schema,
    find_attribute,
    resolve_schema,
)
from scim_server.scim.errors import ScimError

if TYPE_CHECKING:  # pragma: no cover
    from scim_server.scim.filters import Filter


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


@dataclass(frozen=True)
class PatchPath:
    """A PATCH target.

    ``attr`` is the attribute path written before any ``[...]`` (so ``name.givenName`` has
    ``attr.sub_attribute == "givenName"``); ``value_filter`` is the bracketed filter over the
    attribute's values (its comparisons carry full paths such as ``emails.type``); ``sub_attribute``
    is the sub-attribute written after ``]`` (``emails[type eq "work"].value``). ``target_sub``
    gives whichever sub-attribute is addressed.
    """

    attr: AttrPath
    value_filter: "Filter | None" = None
    sub_attribute: str | None = None

    @property
    def target_sub(self) -> str | None:
        return self.sub_attribute or self.attr.sub_attribute


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


def parse_attr_path(resource_type: str, text: str, *, scim_type: str = "invalidPath") -> AttrPath:
    """Parse ``[URI:]attr[.sub]``; raises ScimError 400 ``scim_type`` when invalid or unknown."""
    patch_path = _parse(resource_type, text, scim_type)
    if patch_path.value_filter is not None:
        raise ScimError(400, f"A value filter is not allowed in an attribute path: {text!r}", scim_type)
    return patch_path.attr


def parse_patch_path(resource_type: str, text: str) -> PatchPath:
    """Parse a PATCH ``path``: ``attrPath`` or ``attrPath "[" valFilter "]" [.subAttr]``."""
    return _parse(resource_type, text, "invalidPath")


def _parse(resource_type: str, text: str, scim_type: str) -> PatchPath:
    from scim_server.scim.filters import parse_path_expression  # one grammar for filters and paths

    if not isinstance(text, str) or not text.strip():
        raise ScimError(400, "The path is empty", scim_type)
    return parse_path_expression(resource_type, text, scim_type)

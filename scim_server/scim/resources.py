"""Pure rules for SCIM resource documents: validation of input, immutability, output with ``meta``.

A stored document is the canonical form produced by :func:`validate_document`: canonical attribute
names, extension attributes under their schema URN, no ``id``/``meta``/readOnly attributes, no
``password``. Output adds ``id``, ``meta`` and the computed attributes (``groups``, ``members``).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError

from schemas.scim_resource import UNKNOWN_FIELD, attribute_field, resource_schema
from scim_server.scim.attributes import AttributeDef, core_schema, extension_schemas, schema_attributes
from scim_server.scim.errors import ScimError
from scim_server.scim.etag import etag_for


def _contains(messages: Any, needle: str) -> bool:
    if isinstance(messages, dict):
        return any(_contains(value, needle) for value in messages.values())
    if isinstance(messages, list):
        return any(_contains(value, needle) for value in messages)
    return bool(messages == needle)


def _describe(messages: Any, prefix: str = "") -> str:
    """``emails[0].value: Not a valid string.`` from marshmallow's nested messages."""
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        if key == "_schema":
            return _describe(value, prefix)
        step = f"[{key}]" if isinstance(key, int) else (f".{key}" if prefix else str(key))
        return _describe(value, prefix + step)
    if isinstance(messages, list) and messages:
        return _describe(messages[0], prefix)
    return f"{prefix}: {messages}" if prefix else str(messages)


def validation_error(exc: ValidationError, prefix: str = "") -> ScimError:
    """A marshmallow error as a SCIM 400: unknown attributes and bad ``schemas`` are syntax errors."""
    messages = exc.messages
    unknown = _contains(messages, UNKNOWN_FIELD)
    syntax = unknown or (isinstance(messages, dict) and "schemas" in messages)
    detail = _describe(messages, prefix)
    if unknown:
        detail = detail.replace(UNKNOWN_FIELD, "Unknown attribute.")
    return ScimError(400, detail, "invalidSyntax" if syntax else "invalidValue")


def validate_document(resource_type: str, data: Any) -> dict[str, Any]:
    """The canonical stored form of an incoming (or patched) document; 400 when invalid."""
    if not isinstance(data, dict):
        raise ScimError(400, "The request body must be a JSON object", "invalidSyntax")
    try:
        document: dict[str, Any] = resource_schema(resource_type).load(data)
        return document
    except ValidationError as exc:
        raise validation_error(exc) from exc


def deserialize_value(definition: AttributeDef, value: Any, label: str) -> Any:
    """One attribute's value in canonical form (for PATCH); None when it is unassigned."""
    try:
        return attribute_field(definition).deserialize(value)
    except ValidationError as exc:
        raise validation_error(ValidationError({label: exc.messages})) from exc


def _section(document: dict[str, Any], resource_type: str, schema: str) -> dict[str, Any]:
    return document if schema == core_schema(resource_type) else document.get(schema) or {}


def check_immutable(resource_type: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """RFC 7643 §2.2: an immutable attribute may be set once, then never changed (400 mutability)."""
    for schema in (core_schema(resource_type), *extension_schemas(resource_type)):
        before, after = _section(old, resource_type, schema), _section(new, resource_type, schema)
        for definition in schema_attributes(resource_type, schema).values():
            if definition.mutability != "immutable":
                continue
            name = definition.name
            if name in before and before.get(name) != after.get(name):
                raise ScimError(400, f"Attribute '{name}' is immutable", "mutability")


def timestamp(value: dt.datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` (RFC 7643 §2.3.5 dateTime)."""
    return value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ResourceMeta:
    resource_type: str
    created: dt.datetime
    last_modified: dt.datetime
    location: str
    version: int

    def document(self) -> dict[str, Any]:
        return {
            "resourceType": self.resource_type,
            "created": timestamp(self.created),
            "lastModified": timestamp(self.last_modified),
            "location": self.location,
            "version": etag_for(self.version),
        }


def present_schemas(resource_type: str, document: dict[str, Any]) -> list[str]:
    """Core schema plus every extension the document has values for."""
    return [core_schema(resource_type)] + [urn for urn in extension_schemas(resource_type) if document.get(urn)]


def output_document(
    resource_type: str,
    resource_id: str,
    document: dict[str, Any],
    meta: ResourceMeta,
    computed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The full SCIM representation (before projection by ``attributes``/``excludedAttributes``)."""
    body = {key: value for key, value in document.items() if key != "schemas"}
    output: dict[str, Any] = {"schemas": present_schemas(resource_type, document), "id": resource_id}
    output.update(body)
    for key, value in (computed or {}).items():
        if value is not None:
            output[key] = value
    output["meta"] = meta.document()
    return output


def reference(base_url: str, endpoint: str, resource_id: str) -> str:
    return f"{base_url}/scim/v2/{endpoint}/{resource_id}"


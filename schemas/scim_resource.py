"""Marshmallow schemas for SCIM resources, generated from the attribute registry.

The RFC 7643 schema documents are the single source of truth (``scim_server.scim.attributes``);
this module turns each attribute definition into a marshmallow field, so request validation always
matches what ``/Schemas`` advertises. Loading a document:

- resolves attribute names case-insensitively to their canonical spelling (RFC 7643 §2.1);
- treats ``null`` and empty values as unassigned;
- ignores readOnly attributes (``id``, ``meta``, ``groups``, ``members.display``) and drops attributes
  that are never returned (``password``: the bridge has no password login, so it never stores it);
- ignores extension objects under URNs the resource type does not have;
- rejects unknown attributes (``Unknown field.``) and values of the wrong type;
- accepts the shapes IdPs send: a one-element list for a single-valued attribute, a bare string for
  a complex attribute with a ``value`` sub-attribute (Entra's ``manager``), booleans as strings.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Any, Mapping

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, pre_load

from scim_server.scim import limits
from scim_server.scim.attributes import (
    AttributeDef,
    core_schema,
    extension_schemas,
    resolve_schema,
    schema_attributes,
)

UNKNOWN_FIELD = "Unknown field."
EMPTY = (None, "", [], {})


def is_ignored_on_input(definition: AttributeDef) -> bool:
    return definition.mutability == "readOnly" or definition.returned == "never"


def _validate_datetime(value: str) -> None:
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValidationError("Not a valid xsd:dateTime.") from None


def _scalar_field(definition: AttributeDef) -> fields.Field:
    if definition.type == "boolean":
        return fields.Boolean()
    if definition.type == "integer":
        return fields.Integer(strict=True)
    if definition.type == "decimal":
        return fields.Float()
    if definition.type == "dateTime":
        return fields.String(validate=_validate_datetime)
    return fields.String()  # string, reference, binary


class AttributeField(fields.Field):
    """One SCIM attribute: applies the single/multi-valued shape rules around the value field."""

    def __init__(self, definition: AttributeDef, **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)
        self.definition = definition
        self.value_field = (
            fields.Nested(complex_schema(definition)) if definition.is_complex else _scalar_field(definition)
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if self.definition.multi_valued:
            return self._many(value if isinstance(value, list) else [value])
        if isinstance(value, list):
            if len(value) > 1:
                raise ValidationError("Not a multi-valued attribute: expected one value.")
            value = value[0] if value else None
        result = self._one(value)
        if self.definition.required and (result is None or (isinstance(result, str) and not result.strip())):
            raise ValidationError("A required attribute must have a non-blank value.")
        return result

    def _one(self, value: Any) -> Any:
        if value is None:
            return None
        if self.definition.is_complex and isinstance(value, str) and self.definition.sub("value"):
            value = {"value": value}
        result = self.value_field.deserialize(value)
        return None if result in EMPTY else result

    def _many(self, values: list[Any]) -> list[Any] | None:
        if len(values) > limits.MAX_MULTI_VALUES:
            raise ValidationError(f"At most {limits.MAX_MULTI_VALUES} values are accepted.")
        loaded, seen, errors = [], set(), {}
        for index, value in enumerate(values):
            try:
                item = self._one(value)
            except ValidationError as exc:
                errors[index] = exc.messages
                continue
            identity = json.dumps(item, sort_keys=True, default=str)
            if item is not None and identity not in seen:
                seen.add(identity)
                loaded.append(item)
        if errors:
            raise ValidationError(errors)
        if sum(1 for item in loaded if isinstance(item, dict) and item.get("primary") is True) > 1:
            raise ValidationError("At most one value may have primary set to true.")
        return loaded or None


class AttributeObjectSchema(Schema):
    """An object whose keys are SCIM attributes: a resource, an extension or a complex value."""

    class Meta:
        unknown = RAISE

    attribute_defs: Mapping[str, AttributeDef] = {}

    def resolve_key(self, key: str) -> tuple[str, bool]:
        """(canonical key, ignore?) for an input key."""
        definition = self.attribute_defs.get(key.lower())
        if definition is None:
            return key, False
        return definition.name, is_ignored_on_input(definition)

    @pre_load
    def _canonicalize(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, dict):
            return data
        result: dict[str, Any] = {}
        for key, value in data.items():
            canonical, ignored = self.resolve_key(str(key))
            if not ignored and value is not None:
                result[canonical] = value
        return result

    @post_load
    def _drop_unassigned(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {key: value for key, value in data.items() if value not in EMPTY}


def _attribute_fields(defs: Mapping[str, AttributeDef]) -> dict[str, fields.Field]:
    return {d.name: AttributeField(d) for d in defs.values() if not is_ignored_on_input(d)}


@functools.cache
def complex_schema(definition: AttributeDef) -> AttributeObjectSchema:
    cls = AttributeObjectSchema.from_dict(_attribute_fields(definition.sub_attributes), name=f"{definition.name}Value")
    cls.attribute_defs = definition.sub_attributes
    return cls()


class SchemasField(fields.List):
    """The resource's ``schemas``: must name the core schema; URNs compared case-insensitively."""

    def __init__(self, resource_type: str) -> None:
        super().__init__(fields.String(), required=True)
        self.resource_type = resource_type

    def _deserialize(self, value, attr, data, **kwargs):
        urns = super()._deserialize(value, attr, data, **kwargs)
        core = core_schema(self.resource_type)
        if core.lower() not in {urn.lower() for urn in urns}:
            raise ValidationError(f"schemas must contain {core}")
        known = [resolve_schema(self.resource_type, urn) for urn in urns]
        return [core] + [urn for urn in dict.fromkeys(known) if urn and urn != core]


class ResourceSchema(AttributeObjectSchema):
    """A whole User or Group document; extension attributes nest under their schema URN."""

    resource_type: str = ""
    extension_keys: Mapping[str, str] = {}  # field name -> URN (URNs contain dots marshmallow would split)

    @post_load
    def _extension_urns(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {self.extension_keys.get(key, key): value for key, value in data.items()}

    def resolve_key(self, key: str) -> tuple[str, bool]:
        if key.lower() == "schemas":
            return "schemas", False
        extension = resolve_schema(self.resource_type, key)
        if extension is not None:
            return extension, False
        if key.lower().startswith("urn:"):
            return key, True  # an extension this server does not implement: ignored
        return super().resolve_key(key)


@functools.cache
def resource_schema(resource_type: str) -> ResourceSchema:
    """The marshmallow schema validating a ``resource_type`` document (cached: schemas are static)."""
    core_defs = schema_attributes(resource_type)
    declared: dict[str, fields.Field] = {"schemas": SchemasField(resource_type), **_attribute_fields(core_defs)}
    extension_keys: dict[str, str] = {}
    for index, urn in enumerate(extension_schemas(resource_type)):
        extension_cls = AttributeObjectSchema.from_dict(
            _attribute_fields(schema_attributes(resource_type, urn)), name=urn.rsplit(":", 1)[-1] + "Extension"
        )
        extension_cls.attribute_defs = schema_attributes(resource_type, urn)
        extension_keys[f"extension_{index}"] = urn
        declared[f"extension_{index}"] = fields.Nested(extension_cls(), data_key=urn, allow_none=True)
    for field in declared.values():
        if isinstance(field, AttributeField) and field.definition.required:
            field.required = True
    cls = ResourceSchema.from_dict(declared, name=f"{resource_type}Schema")
    cls.attribute_defs = core_defs
    cls.resource_type = resource_type
    cls.extension_keys = extension_keys
    return cls()


@functools.cache
def attribute_field(definition: AttributeDef) -> AttributeField:
    """A field for one attribute alone (used to validate PATCH values)."""
    return AttributeField(definition)

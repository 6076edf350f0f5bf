"""Marshmallow schemas for SCIM protocol messages (RFC 7644): PatchOp, SearchRequest, ListResponse.

Loading validates a request and returns plain data; a ``ValidationError`` is turned into a SCIM
400 by :func:`load_message`.
"""
from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

from scim_server.scim import limits
from scim_server.scim.errors import ScimError

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

PATCH_OPS = ("add", "remove", "replace")
SORT_ORDERS = ("ascending", "descending")


def _canonical_keys(data: Any, names: tuple[str, ...]) -> Any:
    """Map message keys case-insensitively to their canonical spelling (RFC 7643 §2.1)."""
    if not isinstance(data, dict):
        return data
    by_lower = {name.lower(): name for name in names}
    return {by_lower.get(str(key).lower(), key): value for key, value in data.items()}


def _split_list(value: Any) -> Any:
    """``attributes`` is a comma-separated string in a query and a list in a SearchRequest."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class MessageSchemas(fields.List):
    """The ``schemas`` member of a message: must name ``urn`` (compared case-insensitively)."""

    def __init__(self, urn: str, **kwargs: Any) -> None:
        super().__init__(fields.String(), required=True, **kwargs)
        self.urn = urn

    def _deserialize(self, value, attr, data, **kwargs):
        values = super()._deserialize(value, attr, data, **kwargs)
        if self.urn.lower() not in {v.lower() for v in values}:
            raise ValidationError(f"schemas must contain {self.urn}")
        return [self.urn]


class PatchOperationSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    op = fields.String(required=True, validate=validate.OneOf(PATCH_OPS, error="op must be add, remove or replace"))
    path = fields.String(load_default=None, allow_none=True)
    value = fields.Raw(load_default=None, allow_none=True)

    @pre_load
    def _normalize(self, data: Any, **_: Any) -> Any:
        data = _canonical_keys(data, ("op", "path", "value"))
        if isinstance(data, dict) and isinstance(data.get("op"), str):
            data = {**data, "op": data["op"].strip().lower()}  # Entra sends "Add", "Replace"
        if isinstance(data, dict) and isinstance(data.get("path"), str) and not data["path"].strip():
            data = {**data, "path": None}
        return data


class PatchRequestSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    schemas = MessageSchemas(PATCH_OP)
    Operations = fields.List(
        fields.Nested(PatchOperationSchema), required=True, validate=validate.Length(min=1)
    )

    @pre_load
    def _normalize(self, data: Any, **_: Any) -> Any:
        data = _canonical_keys(data, ("schemas", "Operations"))
        if isinstance(data, dict) and isinstance(data.get("Operations"), list):
            limits.check_patch_operations(len(data["Operations"]))  # before building 10^5 objects
        return data


class ListQuerySchema(Schema):
    """Listing parameters, from a query string or a SearchRequest body (RFC 7644 §3.4.2, §3.4.3)."""

    class Meta:
        unknown = EXCLUDE

    attributes = fields.List(fields.String(), load_default=None)
    excludedAttributes = fields.List(fields.String(), load_default=None)
    filter = fields.String(load_default=None)
    sortBy = fields.String(load_default=None)
    sortOrder = fields.String(
        load_default=None, validate=validate.OneOf(SORT_ORDERS, error="sortOrder must be ascending or descending")
    )
    startIndex = fields.Integer(load_default=None, strict=False)
    count = fields.Integer(load_default=None, strict=False)

    NAMES = ("attributes", "excludedAttributes", "filter", "sortBy", "sortOrder", "startIndex", "count")

    @pre_load
    def _normalize(self, data: Any, **_: Any) -> Any:
        data = _canonical_keys(data, self.NAMES + ("schemas",))
        if not isinstance(data, dict):
            return data
        data = {key: value for key, value in data.items() if value is not None}
        for key in ("attributes", "excludedAttributes"):
            if key in data:
                data[key] = _split_list(data[key])
        for key in ("filter", "sortBy", "sortOrder"):
            if isinstance(data.get(key), str) and not data[key].strip():
                del data[key]
        if isinstance(data.get("sortOrder"), str):
            data["sortOrder"] = data["sortOrder"].strip().lower()
        return data


class SearchRequestSchema(ListQuerySchema):
    schemas = MessageSchemas(SEARCH_REQUEST)


class ListResponseSchema(Schema):
    """Renders a ListResponse; ``Resources`` are already projected documents."""

    schemas = fields.Constant([LIST_RESPONSE])
    totalResults = fields.Integer(required=True)
    startIndex = fields.Integer(required=True)
    itemsPerPage = fields.Integer(required=True)
    Resources = fields.List(fields.Raw(), required=True)


def _first_message(messages: Any) -> str:
    """A readable one-line summary of marshmallow's nested error messages."""
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        inner = _first_message(value)
        return inner if isinstance(key, int) else f"{key}: {inner}"
    if isinstance(messages, list) and messages:
        return _first_message(messages[0])
    return str(messages)


def load_message(schema: Schema, data: Any, scim_type: str = "invalidSyntax") -> dict[str, Any]:
    """Validate a message; a 400 SCIM error with the first problem otherwise."""
    if not isinstance(data, dict):
        raise ScimError(400, "The request body must be a JSON object", "invalidSyntax")
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ScimError(400, f"Invalid request: {_first_message(exc.messages)}", scim_type) from exc


def list_response(total: int, start_index: int, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A ListResponse of already projected documents (the shape ``ListResponseSchema`` describes)."""
    return {"schemas": [LIST_RESPONSE], "totalResults": total, "startIndex": start_index,
            "itemsPerPage": len(resources), "Resources": resources}


# Built once: building a schema costs more than loading a message with it (schemas keep no state).
LIST_QUERY = ListQuerySchema()
_NO_PARAMETERS: dict[str, Any] = {name: None for name in ListQuerySchema.NAMES}


def load_list_query(query: dict[str, Any]) -> dict[str, Any]:
    """``LIST_QUERY`` loaded from query parameters. What nearly every request sends, nothing or a
    lone non-blank ``filter``, is answered without marshmallow: the same dict, a fraction of the cost."""
    if not query:
        return dict(_NO_PARAMETERS)
    if len(query) == 1:
        value = query.get("filter")
        if isinstance(value, str) and value.strip():
            return {**_NO_PARAMETERS, "filter": value}
    return load_message(LIST_QUERY, query, "invalidValue")
SEARCH_REQUEST_MESSAGE = SearchRequestSchema()
PATCH_REQUEST = PatchRequestSchema()

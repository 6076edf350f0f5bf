"""SCIM error responses (RFC 7644 §3.12)."""
from __future__ import annotations

from typing import Any

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_MEDIA_TYPE = "application/scim+json"


class ScimError(Exception):
    """An error to answer with a SCIM Error body.

    ``scim_type`` is one of RFC 7644 Table 9 (invalidFilter, tooMany, uniqueness, mutability,
    invalidSyntax, invalidPath, noTarget, invalidValue, invalidVers, sensitive) or None.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        scim_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers or {}

    def document(self) -> dict[str, Any]:
        return error_document(self.status, self.detail, self.scim_type)


def error_document(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return body


def not_found(detail: str = "Resource not found") -> ScimError:
    return ScimError(404, detail)

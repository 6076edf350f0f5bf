"""Request bodies and small helpers shared by the SCIM resource tests."""
from __future__ import annotations

from typing import Any

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_JSON = "application/scim+json"


def user_body(user_name: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        "active": True,
    }
    body.update(extra)
    return body


def group_body(display_name: str, member_ids: list[str] = (), **extra: Any) -> dict[str, Any]:
    return {"schemas": [GROUP_SCHEMA], "displayName": display_name,
            "members": [{"value": m} for m in member_ids], **extra}


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def assert_scim_error(response, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith(SCIM_JSON)
    body = response.get_json(force=True)
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body["detail"]
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


def create_user(client, auth, user_name: str, **extra: Any) -> dict[str, Any]:
    response = client.post("/scim/v2/Users", json=user_body(user_name, **extra), headers=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def create_group(client, auth, display_name: str, member_ids: list[str] = ()) -> dict[str, Any]:
    response = client.post("/scim/v2/Groups", json=group_body(display_name, list(member_ids)), headers=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()

"""A directory's IdP in tests: SCIM requests over real HTTP with that directory's key."""
from __future__ import annotations

import requests

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class Scim:
    def __init__(self, base: str, token: str) -> None:
        self.base = f"{base}/scim/v2"
        self.http = requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"})

    def request(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        return self.http.request(method, f"{self.base}/{path}", json=body, timeout=10)

    def create_user(self, user_name: str, *emails: str) -> requests.Response:
        return self.request("POST", "Users", {"schemas": [USER], "userName": user_name,
                                              "emails": [{"value": e, "type": "work"} for e in emails]})

    def user(self, email: str) -> str:
        response = self.create_user(email)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def group(self, name: str, *members: str) -> str:
        response = self.request("POST", "Groups", {"schemas": [GROUP], "displayName": name,
                                                   "members": [{"value": m} for m in members]})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def patch(self, kind: str, resource_id: str, *operations: dict) -> None:
        response = self.request("PATCH", f"{kind}/{resource_id}", {"schemas": [PATCH], "Operations": list(operations)})
        assert response.status_code in (200, 204), response.text

    def rename_group(self, group_id: str, name: str) -> None:
        self.patch("Groups", group_id, {"op": "replace", "path": "displayName", "value": name})

    def remove_member(self, group_id: str, user_id: str) -> None:
        self.patch("Groups", group_id, {"op": "remove", "path": f'members[value eq "{user_id}"]'})

    def delete(self, kind: str, resource_id: str) -> None:
        assert self.request("DELETE", f"{kind}/{resource_id}").status_code == 204

    def user_names(self) -> list[str]:
        response = self.request("GET", "Users")
        assert response.status_code == 200, response.text
        return sorted(r["userName"] for r in response.json()["Resources"])

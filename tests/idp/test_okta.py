"""Okta's SCIM 2.0 request sequence (Okta developer docs, "SCIM 2.0 reference" / spec test)."""
from __future__ import annotations

import uuid

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def okta_user(user_name: str) -> dict:
    return {"schemas": [USER], "userName": user_name, "name": {"givenName": "Okta", "familyName": "Test"},
            "emails": [{"primary": True, "value": user_name, "type": "work"}], "displayName": "Okta Test",
            "locale": "en-US", "externalId": "00u1", "groups": [], "password": "1mz050nq", "active": True}


def test_user_lifecycle(idp):
    listed = idp("GET", "/Users", startIndex=1, count=2)
    assert listed.status_code == 200 and listed.json()["schemas"] == [LIST]
    lookup = idp("GET", "/Users", filter='userName eq "okta@example.com"', startIndex=1, count=100)
    assert lookup.json() == {"schemas": [LIST], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []}
    created = idp("POST", "/Users", okta_user("okta@example.com"))
    assert created.status_code == 201
    user = created.json()
    assert user["active"] is True and "password" not in user and user["userName"] == "okta@example.com"
    assert idp("POST", "/Users", okta_user("okta@example.com")).json()["scimType"] == "uniqueness"
    found = idp("GET", "/Users", filter='userName eq "okta@example.com"', startIndex=1, count=100).json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == user["id"]
    got = idp("GET", f"/Users/{user['id']}").json()
    got["name"]["givenName"] = "Renamed"
    put = idp("PUT", f"/Users/{user['id']}", got)
    assert put.status_code == 200 and put.json()["name"]["givenName"] == "Renamed"
    deactivated = idp("PATCH", f"/Users/{user['id']}",
                      {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]})
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False
    got = idp("GET", f"/Users/{user['id']}").json()
    got["active"] = True
    assert idp("PUT", f"/Users/{user['id']}", got).json()["active"] is True


def test_spec_test_details(idp):
    no_content_type = idp("POST", "/Users", okta_user("noct@example.com"), content_type=None)
    assert no_content_type.status_code == 201
    unknown = idp("GET", f"/Users/{uuid.uuid4()}")
    assert unknown.status_code == 404 and unknown.json()["detail"]
    assert idp("GET", "/Users", filter="userName eq").status_code == 400
    for path in ("/ServiceProviderConfig", "/ResourceTypes", "/Schemas"):
        assert idp("POST", path, {}).status_code == 405


def test_group_push(idp):
    alice = idp("POST", "/Users", okta_user("alice@example.com")).json()["id"]
    bob = idp("POST", "/Users", okta_user("bob@example.com")).json()["id"]
    assert idp("GET", "/Groups", filter='displayName eq "Pushed"', startIndex=1, count=100).json()["totalResults"] == 0
    group = idp("POST", "/Groups", {"schemas": [GROUP], "displayName": "Pushed", "members": []}).json()
    url = f"/Groups/{group['id']}"

    def patch(*operations):
        response = idp("PATCH", url, {"schemas": [PATCH], "Operations": list(operations)})
        assert response.status_code == 200, response.text
        return response.json()

    rename = {"op": "replace", "value": {"id": group["id"], "displayName": "Pushed Renamed"}}
    patch(rename, {"op": "add", "path": "members", "value": [{"value": alice, "display": "alice@example.com"},
                                                             {"value": bob, "display": "bob@example.com"}]})
    patch(rename, {"op": "remove", "path": f'members[value eq "{alice}"]'})
    members = idp("GET", url).json()
    assert members["displayName"] == "Pushed Renamed" and [m["value"] for m in members["members"]] == [bob]
    patch({"op": "replace", "path": "members", "value": [{"value": alice}]})
    assert [m["value"] for m in idp("GET", url).json()["members"]] == [alice]
    wrong_id = idp("PATCH", url, {"schemas": [PATCH], "Operations": [
        {"op": "replace", "value": {"id": "not-this-group", "displayName": "X"}}]})
    assert wrong_id.status_code == 400 and wrong_id.json()["scimType"] == "mutability"
    assert idp("DELETE", url).status_code == 204
    assert idp("GET", url).status_code == 404


def test_paging_with_okta_page_size(idp):
    ids = [idp("POST", "/Users", okta_user(f"page{i}@example.com")).json()["id"] for i in range(5)]
    seen = []
    for start in (1, 3, 5):
        page = idp("GET", "/Users", startIndex=start, count=2).json()
        assert isinstance(page["totalResults"], int) and page["totalResults"] == 5
        assert isinstance(page["itemsPerPage"], int) and isinstance(page["startIndex"], int)
        seen += [r["id"] for r in page["Resources"]]
    assert seen == ids

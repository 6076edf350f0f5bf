"""Microsoft Entra ID's requests (Microsoft Learn: "Develop a SCIM endpoint", "Known issues")."""
from __future__ import annotations

import uuid

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def entra_user(user_name: str, external_id: str) -> dict:
    return {"schemas": [USER, ENTERPRISE], "externalId": external_id, "userName": user_name, "active": True,
            "emails": [{"primary": True, "type": "work", "value": user_name}],
            "meta": {"resourceType": "User"}, "name": {"formatted": "Given Family", "familyName": "Family",
                                                       "givenName": "Given"},
            "roles": [], ENTERPRISE: {"employeeNumber": "701984", "department": "Sales"}}


def patch(idp, path, *operations, expect=200):
    response = idp("PATCH", path, {"schemas": [PATCH], "Operations": list(operations)})
    assert response.status_code == expect, response.text
    return response.json()


def test_test_connection_and_matching(idp):
    missing = idp("GET", "/Users", filter=f'userName eq "{uuid.uuid4()}"')
    assert missing.status_code == 200 and missing.json()["totalResults"] == 0 and missing.json()["Resources"] == []
    user = idp("POST", "/Users", entra_user("Test_User_1@example.com", "ext-1")).json()
    for flt in ('userName eq "test_user_1@example.com"', 'externalId eq "ext-1"',
                'emails[type eq "work"].value eq "Test_User_1@example.com"'):
        found = idp("GET", "/Users", filter=flt).json()
        assert [r["id"] for r in found["Resources"]] == [user["id"]], flt
    assert user[ENTERPRISE]["employeeNumber"] == "701984"


def test_user_updates_in_both_dialects(idp):
    user = idp("POST", "/Users", entra_user("u2@example.com", "ext-2")).json()
    url = f"/Users/{user['id']}"
    patch(idp, url, {"op": "Replace", "path": "active", "value": "False"})
    assert idp("GET", url).json()["active"] is False  # soft delete: still returned
    assert idp("GET", "/Users", filter='userName eq "u2@example.com"').json()["totalResults"] == 1
    patch(idp, url, {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "u2b@example.com"},
          {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "9"},
          {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "manager-id"})
    body = idp("GET", url).json()
    assert body["emails"][0]["value"] == "u2b@example.com"
    assert body[ENTERPRISE]["employeeNumber"] == "9" and body[ENTERPRISE]["manager"]["value"] == "manager-id"
    patch(idp, url, {"op": "replace", "value": {"displayName": "Flag On", "name.givenName": "New",
                                                f"{ENTERPRISE}:department": "R&D", "active": True}})
    body = idp("GET", url).json()
    assert (body["displayName"], body["name"]["givenName"], body[ENTERPRISE]["department"], body["active"]) == (
        "Flag On", "New", "R&D", True)
    patch(idp, url, {"op": "Remove", "path": f'{ENTERPRISE}:manager[value eq "manager-id"]'})
    assert "manager" not in idp("GET", url).json()[ENTERPRISE]
    assert idp("DELETE", url).status_code == 204
    assert idp("GET", url).status_code == 404


def test_groups(idp):
    ids = [idp("POST", "/Users", entra_user(f"m{i}@example.com", f"e{i}")).json()["id"] for i in range(3)]
    group = idp("POST", "/Groups", {"schemas": [GROUP], "externalId": "g-ext", "displayName": "Group1DisplayName",
                                    "meta": {"resourceType": "Group"}}).json()
    url = f"/Groups/{group['id']}"
    found = idp("GET", "/Groups", excludedAttributes="members", filter='displayName eq "Group1DisplayName"').json()
    assert found["totalResults"] == 1 and "members" not in found["Resources"][0]
    answer = patch(idp, url, {"op": "Add", "path": "members", "value": [{"$ref": None, "value": i} for i in ids]})
    assert sorted(m["value"] for m in answer["members"]) == sorted(ids)  # small group: full resource
    patch(idp, url, {"op": "Remove", "path": "members", "value": [{"value": ids[0]}]})
    remaining = idp("GET", url).json()["members"]
    assert sorted(m["value"] for m in remaining) == sorted(ids[1:])  # only that member removed
    single = idp("GET", url, excludedAttributes="members").json()
    assert "members" not in single and single["displayName"] == "Group1DisplayName"
    patch(idp, url, {"op": "Replace", "path": "displayName", "value": "Renamed"})
    assert idp("GET", url).json()["displayName"] == "Renamed"


def test_manager_forms_and_add_meant_as_replace(idp):
    boss = idp("POST", "/Users", entra_user("boss@example.com", "ext-boss")).json()["id"]
    user = idp("POST", "/Users", entra_user("report@example.com", "ext-r")).json()
    url = f"/Users/{user['id']}"
    patch(idp, url, {"op": "Add", "path": f"{ENTERPRISE}:manager",
                     "value": [{"$ref": f"../Users/{boss}", "value": boss}]})
    assert idp("GET", url).json()[ENTERPRISE]["manager"]["value"] == boss
    assert idp("GET", "/Users", filter=f'{ENTERPRISE}:manager.value eq "{boss}"').json()["totalResults"] == 1
    patch(idp, url, {"op": "Remove", "path": f"{ENTERPRISE}:manager"})
    assert "manager" not in idp("GET", url).json()[ENTERPRISE]
    patch(idp, url, {"op": "Add", "path": "displayName", "value": "First"},
          {"op": "Add", "path": "displayName", "value": "Second"})  # "add" where "replace" is meant
    assert idp("GET", url).json()["displayName"] == "Second"
    bad = idp("PATCH", url, {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "Nope"}]})
    assert bad.status_code == 400 and bad.json()["scimType"] == "invalidValue"

"""JumpCloud's custom SCIM connector (support pages): test connection and repeated member adds."""
from __future__ import annotations

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def test_test_connection_creates_and_deletes(idp):
    user = idp("POST", "/Users", {"schemas": [USER], "userName": "jc-test@example.com",
                                  "name": {"givenName": "JC", "familyName": "Test"}})
    assert user.status_code == 201
    group = idp("POST", "/Groups", {"schemas": [GROUP], "displayName": "jc-test-group"})
    assert group.status_code == 201
    assert idp("DELETE", f"/Users/{user.json()['id']}").status_code == 204
    assert idp("DELETE", f"/Groups/{group.json()['id']}").status_code == 204
    assert idp("GET", "/Users").json()["totalResults"] == 0


def test_repeated_adds_and_entra_style_removal(idp):
    user_id = idp("POST", "/Users", {"schemas": [USER], "userName": "jc@example.com"}).json()["id"]
    group = idp("POST", "/Groups", {"schemas": [GROUP], "displayName": "jc-group"}).json()
    url = f"/Groups/{group['id']}"
    add = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}]}
    assert idp("PATCH", url, add).status_code == 200
    assert idp("PATCH", url, add).status_code == 200
    assert [m["value"] for m in idp("GET", url).json()["members"]] == [user_id]
    remove = {"schemas": [PATCH], "Operations": [{"op": "remove", "path": "members", "value": [{"value": user_id}]}]}
    assert idp("PATCH", url, remove).status_code == 200
    assert "members" not in idp("GET", url).json()
    taken = idp("POST", "/Groups", {"schemas": [GROUP], "displayName": "JC-GROUP"})
    assert taken.status_code == 409  # an existing group with the same name: the IdP looks it up and takes it over
    lookup = idp("GET", "/Groups", filter='displayName eq "jc-group"').json()
    assert lookup["Resources"][0]["id"] == group["id"]

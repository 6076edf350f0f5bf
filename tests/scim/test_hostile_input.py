"""Malformed and hostile SCIM input: always a 4xx SCIM error with the right scimType, never a 500,
and the stored data is exactly as before."""
from __future__ import annotations

import json

import pytest

from tests.scim.resources_helpers import (
    SCIM_JSON,
    assert_scim_error,
    create_group,
    create_user,
    group_body,
    patch_body,
    user_body,
)

DEEP = 1000


def _deep(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


# (name, method, path template, raw body or None, expected status, expected scimType)
CASES = [
    ("empty userName", "POST", "/Users", json.dumps(user_body("")), 400, "invalidValue"),
    ("blank userName", "POST", "/Users", json.dumps(user_body("   ")), 400, "invalidValue"),
    ("object userName", "POST", "/Users", json.dumps(user_body({"a": 1})), 400, "invalidValue"),
    ("list of two userNames", "POST", "/Users", json.dumps(user_body(["x", "y"])), 400, "invalidValue"),
    ("list of a blank userName", "POST", "/Users", json.dumps(user_body([" "])), 400, "invalidValue"),
    ("blank userName by PATCH", "PATCH", "/Users/{user}", json.dumps(patch_body(
        {"op": "replace", "path": "userName", "value": ""})), 400, "invalidValue"),
    ("userName removed by PATCH", "PATCH", "/Users/{user}", json.dumps(patch_body(
        {"op": "remove", "path": "userName"})), 400, None),
    ("lone surrogate (escaped)", "POST", "/Users", json.dumps(user_body("ok@example.com", displayName="\ud800")),
     400, "invalidValue"),
    ("lone surrogate in userName", "POST", "/Users", json.dumps(user_body("\udfff@example.com")), 400, "invalidValue"),
    ("lone surrogate in a key", "POST", "/Users", '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
     '"userName":"k@example.com","\\ud800":1}', 400, "invalidValue"),
    ("invalid UTF-8", "POST", "/Users", b'{"userName":"\xff\xfe@example.com"}', 400, "invalidSyntax"),
    ("raw surrogate bytes", "POST", "/Users", _raw('{"userName":"\ud800@example.com"}'), 400, "invalidValue"),
    ("NUL character", "POST", "/Users", json.dumps(user_body("nul\u0000@example.com")), 400, "invalidValue"),
    ("deep JSON", "POST", "/Users", _deep(DEEP), 400, "invalidSyntax"),
    ("deep JSON array", "POST", "/Users", "[" * DEEP + "]" * DEEP, 400, "invalidSyntax"),
    ("deep JSON in PATCH value", "PATCH", "/Users/{user}", json.dumps(patch_body(
        {"op": "replace", "path": "displayName", "value": "x"}))[:-2] + ',"x":' + _deep(200) + "}]}", 400,
     "invalidSyntax"),
    ("deep PATCH value object", "PATCH", "/Users/{user}", json.dumps(patch_body(
        {"op": "add", "value": json.loads(_deep(60))})), 400, None),
    ("huge startIndex", "GET", "/Users?startIndex=99999999999999999999", None, 400, "invalidValue"),
    ("huge count is capped", "GET", "/Users?count=99999999999999999999", None, 200, None),
    ("huge negative startIndex means 1", "GET", "/Groups?startIndex=-99999999999999999999", None, 200, None),
    ("huge negative count means 0", "GET", "/Groups?count=-99999999999999999999", None, 200, None),
    ("huge startIndex in .search", "POST", "/Users/.search", json.dumps(
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "startIndex": 10 ** 30}), 400,
     "invalidValue"),
    ("float startIndex", "GET", "/Users?startIndex=1e400", None, 400, "invalidValue"),
    ("huge number in a document", "POST", "/Users", json.dumps(user_body("num@example.com"))[:-1] + ',"x":1'
     + "0" * 5000 + "}", 400, None),
    ("huge number in PATCH", "PATCH", "/Users/{user}", json.dumps(patch_body(
        {"op": "replace", "path": "active", "value": 10 ** 400})), 400, "invalidValue"),
    ("object displayName on group", "POST", "/Groups", json.dumps(group_body({"x": "y"})), 400, "invalidValue"),
    ("empty group displayName", "POST", "/Groups", json.dumps(group_body("")), 400, "invalidValue"),
    ("object member value", "PATCH", "/Groups/{group}", json.dumps(patch_body(
        {"op": "add", "path": "members", "value": [{"value": {"x": 1}}]})), 400, "invalidValue"),
    ("member value with surrogate", "PATCH", "/Groups/{group}", json.dumps(patch_body(
        {"op": "add", "path": "members", "value": [{"value": "\ud800"}]})), 400, "invalidValue"),
    ("invalid UTF-8 in filter matches nothing", "GET", "/Users?filter=userName%20eq%20%22%ED%A0%80%22", None, 200,
     None),
    ("NUL in filter", "GET", "/Users?filter=userName%20eq%20%22a%00b%22", None, 400, "invalidFilter"),
    ("surrogate in resource id", "GET", "/Users/%ED%A0%80", None, 404, None),
    ("NUL in resource id", "GET", "/Users/a%00b", None, 404, None),
    ("NUL in resource id of PATCH", "PATCH", "/Groups/a%00b", json.dumps(patch_body(
        {"op": "add", "path": "members", "value": [{"value": "x"}]})), 404, None),
    ("NUL in attributes", "GET", "/Users?attributes=user%00Name", None, 400, "invalidValue"),
    ("userName in filter as object", "POST", "/Users/.search", json.dumps(
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": {"a": 1}}), 400,
     "invalidSyntax"),
]


@pytest.fixture
def seeded(client, auth):
    """A user and a group that every case could damage, and the stored state to compare with."""
    user = create_user(client, auth, "keep@example.com")
    group = create_group(client, auth, "Keepers", [user["id"]])

    def snapshot() -> tuple:
        users = client.get("/scim/v2/Users?count=1000", headers=auth).get_json()
        groups = client.get("/scim/v2/Groups?count=1000", headers=auth).get_json()
        return json.dumps(users, sort_keys=True), json.dumps(groups, sort_keys=True)

    return {"user": user["id"], "group": group["id"], "snapshot": snapshot}


@pytest.mark.parametrize("name,method,path,body,status,scim_type", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_a_scim_4xx_and_changes_nothing(client, auth, seeded, name, method, path, body, status,
                                                        scim_type):
    before = seeded["snapshot"]()
    url = "/scim/v2" + path.format(user=seeded["user"], group=seeded["group"])
    data = body.encode() if isinstance(body, str) and "\ud800" not in body else body
    if isinstance(data, str):
        data = _raw(data)
    response = client.open(url, method=method, data=data, headers={**auth, "Content-Type": SCIM_JSON})
    if status == 200:
        assert response.status_code == 200, response.get_data(as_text=True)
    else:
        assert_scim_error(response, status, scim_type)
    assert seeded["snapshot"]() == before

"""HTTP tests of /Users through the Flask test client, on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from scim_server.models import User, UserValue
from tests.fixtures.db import issue_token
from tests.scim.resources_helpers import (
    ENTERPRISE,
    SCIM_JSON,
    USER_SCHEMA,
    assert_scim_error,
    create_user,
    patch_body,
    user_body,
)


def test_create_returns_201_with_location_etag_and_meta(client, auth):
    response = client.post("/scim/v2/Users", json=user_body("ada@example.com", externalId="ext-1"), headers=auth)
    assert response.status_code == 201
    assert response.headers["Content-Type"].startswith(SCIM_JSON)
    body = response.get_json()
    assert response.headers["Location"] == f"http://testserver/scim/v2/Users/{body['id']}"
    assert response.headers["ETag"] == 'W/"1"' == body["meta"]["version"]
    assert body["meta"]["resourceType"] == "User"
    assert body["meta"]["location"] == response.headers["Location"]
    assert body["meta"]["created"].endswith("Z")
    dt.datetime.fromisoformat(body["meta"]["created"].replace("Z", "+00:00"))
    assert body["externalId"] == "ext-1"
    assert body["schemas"] == [USER_SCHEMA]


def test_get_put_delete_round_trip(client, auth):
    created = create_user(client, auth, "bob@example.com")
    url = f"/scim/v2/Users/{created['id']}"
    got = client.get(url, headers=auth)
    assert got.status_code == 200 and got.get_json()["userName"] == "bob@example.com"
    replaced = client.put(url, json=user_body("bob@example.com", displayName="Bob", active=False), headers=auth)
    assert replaced.status_code == 200
    assert replaced.get_json()["displayName"] == "Bob" and replaced.get_json()["active"] is False
    assert replaced.headers["ETag"] == 'W/"2"'
    assert client.delete(url, headers=auth).status_code == 204
    assert_scim_error(client.get(url, headers=auth), 404)


def test_password_is_accepted_never_stored_or_returned(client, auth, session_factory):
    body = user_body("pw@example.com", password="S3cret!pass", groups=[])
    created = client.post("/scim/v2/Users", json=body, headers=auth).get_json()
    assert "password" not in created
    with session_factory() as session:
        user = session.get(User, created["id"])
        assert "S3cret" not in repr(user.document)


def test_readonly_attributes_in_input_are_ignored(client, auth):
    body = user_body("ro@example.com", id="chosen-by-client", meta={"version": "x"},
                     groups=[{"value": "g"}])
    created = client.post("/scim/v2/Users", json=body, headers=auth).get_json()
    assert created["id"] != "chosen-by-client"
    assert "groups" not in created


def test_username_unique_case_insensitively_within_directory(client, auth, session_factory):
    create_user(client, auth, "Dup@Example.com")
    assert_scim_error(client.post("/scim/v2/Users", json=user_body("dup@example.COM"), headers=auth), 409, "uniqueness")
    other = {"Authorization": f"Bearer {issue_token(session_factory, 'other', 'other-idp')}"}
    assert client.post("/scim/v2/Users", json=user_body("dup@example.com"), headers=other).status_code == 201


def test_put_to_taken_username_is_409(client, auth):
    create_user(client, auth, "one@example.com")
    two = create_user(client, auth, "two@example.com")
    response = client.put(f"/scim/v2/Users/{two['id']}", json=user_body("ONE@example.com"), headers=auth)
    assert_scim_error(response, 409, "uniqueness")


def test_directories_do_not_see_each_other(client, auth, session_factory):
    created = create_user(client, auth, "mine@example.com")
    other = {"Authorization": f"Bearer {issue_token(session_factory, 'other', 'other-idp')}"}
    url = f"/scim/v2/Users/{created['id']}"
    assert_scim_error(client.get(url, headers=other), 404)
    assert_scim_error(client.put(url, json=user_body("x@example.com"), headers=other), 404)
    assert_scim_error(client.patch(url, json=patch_body({"op": "replace", "path": "active", "value": False}),
                                   headers=other), 404)
    assert_scim_error(client.delete(url, headers=other), 404)
    listed = client.get("/scim/v2/Users", headers=other).get_json()
    assert listed["totalResults"] == 0
    assert client.get(url, headers=auth).status_code == 200


def test_unknown_id_is_404_with_detail(client, auth):
    body = assert_scim_error(client.get("/scim/v2/Users/00000000-0000-0000-0000-000000000000", headers=auth), 404)
    assert "not found" in body["detail"]


def test_ids_are_case_sensitive(client, auth):
    created = create_user(client, auth, "case@example.com")
    assert_scim_error(client.get(f"/scim/v2/Users/{created['id'].upper()}", headers=auth), 404)


def test_etag_preconditions(client, auth):
    created = create_user(client, auth, "etag@example.com")
    url = f"/scim/v2/Users/{created['id']}"
    assert client.get(url, headers={**auth, "If-None-Match": 'W/"1"'}).status_code == 304
    assert client.get(url, headers={**auth, "If-None-Match": 'W/"9"'}).status_code == 200
    stale = client.put(url, json=user_body("etag@example.com", title="x"), headers={**auth, "If-Match": 'W/"7"'})
    assert_scim_error(stale, 412)
    assert client.get(url, headers=auth).get_json().get("title") is None
    fresh = client.put(url, json=user_body("etag@example.com", title="x"), headers={**auth, "If-Match": 'W/"1"'})
    assert fresh.status_code == 200 and fresh.headers["ETag"] == 'W/"2"'
    star = client.patch(url, json=patch_body({"op": "replace", "path": "title", "value": "y"}),
                        headers={**auth, "If-Match": "*"})
    assert star.status_code == 200
    assert_scim_error(client.delete(url, headers={**auth, "If-Match": 'W/"1"'}), 412)


def test_validation_errors(client, auth):
    post = lambda body: client.post("/scim/v2/Users", json=body, headers=auth)  # noqa: E731
    assert_scim_error(post({"schemas": [USER_SCHEMA]}), 400, "invalidValue")
    assert_scim_error(post({"userName": "a@example.com"}), 400, "invalidSyntax")
    assert_scim_error(post({"schemas": ["urn:wrong"], "userName": "a@example.com"}), 400, "invalidSyntax")
    assert_scim_error(post(user_body("a@example.com", active="maybe")), 400, "invalidValue")
    assert_scim_error(post(user_body("a@example.com", userName=42)), 400, "invalidValue")
    assert_scim_error(post(user_body("a@example.com", shoeSize=42)), 400, "invalidSyntax")
    assert_scim_error(post(user_body("x" * 301)), 400, "invalidValue")
    assert_scim_error(post([1, 2]), 400, "invalidSyntax")
    assert client.get("/scim/v2/Users", headers=auth).get_json()["totalResults"] == 0


def test_schema_urns_and_attribute_names_are_case_insensitive(client, auth):
    body = {"schemas": [USER_SCHEMA.upper(), ENTERPRISE.lower()], "USERNAME": "ci@example.com",
            "Name": {"GIVENNAME": "Ci"}, ENTERPRISE.upper(): {"EmployeeNumber": "7"}}
    created = client.post("/scim/v2/Users", json=body, headers=auth)
    assert created.status_code == 201, created.get_json()
    document = created.get_json()
    assert document["userName"] == "ci@example.com"
    assert document["name"] == {"givenName": "Ci"}
    assert document[ENTERPRISE] == {"employeeNumber": "7"}
    assert document["schemas"] == [USER_SCHEMA, ENTERPRISE]


def test_index_rows_follow_the_document(client, auth, session_factory):
    created = create_user(client, auth, "idx@example.com",
                          phoneNumbers=[{"value": "+1 555", "type": "work"}],
                          **{ENTERPRISE: {"manager": {"value": "boss-1"}, "department": "R&D"}})
    url = f"/scim/v2/Users/{created['id']}"
    client.patch(url, json=patch_body({"op": "replace", "path": "emails[type eq \"work\"].value",
                                       "value": "NEW@example.com"}), headers=auth)
    with session_factory() as session:
        user = session.get(User, created["id"])
        assert (user.manager_id, user.department, user.primary_email) == ("boss-1", "R&D", "NEW@example.com")
        values = {(v.attribute, v.value, v.value_lower) for v in
                  session.scalars(select(UserValue).where(UserValue.user_id == user.id))}
    assert values == {("emails", "NEW@example.com", "new@example.com"), ("phoneNumbers", "+1 555", "+1 555")}


def test_list_paging_is_stable_and_clamped(client, auth):
    ids = [create_user(client, auth, f"p{i}@example.com")["id"] for i in range(5)]
    page = lambda q: client.get(f"/scim/v2/Users?{q}", headers=auth).get_json()  # noqa: E731
    seen = []
    for start in (1, 3, 5):
        body = page(f"startIndex={start}&count=2")
        assert body["totalResults"] == 5 and body["startIndex"] == start
        seen += [r["id"] for r in body["Resources"]]
    assert seen == ids
    assert page("count=0") == {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                               "totalResults": 5, "startIndex": 1, "itemsPerPage": 0, "Resources": []}
    clamped = page("startIndex=-4&count=-1")
    assert (clamped["startIndex"], clamped["itemsPerPage"]) == (1, 0)
    assert page("startIndex=99")["Resources"] == []
    assert_scim_error(client.get("/scim/v2/Users?count=abc", headers=auth), 400)


def test_list_filter_sort_and_projection(client, auth):
    create_user(client, auth, "zed@example.com", externalId="E-2")
    create_user(client, auth, "amy@example.com", externalId="E-1")
    body = client.get('/scim/v2/Users?filter=externalId eq "E-1"', headers=auth).get_json()
    assert [r["userName"] for r in body["Resources"]] == ["amy@example.com"]
    desc = client.get("/scim/v2/Users?sortBy=userName&sortOrder=descending&attributes=userName",
                      headers=auth).get_json()
    assert [r["userName"] for r in desc["Resources"]] == ["zed@example.com", "amy@example.com"]
    assert set(desc["Resources"][0]) == {"schemas", "id", "userName"}
    excluded = client.get("/scim/v2/Users?excludedAttributes=emails,name", headers=auth).get_json()
    assert all("emails" not in r and "name" not in r and "userName" in r for r in excluded["Resources"])
    assert_scim_error(client.get('/scim/v2/Users?filter=userName eq', headers=auth), 400, "invalidFilter")


def test_search_with_post(client, auth):
    create_user(client, auth, "s1@example.com")
    create_user(client, auth, "s2@example.com")
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'userName sw "s"', "startIndex": 2, "count": 5, "attributes": ["userName"]}
    response = client.post("/scim/v2/Users/.search", json=body, headers=auth)
    assert response.status_code == 200
    result = response.get_json()
    assert (result["totalResults"], result["startIndex"], result["itemsPerPage"]) == (2, 2, 1)
    assert result["Resources"][0]["userName"] == "s2@example.com"
    assert_scim_error(client.post("/scim/v2/Users/.search", json={"filter": "x"}, headers=auth), 400, "invalidSyntax")

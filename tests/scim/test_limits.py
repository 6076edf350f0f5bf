"""Published limits that keep one request cheap: filter terms, PATCH operations, multi-valued sizes."""
from __future__ import annotations

import pytest
from sqlalchemy.sql import visitors

from scim_server.scim import limits
from scim_server.store import filter_sql
from tests.scim.resources_helpers import assert_scim_error, create_group, create_user, patch_body


def _email_terms(n: int) -> str:
    return " and ".join(f'emails[value eq "u{i}"]' for i in range(n))


def test_filter_with_too_many_terms_is_refused(client, auth):
    create_user(client, auth, "u0")
    ok = client.get("/scim/v2/Users", query_string={"filter": _email_terms(limits.MAX_FILTER_TERMS)}, headers=auth)
    assert ok.status_code == 200 and ok.get_json()["totalResults"] == 0
    one = client.get("/scim/v2/Users", query_string={"filter": _email_terms(1)}, headers=auth)
    assert one.get_json()["totalResults"] == 1
    # The 7 KB filter of 300 terms: refused while parsing, before any SQL is built.
    body = assert_scim_error(client.get("/scim/v2/Users", query_string={"filter": _email_terms(300)}, headers=auth),
                             400, "invalidFilter")
    assert f"more than {limits.MAX_FILTER_TERMS} comparisons" in body["detail"]


def test_filter_cost_estimate_is_linear(monkeypatch):
    """The cost of an AND chain is summed bottom-up: SQL elements visited grow linearly with terms."""
    visited = {"n": 0}
    original = visitors.iterate

    def counting(*args, **kwargs):
        for element in original(*args, **kwargs):
            visited["n"] += 1
            yield element

    monkeypatch.setattr(filter_sql.visitors, "iterate", counting)

    def cost_of(n: int) -> int:
        visited["n"] = 0
        filter_sql.filter_to_sql("User", _email_terms(n))
        return visited["n"]

    small, large = cost_of(25), cost_of(100)
    assert small > 0
    assert large <= 4 * small + 20  # quadratic would be about 16 x


def test_patch_operation_caps(client, auth):
    user = create_user(client, auth, "ops@example.com")
    group = create_group(client, auth, "Big", [user["id"]])
    many_members = [{"op": "remove", "path": f'members[value eq "{i}"]'} for i in range(5000)]
    response = client.patch(f"/scim/v2/Groups/{group['id']}", json=patch_body(*many_members), headers=auth)
    assert response.status_code == 200, response.get_data(as_text=True)

    too_many = [{"op": "remove", "path": f'members[value eq "{i}"]'} for i in range(limits.MAX_PATCH_OPERATIONS + 1)]
    assert_scim_error(client.patch(f"/scim/v2/Groups/{group['id']}", json=patch_body(*too_many), headers=auth), 413)

    attribute_ops = [{"op": "replace", "path": "displayName", "value": f"n{i}"}
                     for i in range(limits.MAX_ATTRIBUTE_OPERATIONS + 1)]
    body = assert_scim_error(client.patch(f"/scim/v2/Users/{user['id']}", json=patch_body(*attribute_ops),
                                          headers=auth), 413)
    assert "operations on attributes" in body["detail"]
    assert client.get(f"/scim/v2/Users/{user['id']}", headers=auth).get_json().get("displayName") is None


@pytest.mark.parametrize("operation", [
    {"op": "add", "path": "emails", "value": [{"value": "x{i}@example.com"}]},
    {"op": "add", "path": 'phoneNumbers[value eq "{i}"].type', "value": "work"},
])
def test_patch_cannot_grow_a_multi_valued_attribute_without_bound(client, auth, operation):
    user = create_user(client, auth, "grow@example.com")
    ops = [{**operation, "path": operation["path"].replace("{i}", str(i)),
            "value": operation["value"] if isinstance(operation["value"], str)
            else [{"value": f"x{i}@example.com"}]} for i in range(limits.MAX_MULTI_VALUES + 5)]
    body = assert_scim_error(client.patch(f"/scim/v2/Users/{user['id']}", json=patch_body(*ops), headers=auth),
                             400, "invalidValue")
    assert f"at most {limits.MAX_MULTI_VALUES} values" in body["detail"]
    stored = client.get(f"/scim/v2/Users/{user['id']}", headers=auth).get_json()
    assert [e["value"] for e in stored["emails"]] == ["grow@example.com"] and "phoneNumbers" not in stored


def test_create_with_too_many_values_is_refused(client, auth):
    emails = [{"value": f"e{i}@example.com"} for i in range(limits.MAX_MULTI_VALUES + 1)]
    response = client.post("/scim/v2/Users", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                                   "userName": "many@example.com", "emails": emails}, headers=auth)
    assert_scim_error(response, 400, "invalidValue")


def test_service_provider_config_publishes_the_page_limit(client, auth):
    config = client.get("/scim/v2/ServiceProviderConfig", headers=auth).get_json()
    assert config["filter"] == {"supported": True, "maxResults": limits.MAX_COUNT}
    assert config["bulk"]["supported"] is False
    listed = client.get("/scim/v2/Users?count=5000", headers=auth).get_json()
    assert listed["itemsPerPage"] <= limits.MAX_COUNT

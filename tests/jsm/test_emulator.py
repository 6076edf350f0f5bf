"""The emulator over raw HTTP: shapes from Atlassian's OpenAPI doc, status codes, test endpoints."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from jsm_client.emulator import EmulatorServer, JsmEmulator

SD = "/rest/servicedeskapi"
AUTH = ("bot@example.com", "any-token")
HEADERS = {"X-ExperimentalApi": "opt-in"}
DEPRECATED_USER_KEYS = {"name", "key"}  # "no longer available" per the OpenAPI doc


# The response examples and schema property names these tests compare with, cut from Atlassian's
# official JSM Cloud OpenAPI document; its "source" field names the exact revision it came from.
OPENAPI_SHAPES = Path(__file__).with_name("openapi_shapes.json")


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI_SHAPES.read_text(encoding="utf-8"))
    assert "Atlassian" in document["source"]
    return document


def _example(openapi: dict, method: str, path: str, status: str) -> dict:
    content = openapi["paths"][path][method.lower()]["responses"][status]["content"]["application/json"]
    example = content["example"]
    return json.loads(example) if isinstance(example, str) else example


def _schema_props(openapi: dict, name: str) -> set[str]:
    return set(openapi["components"]["schemas"][name]["properties"])


class Api:
    """Raw HTTP against the emulator with Basic auth and the experimental header."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.auth = AUTH
        self.session.headers.update(HEADERS)

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=5, **kwargs)

    def customer(self, email: str, name: str = "Someone") -> dict:
        resp = self("POST", f"{SD}/customer", json={"email": email, "displayName": name})
        assert resp.status_code == 201, resp.text
        return resp.json()

    def org(self, name: str) -> dict:
        return self("POST", f"{SD}/organization", json={"name": name}).json()


@pytest.fixture
def api(jsm_emulator: EmulatorServer) -> Api:
    return Api(jsm_emulator.url)


def _assert_sd_error(resp: requests.Response, status: int) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"errorMessage", "i18nErrorMessage"}
    assert set(body["i18nErrorMessage"]) == {"i18nKey", "parameters"}
    assert isinstance(body["errorMessage"], str) and body["errorMessage"]


# ------------------------------------------------------------- OpenAPI shapes


def test_customer_shape_matches_openapi_example(api, openapi):
    example = _example(openapi, "POST", f"{SD}/customer", "201")
    body = api.customer("fred@example.com", "Fred F. User")

    assert set(body) == set(example) - DEPRECATED_USER_KEYS
    assert set(body) <= _schema_props(openapi, "UserDTO")
    assert set(body["_links"]) == set(example["_links"]) <= _schema_props(openapi, "UserLinkDTO")
    assert set(body["_links"]["avatarUrls"]) == set(example["_links"]["avatarUrls"])
    assert re.fullmatch(r"qm:[0-9a-f-]{36}:[0-9a-f]{24}", body["accountId"])


def test_organization_page_shape_matches_openapi_example(api, openapi):
    example = _example(openapi, "GET", f"{SD}/organization", "200")
    for i in range(3):
        api.org(f"Org {i}")

    page = api("GET", f"{SD}/organization", params={"start": 1, "limit": 1}).json()

    assert set(page) == set(example) == _schema_props(openapi, "PagedDTOOrganizationDTO")
    assert set(page["_links"]) == set(example["_links"])  # base, context, next, prev
    assert set(page["values"][0]) == set(example["values"][0])
    assert (page["size"], page["start"], page["limit"], page["isLastPage"]) == (1, 1, 1, False)
    assert page["_links"]["next"].endswith(f"{SD}/organization?start=2&limit=1")
    assert page["_links"]["prev"].endswith(f"{SD}/organization?start=0&limit=1")
    assert page["_links"]["base"].endswith(SD)


@pytest.mark.parametrize(
    ("path", "example_path"),
    [
        (f"{SD}/organization/1/user", f"{SD}/organization/{{organizationId}}/user"),
        (f"{SD}/servicedesk/1/customer", f"{SD}/servicedesk/{{serviceDeskId}}/customer"),
    ],
)
def test_user_pages_match_openapi_examples(api, openapi, path, example_path):
    example = _example(openapi, "GET", example_path, "200")
    ids = [api.customer(f"u{i}@example.com")["accountId"] for i in range(3)]
    assert api("POST", f"{SD}/organization", json={"name": "Acme"}).status_code == 201
    assert api("POST", f"{SD}/organization/1/user", json={"accountIds": ids}).status_code == 204
    assert api("POST", f"{SD}/servicedesk/1/customer", json={"accountIds": ids}).status_code == 204

    page = api("GET", path, params={"start": 1, "limit": 1}).json()

    assert set(page) == set(example)
    assert set(page["values"][0]) == set(example["values"][0]) - DEPRECATED_USER_KEYS
    assert page["values"][0]["accountId"] == sorted(ids)[1]  # ordered by accountId


def test_service_desk_shapes_match_openapi_examples(api, openapi):
    example_page = _example(openapi, "GET", f"{SD}/servicedesk", "200")
    example_desk = _example(openapi, "GET", f"{SD}/servicedesk/{{serviceDeskId}}", "200")

    page = api("GET", f"{SD}/servicedesk").json()
    desk = api("GET", f"{SD}/servicedesk/HELP").json()

    assert set(page) == set(example_page)
    assert set(page["values"][0]) == set(example_page["values"][0]) == set(example_desk) == set(desk)
    assert page["isLastPage"] is True and "next" not in page["_links"] and "prev" not in page["_links"]
    assert [d["projectKey"] for d in page["values"]] == ["HELP", "BILL"]
    assert (desk["id"], desk["projectId"]) == ("1", "10001")


def test_property_shapes_match_openapi_examples(api, openapi):
    prop_path = f"{SD}/organization/{{organizationId}}/property"
    api.org("Acme")
    value = {"phone": "0800-1233456789", "mail": "charlie@example.com"}

    assert api("PUT", f"{SD}/organization/1/property/organization.attributes", json=value).status_code == 201
    assert api("PUT", f"{SD}/organization/1/property/organization.attributes", json=value).status_code == 200
    keys = api("GET", f"{SD}/organization/1/property").json()
    prop = api("GET", f"{SD}/organization/1/property/organization.attributes").json()

    assert set(keys) == set(_example(openapi, "GET", prop_path, "200"))
    assert set(keys["keys"][0]) == {"self", "key"}
    assert prop == _example(openapi, "GET", prop_path + "/{propertyKey}", "200")
    assert api("DELETE", f"{SD}/organization/1/property/organization.attributes").status_code == 204
    _assert_sd_error(api("GET", f"{SD}/organization/1/property/organization.attributes"), 404)


# ---------------------------------------------------------------- status codes


def test_duplicate_customer_is_400_or_409_with_strict_flag(api):
    api.customer("fred@example.com")
    plain = api("POST", f"{SD}/customer", json={"email": "Fred@Example.com", "displayName": "F"})
    strict = api("POST", f"{SD}/customer?strictConflictStatusCode=true", json={"email": "fred@example.com"})

    _assert_sd_error(plain, 400)
    _assert_sd_error(strict, 409)


def test_unknown_organization_is_404(api):
    for method, suffix, body in [("GET", "", None), ("DELETE", "", None), ("GET", "/user", None),
                                 ("POST", "/user", {"accountIds": []})]:
        _assert_sd_error(api(method, f"{SD}/organization/42{suffix}", json=body), 404)


def test_organization_create_is_idempotent_and_validates_name(api):
    first = api("POST", f"{SD}/organization", json={"name": "Acme"})
    second = api("POST", f"{SD}/organization", json={"name": "Acme"})

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json() == second.json()
    _assert_sd_error(api("POST", f"{SD}/organization", json={"name": ""}), 400)
    _assert_sd_error(api("POST", f"{SD}/organization", json={"name": "x" * 201}), 400)
    _assert_sd_error(api("POST", f"{SD}/organization", data="{not json", headers={"Content-Type": "application/json"}), 400)


def test_membership_changes_answer_204_even_when_already_so(api):
    alice = api.customer("alice@example.com")["accountId"]
    api.org("Acme")
    body = {"accountIds": [alice]}

    assert api("POST", f"{SD}/organization/1/user", json=body).status_code == 204
    assert api("POST", f"{SD}/organization/1/user", json=body).status_code == 204
    assert api("DELETE", f"{SD}/organization/1/user", json=body).status_code == 204
    assert api("DELETE", f"{SD}/organization/1/user", json=body).status_code == 204
    _assert_sd_error(api("POST", f"{SD}/organization/1/user", json={"accountIds": ["qm:nobody"]}), 400)
    for method in ("POST", "POST", "DELETE", "DELETE"):
        assert api(method, f"{SD}/servicedesk/projectKey:HELP/organization", json={"organizationId": 1}).status_code == 204
    _assert_sd_error(api("POST", f"{SD}/servicedesk/1/organization", json={"organizationId": 7}), 404)
    _assert_sd_error(api("POST", f"{SD}/servicedesk/9/organization", json={"organizationId": 1}), 404)


def test_organizations_filtered_by_unknown_account_is_404(api):
    _assert_sd_error(api("GET", f"{SD}/organization", params={"accountId": "qm:nobody"}), 404)


def test_experimental_customer_list_needs_opt_in_header(jsm_emulator):
    url = f"{jsm_emulator.url}{SD}/servicedesk/1/customer"
    body = {"accountIds": []}

    for method in ("GET", "DELETE"):
        resp = requests.request(method, url, auth=AUTH, json=body, timeout=5)
        _assert_sd_error(resp, 412)
        assert "X-ExperimentalApi" in resp.json()["errorMessage"]
        assert requests.request(method, url, auth=AUTH, json=body, headers=HEADERS, timeout=5).ok
    assert requests.post(url, auth=AUTH, json=body, timeout=5).status_code == 204  # not experimental


def test_authentication_required(jsm_emulator):
    resp = requests.get(f"{jsm_emulator.url}{SD}/servicedesk", timeout=5)
    _assert_sd_error(resp, 401)
    platform = requests.get(f"{jsm_emulator.url}/rest/api/3/user/search?query=x", timeout=5)
    assert platform.status_code == 401 and set(platform.json()) == {"errorMessages", "errors"}
    assert requests.get(f"{jsm_emulator.url}{SD}/servicedesk", auth=("a", "b"), timeout=5).status_code == 200


def test_expected_credentials_are_enforced():
    emulator = JsmEmulator(expected_email="bot@example.com", expected_token="right")
    with EmulatorServer(emulator=emulator) as server:
        url = f"{server.url}{SD}/servicedesk"
        assert requests.get(url, auth=("bot@example.com", "wrong"), timeout=5).status_code == 401
        assert requests.get(url, auth=("bot@example.com", "right"), timeout=5).status_code == 200


def test_user_search_is_a_plain_array_with_platform_errors(api):
    api.customer("john.smith@example.com", "John Smith")
    api.customer("johnson@example.com", "Jo Johnson")
    api.customer("mary@example.com", "Mary Major")

    def search(**params: Any) -> requests.Response:
        return api("GET", "/rest/api/3/user/search", params=params)

    found = search(query="john").json()
    assert isinstance(found, list)
    assert {u["emailAddress"] for u in found} == {"john.smith@example.com", "johnson@example.com"}
    assert found[0]["accountType"] == "customer"
    assert [u["displayName"] for u in search(query="smi").json()] == ["John Smith"]
    assert len(search(query="john", startAt=1, maxResults=1).json()) == 1
    missing = search()
    assert missing.status_code == 400 and set(missing.json()) == {"errorMessages", "errors"}


def test_pagination_caps_limit_at_50(api, jsm_emulator):
    for i in range(60):
        jsm_emulator.emulator.add_organization(f"Org {i}")

    first = api("GET", f"{SD}/organization", params={"limit": 500}).json()
    last = api("GET", f"{SD}/organization", params={"start": 50}).json()
    beyond = api("GET", f"{SD}/organization", params={"start": 100}).json()

    assert (first["limit"], first["size"], first["isLastPage"]) == (50, 50, False)
    assert (last["size"], last["isLastPage"]) == (10, True)
    assert (beyond["size"], beyond["isLastPage"], beyond["values"]) == (0, True, [])
    _assert_sd_error(api("GET", f"{SD}/organization", params={"start": "x"}), 400)


def test_unknown_route_and_method(api):
    _assert_sd_error(api("GET", f"{SD}/nothing-here"), 404)
    _assert_sd_error(api("PATCH", f"{SD}/organization"), 405)


def test_custom_service_desks():
    emulator = JsmEmulator(service_desks=["HR", {"id": "10", "projectId": "20010", "projectKey": "OPS",
                                                 "projectName": "Operations"}])
    desks = emulator.state_dict()["servicedesks"]
    assert [(d["id"], d["projectKey"]) for d in desks] == [("1", "HR"), ("10", "OPS")]
    emulator.reset()
    assert [d["projectKey"] for d in emulator.state_dict()["servicedesks"]] == ["HR", "OPS"]


# -------------------------------------------------------------- test endpoints


def test_state_endpoint(api, jsm_emulator):
    alice = api.customer("alice@example.com", "Alice")["accountId"]
    api.org("Acme")
    api("POST", f"{SD}/organization/1/user", json={"accountIds": [alice]})
    api("POST", f"{SD}/servicedesk/2/organization", json={"organizationId": 1})
    api("POST", f"{SD}/servicedesk/2/customer", json={"accountIds": [alice]})

    state = requests.get(f"{jsm_emulator.url}/_emulator/state", timeout=5).json()

    assert state == {
        "customers": [{"accountId": alice, "emailAddress": "alice@example.com", "displayName": "Alice", "active": True}],
        "organizations": [{"id": "1", "name": "Acme", "accountIds": [alice]}],
        "servicedesks": [
            {"id": "1", "projectKey": "HELP", "organizationIds": [], "accountIds": []},
            {"id": "2", "projectKey": "BILL", "organizationIds": ["1"], "accountIds": [alice]},
        ],
    }


def test_stats_count_templated_api_routes_only(api, jsm_emulator):
    api.org("Acme")
    api("GET", f"{SD}/organization/1")
    api("GET", f"{SD}/organization/1")
    requests.get(f"{jsm_emulator.url}/_emulator/state", timeout=5)

    stats = requests.get(f"{jsm_emulator.url}/_emulator/stats", timeout=5).json()

    assert stats["requests"] == 3 and stats["by_route"] == {"POST /rest/servicedeskapi/organization": 1,
                                                             "GET /rest/servicedeskapi/organization/{id}": 2}
    assert stats["effects"]["organizations_created"] == 1


def test_effects_count_only_real_changes(api, jsm_emulator):
    alice, bob = api.customer("alice@example.com")["accountId"], api.customer("bob@example.com")["accountId"]
    org = api.org("Acme")["id"]
    assert api.org("Acme")["id"] == org  # same name again: no new organization
    assert api("POST", f"{SD}/customer", json={"email": "alice@example.com"}).status_code == 400  # duplicate
    for _ in range(2):  # the second call of each pair is a no-op in JSM
        assert api("POST", f"{SD}/organization/{org}/user", json={"accountIds": [alice, bob]}).status_code == 204
        assert api("POST", f"{SD}/servicedesk/1/organization", json={"organizationId": int(org)}).status_code == 204
    for _ in range(2):
        assert api("DELETE", f"{SD}/organization/{org}/user", json={"accountIds": [bob]}).status_code == 204
        assert api("DELETE", f"{SD}/servicedesk/1/organization", json={"organizationId": int(org)}).status_code == 204
    assert api("DELETE", f"{SD}/organization/{org}").status_code == 204

    assert jsm_emulator.emulator.stats_dict()["effects"] == {
        "customers_created": 2, "organizations_created": 1, "organizations_deleted": 1, "members_added": 2,
        "members_removed": 1, "desk_links_added": 1, "desk_links_removed": 1}


def test_faults_endpoint_injects_429_and_503_without_changing_state(api, jsm_emulator):
    url = jsm_emulator.url
    assert requests.post(f"{url}/_emulator/faults", json={"rate_limit_every": 2, "retry_after_s": 5,
                                                          "error_every": 3}, timeout=5).ok

    statuses = [api("POST", f"{SD}/organization", json={"name": f"Org {i}"}) for i in range(6)]

    assert [r.status_code for r in statuses] == [201, 429, 503, 429, 201, 429]
    limited = statuses[1]
    assert limited.headers["Retry-After"] == "5"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", limited.headers["X-RateLimit-Reset"])
    _assert_sd_error(limited, 429)
    _assert_sd_error(statuses[2], 503)
    names = [o["name"] for o in jsm_emulator.emulator.state_dict()["organizations"]]
    assert names == ["Org 0", "Org 4"]

    assert requests.post(f"{url}/_emulator/faults", json={}, timeout=5).json() == {}
    assert api("POST", f"{SD}/organization", json={"name": "Org 9"}).status_code == 201
    assert requests.post(f"{url}/_emulator/faults", json={"bogus": 1}, timeout=5).status_code == 400


def test_platform_api_faults_use_platform_error_body(api, jsm_emulator):
    jsm_emulator.emulator.set_faults(rate_limit_every=1)
    resp = api("GET", "/rest/api/3/user/search", params={"query": "x"})
    assert resp.status_code == 429 and set(resp.json()) == {"errorMessages", "errors"}


def test_latency_fault_delays_requests(api, jsm_emulator):
    jsm_emulator.emulator.set_faults(latency_ms=150)
    with pytest.raises(requests.Timeout):
        api.session.get(f"{api.url}{SD}/servicedesk", timeout=0.05)


def test_reset_endpoint(api, jsm_emulator):
    api.customer("alice@example.com")
    jsm_emulator.emulator.set_faults(error_every=1)

    assert requests.post(f"{jsm_emulator.url}/_emulator/reset", timeout=5).ok

    state = jsm_emulator.emulator.state_dict()
    assert state["customers"] == [] and len(state["servicedesks"]) == 2
    stats = jsm_emulator.emulator.stats_dict()
    assert (stats["requests"], stats["by_route"]) == (0, {}) and not any(stats["effects"].values())
    assert api("GET", f"{SD}/servicedesk").status_code == 200


def test_deleting_a_customer_through_the_test_hook_drops_its_memberships(api, jsm_emulator):
    alice = api.customer("alice@example.com")["accountId"]
    bob = api.customer("bob@example.com")["accountId"]
    org = api.org("Acme")["id"]
    assert api("POST", f"{SD}/organization/{org}/user", json={"accountIds": [alice, bob]}).status_code == 204
    assert api("POST", f"{SD}/servicedesk/1/customer", json={"accountIds": [alice]}).status_code == 204

    assert requests.delete(f"{jsm_emulator.url}/_emulator/customers/{alice}", timeout=5).status_code == 204

    state = jsm_emulator.emulator.state_dict()
    assert [c["accountId"] for c in state["customers"]] == [bob]
    assert state["organizations"][0]["accountIds"] == [bob] and state["servicedesks"][0]["accountIds"] == []
    refused = api("POST", f"{SD}/organization/{org}/user", json={"accountIds": [alice, bob]})
    _assert_sd_error(refused, 400)
    assert alice in refused.json()["errorMessage"]  # "The following accounts do not exist: ..."
    assert api("POST", f"{SD}/customer", json={"email": "alice@example.com"}).status_code == 201  # e-mail free again
    assert requests.delete(f"{jsm_emulator.url}/_emulator/customers/{alice}", timeout=5).status_code == 404


def test_customer_delete_hook_needs_the_admin_token():
    with EmulatorServer(emulator=JsmEmulator(admin_token="run-token")) as server:
        account = server.emulator.add_customer("alice@example.com")
        url = f"{server.url}/_emulator/customers/{account}"
        assert requests.delete(url, timeout=5).status_code == 401
        assert requests.delete(url, headers={"Authorization": "Bearer run-token"}, timeout=5).status_code == 204


def test_get_user_by_account_id(api):
    alice = api.customer("alice@example.com", "Alice")["accountId"]
    found = api("GET", "/rest/api/3/user", params={"accountId": alice})
    assert found.status_code == 200 and found.json()["emailAddress"] == "alice@example.com"
    assert found.json()["accountType"] == "customer"
    missing = api("GET", "/rest/api/3/user", params={"accountId": "qm:nope"})
    assert missing.status_code == 404 and set(missing.json()) == {"errorMessages", "errors"}


def test_revoke_portal_only_access(api, jsm_emulator):
    alice = api.customer("alice@example.com")["accountId"]
    path = f"{SD}/customer/user/{alice}/revoke-portal-only-access"
    assert api("PUT", path).status_code == 204 and api("PUT", path).status_code == 204  # idempotent
    assert jsm_emulator.emulator.state_dict()["customers"][0]["active"] is False
    assert api("PUT", f"{SD}/customer/user/qm:x:y/revoke-portal-only-access").status_code == 404
    _assert_sd_error(api("PUT", f"{SD}/customer/user/557058:abc/revoke-portal-only-access"), 400)


def test_guard_managed_organizations_carry_scim_managed(api, jsm_emulator):
    jsm_emulator.emulator.add_organization("Guarded", scim_managed=True)
    api.org("Ours")
    values = api("GET", f"{SD}/organization").json()["values"]
    assert [(o["name"], o.get("scimManaged")) for o in values] == [("Guarded", True), ("Ours", None)]
    assert jsm_emulator.emulator.state_dict()["organizations"][0]["scimManaged"] is True


def test_portal_page_names_the_portal(jsm_emulator):
    page = requests.get(f"{jsm_emulator.url}/servicedesk/customer/portal/2", timeout=5)
    missing = requests.get(f"{jsm_emulator.url}/servicedesk/customer/portal/77", timeout=5)

    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Billing" in page.text
    assert missing.status_code == 404


# ----------------------------------------------------------------- concurrency


def test_concurrent_customer_creation_is_consistent(jsm_client, jsm_emulator):
    results: list[Any] = [None] * 20

    def create(i: int) -> None:
        results[i] = jsm_client.create_customer(f"user{i}@example.com", f"User {i}")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    assert len({c.account_id for c in results}) == 20
    assert len(jsm_emulator.emulator.state_dict()["customers"]) == 20


def test_concurrent_ensure_of_one_email_creates_one_account(jsm_client, jsm_emulator):
    results: list[Any] = [None] * 20
    barrier = threading.Barrier(20)

    def ensure(i: int) -> None:
        barrier.wait()
        results[i] = jsm_client.ensure_customer("same@example.com", "Same")

    threads = [threading.Thread(target=ensure, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    assert len({customer.account_id for customer, _created in results}) == 1
    assert sum(created for _customer, created in results) == 1
    assert len(jsm_emulator.emulator.state_dict()["customers"]) == 1

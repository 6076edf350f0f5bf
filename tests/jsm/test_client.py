"""JsmClient against the emulator over real HTTP: every operation."""

from __future__ import annotations

import pytest

import jsm_client.emulator as emulator_module
from jsm_client import (
    Customer,
    JsmBadRequest,
    JsmClient,
    JsmConflict,
    JsmNotFound,
    Organization,
    ServiceDesk,
)
from jsm_client.emulator import EmulatorServer, JsmEmulator
from tests.fixtures.server import serve_wsgi

ORG_USERS = "POST /rest/servicedeskapi/organization/{id}/user"
LIST_ORGS = "GET /rest/servicedeskapi/organization"


def _customers(client: JsmClient, count: int, prefix: str = "user") -> list[Customer]:
    return [client.create_customer(f"{prefix}{i:03d}@example.com", f"User {i}") for i in range(count)]


# ------------------------------------------------------------------ customers


def test_create_customer_returns_portal_only_account(jsm_client, jsm_emulator):
    customer = jsm_client.create_customer("fred@example.com", "Fred F. User")

    assert customer.email == "fred@example.com"
    assert customer.display_name == "Fred F. User"
    assert customer.active is True
    assert customer.account_id.startswith("qm:")
    assert jsm_emulator.emulator.state_dict()["customers"] == [
        {"accountId": customer.account_id, "emailAddress": "fred@example.com",
         "displayName": "Fred F. User", "active": True}
    ]


def test_duplicate_customer_raises_conflict(jsm_client):
    jsm_client.create_customer("fred@example.com", "Fred")
    with pytest.raises(JsmConflict) as info:
        jsm_client.create_customer("FRED@example.com", "Fred again")
    assert info.value.status == 409
    assert "already exists" in info.value.message


def test_duplicate_answered_with_400_is_still_a_conflict(jsm_emulator, jsm_client_factory):
    """A site that ignores strictConflictStatusCode answers 400; the client checks by lookup."""
    emulator = jsm_emulator.emulator
    existing_id = emulator.add_customer("fred@example.com", "Fred")

    def drop_strict_flag(environ, start_response):
        query = environ.get("QUERY_STRING", "")
        environ["QUERY_STRING"] = query.replace("strictConflictStatusCode=true", "")
        return emulator(environ, start_response)

    with serve_wsgi(drop_strict_flag) as url:
        client = jsm_client_factory(base_url=url)
        with pytest.raises(JsmConflict) as info:
            client.create_customer("fred@example.com", "Fred")
        with pytest.raises(JsmBadRequest):
            client.create_customer("not-an-email", "Nobody")
    assert info.value.status == 400
    assert info.value.existing is not None and info.value.existing.account_id == existing_id


def test_invalid_email_is_bad_request(jsm_client):
    with pytest.raises(JsmBadRequest) as info:
        jsm_client.create_customer("not-an-email", "X")
    assert info.value.status == 400


def test_find_customer_by_email_is_exact_and_case_insensitive(jsm_client):
    bob = jsm_client.create_customer("bob@example.com", "Bob")
    jsm_client.create_customer("bob@example.com.au", "Bob AU")

    assert jsm_client.find_customer_by_email("BOB@Example.com") == bob
    assert jsm_client.find_customer_by_email("bo@example.com") is None


def test_find_customer_falls_back_to_service_desk_search(jsm_client_factory):
    """When user search hides portal-only accounts, desks' customer lists are searched."""
    emulator = JsmEmulator(user_search_includes_customers=False)
    with EmulatorServer(emulator=emulator) as server:
        client = jsm_client_factory(base_url=server.url)
        on_desk = client.create_customer("ann@example.com", "Ann")
        client.create_customer("off@example.com", "Off Desk")
        client.add_service_desk_customers("BILL", [on_desk.account_id])

        assert client.find_customer_by_email("ann@example.com") == on_desk
        assert client.find_customer_by_email("off@example.com") is None
        no_fallback = jsm_client_factory(base_url=server.url, desk_lookup_fallback=False)
        assert no_fallback.find_customer_by_email("ann@example.com") is None


def test_ensure_customer_creates_once(jsm_client, jsm_emulator):
    first, created = jsm_client.ensure_customer("carol@example.com", "Carol")
    again, created_again = jsm_client.ensure_customer("Carol@Example.com", "Carol C")

    assert (created, created_again) == (True, False)
    assert again == first
    assert len(jsm_emulator.emulator.state_dict()["customers"]) == 1


def test_ensure_customer_resolves_a_create_race(jsm_client_factory, jsm_emulator, jsm_calls):
    """Another worker creates the account between our lookup and our create."""
    emulator = jsm_emulator.emulator
    raced: list[str] = []

    def hook(method, route, status):
        jsm_calls(method, route, status)
        if route == "GET /rest/api/3/user/search" and not raced:
            raced.append(emulator.add_customer("dave@example.com", "Dave"))

    client = jsm_client_factory(on_call=hook)
    customer, created = client.ensure_customer("dave@example.com", "Dave")

    assert created is False
    assert customer.account_id == raced[0]
    assert jsm_calls.statuses("POST /rest/servicedeskapi/customer") == [409]


# -------------------------------------------------------------- organizations


def test_create_organization_is_idempotent_by_name(jsm_client, jsm_emulator):
    first = jsm_client.create_organization("Acme Corp")
    second = jsm_client.create_organization("Acme Corp")

    assert first == second == Organization(id=first.id, name="Acme Corp")
    assert len(jsm_emulator.emulator.state_dict()["organizations"]) == 1


def test_get_and_delete_organization(jsm_client):
    org = jsm_client.create_organization("Acme")
    assert jsm_client.get_organization(org.id) == org

    jsm_client.delete_organization(org.id)

    with pytest.raises(JsmNotFound) as info:
        jsm_client.get_organization(org.id)
    assert info.value.status == 404
    with pytest.raises(JsmNotFound):
        jsm_client.delete_organization(org.id)


def test_iter_organizations_pages_through_120(jsm_client, jsm_emulator, jsm_calls):
    for i in range(120):
        jsm_emulator.emulator.add_organization(f"Org {i:03d}")

    names = [o.name for o in jsm_client.iter_organizations()]

    assert names == [f"Org {i:03d}" for i in range(120)]
    assert jsm_calls.statuses(LIST_ORGS) == [200, 200, 200]


def test_pagination_tolerates_a_server_capping_limit(jsm_client, jsm_emulator, jsm_calls, monkeypatch):
    monkeypatch.setattr(emulator_module, "PAGE_CAP", 7)
    for i in range(20):
        jsm_emulator.emulator.add_organization(f"Org {i:02d}")

    assert len(list(jsm_client.iter_organizations())) == 20
    assert jsm_calls.count(LIST_ORGS) == 3  # 7 + 7 + 6


def test_iter_organizations_filtered_by_account(jsm_client):
    alice, bob = _customers(jsm_client, 2)
    acme, _other = jsm_client.create_organization("Acme"), jsm_client.create_organization("Other")
    jsm_client.add_organization_users(acme.id, [alice.account_id])

    assert list(jsm_client.iter_organizations(account_id=alice.account_id)) == [acme]
    assert list(jsm_client.iter_organizations(account_id=bob.account_id)) == []


def test_organization_users_batched_and_ordered(jsm_client_factory, jsm_emulator, jsm_calls):
    client = jsm_client_factory(batch_size=50)
    emulator = jsm_emulator.emulator
    ids = [emulator.add_customer(f"u{i:03d}@example.com", f"U {i}") for i in range(120)]
    org = client.create_organization("Big")

    calls = client.add_organization_users(org.id, ids + ids[:5])  # duplicates are dropped

    assert calls == 3
    assert jsm_calls.count(ORG_USERS) == 3
    members = list(client.iter_organization_users(org.id))
    assert [m.account_id for m in members] == sorted(ids)
    assert client.remove_organization_users(org.id, ids[:60]) == 2
    assert {m.account_id for m in client.iter_organization_users(org.id)} == set(ids[60:])
    assert client.add_organization_users(org.id, []) == 0


def test_adding_a_member_twice_is_fine(jsm_client, jsm_calls):
    (alice,) = _customers(jsm_client, 1)
    org = jsm_client.create_organization("Acme")

    jsm_client.add_organization_users(org.id, [alice.account_id])
    jsm_client.add_organization_users(org.id, [alice.account_id])

    assert jsm_calls.statuses(ORG_USERS) == [204, 204]
    assert list(jsm_client.iter_organization_users(org.id)) == [alice]


def test_unknown_account_rejected_and_nothing_added(jsm_client):
    (alice,) = _customers(jsm_client, 1)
    org = jsm_client.create_organization("Acme")

    with pytest.raises(JsmBadRequest) as info:
        jsm_client.add_organization_users(org.id, [alice.account_id, "qm:nobody:0"])

    assert "qm:nobody:0" in info.value.message
    assert list(jsm_client.iter_organization_users(org.id)) == []


def test_membership_on_unknown_organization_is_not_found(jsm_client):
    (alice,) = _customers(jsm_client, 1)
    with pytest.raises(JsmNotFound):
        jsm_client.add_organization_users("999", [alice.account_id])
    with pytest.raises(JsmNotFound):
        list(jsm_client.iter_organization_users("999"))


def test_organization_properties(jsm_client, jsm_calls):
    org = jsm_client.create_organization("Acme")
    assert jsm_client.get_organization_property(org.id, "bridge.owner") is None

    jsm_client.set_organization_property(org.id, "bridge.owner", {"managed": True, "directory": "default"})
    jsm_client.set_organization_property(org.id, "bridge.owner", {"managed": True, "directory": "other"})

    assert jsm_client.get_organization_property(org.id, "bridge.owner") == {"managed": True, "directory": "other"}
    assert jsm_calls.statuses("PUT /rest/servicedeskapi/organization/{id}/property/{key}") == [201, 200]
    jsm_client.delete_organization_property(org.id, "bridge.owner")
    assert jsm_client.get_organization_property(org.id, "bridge.owner") is None


# -------------------------------------------------------------- service desks


def test_iter_and_get_service_desks(jsm_client):
    desks = list(jsm_client.iter_service_desks())

    assert desks == [
        ServiceDesk(id="1", project_id="10001", project_key="HELP", project_name="Help Desk"),
        ServiceDesk(id="2", project_id="10002", project_key="BILL", project_name="Billing"),
    ]
    assert jsm_client.get_service_desk("HELP") == desks[0]
    assert jsm_client.get_service_desk("projectKey:BILL") == desks[1]
    with pytest.raises(JsmNotFound):
        jsm_client.get_service_desk("NOPE")


def test_service_desk_organizations(jsm_client, jsm_emulator):
    acme, other = jsm_client.create_organization("Acme"), jsm_client.create_organization("Other")

    jsm_client.add_service_desk_organization("1", acme.id)
    jsm_client.add_service_desk_organization("HELP", acme.id)  # already there: 204
    jsm_client.add_service_desk_organization("1", other.id)
    assert list(jsm_client.iter_service_desk_organizations("1")) == [acme, other]

    jsm_client.remove_service_desk_organization("1", acme.id)
    jsm_client.remove_service_desk_organization("1", acme.id)  # absent: 204
    assert list(jsm_client.iter_service_desk_organizations("projectKey:HELP")) == [other]
    assert jsm_emulator.emulator.state_dict()["servicedesks"][0]["organizationIds"] == [other.id]
    with pytest.raises(JsmNotFound):
        jsm_client.add_service_desk_organization("1", "999")
    with pytest.raises(JsmNotFound):
        jsm_client.add_service_desk_organization("99", acme.id)


def test_service_desk_customers(jsm_client):
    alice, bob = _customers(jsm_client, 2)

    assert jsm_client.add_service_desk_customers("1", [alice.account_id, bob.account_id]) == 1
    assert list(jsm_client.iter_service_desk_customers("1")) == sorted([alice, bob], key=lambda c: c.account_id)
    assert list(jsm_client.iter_service_desk_customers("1", query="user001")) == [bob]

    assert jsm_client.remove_service_desk_customers("1", [alice.account_id]) == 1
    assert list(jsm_client.iter_service_desk_customers("1")) == [bob]
    assert list(jsm_client.iter_service_desk_customers("2")) == []


def test_adding_unknown_desk_customer_adds_the_valid_ones(jsm_client):
    (alice,) = _customers(jsm_client, 1)
    with pytest.raises(JsmBadRequest):
        jsm_client.add_service_desk_customers("1", [alice.account_id, "qm:nobody:0"])
    assert list(jsm_client.iter_service_desk_customers("1")) == [alice]


def test_removing_customers_from_an_open_desk_is_rejected(jsm_client_factory):
    emulator = JsmEmulator(service_desks=[{"projectKey": "OPEN", "openAccess": True}])
    with EmulatorServer(emulator=emulator) as server:
        client = jsm_client_factory(base_url=server.url)
        with pytest.raises(JsmBadRequest):
            client.remove_service_desk_customers("OPEN", ["qm:any:0"])


def test_portal_url_and_close(jsm_emulator):
    client = JsmClient(jsm_emulator.url + "/", "bot@example.com", "token-1234")
    assert client.portal_url("2") == f"{jsm_emulator.url}/servicedesk/customer/portal/2"
    with client:
        assert [d.id for d in client.iter_service_desks()] == ["1", "2"]


def test_every_call_sends_auth_and_experimental_headers(jsm_emulator, jsm_client_factory):
    seen: list[dict[str, str]] = []
    emulator = jsm_emulator.emulator

    def spy(environ, start_response):
        seen.append({k: environ.get(k, "") for k in ("HTTP_AUTHORIZATION", "HTTP_X_EXPERIMENTALAPI", "HTTP_ACCEPT")})
        return emulator(environ, start_response)

    with serve_wsgi(spy) as url:
        client = jsm_client_factory(base_url=url)
        client.create_organization("Acme")
        list(client.iter_service_desk_customers("1"))
        client.find_customer_by_email("x@example.com")

    assert len(seen) >= 4
    for headers in seen:
        assert headers["HTTP_AUTHORIZATION"].startswith("Basic ")
        assert headers["HTTP_X_EXPERIMENTALAPI"] == "opt-in"
        assert headers["HTTP_ACCEPT"] == "application/json"


def test_a_failing_on_call_hook_does_not_break_calls(jsm_client_factory):
    def broken(method, route, status):
        raise RuntimeError("metrics backend down")

    client = jsm_client_factory(on_call=broken)
    assert client.create_organization("Acme").name == "Acme"


def test_session_is_pooled_for_concurrent_workers(jsm_client_factory):
    client = jsm_client_factory(pool_size=5)
    adapter = client._session.get_adapter("https://acme.atlassian.net")
    assert adapter._pool_maxsize >= 20
    assert client._session.get_adapter("http://127.0.0.1") is adapter


def test_get_customer_and_scim_managed_organizations(jsm_client, jsm_emulator):
    account = jsm_emulator.emulator.add_customer("alice@example.com", "Alice")
    jsm_emulator.emulator.add_organization("Guarded", scim_managed=True)
    jsm_client.create_organization("Ours")

    assert jsm_client.get_customer(account) == Customer(account, "alice@example.com", "Alice")
    jsm_emulator.emulator.delete_customer(account)
    assert jsm_client.get_customer(account) is None
    assert [(o.name, o.scim_managed) for o in jsm_client.iter_organizations()] == [("Guarded", True), ("Ours", False)]

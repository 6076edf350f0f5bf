"""End to end through the SCIM HTTP API: IdP pushes → worker → JSM emulator (real HTTP both sides)."""
from __future__ import annotations

import requests

from tests.sync.conftest import jsm_view

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def test_scim_lifecycle_reaches_jsm(live_server, auth, sync, jsm_emulator):
    scim = requests.Session()
    scim.headers.update({**auth, "Content-Type": "application/scim+json"})
    base = f"{live_server}/scim/v2"

    def post(kind: str, body: dict) -> str:
        response = scim.post(f"{base}/{kind}", json=body, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def patch(kind: str, rid: str, *operations: dict) -> None:
        response = scim.patch(f"{base}/{kind}/{rid}", json={"schemas": [PATCH], "Operations": list(operations)},
                              timeout=10)
        assert response.status_code in (200, 204), response.text

    alice = post("Users", {"schemas": [USER], "userName": "alice", "displayName": "Alice",
                           "emails": [{"value": "alice@acme.com", "type": "work", "primary": True}]})
    bob = post("Users", {"schemas": [USER], "userName": "bob@acme.com"})
    staff = post("Groups", {"schemas": [GROUP], "displayName": "Staff", "members": [{"value": alice}, {"value": bob}]})
    sync()
    assert jsm_view(jsm_emulator.emulator)["organizations"] == {"Staff": ["alice@acme.com", "bob@acme.com"]}

    patch("Users", alice, {"op": "replace", "path": "active", "value": False})
    patch("Groups", staff, {"op": "replace", "path": "displayName", "value": "Employees"})
    sync()
    assert jsm_view(jsm_emulator.emulator)["organizations"] == {"Employees": ["bob@acme.com"]}

    patch("Users", alice, {"op": "replace", "path": "active", "value": True})
    assert scim.delete(f"{base}/Users/{bob}", timeout=10).status_code == 204
    sync()
    assert jsm_view(jsm_emulator.emulator)["organizations"] == {"Employees": ["alice@acme.com"]}

    assert scim.delete(f"{base}/Groups/{staff}", timeout=10).status_code == 204
    stats = sync()
    view = jsm_view(jsm_emulator.emulator)
    assert view["organizations"] == {}
    assert view["customers"] == ["alice@acme.com", "bob@acme.com"]  # JSM accounts are never deleted
    assert stats.failed == 0


def test_superseded_work_collapses_to_what_the_end_state_needs(live_server, auth, sync, jsm_emulator):
    """Created, renamed and deactivated before the worker ran: JSM only sees the end state."""
    scim = requests.Session()
    scim.headers.update({**auth, "Content-Type": "application/scim+json"})
    base = f"{live_server}/scim/v2"
    ids = [scim.post(f"{base}/Users", json={"schemas": [USER], "userName": f"{name}@acme.com"}, timeout=10).json()["id"]
           for name in ("alice", "bob")]
    staff = scim.post(f"{base}/Groups", json={"schemas": [GROUP], "displayName": "Staff",
                                              "members": [{"value": i} for i in ids]}, timeout=10).json()["id"]
    for kind, rid, path, value in (("Groups", staff, "displayName", "Employees"), ("Users", ids[0], "active", False),
                                   ("Groups", staff, "displayName", "People")):
        response = scim.patch(f"{base}/{kind}/{rid}", timeout=10, json={
            "schemas": [PATCH], "Operations": [{"op": "replace", "path": path, "value": value}]})
        assert response.status_code == 200, response.text

    stats = sync()

    assert stats.failed == 0
    view = jsm_view(jsm_emulator.emulator)
    assert view["customers"] == ["bob@acme.com"]  # alice was inactive before she ever reached JSM
    assert view["organizations"] == {"People": ["bob@acme.com"]}  # never "Staff" or "Employees"
    emulator_stats = jsm_emulator.emulator.stats_dict()
    assert emulator_stats["effects"] == {
        "customers_created": 1, "organizations_created": 1, "organizations_deleted": 0, "members_added": 1,
        "members_removed": 0, "desk_links_added": 0, "desk_links_removed": 0}
    # customer, org listing, org, its ownership property, members
    assert emulator_stats["requests"] <= 5, emulator_stats["by_route"]

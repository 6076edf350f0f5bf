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

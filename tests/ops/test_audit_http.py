"""The audit trail of SCIM writes made over real HTTP, queried with ``jsm-scim audit list``.

Every create, replace, patch and delete of Users and Groups leaves one row saying which key did
what to which resource, when, in which directory; rejected writes leave none; no secret is stored.
"""
from __future__ import annotations

import datetime as dt
import json

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import text

from scim_server.cli import main
from scim_server.db import utcnow
from tests.fixtures.db import issue_token

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
PASSWORD = "Sup3r-Secret-Passw0rd!"


@pytest.fixture
def audit_cli(database_url, tmp_path, monkeypatch):
    """``jsm-scim audit list --json ARGS`` against the test database; returns the parsed rows."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str) -> list[dict]:
        result = runner.invoke(main, ["audit", "list", "--json", *args], env={"JSM_SCIM_DATABASE_URL": database_url})
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    return run


class Scim:
    def __init__(self, base: str, token: str) -> None:
        self.base = base + "/scim/v2"
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}

    def __call__(self, method: str, path: str, body: dict | None = None, expect: int = 200) -> dict:
        response = requests.request(method, self.base + path, json=body, headers=self.headers, timeout=10)
        assert response.status_code == expect, response.text
        return response.json() if response.content else {}


def test_every_scim_write_is_audited_and_queryable(live_server, session_factory, audit_cli):
    token = issue_token(session_factory, "okta", "okta")
    other = issue_token(session_factory, "entra", "entra")
    with session_factory() as session:
        key_id = session.execute(text("SELECT id FROM api_keys WHERE name = 'okta'")).scalar_one()
    scim = Scim(live_server, token)
    start = utcnow() - dt.timedelta(seconds=1)

    user = scim("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": "ada@acme.example", "password": PASSWORD,
                                   "emails": [{"value": "ada@acme.example", "type": "work"}]}, expect=201)
    uid = user["id"]
    scim("PUT", f"/Users/{uid}", {"schemas": [USER_SCHEMA], "userName": "ada@acme.example", "displayName": "Ada",
                                  "password": PASSWORD})
    scim("PATCH", f"/Users/{uid}", {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "value": {"active": False}}]})
    group = scim("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Staff"}, expect=201)
    gid = group["id"]
    scim("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_SCHEMA],
                                     "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]})
    scim("PUT", f"/Groups/{gid}", {"schemas": [GROUP_SCHEMA], "displayName": "Staff 2"})
    scim("DELETE", f"/Groups/{gid}", expect=204)
    # Rejected writes leave no trace: duplicate userName (409), unknown id (404), bad PATCH (400).
    scim("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": "ADA@acme.example"}, expect=409)
    scim("PATCH", "/Users/no-such-id", {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "remove", "path": "title"}]},
         expect=404)
    scim("PATCH", f"/Users/{uid}", {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "jump"}]}, expect=400)
    scim("DELETE", f"/Users/{uid}", expect=204)
    Scim(live_server, other)("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": "bob@entra.example"}, expect=201)

    events = audit_cli("--directory", "okta")
    assert [(e["action"], e["target_id"]) for e in reversed(events)] == [
        ("user.create", uid), ("user.replace", uid), ("user.patch", uid),
        ("group.create", gid), ("group.patch", gid), ("group.replace", gid), ("group.delete", gid),
        ("user.delete", uid),
    ]
    for event in events:
        assert event["actor"] == key_id and event["directory"] == "okta"
        assert start <= dt.datetime.fromisoformat(event["at"]) <= utcnow()
    by_action = {e["action"]: e for e in events}
    assert by_action["user.patch"]["detail"]["attributes"] == ["active"]
    assert "membersAdded" in by_action["group.patch"]["detail"]
    assert by_action["group.replace"]["detail"]["displayName"] == "Staff 2"

    # Filters: by target, kind of target, action prefix, actor, time window; other directories apart.
    assert {e["action"] for e in audit_cli("--target", uid)} == {"user.create", "user.replace", "user.patch", "user.delete"}
    assert len(audit_cli("--type", "Group", "--directory", "okta")) == 4
    assert len(audit_cli("--action", "group.*")) == 4
    assert len(audit_cli("--actor", key_id)) == 8
    assert [e["directory"] for e in audit_cli("--directory", "entra")] == ["entra"]
    assert len(audit_cli()) == 9
    assert audit_cli("--until", start.isoformat()) == []
    assert len(audit_cli("--since", start.isoformat(), "--limit", "3")) == 3

    with session_factory() as session:
        stored = " ".join(str(row) for row in session.execute(text("SELECT * FROM audit_events")))
    assert PASSWORD not in stored and token not in stored and token[len("jsmscim_"):] not in stored


def test_group_patch_audit_counts_the_members_really_added(live_server, session_factory,
                                                          audit_cli):
    scim = Scim(live_server, issue_token(session_factory))
    uid = scim("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": "eve@acme.example"}, expect=201)["id"]
    gid = scim("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Ops"}, expect=201)["id"]
    add = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]}
    scim("PATCH", f"/Groups/{gid}", add)
    scim("PATCH", f"/Groups/{gid}", add)  # already a member: no change, no new audit row
    patches = audit_cli("--action", "group.patch")
    assert [e["detail"]["membersAdded"] for e in patches] == [1]

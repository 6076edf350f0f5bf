"""HTTP tests of /Groups and group membership, on SQLite and PostgreSQL."""
from __future__ import annotations

import contextlib
from typing import Iterator

from sqlalchemy import event, func, insert, select

from scim_server import audit
from scim_server.db import utcnow
from scim_server.models import GroupMember, User
from scim_server.services import services_of
from tests.fixtures.db import issue_token
from tests.scim.resources_helpers import (
    assert_scim_error,
    create_group,
    create_user,
    group_body,
    patch_body,
)

# 10,000 ids travel as one array on PostgreSQL (9 statements in all) and in chunks of 500 on SQLite:
# 20 chunks to check the users exist and 20 to insert (46 in all). One statement per member would be 10,000.
MAX_STATEMENTS_FOR_10K_MEMBERS = 60


def _member_ids(client, auth, group_id):
    body = client.get(f"/scim/v2/Groups/{group_id}?attributes=members", headers=auth).get_json()
    return sorted(m["value"] for m in body.get("members", []))


def test_create_with_members_and_refs(client, auth):
    user = create_user(client, auth, "m@example.com", displayName="Em")
    response = client.post("/scim/v2/Groups", json=group_body("Staff", [user["id"]], externalId="g-1"), headers=auth)
    assert response.status_code == 201
    group = response.get_json()
    assert response.headers["Location"].endswith(f"/scim/v2/Groups/{group['id']}")
    # members.display is not returned: a PATCH answer must echo members exactly as the IdP sent them
    assert group["members"] == [{"value": user["id"], "$ref": f"http://testserver/scim/v2/Users/{user['id']}",
                                 "type": "User"}]
    assert group["externalId"] == "g-1"
    groups_of_user = client.get(f"/scim/v2/Users/{user['id']}", headers=auth).get_json()["groups"]
    assert groups_of_user == [{"value": group["id"], "$ref": f"http://testserver/scim/v2/Groups/{group['id']}",
                               "display": "Staff", "type": "direct"}]


def test_display_name_unique_per_directory(client, auth, session_factory):
    create_group(client, auth, "Sales")
    assert_scim_error(client.post("/scim/v2/Groups", json=group_body("sales"), headers=auth), 409, "uniqueness")
    other = {"Authorization": f"Bearer {issue_token(session_factory, 'o', 'other-idp')}"}
    assert client.post("/scim/v2/Groups", json=group_body("Sales"), headers=other).status_code == 201


def test_members_that_are_no_user_of_the_directory_are_skipped_warned_and_audited(client, auth, session_factory,
                                                                                 caplog):
    """One stale id held by the IdP must not block every other member's change (or the group)."""
    other = {"Authorization": f"Bearer {issue_token(session_factory, 'o', 'other-idp')}"}
    foreign = create_user(client, other, "foreign@example.com")
    stale = "3f0c6a52-0000-4000-8000-00000000dead"
    caplog.set_level("WARNING", logger="scim_server.store.groups")
    created = client.post("/scim/v2/Groups", json=group_body("G", [foreign["id"]]), headers=auth)
    assert created.status_code == 201
    group = created.get_json()
    assert _member_ids(client, auth, group["id"]) == []
    mine = create_user(client, auth, "mine@example.com")
    add = patch_body({"op": "add", "path": "members", "value": [{"value": mine["id"]}, {"value": foreign["id"]},
                                                                {"value": stale}]})
    assert client.patch(f"/scim/v2/Groups/{group['id']}", json=add, headers=auth).status_code == 200
    assert _member_ids(client, auth, group["id"]) == [mine["id"]]
    second = create_user(client, auth, "second@example.com")
    put = client.put(f"/scim/v2/Groups/{group['id']}", headers=auth,
                     json=group_body("G", [second["id"], stale]))
    assert put.status_code == 200
    assert _member_ids(client, auth, group["id"]) == [second["id"]]
    # The other directory's user is untouched and in none of this directory's groups.
    assert client.get(f"/scim/v2/Users/{foreign['id']}", headers=other).get_json().get("groups") is None

    warnings = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(warnings) == 3 and stale in warnings[1] and foreign["id"] in warnings[1]
    with session_factory() as session:
        events = audit.query_events(session, action="group.members_skipped")
    assert [e.detail["count"] for e in events] == [1, 2, 1]  # newest first: PUT, PATCH, POST
    assert all(e.target_id == group["id"] for e in events)
    assert any(set(e.detail["unknownMembers"]) == {foreign["id"], stale} for e in events)


def test_patch_members_add_remove_replace(client, auth):
    a, b, c = (create_user(client, auth, f"{n}@example.com")["id"] for n in "abc")
    group = create_group(client, auth, "Team")
    url = f"/scim/v2/Groups/{group['id']}"
    patch = lambda *ops: client.patch(url, json=patch_body(*ops), headers=auth)  # noqa: E731
    response = patch({"op": "add", "path": "members", "value": [{"value": a}, {"value": b}]})
    assert response.status_code == 200
    assert sorted(m["value"] for m in response.get_json()["members"]) == sorted([a, b])  # small group: full resource
    assert response.get_json()["meta"]["version"] == 'W/"2"'
    repeated = patch({"op": "add", "path": "members", "value": [{"value": a}]})  # repeated add: idempotent
    assert repeated.status_code == 200 and repeated.headers["ETag"] == 'W/"2"'  # nothing added: same version
    assert _member_ids(client, auth, group["id"]) == sorted([a, b])
    patch({"op": "remove", "path": f'members[value eq "{a}"]'})
    assert _member_ids(client, auth, group["id"]) == [b]
    patch({"op": "replace", "path": "members", "value": [{"value": a}, {"value": c}]})
    assert _member_ids(client, auth, group["id"]) == sorted([a, c])
    patch({"op": "remove", "path": "members"})
    assert _member_ids(client, auth, group["id"]) == []


def test_patch_answer_includes_members_when_asked(client, auth):
    a = create_user(client, auth, "a@example.com")["id"]
    group = create_group(client, auth, "Asked")
    response = client.patch(f"/scim/v2/Groups/{group['id']}?attributes=members,displayName",
                            json=patch_body({"op": "add", "path": "members", "value": [{"value": a}]}), headers=auth)
    assert [m["value"] for m in response.get_json()["members"]] == [a]


def test_unchanged_patch_keeps_version(client, auth):
    group = create_group(client, auth, "Same")
    response = client.patch(f"/scim/v2/Groups/{group['id']}", headers=auth, json=patch_body(
        {"op": "replace", "value": {"id": group["id"], "displayName": "Same"}}))
    assert response.status_code == 200 and response.headers["ETag"] == 'W/"1"'


def test_rename_and_rename_conflict(client, auth):
    create_group(client, auth, "Taken")
    group = create_group(client, auth, "Old")
    url = f"/scim/v2/Groups/{group['id']}"
    renamed = client.patch(url, json=patch_body({"op": "replace", "path": "displayName", "value": "New"}), headers=auth)
    assert renamed.get_json()["displayName"] == "New"
    clash = client.patch(url, json=patch_body({"op": "replace", "path": "displayName", "value": "taken"}), headers=auth)
    assert_scim_error(clash, 409, "uniqueness")


def test_put_replaces_members(client, auth):
    a, b = (create_user(client, auth, f"{n}@example.com")["id"] for n in "ab")
    group = create_group(client, auth, "Put", [a])
    response = client.put(f"/scim/v2/Groups/{group['id']}", json=group_body("Put2", [b]), headers=auth)
    assert response.status_code == 200
    assert [m["value"] for m in response.get_json()["members"]] == [b]


def test_exclude_members_in_list_and_get(client, auth):
    a = create_user(client, auth, "a@example.com")["id"]
    group = create_group(client, auth, "Ex", [a])
    listed = client.get('/scim/v2/Groups?excludedAttributes=members&filter=displayName eq "Ex"', headers=auth)
    assert listed.get_json()["Resources"][0].keys() == {"schemas", "id", "displayName", "meta"}
    single = client.get(f"/scim/v2/Groups/{group['id']}?excludedAttributes=members", headers=auth).get_json()
    assert "members" not in single


def test_deleting_user_removes_membership_and_bumps_group_version(client, auth):
    a = create_user(client, auth, "gone@example.com")["id"]
    group = create_group(client, auth, "Keep", [a])
    assert client.delete(f"/scim/v2/Users/{a}", headers=auth).status_code == 204
    after = client.get(f"/scim/v2/Groups/{group['id']}", headers=auth).get_json()
    assert "members" not in after and after["meta"]["version"] == 'W/"2"'


def test_delete_group(client, auth):
    group = create_group(client, auth, "Bye")
    assert client.delete(f"/scim/v2/Groups/{group['id']}", headers=auth).status_code == 204
    assert_scim_error(client.get(f"/scim/v2/Groups/{group['id']}", headers=auth), 404)


def _bulk_users(session_factory, directory_id: int, count: int) -> list[str]:
    ids = [f"bulk-{i:05d}" for i in range(count)]
    now = utcnow()
    rows = [{"id": i, "directory_id": directory_id, "user_name": f"{i}@example.com",
             "user_name_lower": f"{i}@example.com", "active": True, "document": {}, "version": 1,
             "created_at": now, "updated_at": now} for i in ids]
    with session_factory() as session, session.begin():
        session.execute(insert(User), rows)
    return ids


@contextlib.contextmanager
def _statements(app) -> Iterator[list[str]]:
    """The SQL statements the app's engine runs inside the block."""
    seen: list[str] = []
    engine = services_of(app).engine

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_ten_thousand_members_in_one_patch_are_set_operations(app, client, auth, session_factory):
    """10,000 members in one PATCH are a bounded number of set statements, never one per member
    (the time itself is measured by benchmarks/big_patch.py, not here)."""
    group = create_group(client, auth, "Big")
    with session_factory() as session:
        directory_id = session.scalar(select(User.directory_id).limit(1)) or _directory_of(session)
    ids = _bulk_users(session_factory, directory_id, 10_000)
    url = f"/scim/v2/Groups/{group['id']}"
    with _statements(app) as add_sql:
        added = client.patch(url, json=patch_body({"op": "add", "path": "members",
                                                   "value": [{"value": i} for i in ids]}), headers=auth)
    assert added.status_code == 200 and "members" not in added.get_json()
    with session_factory() as session:
        assert session.scalar(select(func.count()).where(GroupMember.group_id == group["id"])) == 10_000
    with _statements(app) as remove_sql:
        removed = client.patch(url, json=patch_body({"op": "remove", "path": "members",
                                                     "value": [{"value": i} for i in ids[:9_990]]}), headers=auth)
    assert removed.status_code == 200
    assert _member_ids(client, auth, group["id"]) == ids[9_990:]
    assert client.patch(url, json=patch_body({"op": "add", "path": "members", "value": [{"value": i} for i in ids]}),
                        headers=auth).status_code == 200
    with _statements(app) as okta_sql:  # Okta's form: one members[value eq "ID"] operation per member
        okta = client.patch(url, json=patch_body(*({"op": "remove", "path": f'members[value eq "{i}"]'} for i in ids)),
                            headers=auth)
    assert okta.status_code == 200 and _member_ids(client, auth, group["id"]) == []
    counts = (len(add_sql), len(remove_sql), len(okta_sql))
    assert max(counts) <= MAX_STATEMENTS_FOR_10K_MEMBERS, counts


def _directory_of(session) -> int:
    from scim_server.models import ApiKey

    return session.scalar(select(ApiKey.directory_id).limit(1))

"""SCIM-shaped errors for every failure mode of the /scim/v2 blueprint."""
from __future__ import annotations

from scim_server.services import services_of
from scim_server.settings import Settings
from tests.scim.resources_helpers import assert_scim_error, create_user, patch_body, user_body


def test_missing_and_bad_tokens_are_401_with_www_authenticate(client):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}):
        response = client.get("/scim/v2/Users", headers=headers)
        assert_scim_error(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_path_and_method(client, auth):
    assert_scim_error(client.get("/scim/v2/Nothing", headers=auth), 404)
    assert_scim_error(client.get("/scim/v2/Users/a/b", headers=auth), 404)
    response = client.post("/scim/v2/ServiceProviderConfig", json={}, headers=auth)
    assert_scim_error(response, 405)
    assert_scim_error(client.put("/scim/v2/Users", json={}, headers=auth), 405)


def test_malformed_json_and_wrong_content_type(client, auth):
    bad = client.post("/scim/v2/Users", data="{not json", headers={**auth, "Content-Type": "application/scim+json"})
    assert_scim_error(bad, 400, "invalidSyntax")
    xml = client.post("/scim/v2/Users", data="<user/>", headers={**auth, "Content-Type": "application/xml"})
    assert_scim_error(xml, 415)
    assert client.get("/scim/v2/Users", headers=auth).get_json()["totalResults"] == 0


def test_no_content_type_is_accepted(client, auth):
    import json

    response = client.post("/scim/v2/Users", data=json.dumps(user_body("noct@example.com")), headers=auth)
    assert response.status_code == 201
    charset = client.post("/scim/v2/Users", data=json.dumps(user_body("cs@example.com")),
                          headers={**auth, "Content-Type": "application/json; charset=utf-8"})
    assert charset.status_code == 201


def test_bad_patch_messages(client, auth):
    user = create_user(client, auth, "p@example.com")
    url = f"/scim/v2/Users/{user['id']}"
    assert_scim_error(client.patch(url, json={"Operations": [{"op": "add"}]}, headers=auth), 400, "invalidSyntax")
    assert_scim_error(client.patch(url, json=patch_body({"op": "frobnicate", "path": "title"}), headers=auth),
                      400, "invalidSyntax")
    assert_scim_error(client.patch(url, json=patch_body(), headers=auth), 400, "invalidSyntax")
    # a failing operation leaves the earlier ones of the same request unapplied
    response = client.patch(url, headers=auth, json=patch_body(
        {"op": "replace", "path": "title", "value": "Boss"}, {"op": "replace", "path": "id", "value": "x"}))
    assert_scim_error(response, 400, "mutability")
    assert "title" not in client.get(url, headers=auth).get_json()


def test_oversized_body_is_413(database_url, session_factory):
    from scim_server.app import create_app
    from tests.fixtures.db import issue_token

    app = create_app(Settings(database_url=database_url, secret_key="s", public_url="http://testserver",
                              max_body_bytes=2_000), migrate=False)
    try:
        token = issue_token(services_of(app).session_factory, "big")
        big = user_body("big@example.com", displayName="x" * 5_000)
        response = app.test_client().post("/scim/v2/Users", json=big, headers={"Authorization": f"Bearer {token}"})
        assert_scim_error(response, 413)
    finally:
        services_of(app).engine.dispose()


def _stored_state(session_factory) -> dict:
    """Every row a SCIM write can touch: resources, index rows, memberships, audit trail, outbox."""
    from sqlalchemy import select

    from scim_server.models import Group, GroupMember, User, UserValue
    from scim_server.models.audit import AuditEvent
    from scim_server.models.sync import SyncMark

    with session_factory() as session:
        return {
            "users": sorted((u.id, u.user_name, u.version, repr(u.document)) for u in session.scalars(select(User))),
            "values": sorted((v.user_id, v.attribute, v.value) for v in session.scalars(select(UserValue))),
            "groups": sorted((g.id, g.display_name, g.version) for g in session.scalars(select(Group))),
            "members": sorted((m.group_id, m.user_id) for m in session.scalars(select(GroupMember))),
            "audit": session.query(AuditEvent).count(),
            "marks": sorted((m.kind, m.entity_id, m.generation) for m in session.scalars(select(SyncMark))),
        }


def test_rejected_requests_change_nothing_stored(client, auth, session_factory):
    """Item 5: each bad input gets its status and scimType, and no row changes (not even audit/outbox)."""
    from tests.scim.resources_helpers import GROUP_SCHEMA, create_group

    user = create_user(client, auth, "keep@example.com", title="Keeper")
    other = create_user(client, auth, "other@example.com")
    group = create_group(client, auth, "Keepers", [user["id"]])
    users, groups = "/scim/v2/Users", "/scim/v2/Groups"
    u, g = f"{users}/{user['id']}", f"{groups}/{group['id']}"
    json_headers = {**auth, "Content-Type": "application/scim+json"}
    cases = [
        ("POST", users, {"data": "{not json", "headers": json_headers}, 400, "invalidSyntax"),
        ("PATCH", u, {"data": '{"schemas": [', "headers": json_headers}, 400, "invalidSyntax"),
        ("POST", users, {"json": {"userName": "x@example.com"}}, 400, "invalidSyntax"),
        ("POST", users, {"json": user_body("y@example.com", shoeSize=9)}, 400, "invalidSyntax"),
        ("PUT", u, {"json": user_body("keep@example.com", active="perhaps")}, 400, "invalidValue"),
        ("PUT", u, {"json": user_body("OTHER@example.com")}, 409, "uniqueness"),
        ("POST", users, {"json": user_body("Keep@Example.com")}, 409, "uniqueness"),
        ("PATCH", u, {"json": patch_body({"op": "replace", "path": "title", "value": "Boss"},
                                         {"op": "replace", "path": "meta.created", "value": "x"})}, 400, "mutability"),
        ("PATCH", u, {"json": patch_body({"op": "replace", "path": "title", "value": "Boss"},
                                         {"op": "replace", "path": "shoeSize", "value": 9})}, 400, "invalidPath"),
        ("PATCH", u, {"json": patch_body({"op": "replace", "path": 'emails[type eq', "value": "x"})}, 400,
         "invalidPath"),
        ("PATCH", u, {"json": patch_body({"op": "remove", "path": 'emails[type eq "home"]'})}, 400, "noTarget"),
        ("PATCH", u, {"json": patch_body({"op": "remove"})}, 400, "noTarget"),
        ("PATCH", u, {"json": patch_body({"op": "replace", "path": "active", "value": "perhaps"})}, 400,
         "invalidValue"),
        ("PATCH", g, {"json": patch_body({"op": "add", "path": "members", "value": [{"value": other["id"]}]},
                                         {"op": "add", "path": "members", "value": [{"value": {"id": "x"}}]})},
         400, "invalidValue"),
        ("PATCH", g, {"json": patch_body({"op": "replace", "path": "displayName", "value": "Renamed"},
                                         {"op": "add", "path": "members", "value": [{"value": "x", "type": "Group"}]})},
         400, "invalidValue"),
        ("PUT", g, {"json": {"schemas": [GROUP_SCHEMA], "displayName": "Renamed", "members": [{"value": ""}]}},
         400, "invalidValue"),
        ("GET", users, {"query_string": {"filter": 'userName eq "a" and shoeSize eq "x"'}}, 400, "invalidFilter"),
        ("POST", f"{users}/.search", {"json": {"filter": "x"}}, 400, "invalidSyntax"),
        ("PATCH", u, {"json": patch_body({"op": "replace", "path": "title", "value": "Boss"}),
                      "headers": {**auth, "If-Match": 'W/"99"'}}, 412, None),
        ("DELETE", u, {"headers": {**auth, "If-Match": 'W/"99"'}}, 412, None),
        ("DELETE", users, {}, 405, None),
    ]
    before = _stored_state(session_factory)
    for method, path, kwargs, status, scim_type in cases:
        kwargs.setdefault("headers", auth)
        response = client.open(path, method=method, **kwargs)
        assert_scim_error(response, status, scim_type)
        assert _stored_state(session_factory) == before, (method, path, kwargs)

"""SCIM-shaped errors for every failure mode of the /scim/v2 blueprint."""
from __future__ import annotations

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
        token = issue_token(app.extensions["jsm_scim"].session_factory, "big")
        big = user_body("big@example.com", displayName="x" * 5_000)
        response = app.test_client().post("/scim/v2/Users", json=big, headers={"Authorization": f"Bearer {token}"})
        assert_scim_error(response, 413)
    finally:
        app.extensions["jsm_scim"].engine.dispose()

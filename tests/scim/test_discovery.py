"""Discovery endpoints (RFC 7644 §4) through the application's SCIM blueprint."""
from __future__ import annotations

from scim_server.scim.attributes import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA

BASE = "/scim/v2"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def get_json(client, auth, path: str, status: int = 200) -> dict:
    response = client.get(BASE + path, headers=auth)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/scim+json"
    return response.get_json()


def test_service_provider_config(client, auth):
    config = get_json(client, auth, "/ServiceProviderConfig")
    assert config["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    assert config["patch"]["supported"] and not config["bulk"]["supported"]
    assert config["filter"] == {"supported": True, "maxResults": 1000}
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    assert config["meta"] == {"resourceType": "ServiceProviderConfig",
                              "location": "http://testserver/scim/v2/ServiceProviderConfig"}


def test_schemas_list_response(client, auth):
    body = get_json(client, auth, "/Schemas")
    assert body["schemas"] == [LIST]
    assert body["totalResults"] == body["itemsPerPage"] == len(body["Resources"]) == 3
    assert body["startIndex"] == 1
    ids = [schema["id"] for schema in body["Resources"]]
    assert ids == [USER_SCHEMA, ENTERPRISE_SCHEMA, GROUP_SCHEMA]
    for schema in body["Resources"]:
        assert schema["meta"] == {"resourceType": "Schema", "location": f"http://testserver/scim/v2/Schemas/{schema['id']}"}


def test_one_schema(client, auth):
    for urn in (USER_SCHEMA, ENTERPRISE_SCHEMA, GROUP_SCHEMA, ENTERPRISE_SCHEMA.upper()):
        schema = get_json(client, auth, f"/Schemas/{urn}")
        assert schema["id"].lower() == urn.lower()
        assert schema["meta"]["location"].endswith(f"/Schemas/{schema['id']}")
        assert schema["attributes"]


def test_resource_types(client, auth):
    body = get_json(client, auth, "/ResourceTypes")
    assert body["schemas"] == [LIST] and body["totalResults"] == 2
    user, group = body["Resources"]
    assert user["schemaExtensions"] == [{"schema": ENTERPRISE_SCHEMA, "required": False}]
    assert user["meta"] == {"resourceType": "ResourceType", "location": "http://testserver/scim/v2/ResourceTypes/User"}
    assert (group["id"], group["endpoint"], group["schema"]) == ("Group", "/Groups", GROUP_SCHEMA)
    assert get_json(client, auth, "/ResourceTypes/Group") == group
    assert get_json(client, auth, "/ResourceTypes/User") == user


def test_locations_use_the_public_url(client, auth, settings):
    assert settings.public_url == "http://testserver"
    response = client.get(BASE + "/ResourceTypes/User", headers=auth, base_url="http://internal-host:8000")
    assert response.get_json()["meta"]["location"] == "http://testserver/scim/v2/ResourceTypes/User"


def test_unknown_discovery_documents_are_404_errors(client, auth):
    for path in ("/Schemas/urn:example:nope", "/ResourceTypes/Widget", "/Schemas/User"):
        body = get_json(client, auth, path, status=404)
        assert body["schemas"] == [ERROR] and body["status"] == "404" and body["detail"], path


DISCOVERY_PATHS = ["/ServiceProviderConfig", "/ResourceTypes", "/Schemas", "/ResourceTypes/User",
                   f"/Schemas/{USER_SCHEMA}"]


def test_only_get_is_allowed(client, auth):
    for path in DISCOVERY_PATHS:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = client.open(BASE + path, method=method, headers=auth, json={})
            assert response.status_code == 405, (method, path)
            assert response.mimetype == "application/scim+json"
            body = response.get_json()
            assert body["schemas"] == [ERROR] and body["status"] == "405" and body["detail"]
            assert "GET" in response.headers["Allow"]
        assert client.head(BASE + path, headers=auth).status_code == 200


def test_discovery_requires_the_bearer_token(client):
    for path in DISCOVERY_PATHS:
        response = client.get(BASE + path)
        assert response.status_code == 401, path
        assert response.get_json()["schemas"] == [ERROR]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_advertised_max_results_is_the_page_size_served():
    from schemas.documents import service_provider_config
    from scim_server.store.common import MAX_PAGE_SIZE

    assert service_provider_config()["filter"]["maxResults"] == MAX_PAGE_SIZE

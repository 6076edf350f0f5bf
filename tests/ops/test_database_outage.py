"""PostgreSQL unreachable (a proxy we control in front of the shared server is cut): every request
gets 503 with Retry-After, never a 500, nothing half-written; service resumes when it is back."""
from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from scim_server.app import create_app
from scim_server.settings import Settings
from tests.fixtures.db import issue_token
from tests.fixtures.tcp_proxy import tcp_proxy
from tests.scim.resources_helpers import assert_scim_error, user_body

pytestmark = pytest.mark.postgres


@pytest.fixture
def outage(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("a network outage needs a database server (PostgreSQL)")
    url = make_url(database_url)
    with tcp_proxy(url.host, url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        app = create_app(Settings(database_url=proxied, secret_key="test-secret", public_url="http://testserver"),
                         migrate=False)
        yield proxy, app, app.test_client()
        app.extensions["jsm_scim"].engine.dispose()


def test_requests_during_an_outage_get_503_and_retry_after(outage):
    proxy, app, client = outage
    auth = {"Authorization": f"Bearer {issue_token(app.extensions['jsm_scim'].session_factory)}"}
    assert client.post("/scim/v2/Users", json=user_body("before@example.com"), headers=auth).status_code == 201

    proxy.cut()
    for method, path, body in [("POST", "/scim/v2/Users", user_body("during@example.com")),
                               ("GET", "/scim/v2/Users", None),
                               ("GET", "/scim/v2/Users?filter=userName%20eq%20%22x%22", None),
                               ("PATCH", "/scim/v2/Users/x", {  # a valid message: only the database is missing
                                   "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                   "Operations": [{"op": "replace", "path": "displayName", "value": "x"}]})]:
        response = client.open(path, method=method, json=body, headers=auth)
        assert_scim_error(response, 503)
        assert response.headers["Retry-After"] == "5"
    for path in ("/readyz", "/saml/metadata"):
        response = client.get(path)
        assert response.status_code == 503, (path, response.get_data(as_text=True))
    assert client.get("/healthz").status_code == 200

    proxy.restore()
    assert client.post("/scim/v2/Users", json=user_body("after@example.com"), headers=auth).status_code == 201
    listed = client.get("/scim/v2/Users", headers=auth).get_json()
    assert sorted(r["userName"] for r in listed["Resources"]) == ["after@example.com", "before@example.com"]

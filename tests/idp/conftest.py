"""The IdP dialect suite talks to the server over a real socket with ``requests``."""
from __future__ import annotations

import pytest
import requests

from scim_server.settings import Settings
from tests.fixtures.db import issue_token

SCIM_JSON = "application/scim+json"


@pytest.fixture
def settings(database_url: str) -> Settings:
    """IdPs replay sequences back to back; the per-key rate limit is tested elsewhere."""
    return Settings(database_url=database_url, secret_key="test-secret", public_url="http://testserver",
                    rate_limit_per_key=100_000.0, rate_limit_burst=100_000)


class Idp:
    """A SCIM client session like an IdP's: base URL, bearer token, JSON in and out."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base = f"{base_url}/scim/v2"
        self.http = requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {token}", "Accept": SCIM_JSON})

    def __call__(self, method: str, path: str, body=None, *, content_type: str | None = SCIM_JSON, **params):
        headers = {"Content-Type": content_type} if (body is not None and content_type) else {}
        import json

        data = json.dumps(body) if body is not None else None
        response = self.http.request(method, self.base + path, data=data, headers=headers, params=params or None,
                                     timeout=30)
        if response.content:
            assert response.headers["Content-Type"].startswith(SCIM_JSON), response.headers
        return response


@pytest.fixture(params=["sqlite"])
def database_url(request, tmp_path):  # the socket suite runs on SQLite; HTTP tests cover both backends
    import shutil

    path = tmp_path / "test.db"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    return f"sqlite:///{path}"


@pytest.fixture
def idp(live_server, session_factory) -> Idp:
    return Idp(live_server, issue_token(session_factory, "idp"))

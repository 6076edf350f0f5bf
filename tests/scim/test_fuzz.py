"""Seeded, bounded fuzzing of the SCIM endpoints (hypothesis): whatever arrives, the answer is never a
5xx, and resources the request did not address are exactly as before.

The examples are derived deterministically (``derandomize``), so a failure reproduces; the count is
bounded so the whole module stays within seconds. It runs on SQLite (the fuzzed code paths are the
same on both databases; PostgreSQL-specific failures such as NUL characters have their own cases in
test_hostile_input.py).
"""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.db import issue_token
from tests.scim.resources_helpers import PATCH_OP, SCIM_JSON, USER_SCHEMA, create_group, create_user

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

FUZZ = settings(max_examples=40, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

NAMES = st.sampled_from(["userName", "displayName", "emails", "name", "active", "members", "externalId",
                         "phoneNumbers", "groups", "id", "meta", "schemas", "value", "type", "primary",
                         "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", "x"])
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12) | st.sampled_from(
    ["", " ", "a@b.c", "true", "null", "ü", "\u0000", "\ud800", "emails[type eq \"work\"]", "members[value eq \"x\"]"])
SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | TEXT
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NAMES | TEXT, inner,
                                                                                            max_size=4), max_leaves=12)
OPERATION = st.fixed_dictionaries({"op": st.sampled_from(["add", "replace", "remove", "Add", "bogus", ""]) | TEXT},
                                  optional={"path": NAMES | TEXT, "value": JSON})
QUERY_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)  # URL-encodable
FILTER = st.sampled_from(['userName eq "', "emails[", "not (", "name.givenName sw ", "meta.created gt ", "and ",
                          "or ", '"x"', ")", "]", "pr ", "co 1 ", "members[value eq \"a\"]"])


def _body(value) -> bytes:
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


@pytest.fixture
def world(client, auth, session_factory):
    """A target user and group to fuzz, and bystanders (same and other directory) that must not change."""
    target = create_user(client, auth, "target@example.com")
    group = create_group(client, auth, "Targets", [target["id"]])
    bystander = create_user(client, auth, "bystander@example.com")
    other = {"Authorization": f"Bearer {issue_token(session_factory, 'other', 'other-idp')}"}
    foreign = create_user(client, other, "foreign@example.com")
    foreign_group = create_group(client, other, "Foreign", [foreign["id"]])

    def snapshot() -> str:
        docs = [client.get(f"/scim/v2/Users/{bystander['id']}", headers=auth).get_json(),
                client.get(f"/scim/v2/Users/{foreign['id']}", headers=other).get_json(),
                client.get(f"/scim/v2/Groups/{foreign_group['id']}", headers=other).get_json()]
        return json.dumps(docs, sort_keys=True)

    return {"user": target["id"], "group": group["id"], "snapshot": snapshot, "before": snapshot()}


def _check(response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert response.headers["Content-Type"].startswith(SCIM_JSON)


def test_fuzzed_creates_and_replaces(client, auth, world):
    @FUZZ
    @given(document=JSON)
    def run(document):
        if isinstance(document, dict):
            document.setdefault("schemas", [USER_SCHEMA])
        for method, path in (("POST", "/Users"), ("POST", "/Groups"), ("PUT", f"/Users/{world['user']}"),
                             ("PUT", f"/Groups/{world['group']}")):
            _check(client.open("/scim/v2" + path, method=method, data=_body(document),
                               headers={**auth, "Content-Type": SCIM_JSON}))

    run()
    assert world["snapshot"]() == world["before"]


def test_fuzzed_patches(client, auth, world):
    @FUZZ
    @given(operations=st.lists(OPERATION, max_size=5))
    def run(operations):
        body = _body({"schemas": [PATCH_OP], "Operations": operations})
        for path in (f"/Users/{world['user']}", f"/Groups/{world['group']}"):
            _check(client.patch("/scim/v2" + path, data=body, headers={**auth, "Content-Type": SCIM_JSON}))

    run()
    assert world["snapshot"]() == world["before"]


def test_fuzzed_queries(client, auth, world):
    @FUZZ
    @given(parts=st.lists(FILTER | QUERY_TEXT, max_size=6),
           start=st.none() | st.integers(-(2**65), 2**65) | QUERY_TEXT,
           count=st.none() | st.integers(-(2**65), 2**65) | QUERY_TEXT, attributes=st.none() | NAMES | QUERY_TEXT)
    def run(parts, start, count, attributes):
        query = {key: value for key, value in (("filter", "".join(parts)), ("startIndex", start), ("count", count),
                                               ("attributes", attributes), ("sortBy", attributes))
                 if value is not None}
        for path in ("/Users", "/Groups"):
            _check(client.get("/scim/v2" + path, query_string=query, headers=auth))
        search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], **query}
        _check(client.post("/scim/v2/.search", data=_body(search), headers={**auth, "Content-Type": SCIM_JSON}))

    run()
    assert world["snapshot"]() == world["before"]

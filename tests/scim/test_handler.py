"""The SCIM handler without any web framework: plain arguments in, an Answer or a ScimError out.

The HTTP tests (test_users, test_groups, ...) run the same functions through the Flask views; these
show that the handler stands on its own and that it never commits the caller's transaction.
"""
from __future__ import annotations

import pytest

from scim_server import handler
from scim_server.db import transaction
from scim_server.models import User
from scim_server.scim.errors import ScimError
from scim_server.store import Scope
from scim_server.store.directories import ensure_directory

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BASE = "https://bridge.example"


@pytest.fixture
def caller(session_factory) -> handler.Caller:
    with transaction(session_factory) as session:
        directory_id = ensure_directory(session, "handler-tests").id
    return handler.Caller(Scope(directory_id=directory_id), BASE)


def new_user(session_factory, caller: handler.Caller, user_name: str = "ada@acme.com") -> handler.Answer:
    with transaction(session_factory) as session:
        return handler.create(session, handler.USERS, caller, {"schemas": [USER_SCHEMA], "userName": user_name})


def test_create_answers_201_with_location_etag_and_rendered_document(session_factory, caller):
    answer = new_user(session_factory, caller)
    assert answer.status == 201 and answer.etag == 'W/"1"'
    assert answer.location == f"{BASE}/scim/v2/Users/{answer.resource_id}"
    assert answer.document is not None and answer.document["userName"] == "ada@acme.com"
    assert answer.document["meta"]["location"] == answer.location


def test_the_handler_does_not_commit(session_factory, caller):
    with session_factory() as session:
        answer = handler.create(session, handler.USERS, caller, {"schemas": [USER_SCHEMA], "userName": "x@acme.com"})
        session.rollback()
    with session_factory() as session:
        assert session.get(User, answer.resource_id) is None


def test_get_honours_if_none_match_and_query_parameters(session_factory, caller):
    created = new_user(session_factory, caller)
    with transaction(session_factory) as session:
        unchanged = handler.get(session, handler.USERS, caller, created.resource_id, if_none_match=created.etag)
        projected = handler.get(session, handler.USERS, caller, created.resource_id, {"attributes": "userName"})
    assert (unchanged.status, unchanged.document, unchanged.etag) == (304, None, created.etag)
    assert projected.document is not None and set(projected.document) == {"schemas", "id", "userName"}


def test_patch_with_a_stale_if_match_is_412_and_changes_nothing(session_factory, caller):
    created = new_user(session_factory, caller)
    rename = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "Ada"}]}
    with transaction(session_factory) as session:
        with pytest.raises(ScimError) as stale:
            handler.patch(session, handler.USERS, caller, created.resource_id, rename, if_match='W/"7"')
    assert stale.value.status == 412
    with transaction(session_factory) as session:
        patched = handler.patch(session, handler.USERS, caller, created.resource_id, rename, if_match=created.etag)
    assert patched.etag == 'W/"2"' and patched.document is not None and patched.document["displayName"] == "Ada"


@pytest.mark.parametrize("body", [[], "text", None])
def test_a_body_that_is_not_an_object_is_400_invalid_syntax(session_factory, caller, body):
    with transaction(session_factory) as session:
        with pytest.raises(ScimError) as refused:
            handler.create(session, handler.USERS, caller, body)
    assert (refused.value.status, refused.value.scim_type) == (400, "invalidSyntax")


def test_groups_share_the_operations_and_other_directories_do_not_exist(session_factory, caller):
    member = new_user(session_factory, caller)
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Staff",
            "members": [{"value": member.resource_id}]}
    with transaction(session_factory) as session:
        group = handler.create(session, handler.GROUPS, caller, body)
        listed = handler.list_resources(session, handler.GROUPS, caller, {"filter": 'displayName eq "staff"'})
        other = handler.Caller(Scope(directory_id=ensure_directory(session, "elsewhere").id), BASE)
        with pytest.raises(ScimError) as hidden:
            handler.get(session, handler.GROUPS, other, group.resource_id)
    assert [m["value"] for m in listed["Resources"][0]["members"]] == [member.resource_id]
    assert listed["totalResults"] == 1 and hidden.value.status == 404
    with transaction(session_factory) as session:
        assert handler.delete(session, handler.GROUPS, caller, group.resource_id).status == 204
        assert handler.list_resources(session, handler.GROUPS, caller)["totalResults"] == 0

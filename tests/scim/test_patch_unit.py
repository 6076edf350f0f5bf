"""Pure tests of PATCH application, projection and ETags (no database, no HTTP)."""
from __future__ import annotations

import pytest

from scim_server.scim.errors import ScimError
from scim_server.scim.etag import etag_for, header_matches, precondition_holds
from scim_server.scim.patch import MemberChange, apply_patch, equality_terms
from scim_server.scim.projection import projection
from tests.scim.resources_helpers import ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA

USER_DOC = {
    "schemas": [USER_SCHEMA],
    "userName": "ada@example.com",
    "name": {"givenName": "Ada", "familyName": "Lovelace"},
    "emails": [{"value": "ada@example.com", "type": "work", "primary": True}],
    "addresses": [{"type": "work", "streetAddress": "1 Main St", "locality": "London"}],
    "active": True,
}


def patch_user(*operations, document=USER_DOC):
    return apply_patch("User", document, list(operations), "u-1").document


def op(name, path=None, value=None):
    return {"op": name, "path": path, "value": value}


def test_replace_with_boolean_string_and_value_path():
    result = patch_user(op("replace", "active", "False"),
                        op("replace", 'emails[type eq "work"].value', "new@example.com"),
                        op("replace", 'addresses[type eq "work"].streetAddress', "2 High St"))
    assert result["active"] is False
    assert result["emails"] == [{"value": "new@example.com", "type": "work", "primary": True}]
    assert result["addresses"][0] == {"type": "work", "streetAddress": "2 High St", "locality": "London"}
    assert USER_DOC["active"] is True  # input untouched


def test_pathless_replace_with_dotted_and_extension_keys():
    result = patch_user(op("replace", value={"displayName": "A", "name.givenName": "Augusta",
                                             f"{ENTERPRISE}:employeeNumber": "42"}))
    assert result["displayName"] == "A"
    assert result["name"] == {"givenName": "Augusta", "familyName": "Lovelace"}
    assert result[ENTERPRISE] == {"employeeNumber": "42"}


@pytest.mark.parametrize("value", ["boss-1", {"value": "boss-1"}, [{"value": "boss-1", "$ref": None}]])
def test_manager_shapes(value):
    result = patch_user(op("add", f"{ENTERPRISE}:manager", value))
    assert result[ENTERPRISE]["manager"] == {"value": "boss-1"}


def test_remove_manager_by_value_filter_and_add_new_email_type():
    with_manager = patch_user(op("add", f"{ENTERPRISE}:manager", "boss-1"))
    removed = patch_user(op("remove", f'{ENTERPRISE}:manager[value eq "boss-1"]'), document=with_manager)
    assert ENTERPRISE not in removed
    added = patch_user(op("add", 'emails[type eq "home"].value', "home@example.com"))
    assert {"value": "home@example.com", "type": "home"} in added["emails"]


def test_add_primary_email_clears_the_other_primary():
    result = patch_user(op("add", "emails", [{"value": "b@example.com", "type": "home", "primary": True}]))
    assert [e.get("primary") for e in result["emails"]] == [False, True]


def test_add_on_single_valued_attribute_replaces_it():
    assert patch_user(op("add", "userName", "new@example.com"))["userName"] == "new@example.com"


@pytest.mark.parametrize("operation, scim_type", [
    (op("remove"), "noTarget"),
    (op("remove", 'emails[type eq "home"]'), "noTarget"),
    (op("replace", "id", "other"), "mutability"),
    (op("add", "groups", [{"value": "g"}]), "mutability"),
    (op("replace", value={"id": "someone-else"}), "mutability"),
    (op("replace", "active", "perhaps"), "invalidValue"),
    (op("remove", "userName"), "invalidValue"),
    (op("replace", "nosuch", "x"), "invalidPath"),
    (op("replace", "emails[type eq]", "x"), "invalidPath"),
])
def test_invalid_operations(operation, scim_type):
    with pytest.raises(ScimError) as raised:
        patch_user(operation)
    assert (raised.value.status, raised.value.scim_type) == (400, scim_type)


def test_okta_rename_echoing_the_id_is_accepted():
    group = {"schemas": [GROUP_SCHEMA], "displayName": "Old"}
    result = apply_patch("Group", group, [op("replace", value={"id": "g-1", "displayName": "New"})], "g-1")
    assert result.document["displayName"] == "New" and result.member_changes == []


def test_member_operations_become_set_changes():
    group = {"schemas": [GROUP_SCHEMA], "displayName": "G"}
    result = apply_patch("Group", group, [
        op("add", "members", [{"value": "u1", "display": "x"}, {"value": "u1"}]),
        op("remove", "members", [{"value": "u2"}]),
        op("remove", 'members[value eq "u3" or value eq "u4"]'),
        op("replace", "members", []),
        op("remove", "members"),
    ], "g-1")
    assert result.member_changes == [  # consecutive removes are one set operation
        MemberChange("add", ("u1",)), MemberChange("remove", ("u2", "u3", "u4")),
        MemberChange("replace", ()), MemberChange("remove_all"),
    ]
    with pytest.raises(ScimError) as raised:
        apply_patch("Group", group, [op("add", "members", [{"value": "x", "type": "Group"}])], "g-1")
    assert raised.value.scim_type == "invalidValue"


def test_okta_removals_one_operation_per_member_coalesce_in_order():
    group = {"schemas": [GROUP_SCHEMA], "displayName": "G"}
    operations = [op("remove", f'members[value eq "u{i}"]') for i in range(3)]
    operations += [op("add", "members", [{"value": "u1"}]), op("add", "members", [{"value": "u9"}, {"value": "u1"}]),
                   op("remove", 'MEMBERS[VALUE EQ "u9"]')]
    assert apply_patch("Group", group, operations, "g-1").member_changes == [
        MemberChange("remove", ("u0", "u1", "u2")), MemberChange("add", ("u1", "u9")), MemberChange("remove", ("u9",)),
    ]
    with pytest.raises(ScimError) as raised:  # an invalid escape is still reported by the parser
        apply_patch("Group", group, [op("remove", 'members[value eq "a\\q"]')], "g-1")
    assert raised.value.scim_type == "invalidPath"


def test_equality_terms():
    assert equality_terms('emails[type eq "work" and primary eq true].value', "and") == [("type", "work"), ("primary", True)]
    assert equality_terms('emails[type co "w"]', "and") is None


def test_projection_rules():
    document = {"schemas": [USER_SCHEMA], "id": "u-1", "userName": "a", "name": {"givenName": "A", "familyName": "B"},
                "meta": {"version": 'W/"1"'}}
    assert projection("User", ["name.givenName"], None).apply(document) == {
        "schemas": [USER_SCHEMA], "id": "u-1", "name": {"givenName": "A"}}
    assert projection("User", None, ["name", "id"]).apply(document) == {
        "schemas": [USER_SCHEMA], "id": "u-1", "userName": "a", "meta": {"version": 'W/"1"'}}
    assert not projection("Group", None, ["members"]).wants("members")
    assert projection("Group", ["MEMBERS.value"], None).wants("members")
    assert not projection("Group", ["displayName"], None).wants("members")


def test_etags():
    assert etag_for(3) == 'W/"3"'
    assert header_matches('W/"3"', 3) and header_matches('"3"', 3) and header_matches('"1", W/"3"', 3)
    assert header_matches("*", 9) and not header_matches('W/"2"', 3) and not header_matches(None, 3)
    assert precondition_holds(None, 3) and precondition_holds('W/"3"', 3) and not precondition_holds('W/"4"', 3)

"""Attribute paths (RFC 7644 §3.10) and PATCH paths (RFC 7644 §3.5.2)."""
from __future__ import annotations

import pytest

from scim_server.scim.attributes import ENTERPRISE_SCHEMA, GROUP, GROUP_SCHEMA, USER, USER_SCHEMA
from scim_server.scim.errors import ScimError
from scim_server.scim.filter_ast import And, Comparison
from scim_server.scim.parser import parse_attr_path, parse_patch_path
from scim_server.scim.paths import AttrPath

ENT = ENTERPRISE_SCHEMA


@pytest.mark.parametrize("resource_type,text,expected", [
    (USER, "userName", AttrPath(USER_SCHEMA, "userName")),
    (USER, "USERNAME", AttrPath(USER_SCHEMA, "userName")),
    (USER, "name.givenName", AttrPath(USER_SCHEMA, "name", "givenName")),
    (USER, "Name.GIVENNAME", AttrPath(USER_SCHEMA, "name", "givenName")),
    (USER, "emails.value", AttrPath(USER_SCHEMA, "emails", "value")),
    (USER, "id", AttrPath(USER_SCHEMA, "id")),
    (USER, "externalid", AttrPath(USER_SCHEMA, "externalId")),
    (USER, "meta.lastmodified", AttrPath(USER_SCHEMA, "meta", "lastModified")),
    (USER, f"{USER_SCHEMA}:userName", AttrPath(USER_SCHEMA, "userName")),
    (USER, f"{ENT}:employeeNumber", AttrPath(ENT, "employeeNumber")),
    (USER, f"{ENT.lower()}:MANAGER.value", AttrPath(ENT, "manager", "value")),
    (USER, f"{ENT}:manager.$ref", AttrPath(ENT, "manager", "$ref")),
    (USER, "  userName ", AttrPath(USER_SCHEMA, "userName")),
    (GROUP, "members.value", AttrPath(GROUP_SCHEMA, "members", "value")),
    (GROUP, "displayname", AttrPath(GROUP_SCHEMA, "displayName")),
])
def test_attr_paths_resolve_to_canonical_names(resource_type, text, expected):
    assert parse_attr_path(resource_type, text) == expected


@pytest.mark.parametrize("resource_type,text", [
    (USER, "unknown"),
    (USER, "name.unknown"),
    (USER, "userName.value"),
    (USER, "employeeNumber"),  # extension attributes need their schema URN
    (USER, f"{ENT}:userName"),
    (USER, "urn:example:params:1.0:User:userName"),
    (USER, "members"),
    (GROUP, "userName"),
    (USER, ""),
    (USER, "user name"),
    (USER, "name..givenName"),
    (USER, "emails[type eq \"work\"]"),  # a value path is not an attribute path
    (USER, "userName eq \"x\""),
])
def test_invalid_attr_paths(resource_type, text):
    with pytest.raises(ScimError) as caught:
        parse_attr_path(resource_type, text)
    assert (caught.value.status, caught.value.scim_type) == (400, "invalidPath")
    assert caught.value.detail


def test_attr_path_in_filter_context_reports_invalid_filter():
    with pytest.raises(ScimError) as caught:
        parse_attr_path(USER, "nope", scim_type="invalidFilter")
    assert caught.value.scim_type == "invalidFilter"


def test_simple_patch_paths():
    path = parse_patch_path(USER, "name.givenName")
    assert path.attr == AttrPath(USER_SCHEMA, "name", "givenName")
    assert (path.value_filter, path.sub_attribute, path.target_sub) == (None, None, "givenName")
    manager = parse_patch_path(USER, f"{ENT}:manager")
    assert manager.attr == AttrPath(ENT, "manager") and manager.target_sub is None
    assert parse_patch_path(USER, f"{ENT}:employeeNumber").attr == AttrPath(ENT, "employeeNumber")
    assert parse_patch_path(USER, "ACTIVE").attr == AttrPath(USER_SCHEMA, "active")


def test_value_path_with_sub_attribute_from_entra():
    path = parse_patch_path(USER, 'emails[type eq "work"].value')
    assert path.attr == AttrPath(USER_SCHEMA, "emails")
    assert path.value_filter == Comparison(AttrPath(USER_SCHEMA, "emails", "type"), "eq", "work")
    assert path.sub_attribute == "value" and path.target_sub == "value"


def test_member_value_path_from_okta():
    path = parse_patch_path(GROUP, 'members[value eq "2819c223-7f76-453a-919d-413861904646"]')
    assert path.attr == AttrPath(GROUP_SCHEMA, "members")
    assert path.value_filter == Comparison(AttrPath(GROUP_SCHEMA, "members", "value"), "eq",
                                           "2819c223-7f76-453a-919d-413861904646")
    assert path.sub_attribute is None


def test_value_path_with_logic_and_escapes():
    path = parse_patch_path(USER, 'Emails[Type EQ "work" and value ew "@x.com\\""].Display')
    assert isinstance(path.value_filter, And)
    assert path.value_filter.right.value == '@x.com"'
    assert path.sub_attribute == "display"


def test_value_path_on_singular_complex_attribute():
    path = parse_patch_path(USER, f'{ENT}:manager[value eq "m1"]')
    assert path.attr == AttrPath(ENT, "manager")
    assert path.value_filter == Comparison(AttrPath(ENT, "manager", "value"), "eq", "m1")


@pytest.mark.parametrize("resource_type,text", [
    (USER, 'emails[type eq "work"'),
    (USER, 'emails[type eq "work"].unknown'),
    (USER, 'emails[nope eq "work"]'),
    (USER, 'userName[value eq "x"]'),  # not complex
    (USER, 'name.givenName[value eq "x"]'),
    (USER, 'emails[type eq "work"] extra'),
    (USER, 'emails[type eq "work"].value.more'),
    (USER, 'emails[emails[type eq "a"]]'),
    (USER, 'emails[]'),
    (USER, "emails.value.more"),
    (GROUP, 'members[value eq "x"'),
    (USER, "   "),
])
def test_invalid_patch_paths(resource_type, text):
    with pytest.raises(ScimError) as caught:
        parse_patch_path(resource_type, text)
    assert (caught.value.status, caught.value.scim_type) == (400, "invalidPath")


def test_attr_path_str_is_the_short_form_for_core_attributes():
    assert str(AttrPath(USER_SCHEMA, "name", "givenName")) == "name.givenName"
    assert str(AttrPath(ENT, "manager", "value")) == f"{ENT}:manager.value"

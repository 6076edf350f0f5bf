"""The attribute registry and the schema documents it is derived from."""
from __future__ import annotations

import pytest

from schemas.documents import resource_types, schema_documents, service_provider_config
from scim_server.scim.attributes import (
    ENTERPRISE_SCHEMA,
    GROUP,
    GROUP_SCHEMA,
    USER,
    USER_SCHEMA,
    canonical_name,
    core_schema,
    extension_schemas,
    find_attribute,
    resolve_schema,
    schema_attributes,
    schemas_for,
)

ATTRIBUTE_KEYS = {"name", "type", "multiValued", "description", "required", "mutability", "returned"}
TYPES = {"string", "boolean", "decimal", "integer", "dateTime", "reference", "complex", "binary"}


def test_resource_types_and_their_schemas():
    assert schemas_for(USER) == (USER_SCHEMA, ENTERPRISE_SCHEMA)
    assert schemas_for(GROUP) == (GROUP_SCHEMA,)
    assert core_schema(USER) == USER_SCHEMA and extension_schemas(USER) == (ENTERPRISE_SCHEMA,)
    assert resolve_schema(USER, ENTERPRISE_SCHEMA.upper()) == ENTERPRISE_SCHEMA
    assert resolve_schema(GROUP, ENTERPRISE_SCHEMA) is None
    with pytest.raises(ValueError):
        schemas_for("Widget")


def test_lookups_are_case_insensitive_and_canonical():
    user_name = find_attribute(USER, None, "USERNAME")
    assert user_name.name == "userName" and user_name.schema == USER_SCHEMA
    assert (user_name.case_exact, user_name.uniqueness, user_name.required) == (False, "server", True)
    assert find_attribute(USER, USER_SCHEMA.upper(), "username") == user_name
    assert canonical_name(USER, None, "EMAILS", "VALUE") == "value"
    assert canonical_name(USER, None, "phonenumbers") == "phoneNumbers"
    assert canonical_name(USER, ENTERPRISE_SCHEMA, "employeenumber") == "employeeNumber"
    assert canonical_name(USER, None, "nope") is None
    assert find_attribute(USER, None, "name", "nope") is None
    assert find_attribute(GROUP, None, "userName") is None
    assert find_attribute(USER, None, "employeeNumber") is None  # extension attributes need the URN


def test_definitions_carry_the_rfc_characteristics():
    emails = find_attribute(USER, None, "emails")
    assert emails.is_complex and emails.multi_valued
    assert set(emails.sub_attributes) == {"value", "display", "type", "primary"}
    assert emails.sub("TYPE").canonical_values == ("work", "home", "other")
    assert emails.sub("primary").type == "boolean"
    password = find_attribute(USER, None, "password")
    assert (password.mutability, password.returned) == ("writeOnly", "never")
    groups = find_attribute(USER, None, "groups")
    assert groups.mutability == "readOnly" and groups.sub("$ref").reference_types == ("Group",)
    manager = find_attribute(USER, ENTERPRISE_SCHEMA, "manager")
    assert manager.schema == ENTERPRISE_SCHEMA and manager.sub("value").case_exact
    assert manager.sub("displayName").mutability == "readOnly"
    members = find_attribute(GROUP, None, "members")
    assert members.multi_valued and members.sub("value").mutability == "immutable"
    assert find_attribute(GROUP, None, "displayName").required


def test_common_attributes_belong_to_each_core_schema():
    for resource_type, core in ((USER, USER_SCHEMA), (GROUP, GROUP_SCHEMA)):
        identifier = find_attribute(resource_type, None, "ID")
        assert (identifier.schema, identifier.returned, identifier.mutability) == (core, "always", "readOnly")
        assert identifier.case_exact
        assert find_attribute(resource_type, None, "externalId").case_exact
        assert find_attribute(resource_type, None, "meta", "lastModified").type == "dateTime"
        assert {"id", "externalid", "meta"} <= set(schema_attributes(resource_type))
    assert "id" not in schema_attributes(USER, ENTERPRISE_SCHEMA)
    assert schema_attributes(GROUP, ENTERPRISE_SCHEMA) == {}


def test_definitions_are_hashable_values():
    assert find_attribute(USER, None, "emails") in {find_attribute(USER, None, "emails")}


def _walk(attributes, parent=""):
    for attribute in attributes:
        yield f"{parent}{attribute['name']}", attribute
        yield from _walk(attribute.get("subAttributes", ()), f"{parent}{attribute['name']}.")


@pytest.mark.parametrize("document", schema_documents(), ids=lambda d: d["id"])
def test_schema_documents_are_complete_rfc_7643_schemas(document):
    assert document["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:Schema"]
    assert document["meta"]["resourceType"] == "Schema"
    for name, attribute in _walk(document["attributes"]):
        assert ATTRIBUTE_KEYS <= set(attribute), name
        assert attribute["type"] in TYPES, name
        assert attribute["mutability"] in {"readOnly", "readWrite", "immutable", "writeOnly"}, name
        assert attribute["returned"] in {"always", "never", "default", "request"}, name
        if attribute["type"] in ("string", "reference", "binary"):
            assert "caseExact" in attribute and "uniqueness" in attribute, name
        if attribute["type"] == "reference":
            assert attribute["referenceTypes"], name
        assert (attribute["type"] == "complex") == ("subAttributes" in attribute), name


def test_documents_are_fresh_copies():
    schema_documents()[0]["attributes"].clear()
    resource_types()[0]["meta"]["location"] = "x"
    assert schema_documents()[0]["attributes"]
    assert "location" not in resource_types()[0]["meta"]


def test_service_provider_config_matches_what_is_implemented():
    config = service_provider_config()
    assert config["patch"] == {"supported": True}
    assert config["bulk"]["supported"] is False
    assert config["filter"] == {"supported": True, "maxResults": 1000}
    assert config["changePassword"] == {"supported": False}
    assert config["sort"] == {"supported": True} and config["etag"] == {"supported": True}
    (scheme,) = config["authenticationSchemes"]
    assert scheme["type"] == "oauthbearertoken" and scheme["primary"] is True


def test_resource_types_document():
    user, group = resource_types()
    assert (user["id"], user["endpoint"], user["schema"]) == ("User", "/Users", USER_SCHEMA)
    assert user["schemaExtensions"] == [{"schema": ENTERPRISE_SCHEMA, "required": False}]
    assert (group["id"], group["endpoint"], group["schema"]) == ("Group", "/Groups", GROUP_SCHEMA)


def test_user_value_attributes_are_the_writable_multi_valued_ones_with_a_value():
    from scim_server.scim.attributes import schema_attributes
    from scim_server.store.columns import USER_VALUE_ATTRIBUTES

    expected = {d.name for d in schema_attributes(USER).values()
                if d.multi_valued and d.mutability != "readOnly" and d.sub("value") is not None}
    assert set(USER_VALUE_ATTRIBUTES) == expected

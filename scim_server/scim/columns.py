"""Which SCIM attributes are copied from the document into indexed columns: one map for both sides.

The store derives the column values and ``user_values`` rows from every written document
(``store.users.derived_columns``, ``store.users.value_rows``) and the filter translator compares and
sorts on the same columns and rows (``scim.filters``), so an attribute is filterable exactly when
it is written here.
"""
from __future__ import annotations

from scim_server.scim.attributes import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA
from scim_server.scim.paths import AttrPath

# SCIM attribute path -> column of ``users`` holding its value (singular string attributes only)
USER_DOCUMENT_COLUMNS: dict[AttrPath, str] = {
    AttrPath(USER_SCHEMA, "userName"): "user_name",
    AttrPath(USER_SCHEMA, "externalId"): "external_id",
    AttrPath(USER_SCHEMA, "displayName"): "display_name",
    AttrPath(USER_SCHEMA, "name", "givenName"): "given_name",
    AttrPath(USER_SCHEMA, "name", "familyName"): "family_name",
    AttrPath(USER_SCHEMA, "name", "formatted"): "formatted_name",
    AttrPath(USER_SCHEMA, "nickName"): "nick_name",
    AttrPath(USER_SCHEMA, "title"): "title",
    AttrPath(USER_SCHEMA, "userType"): "user_type",
    AttrPath(USER_SCHEMA, "preferredLanguage"): "preferred_language",
    AttrPath(USER_SCHEMA, "locale"): "locale",
    AttrPath(USER_SCHEMA, "timezone"): "timezone",
    AttrPath(ENTERPRISE_SCHEMA, "employeeNumber"): "employee_number",
    AttrPath(ENTERPRISE_SCHEMA, "costCenter"): "cost_center",
    AttrPath(ENTERPRISE_SCHEMA, "organization"): "organization",
    AttrPath(ENTERPRISE_SCHEMA, "division"): "division",
    AttrPath(ENTERPRISE_SCHEMA, "department"): "department",
    AttrPath(ENTERPRISE_SCHEMA, "manager", "value"): "manager_id",
}

# SCIM attribute path -> column of ``groups`` (the rest of a group is its membership set)
GROUP_DOCUMENT_COLUMNS: dict[AttrPath, str] = {
    AttrPath(GROUP_SCHEMA, "displayName"): "display_name",
    AttrPath(GROUP_SCHEMA, "externalId"): "external_id",
}

# User attributes indexed one row per value in ``user_values`` (``UserValue.attribute`` holds the name):
# the writable multi-valued attributes with a ``value`` sub-attribute.
USER_VALUE_ATTRIBUTES = ("emails", "phoneNumbers", "ims", "photos", "roles", "entitlements", "x509Certificates")

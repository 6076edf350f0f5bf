"""Where each SCIM attribute lives in the database: one map for the writes and the filters.

The store derives the column values and ``user_values`` rows from every written document
(``store.users.derived_columns``, ``store.users.value_rows``) and the filter translator
(``store.filter_sql``) compares and sorts on the same columns and rows, so an attribute is
filterable exactly when it is written here. Multi-valued attributes stored one row per value
(``emails`` ... in ``user_values``; ``groups``/``members`` in ``group_members``) are row sets.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import ColumnElement, and_, literal, select, true
from sqlalchemy.orm import aliased

from scim_server.models import Group, GroupMember, User, UserValue
from scim_server.scim.attributes import ENTERPRISE_SCHEMA, GROUP, GROUP_SCHEMA, USER, USER_SCHEMA
from scim_server.scim.errors import ScimError
from scim_server.scim.filter_ast import invalid_filter
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


@dataclass(frozen=True)
class Column:
    """A singular attribute stored in a column; ``lower`` is a stored lowercase copy, if any."""

    column: Any
    lower: Any = None


@dataclass(frozen=True)
class RowSet:
    """One row per value of a multi-valued attribute, correlated with the outer resource row.

    ``columns`` maps sub-attribute (canonical name) to its column; ``order`` picks the value a
    sort uses (primary first), or None when the attribute cannot be sorted on.
    """

    select_from: Any
    key: Any  # the row's reference to the resource (user_values.user_id, ...)
    outer_key: Any  # the resource's id (users.id, groups.id)
    scope: ColumnElement[bool]  # which rows belong to the attribute (user_values.attribute = ...)
    columns: dict[str, Column]
    outer: Any
    order: tuple[Any, ...] | None = None

    @property
    def correlation(self) -> ColumnElement[bool]:
        return and_(self.key == self.outer_key, self.scope)


def _user_values(attribute: str) -> RowSet:
    row = aliased(UserValue)
    return RowSet(
        select_from=row,
        key=row.user_id,
        outer_key=User.id,
        scope=row.attribute == attribute,
        columns={"value": Column(row.value, row.value_lower), "type": Column(row.type),
                 "primary": Column(row.primary), "display": Column(row.display)},
        outer=User,
        order=(row.primary.desc(), row.id),
    )


def _user_groups() -> RowSet:
    membership, group = aliased(GroupMember), aliased(Group)
    return RowSet(
        select_from=membership,
        key=membership.user_id,
        outer_key=User.id,
        scope=true(),
        columns={"value": Column(membership.group_id),
                 "display": Column(_scalar(group.display_name, group.id == membership.group_id))},
        outer=User,
    )


def _group_members() -> RowSet:
    membership, member = aliased(GroupMember), aliased(User)
    return RowSet(
        select_from=membership,
        key=membership.group_id,
        outer_key=Group.id,
        scope=true(),
        columns={"value": Column(membership.user_id), "type": Column(literal("User")),
                 "display": Column(_scalar(member.display_name, member.id == membership.user_id))},
        outer=Group,
    )


def _scalar(column: Any, condition: ColumnElement[bool]) -> Any:
    return select(column).where(condition).scalar_subquery()


_ROW_SETS: dict[tuple[str, str, str], Callable[[], RowSet]] = {
    **{(USER, USER_SCHEMA, name): functools.partial(_user_values, name) for name in USER_VALUE_ATTRIBUTES},
    (USER, USER_SCHEMA, "groups"): _user_groups,
    (GROUP, GROUP_SCHEMA, "members"): _group_members,
}


def _columns() -> dict[tuple[str, AttrPath], Column]:
    """Every filterable singular attribute: the document columns (shared with the store) plus the
    columns the server itself maintains (``id``, ``active``, ``meta``)."""
    u, g = USER_SCHEMA, GROUP_SCHEMA
    user = {path: Column(getattr(User, name)) for path, name in USER_DOCUMENT_COLUMNS.items()}
    user.update({
        AttrPath(u, "id"): Column(User.id),
        AttrPath(u, "userName"): Column(User.user_name, User.user_name_lower),
        AttrPath(u, "active"): Column(User.active),
        AttrPath(u, "meta", "created"): Column(User.created_at),
        AttrPath(u, "meta", "lastModified"): Column(User.updated_at),
        AttrPath(u, "meta", "resourceType"): Column(literal(USER)),
    })
    group = {path: Column(getattr(Group, name)) for path, name in GROUP_DOCUMENT_COLUMNS.items()}
    group.update({
        AttrPath(g, "id"): Column(Group.id),
        AttrPath(g, "displayName"): Column(Group.display_name, Group.display_name_lower),
        AttrPath(g, "meta", "created"): Column(Group.created_at),
        AttrPath(g, "meta", "lastModified"): Column(Group.updated_at),
        AttrPath(g, "meta", "resourceType"): Column(literal(GROUP)),
    })
    return {**{(USER, p): c for p, c in user.items()}, **{(GROUP, p): c for p, c in group.items()}}


COLUMNS = _columns()


def not_filterable(path: AttrPath) -> ScimError:
    if path.attribute == "addresses":
        return invalid_filter("Filtering on addresses is not supported: they are kept only in the resource document")
    return invalid_filter(f"Filtering or sorting on {path} is not supported")


def row_set(resource_type: str, path: AttrPath) -> RowSet | None:
    factory = _ROW_SETS.get((resource_type, path.schema, path.attribute))
    return factory() if factory else None


def column_of(resource_type: str, path: AttrPath) -> Column:
    column = COLUMNS.get((resource_type, path))
    if column is None:
        raise not_filterable(path)
    return column


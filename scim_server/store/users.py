"""Storage of SCIM Users: the document plus index columns and ``user_values`` rows derived from it."""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, NamedTuple, cast

from sqlalchemy import String, Table, bindparam, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scim_server.db import utcnow
from scim_server.models import Group, GroupMember, User, UserValue
from scim_server.scim.attributes import USER, USER_SCHEMA
from scim_server.scim.errors import ScimError, not_found
from scim_server.scim.paths import AttrPath
from scim_server.store.columns import USER_DOCUMENT_COLUMNS, USER_VALUE_ATTRIBUTES
from scim_server.store.common import (
    ListQuery,
    Scope,
    check_lengths,
    id_batches,
    in_values,
    list_page,
    record_write,
    unique_eq,
)
from scim_server.store.directories import DomainClaimed, refuse_claimed_addresses
from scim_server.store.marks import mark_dirty

_LABELS = {column: str(path) for path, column in USER_DOCUMENT_COLUMNS.items()}


def _value(document: dict[str, Any], path: AttrPath) -> Any:
    section = document if path.schema == USER_SCHEMA else document.get(path.schema) or {}
    value = section.get(path.attribute)
    if path.sub_attribute is not None:
        value = value.get(path.sub_attribute) if isinstance(value, dict) else None
    return value


def primary_value(values: list[dict[str, Any]] | None) -> str | None:
    """The primary value of a multi-valued attribute, else the first one."""
    values = values or []
    chosen = next((v for v in values if v.get("primary") is True), values[0] if values else None)
    return chosen.get("value") if chosen else None


def derived_columns(document: dict[str, Any]) -> dict[str, Any]:
    """Index columns of a canonical User document."""
    columns = {column: _value(document, path) for path, column in USER_DOCUMENT_COLUMNS.items()}
    columns["user_name_lower"] = columns["user_name"].lower()
    columns["active"] = document.get("active", True)
    columns["primary_email"] = primary_value(document.get("emails"))
    check_lengths(User, columns, {**_LABELS, "primary_email": "emails.value"})
    return columns


_VALUE_LIMIT: int = cast(String, UserValue.__table__.c.value.type).length or 0


def value_rows(user_id: str, document: dict[str, Any]) -> list[dict[str, Any]]:
    """``user_values`` rows; values too long for the index (certificates) are kept only in the document."""
    rows = []
    for attribute in USER_VALUE_ATTRIBUTES:
        for item in document.get(attribute) or []:
            value = item.get("value")
            indexable = isinstance(value, str) and len(value) <= _VALUE_LIMIT
            rows.append({
                "user_id": user_id,
                "attribute": attribute,
                "value": value if indexable else None,
                "value_lower": value.lower() if indexable else None,
                "type": (item.get("type") or None) and str(item["type"])[:100],
                "primary": item.get("primary") is True,
                "display": (item.get("display") or None) and str(item["display"])[:300],
            })
    return rows


DUPLICATE = "A user with this userName already exists"
# Core statements built once: the ORM's unit of work costs more than these INSERTs/UPDATEs themselves.
_USERS = cast(Table, User.__table__)
_VALUES = cast(Table, UserValue.__table__)
_INSERT_USER = _USERS.insert()
_INSERT_VALUES = _VALUES.insert()
_UPDATE_USER = _USERS.update().where(_USERS.c.id == bindparam("user_id"))  # SET: the columns given
_DELETE_VALUES = _VALUES.delete().where(_VALUES.c.user_id == bindparam("user_id"))


class UserRecord(NamedTuple):
    """A user as the SCIM handler reads it: what rendering, ETags and writes need, read with Core
    (an ORM instance costs more to load and track than the lookup itself)."""

    id: str
    directory_id: int
    user_name: str
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    document: dict[str, Any]


_RECORD = select(*(_USERS.c[name] for name in UserRecord._fields))
_BY_ID = _RECORD.where(_USERS.c.id == bindparam("resource_id"), _USERS.c.directory_id == bindparam("directory_id"))
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()
_BY_USER_NAME = _RECORD.where(_USERS.c.directory_id == bindparam("directory_id"),
                              _USERS.c.user_name_lower == bindparam("user_name_lower"))
_DELETE_USER = _USERS.delete().where(_USERS.c.id == bindparam("user_id"))


def _execute_unique(session: Session, statement: Any, values: dict[str, Any]) -> None:
    """Execute; a userName clash (the unique constraint on ``directory_id``, ``user_name_lower``)
    becomes 409 ``uniqueness``. The request's transaction is then rolled back: no SAVEPOINT needed."""
    try:
        session.connection().execute(statement, values)
    except IntegrityError as exc:
        raise ScimError(409, DUPLICATE, "uniqueness") from exc


def _addresses(document: dict[str, Any]) -> list[Any]:
    """The values whose domains a claim covers: the userName and every e-mail."""
    emails = [item.get("value") for item in document.get("emails") or [] if isinstance(item, dict)]
    return [document.get("userName"), *emails]


def _refuse_foreign_domains(session: Session, directory_id: int, document: dict[str, Any],
                            stored: dict[str, Any] | None = None) -> None:
    """400 invalidValue when another directory claims the domain of the userName or of an e-mail.

    The message names the domain the client sent, never the directory that claims it or its users.
    An update that keeps the stored addresses is not checked again: they were checked when stored,
    and a directory cannot claim a domain while another directory has users there.
    """
    addresses = _addresses(document)
    if stored is not None and addresses == _addresses(stored):
        return
    try:
        refuse_claimed_addresses(session, directory_id, addresses)
    except DomainClaimed as exc:
        raise ScimError(400, f"{exc}; this directory may not provision addresses in it", "invalidValue") from None


def create_user(session: Session, scope: Scope, user_id: str, document: dict[str, Any]) -> UserRecord:
    """Check the claimed domains, then insert the user, its ``user_values`` rows, the audit row and
    the outbox mark: Core statements in the caller's transaction. Returns the new user."""
    now = utcnow()
    row = {"id": user_id, "directory_id": scope.directory_id, "version": 1, "created_at": now,
           "updated_at": now, "document": document, **derived_columns(document)}
    _refuse_foreign_domains(session, scope.directory_id, document)
    _execute_unique(session, _INSERT_USER, row)
    values = value_rows(user_id, document)
    if values:
        session.connection().execute(_INSERT_VALUES, values)
    record_write(session, scope, kind="user", action="create", entity_id=user_id,
                 detail={"userName": row["user_name"]})
    return UserRecord(user_id, scope.directory_id, row["user_name"], 1, now, now, document)


def find_user(session: Session, directory_id: int, user_id: str, *, for_update: bool = False) -> UserRecord:
    """The user with this id in this directory (locked for the transaction with ``for_update``); 404
    otherwise: other directories' users do not exist for the caller."""
    found = session.connection().execute(_BY_ID_FOR_UPDATE if for_update else _BY_ID,
                                         {"resource_id": user_id, "directory_id": directory_id}).first()
    if found is None:
        raise not_found(f"User {user_id} not found")
    return UserRecord(*found)


def update_user(session: Session, scope: Scope, user: UserRecord, document: dict[str, Any],
                action: str) -> UserRecord:
    """Store a new document (``action`` "replace" for PUT, "patch" for PATCH): one UPDATE, and the
    ``user_values`` rows rewritten only when the multi-valued attributes they index changed."""
    if document == user.document:
        return user  # nothing changed: same version, nothing to propagate
    changed = sorted(_changed_attributes(user.document, document))
    values = {"version": (user.version or 0) + 1, "updated_at": utcnow(), "document": document,
              **derived_columns(document)}
    _refuse_foreign_domains(session, user.directory_id, document, user.document)
    _execute_unique(session, _UPDATE_USER, {"user_id": user.id, **values})
    old_rows, new_rows = value_rows(user.id, user.document), value_rows(user.id, document)
    if old_rows != new_rows:
        connection = session.connection()
        connection.execute(_DELETE_VALUES, {"user_id": user.id})
        if new_rows:
            connection.execute(_INSERT_VALUES, new_rows)
    record_write(session, scope, kind="user", action=action, entity_id=user.id,
                 detail={"userName": values["user_name"], "attributes": changed})
    return user._replace(user_name=values["user_name"], version=values["version"],
                         updated_at=values["updated_at"], document=document)


def _changed_attributes(old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    return {key for key in old.keys() | new.keys() if key != "schemas" and old.get(key) != new.get(key)}


def delete_user(session: Session, scope: Scope, user: UserRecord) -> None:
    """Delete the user; the groups it was in lose a member, so they change version and propagate."""
    group_ids = list(session.scalars(select(GroupMember.group_id).where(GroupMember.user_id == user.id)))
    for chunk in id_batches(session, group_ids):
        session.execute(
            update(Group).where(in_values(session, Group.id, chunk)).values(version=Group.version + 1, updated_at=utcnow())
        )
    session.execute(delete(GroupMember).where(GroupMember.user_id == user.id))
    session.execute(delete(UserValue).where(UserValue.user_id == user.id))
    session.connection().execute(_DELETE_USER, {"user_id": user.id})
    record_write(session, scope, kind="user", action="delete", entity_id=user.id, detail={"userName": user.user_name})
    for group_id in group_ids:
        mark_dirty(session, "group", group_id, scope.directory_id)


# Built once: constructing a statement costs more than running these indexed lookups.
_GROUPS_COLUMNS = (select(GroupMember.user_id, Group.id, Group.display_name)
                   .join(Group, Group.id == GroupMember.group_id)
                   .order_by(func.lower(Group.display_name), Group.id))
_GROUPS_OF_ONE = _GROUPS_COLUMNS.where(GroupMember.user_id == bindparam("user_id"))


def list_users(session: Session, directory_id: int, query: ListQuery) -> tuple[int, list[Any]]:
    """(totalResults, the page's users: ``UserRecord`` or ``User`` rows, both render alike)."""
    user_name = unique_eq(query, "userName")
    if user_name is not None:  # userName is unique per directory: one index lookup
        found = session.connection().execute(_BY_USER_NAME, {"directory_id": directory_id,
                                                             "user_name_lower": user_name.lower()})
        rows = [UserRecord(*row) for row in found]
        return len(rows), rows
    return list_page(session, User, USER, directory_id, query)


def groups_of_users(session: Session, user_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """user id -> [(group id, group displayName)], for the readOnly ``groups`` attribute."""
    result: dict[str, list[tuple[str, str]]] = {user_id: [] for user_id in user_ids}
    if len(user_ids) == 1:  # GET by id, a filtered GET, a PATCH answer: the prebuilt statement
        batches: Iterable[Any] = [session.connection().execute(_GROUPS_OF_ONE, {"user_id": user_ids[0]})]
    else:
        batches = (session.execute(_GROUPS_COLUMNS.where(in_values(session, GroupMember.user_id, chunk)))
                   for chunk in id_batches(session, user_ids))
    for rows in batches:
        for user_id, group_id, display_name in rows:
            result[user_id].append((group_id, display_name))
    return result


def users_with_email(session: Session, email: str) -> list[User]:
    """Users of **every** directory whose userName or any e-mail is ``email`` (case-insensitively),
    by id. An admin-level lookup across directories: SAML login and ``mappings explain`` use it."""
    wanted = email.strip().lower()
    by_value = select(UserValue.user_id).where(UserValue.attribute == "emails", UserValue.value_lower == wanted)
    query = select(User).where(or_(User.user_name_lower == wanted, User.id.in_(by_value))).order_by(User.id)
    return list(session.scalars(query))

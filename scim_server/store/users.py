"""Storage of SCIM Users: the document plus index columns and ``user_values`` rows derived from it."""
from __future__ import annotations

from typing import Any, cast

from sqlalchemy import String, Table, delete, func, or_, select, update
from sqlalchemy.orm import Session

from scim_server.db import utcnow
from scim_server.models import Group, GroupMember, User, UserValue
from scim_server.scim.attributes import USER, USER_SCHEMA
from scim_server.scim.errors import ScimError
from scim_server.scim.paths import AttrPath
from scim_server.store.columns import USER_DOCUMENT_COLUMNS, USER_VALUE_ATTRIBUTES
from scim_server.store.common import (
    ListQuery,
    Scope,
    check_lengths,
    find_in_directory,
    flush_unique,
    id_batches,
    in_values,
    list_page,
    record_write,
    touch,
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


def _write(session: Session, user: User, document: dict[str, Any], *, new: bool = False) -> None:
    """Store the document, its index columns and ``user_values`` rows.

    A userName clash is detected by the unique constraint (``directory_id``, ``user_name_lower``) at
    flush and answered 409 ``uniqueness``; the request's transaction is then rolled back, so no
    SAVEPOINT is needed. A new user has no ``user_values`` rows to delete.
    """
    columns = derived_columns(document)
    _refuse_foreign_domains(session, user.directory_id, document)
    for name, value in columns.items():
        setattr(user, name, value)
    user.document = document
    session.add(user)
    flush_unique(session, "A user with this userName already exists")
    if not new:
        session.execute(delete(UserValue).where(UserValue.user_id == user.id))
    rows = value_rows(user.id, document)
    if rows:
        session.execute(cast(Table, UserValue.__table__).insert(), rows)


def _refuse_foreign_domains(session: Session, directory_id: int, document: dict[str, Any]) -> None:
    """400 invalidValue when another directory claims the domain of the userName or of an e-mail.

    The message names the domain the client sent, never the directory that claims it or its users.
    """
    emails = [item.get("value") for item in document.get("emails") or [] if isinstance(item, dict)]
    try:
        refuse_claimed_addresses(session, directory_id, [document.get("userName"), *emails])
    except DomainClaimed as exc:
        raise ScimError(400, f"{exc}; this directory may not provision addresses in it", "invalidValue") from None


def create_user(session: Session, scope: Scope, user_id: str, document: dict[str, Any]) -> User:
    now = utcnow()
    user = User(id=user_id, directory_id=scope.directory_id, version=1, created_at=now, updated_at=now)
    _write(session, user, document, new=True)
    record_write(session, scope, kind="user", action="create", entity_id=user.id, detail={"userName": user.user_name})
    return user


def find_user(session: Session, directory_id: int, user_id: str, *, for_update: bool = False) -> User:
    return find_in_directory(session, User, directory_id, user_id, for_update=for_update)


def update_user(session: Session, scope: Scope, user: User, document: dict[str, Any], action: str) -> User:
    """Store a new document (``action`` "replace" for PUT, "patch" for PATCH)."""
    if document == user.document:
        return user  # nothing changed: same version, nothing to propagate
    changed = sorted(_changed_attributes(user.document, document))
    touch(user)
    _write(session, user, document)
    record_write(session, scope, kind="user", action=action, entity_id=user.id,
                 detail={"userName": user.user_name, "attributes": changed})
    return user


def _changed_attributes(old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    return {key for key in old.keys() | new.keys() if key != "schemas" and old.get(key) != new.get(key)}


def delete_user(session: Session, scope: Scope, user: User) -> None:
    """Delete the user; the groups it was in lose a member, so they change version and propagate."""
    group_ids = list(session.scalars(select(GroupMember.group_id).where(GroupMember.user_id == user.id)))
    for chunk in id_batches(session, group_ids):
        session.execute(
            update(Group).where(in_values(session, Group.id, chunk)).values(version=Group.version + 1, updated_at=utcnow())
        )
    session.execute(delete(GroupMember).where(GroupMember.user_id == user.id))
    session.execute(delete(UserValue).where(UserValue.user_id == user.id))
    session.delete(user)
    session.flush()
    record_write(session, scope, kind="user", action="delete", entity_id=user.id, detail={"userName": user.user_name})
    for group_id in group_ids:
        mark_dirty(session, "group", group_id, scope.directory_id)


def list_users(session: Session, directory_id: int, query: ListQuery) -> tuple[int, list[User]]:
    return list_page(session, User, USER, directory_id, query)


def groups_of_users(session: Session, user_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """user id -> [(group id, group displayName)], for the readOnly ``groups`` attribute."""
    result: dict[str, list[tuple[str, str]]] = {user_id: [] for user_id in user_ids}
    for chunk in id_batches(session, user_ids):
        rows = session.execute(
            select(GroupMember.user_id, Group.id, Group.display_name)
            .join(Group, Group.id == GroupMember.group_id)
            .where(in_values(session, GroupMember.user_id, chunk))
            .order_by(func.lower(Group.display_name), Group.id)
        )
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

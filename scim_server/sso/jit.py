"""Just-in-time provisioning of a SAML-authenticated visitor as a SCIM user.

The visitor is looked up by e-mail **across all directories**. That is an explicit exception to
"every query carries its directory": a SAML login proves a person, not a SCIM connection, and the
person may have been pushed by any IdP's SCIM connection; creating a second user for them would
give JSM a duplicate customer. The lookup only reads. Changes are made only to users in the SSO
(JIT) directory, which the SSO shim owns: an IdP-pushed directory's users and memberships are
never altered here.

Writes go through the SCIM store (``scim_server.store``), so JIT users and groups are validated,
indexed, audited and marked for propagation exactly like SCIM-pushed ones, in one transaction.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from scim_server.db import transaction
from scim_server.keys import get_or_create_directory
from scim_server.models import Directory, Group, GroupMember, User, UserValue
from scim_server.scim.attributes import GROUP_SCHEMA, USER, USER_SCHEMA
from scim_server.scim.errors import ScimError
from scim_server.scim.patch import MemberChange
from scim_server.scim.resources import validate_document
from scim_server.sso.attributes import Identity
from scim_server.store.common import Scope
from scim_server.store.groups import create_group, group_document, update_group
from scim_server.store.users import create_user, update_user

log = logging.getLogger(__name__)

ATTEMPTS = 3  # concurrent first logins of one person (or of one new group) race on unique keys


class ProvisioningError(ValueError):
    """The identity cannot be stored as a SCIM user (e.g. a value the SCIM schema refuses)."""


@dataclass(frozen=True)
class ProvisionedUser:
    user_id: str
    directory_id: int
    directory_name: str
    created: bool
    active: bool


def provision(factory: sessionmaker[Session], identity: Identity, jit_directory: str) -> ProvisionedUser:
    """Find or create the SCIM user for ``identity``; retried when a concurrent login wins a race."""
    for attempt in range(ATTEMPTS):
        try:
            with transaction(factory) as session:
                return _provision(session, identity, jit_directory)
        except (IntegrityError, ScimError) as exc:
            if isinstance(exc, ScimError) and exc.status != 409:
                raise ProvisioningError(exc.detail) from None
            if attempt == ATTEMPTS - 1:
                raise
            log.info("JIT provisioning raced with a concurrent login; retrying")
    raise AssertionError("unreachable")


def find_user_by_email(session: Session, email: str, jit_directory_id: int | None = None) -> User | None:
    """The best match for ``email`` in any directory (admin-level lookup, see the module doc).

    IdP-pushed directories win over the JIT directory, active users over inactive ones, then the
    oldest user.
    """
    email_lower = email.lower()
    by_email = select(UserValue.user_id).where(UserValue.attribute == "emails", UserValue.value_lower == email_lower)
    users = session.scalars(
        select(User).where(or_(User.user_name_lower == email_lower, User.id.in_(by_email)))
    ).all()
    if not users:
        return None
    return min(users, key=lambda u: (u.directory_id == jit_directory_id, not u.active, u.created_at))


def _provision(session: Session, identity: Identity, jit_directory: str) -> ProvisionedUser:
    directory = get_or_create_directory(session, jit_directory)
    scope = Scope(directory_id=directory.id)
    user = find_user_by_email(session, identity.email, directory.id)
    created = user is None
    if user is None:
        user = create_user(session, scope, str(uuid.uuid4()), _document(identity))
    elif user.directory_id == directory.id:
        update_user(session, scope, user, _refreshed_document(user.document, identity), "patch")
    if user.directory_id != directory.id:
        return ProvisionedUser(user.id, user.directory_id, _directory_name(session, user), False, bool(user.active))
    _sync_groups(session, scope, user.id, identity.groups)
    return ProvisionedUser(user.id, directory.id, jit_directory, created, bool(user.active))


def _directory_name(session: Session, user: User) -> str:
    return session.get(Directory, user.directory_id).name


def _name(identity: Identity) -> dict[str, str]:
    return {
        key: value
        for key, value in (("givenName", identity.first_name), ("familyName", identity.last_name))
        if value
    }


def _document(identity: Identity) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "userName": identity.user_name,
        "displayName": identity.display_name,
        "emails": [{"value": identity.email, "type": "work", "primary": True}],
        "active": True,
    }
    name = _name(identity)
    if name:
        document["name"] = name
    return validate_document(USER, document)


def _refreshed_document(current: dict[str, Any], identity: Identity) -> dict[str, Any]:
    """A JIT user's document with the names the IdP sends at this login (the IdP is the source)."""
    document = dict(current)
    document["displayName"] = identity.display_name
    name = _name(identity)
    if name:
        document["name"] = {**(current.get("name") or {}), **name}
    return validate_document(USER, document)


def _sync_groups(session: Session, scope: Scope, user_id: str, wanted: tuple[str, ...] | None) -> None:
    """Make the user's groups in the JIT directory equal the assertion's (when it sent groups)."""
    if wanted is None:
        return
    wanted_by_lower = {name.lower(): name for name in wanted}
    current = {
        group.display_name_lower: group
        for group in session.scalars(
            select(Group)
            .join(GroupMember, GroupMember.group_id == Group.id)
            .where(GroupMember.user_id == user_id, Group.directory_id == scope.directory_id)
        )
    }
    for key in sorted(wanted_by_lower.keys() - current.keys()):
        _join_group(session, scope, user_id, wanted_by_lower[key])
    for key in sorted(current.keys() - wanted_by_lower.keys()):
        group = current[key]
        update_group(session, scope, group, group_document(group), [MemberChange("remove", (user_id,))], "patch")


def _join_group(session: Session, scope: Scope, user_id: str, name: str) -> None:
    group = session.scalar(
        select(Group).where(Group.directory_id == scope.directory_id, Group.display_name_lower == name.lower())
    )
    if group is None:
        document = {"schemas": [GROUP_SCHEMA], "displayName": name}
        create_group(session, scope, str(uuid.uuid4()), document, (user_id,))
    else:
        update_group(session, scope, group, group_document(group), [MemberChange("add", (user_id,))], "patch")

"""Just-in-time provisioning of a SAML-authenticated visitor as a SCIM user.

The visitor is looked up by e-mail **across all directories**. That is an explicit exception to
"every query carries its directory": a SAML login proves a person, not a SCIM connection, and the
person may have been pushed by any IdP's SCIM connection; creating a second user for them would
give JSM a duplicate customer. The lookup only reads. Changes are made only to users in the SSO
(JIT) directory, which the SSO shim owns: an IdP-pushed directory's users and memberships are
never altered here.

Writes are SCIM operations of the handler (``scim_server.handler``: create, and PATCH of names and
of group members), so JIT users and groups are validated, indexed, audited and marked for
propagation exactly like SCIM-pushed ones, all in one transaction.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from scim_server import handler, store
from scim_server.db import transaction
from scim_server.models import User
from scim_server.scim.attributes import GROUP_SCHEMA, USER_SCHEMA
from scim_server.scim.errors import ScimError
from scim_server.scim.patch import MEMBERS
from scim_server.sso.attributes import Identity
from scim_server.store import Scope
from scim_server.store.directories import directory_name, ensure_directory

log = logging.getLogger(__name__)

ATTEMPTS = 3  # concurrent first logins of one person (or of one new group) race on unique keys
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ID_ONLY = {"attributes": "id"}  # JIT reads no answer: render the least (no group or member lists)


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
    users = store.users_with_email(session, email)
    if not users:
        return None
    return min(users, key=lambda u: (u.directory_id == jit_directory_id, not u.active, u.created_at))


def _provision(session: Session, identity: Identity, jit_directory: str) -> ProvisionedUser:
    directory = ensure_directory(session, jit_directory)
    caller = handler.Caller(Scope(directory_id=directory.id), base_url="")
    user = find_user_by_email(session, identity.email, directory.id)
    if user is None:
        user_id = handler.create(session, handler.USERS, caller, _document(identity), ID_ONLY).resource_id
        active, created = True, True
    elif user.directory_id == directory.id:
        user_id, active, created = user.id, bool(user.active), False
        handler.patch(session, handler.USERS, caller, user_id, _patch(_name_operations(identity)), ID_ONLY)
    else:
        return ProvisionedUser(user.id, user.directory_id, directory_name(session, user.directory_id), False,
                               bool(user.active))
    _sync_groups(session, caller, user_id, identity.groups)
    return ProvisionedUser(user_id, directory.id, jit_directory, created, active)


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
    return document


def _name_operations(identity: Identity) -> list[dict[str, Any]]:
    """The names the IdP sends at this login replace the stored ones (the IdP is the source)."""
    operations = [{"op": "replace", "path": "displayName", "value": identity.display_name}]
    operations += [{"op": "replace", "path": f"name.{key}", "value": value} for key, value in _name(identity).items()]
    return operations


def _patch(operations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": operations}


def _sync_groups(session: Session, caller: handler.Caller, user_id: str, wanted: tuple[str, ...] | None) -> None:
    """Make the user's groups in the JIT directory equal the assertion's (when it sent groups)."""
    if wanted is None:
        return
    directory_id = caller.scope.directory_id
    wanted_by_lower = {name.lower(): name for name in wanted}
    current = {group.display_name_lower: group for group in store.user_groups_in_directory(session, directory_id, user_id)}
    for key in sorted(wanted_by_lower.keys() - current.keys()):
        _join_group(session, caller, user_id, wanted_by_lower[key])
    for key in sorted(current.keys() - wanted_by_lower.keys()):
        leave = {"op": "remove", "path": f'{MEMBERS}[value eq "{user_id}"]'}
        handler.patch(session, handler.GROUPS, caller, current[key].id, _patch([leave]), ID_ONLY)


def _join_group(session: Session, caller: handler.Caller, user_id: str, name: str) -> None:
    group = store.find_group_by_name(session, caller.scope.directory_id, name)
    member = [{"value": user_id}]
    if group is None:
        document = {"schemas": [GROUP_SCHEMA], "displayName": name, MEMBERS: member}
        handler.create(session, handler.GROUPS, caller, document, ID_ONLY)
    else:
        join = {"op": "add", "path": MEMBERS, "value": member}
        handler.patch(session, handler.GROUPS, caller, group.id, _patch([join]), ID_ONLY)

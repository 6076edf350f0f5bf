"""Just-in-time provisioning of a signed-in visitor as a SCIM user of the connection's directory.

Only called for a directory the login may write to (``sso/identity.py`` decides): the user is
looked up in that directory alone (exact e-mail comparison), created when absent, and its names
and groups follow what the IdP sends at each login.

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
from scim_server.scim.attributes import GROUP_SCHEMA, USER_SCHEMA
from scim_server.scim.errors import ScimError
from scim_server.scim.patch import MEMBERS
from scim_server.sso.attributes import Identity
from scim_server.sso.user_match import find_user, stored_email
from scim_server.store import Scope
from scim_server.store.directories import ensure_directory

log = logging.getLogger(__name__)

ATTEMPTS = 3  # concurrent first logins of one person (or of one new group) race on unique keys
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ID_ONLY = {"attributes": "id"}  # JIT reads no answer: render the least (no group or member lists)


class ProvisioningError(ValueError):
    """The identity cannot be stored as a SCIM user (e.g. a value the SCIM schema refuses)."""


@dataclass(frozen=True)
class ProvisionedUser:
    user_id: str
    email: str
    created: bool
    active: bool


def provision(factory: sessionmaker[Session], identity: Identity, directory: str,
              actor: str | None = None) -> ProvisionedUser:
    """Find or create the SCIM user for ``identity``; retried when a concurrent login wins a race.
    The audit trail names ``actor`` (the login's connection, ``sso:NAME``) as the writer."""
    for attempt in range(ATTEMPTS):
        try:
            with transaction(factory) as session:
                return _provision(session, identity, directory, actor)
        except (IntegrityError, ScimError) as exc:
            if isinstance(exc, ScimError) and exc.status != 409:
                raise ProvisioningError(exc.detail) from None
            if attempt == ATTEMPTS - 1:  # e.g. a look-alike of an existing userName (Unicode lower-case)
                raise ProvisioningError("the user conflicts with an existing one") from None
            log.info("JIT provisioning raced with a concurrent login; retrying")
    raise AssertionError("unreachable")


def _provision(session: Session, identity: Identity, directory_name: str, actor: str | None) -> ProvisionedUser:
    directory = ensure_directory(session, directory_name)
    caller = handler.Caller(Scope(directory_id=directory.id, actor=actor), base_url="")
    user = find_user(session, directory.id, identity.email)
    if user is None:
        user_id = handler.create(session, handler.USERS, caller, _document(identity), ID_ONLY).resource_id
        email, active, created = identity.email, True, True
    else:
        user_id, email, active, created = user.id, stored_email(user, identity.email), bool(user.active), False
        handler.patch(session, handler.USERS, caller, user_id, _patch(_name_operations(identity)), ID_ONLY)
    _sync_groups(session, caller, user_id, identity.groups)
    return ProvisionedUser(user_id, email, created, active)


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

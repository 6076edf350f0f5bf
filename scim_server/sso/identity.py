"""Who a login is: the stored user of the connection's directory, or a refusal.

Tenant safety: a login through a connection looks users up, and creates them just in time, only
in that connection's directory; an e-mail whose domain another directory claims is refused; a
user who is inactive there is refused, and so is an unknown one when JIT is off (by default it is
off for a directory that has a SCIM key: SCIM is the source of truth there, so a user SCIM
deleted is never re-created by a login).

E-mails are compared exactly after ASCII lower-casing: ``str.lower`` maps U+212A KELVIN SIGN to
``k``, so a look-alike address would otherwise become another person.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scim_server.models import Directory, User
from scim_server.sso.attributes import Identity
from scim_server.sso.connections import Connection, directory_has_scim_key, jit_enabled
from scim_server.sso.jit import ProvisioningError, provision
from scim_server.sso.user_match import find_user, stored_email
from scim_server.store.directories import email_allowed

log = logging.getLogger(__name__)

class LoginRefused(Exception):
    """A login we refuse: ``reason`` for the admin's log, ``title``/``message`` for the page."""

    def __init__(self, reason: str, title: str, message: str, status: int = 403, code: str = "refused") -> None:
        super().__init__(reason)
        self.reason, self.title, self.message, self.status = reason, title, message, status
        self.code = code  # a bounded reason for the login-outcome metric


@dataclass(frozen=True)
class LoginUser:
    user_id: str
    email: str  # the stored e-mail (what the downstream IdP asserts)
    directory: str
    created: bool


def _directory_id(session: Session, name: str) -> int | None:
    return session.scalar(select(Directory.id).where(Directory.name == name))


def login_user_state(session: Session, directory: str, user_id: str) -> User | None:
    """The stored user, only if it still exists and is active in ``directory`` (interface 3)."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        return None
    return user if user.directory_id == _directory_id(session, directory) else None


def check_login_allowed(session: Session, connection: Connection, identity: Identity) -> tuple[User | None, bool]:
    """The existing user for ``identity`` in the connection's directory and whether JIT may create one.

    Raises :class:`LoginRefused` for another directory's domain or an inactive user, and for an
    unknown user when JIT is off.
    """
    if not email_allowed(session, connection.directory, identity.email):
        raise LoginRefused(
            f"the e-mail's domain is claimed by another directory than {connection.directory!r} "
            f"(connection {connection.name})",
            "Sign-in refused", "Your e-mail address belongs to another company's sign-in. "
            "Please use your own company's login link.", code="other_directory")
    directory_id = _directory_id(session, connection.directory)
    user = find_user(session, directory_id, identity.email) if directory_id is not None else None
    if user is not None and not user.active:
        raise LoginRefused(f"user {user.id} is deactivated in directory {connection.directory}",
                           "Account deactivated", "Your account is deactivated. Please contact your administrator.",
                           code="deactivated")
    jit = jit_enabled(session, connection)
    if user is None and not jit:
        managed = "SCIM-managed " if directory_has_scim_key(session, connection.directory) else ""
        raise LoginRefused(
            f"no user with this e-mail in {managed}directory {connection.directory} and JIT is off "
            f"(connection {connection.name})",
            "No account", "There is no account for you here. Please contact your administrator.", code="no_account")
    return user, jit


def resolve_login(factory: sessionmaker[Session], connection: Connection, identity: Identity) -> LoginUser:
    """Find (or, with JIT, create or refresh) the user ``identity`` names in the connection's directory."""
    with factory() as session:
        user, jit = check_login_allowed(session, connection, identity)
        scim_managed = directory_has_scim_key(session, connection.directory)
        if user is not None and (scim_managed or not jit):
            return LoginUser(user.id, stored_email(user, identity.email), connection.directory, False)
    try:
        provisioned = provision(factory, identity, connection.directory, actor=f"sso:{connection.name}")
    except ProvisioningError as exc:
        raise LoginRefused(f"JIT provisioning failed: {exc}", "Sign-in failed",
                           "Your account details could not be stored. Please contact your administrator.",
                           400, code="jit_failed") from None
    if not provisioned.active:
        raise LoginRefused(f"user {provisioned.user_id} is deactivated in directory {connection.directory}",
                           "Account deactivated", "Your account is deactivated. Please contact your administrator.",
                           code="deactivated")
    return LoginUser(provisioned.user_id, provisioned.email, connection.directory, provisioned.created)

"""What the bridge applied in JSM: accounts, organizations it manages, memberships and desk links it
granted. Every function runs inside the caller's short transaction (never across a JSM call)."""
from __future__ import annotations

import functools
from typing import Any, Iterable, Mapping, cast

from sqlalchemy import Table, bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from scim_server.db import chunked, insert_ignoring_duplicates, utcnow
from scim_server.models import User
from scim_server.models.sync import (
    JsmAccount,
    JsmMembership,
    JsmOrganization,
    JsmPortalLink,
    SyncGroupTarget,
)
from scim_server.sync.differ import AppliedOrganization

# ------------------------------------------------------------------------------------- accounts


def account_of(session: Session, user_id: str) -> JsmAccount | None:
    return session.get(JsmAccount, user_id)


def accounts_of(session: Session, user_ids: list[str]) -> dict[str, JsmAccount]:
    found: dict[str, JsmAccount] = {}
    for chunk in chunked(user_ids):
        for row in session.scalars(select(JsmAccount).where(JsmAccount.user_id.in_(chunk))):
            found[row.user_id] = row
    return found


def accounts_matching(session: Session, emails: Mapping[str, str]) -> dict[str, str]:
    """``user id -> account id`` for users whose recorded account has their current e-mail."""
    found: dict[str, str] = {}
    for chunk in chunked(emails):
        rows = session.scalars(select(JsmAccount).where(JsmAccount.user_id.in_(chunk)))
        for row in rows:
            if row.email.casefold() == emails[row.user_id].casefold():
                found[row.user_id] = row.account_id
    return found


_ACCOUNT_FIELDS = ("directory_id", "email", "account_id", "display_name", "created_by_bridge",
                   "desired_display_name", "updated_at")


def save_account(
    session: Session, *, user_id: str, directory_id: int, email: str, account_id: str,
    display_name: str, created: bool,
) -> None:
    """Upsert the user's account record (one statement, no read)."""
    params = dict(user_id=user_id, directory_id=directory_id, email=email, account_id=account_id,
                  display_name=display_name, created_by_bridge=created, desired_display_name=None,
                  updated_at=utcnow())
    session.execute(_account_upsert(session.get_bind().dialect.name), params)


@functools.cache
def _account_upsert(dialect: str) -> Any:
    table = cast(Table, JsmAccount.__table__)
    binds = {name: bindparam(name, type_=table.c[name].type) for name in ("user_id", *_ACCOUNT_FIELDS)}
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(table).values(**binds)
    return statement.on_conflict_do_update(
        index_elements=[table.c.user_id], set_={name: binds[name] for name in _ACCOUNT_FIELDS}
    )


def account_holders(session: Session, account_ids: Iterable[str]) -> dict[str, list[tuple[str, int]]]:
    """``account id -> [(user id, directory id)]`` of the existing users whose record has that account."""
    ids = sorted(set(account_ids))
    found: dict[str, list[tuple[str, int]]] = {}
    for chunk in chunked(ids):
        query = (select(JsmAccount.account_id, JsmAccount.user_id, JsmAccount.directory_id)
                 .join(User, User.id == JsmAccount.user_id).where(JsmAccount.account_id.in_(chunk)))
        for account_id, user_id, directory_id in session.execute(query):
            found.setdefault(account_id, []).append((user_id, directory_id))
    return found


def accounts_with_ids(session: Session, account_ids: Iterable[str]) -> list[JsmAccount]:
    """The account records (of any user, existing or deleted) that have one of these account ids."""
    found: list[JsmAccount] = []
    for chunk in chunked(sorted(set(account_ids))):
        found.extend(session.scalars(select(JsmAccount).where(JsmAccount.account_id.in_(chunk))))
    return found


def forget_account(session: Session, user_id: str) -> None:
    session.execute(delete(JsmAccount).where(JsmAccount.user_id == user_id))


def note_desired_display_name(session: Session, user_id: str, display_name: str) -> bool:
    """Remember a display name JSM cannot take; True the first time this value is seen (log once)."""
    row = session.get(JsmAccount, user_id)
    if row is None or display_name in (row.display_name, row.desired_display_name):
        return False
    row.desired_display_name = display_name
    return True


# -------------------------------------------------------------------------------- organizations


def managed_organization(session: Session, name: str) -> JsmOrganization | None:
    return session.get(JsmOrganization, name)


def managed_organization_names(session: Session) -> set[str]:
    return set(session.scalars(select(JsmOrganization.name)))


def recorded_organization_ids(session: Session) -> dict[str, str]:
    """Name -> JSM id of every managed organization whose id is recorded."""
    rows = session.execute(select(JsmOrganization.name, JsmOrganization.org_id).where(JsmOrganization.org_id.is_not(None)))
    return {name: org_id for name, org_id in rows if org_id is not None}


def applied_organization(session: Session, name: str) -> AppliedOrganization | None:
    """The recorded state of ``name`` (present = owned = what the bridge recorded)."""
    org = session.get(JsmOrganization, name)
    if org is None:
        return None
    members = frozenset(session.scalars(select(JsmMembership.account_id).where(JsmMembership.org_name == name)))
    desks = frozenset(session.scalars(select(JsmPortalLink.project_key).where(JsmPortalLink.org_name == name)))
    return AppliedOrganization(name, org.org_id, org.owned, members, members, desks, desks)


def record_intent_to_create(session: Session, name: str) -> None:
    """Written and committed before the create call: a crash cannot turn ours into "adopted"."""
    if session.get(JsmOrganization, name) is None:
        session.add(JsmOrganization(name=name, org_id=None, owned=True))


def record_organization(session: Session, name: str, org_id: str | None, owned: bool) -> None:
    org = session.get(JsmOrganization, name)
    if org is None:
        session.add(JsmOrganization(name=name, org_id=org_id, owned=owned))
    else:
        org.org_id, org.owned = org_id, owned


def forget_organization(session: Session, name: str) -> None:
    session.execute(delete(JsmMembership).where(JsmMembership.org_name == name))
    session.execute(delete(JsmPortalLink).where(JsmPortalLink.org_name == name))
    session.execute(delete(JsmOrganization).where(JsmOrganization.name == name))


def forget_organization_in_jsm(session: Session, name: str) -> None:
    """JSM lost organization ``name`` (deleted behind the bridge's back) and with it its memberships
    and desk links: keep managing it (same ownership) without an id, so it is created again."""
    org = session.get(JsmOrganization, name)
    session.execute(delete(JsmMembership).where(JsmMembership.org_name == name))
    session.execute(delete(JsmPortalLink).where(JsmPortalLink.org_name == name))
    if org is not None:
        org.org_id = None


def forget_missing_accounts(session: Session, account_ids: Iterable[str]) -> set[str]:
    """JSM no longer has these accounts: forget the records of them and the memberships the bridge
    granted them; returns the organizations those memberships were in."""
    ids = sorted(set(account_ids))
    held = {name for names in organizations_by_account(session, ids).values() for name in names}
    for chunk in chunked(ids):
        session.execute(delete(JsmMembership).where(JsmMembership.account_id.in_(chunk)))
        session.execute(delete(JsmAccount).where(JsmAccount.account_id.in_(chunk)))
    return held


def record_members(session: Session, name: str, account_ids: Iterable[str], *, added: bool) -> None:
    ids = list(account_ids)
    if added:
        insert_ignoring_duplicates(session, JsmMembership, [{"org_name": name, "account_id": a} for a in ids])
        return
    for chunk in chunked(ids):
        session.execute(delete(JsmMembership).where(JsmMembership.org_name == name, JsmMembership.account_id.in_(chunk)))


def record_link(session: Session, name: str, project_key: str, *, linked: bool) -> None:
    if linked:
        insert_ignoring_duplicates(session, JsmPortalLink, [{"org_name": name, "project_key": project_key}])
    else:
        session.execute(
            delete(JsmPortalLink).where(JsmPortalLink.org_name == name, JsmPortalLink.project_key == project_key)
        )


def organizations_by_account(session: Session, account_ids: Iterable[str | None]) -> dict[str, set[str]]:
    """``account id -> organizations`` where the bridge granted that account a membership."""
    ids = sorted({a for a in account_ids if a})
    held: dict[str, set[str]] = {a: set() for a in ids}
    for chunk in chunked(ids):
        query = select(JsmMembership.account_id, JsmMembership.org_name).where(JsmMembership.account_id.in_(chunk))
        for account_id, name in session.execute(query):
            held[account_id].add(name)
    return held


# ------------------------------------------------------------------------------ group targets


def group_targets(session: Session, group_id: str) -> set[str]:
    return set(session.scalars(select(SyncGroupTarget.org_name).where(SyncGroupTarget.group_id == group_id)))


def set_group_targets(session: Session, group_id: str, names: Iterable[str]) -> None:
    session.execute(delete(SyncGroupTarget).where(SyncGroupTarget.group_id == group_id))
    session.add_all(SyncGroupTarget(group_id=group_id, org_name=name) for name in set(names))

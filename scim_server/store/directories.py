"""Directories (one customer company each) and the e-mail domains they claim.

A claimed domain belongs to one directory: no other directory may store a user whose userName or
e-mail is in that domain or one of its subdomains. A directory that claims nothing accepts every
domain nobody claims, so a one-company installation needs no setup. Claims of two directories
never overlap (``acme.com`` and ``eu.acme.com`` cannot belong to different directories), so at
most one directory claims any address.

Domains are stored lower-case ASCII: internationalised names in their IDNA (punycode) form, which
also folds look-alikes such as full-width letters onto the ASCII domain they imitate.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import bindparam, delete, func, or_, select
from sqlalchemy.orm import Session

from scim_server.db import insert_ignoring_duplicates, utcnow
from scim_server.models import ApiKey, Directory, DirectoryDomain, Group, User, UserValue

MAX_DISPLAY_NAME = 200
CONFLICT_EXAMPLES = 5  # users named per directory when a claim is refused because of existing users

_DIRECTORY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class DomainClaimed(ValueError):
    """The domain belongs to another directory. The message names the domain only."""

    def __init__(self, domain: str) -> None:
        super().__init__(f"the e-mail domain {domain} is claimed by another directory")
        self.domain = domain


class DomainInUse(ValueError):
    """Users of other directories already have addresses in the domain (admin-facing message)."""


class DirectoryExists(ValueError):
    pass


class DirectoryNotFound(LookupError):
    pass


# --------------------------------------------------------------------------------- validation


def validate_directory_name(name: str) -> str:
    if not _DIRECTORY_NAME.match(name or ""):
        raise ValueError(
            "directory name must be 1-100 characters: letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def _display_name(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = value.strip()
    if len(cleaned) > MAX_DISPLAY_NAME or not cleaned.isprintable():
        raise ValueError(f"display name must be at most {MAX_DISPLAY_NAME} printable characters")
    return cleaned or None


@functools.lru_cache(maxsize=4096)  # pure, and every user write of a company repeats its domain
def normalize_domain(value: str) -> str:
    """``value`` as a stored domain (``@Acme.COM.`` -> ``acme.com``); ValueError when it is not one."""
    cleaned = (value or "").strip().lstrip("@").rstrip(".")
    try:
        ascii_form = cleaned.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValueError(f"{value!r} is not an e-mail domain") from None
    labels = ascii_form.split(".")
    if len(ascii_form) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{value!r} is not an e-mail domain (e.g. acme.com)")
    return ascii_form


def address_domain(address: str | None) -> str | None:
    """The normalised domain of an e-mail-like value; ``None`` when it has none we could claim."""
    if not isinstance(address, str) or "@" not in address:
        return None
    try:
        return normalize_domain(address.rsplit("@", 1)[1])
    except ValueError:
        return None


def _covering(domain: str) -> list[str]:
    """``domain`` and every parent that a claim could cover (``a.acme.com`` -> itself, ``acme.com``)."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


# -------------------------------------------------------------------------------- directories


def find_directory(session: Session, name: str) -> Directory | None:
    return session.scalar(select(Directory).where(Directory.name == name))


def directory_name(session: Session, directory_id: int) -> str:
    """The name of the directory with this id (its id as text if it no longer exists)."""
    name = session.scalar(select(Directory.name).where(Directory.id == directory_id))
    return name if name is not None else str(directory_id)


def require_directory(session: Session, name: str) -> Directory:
    directory = find_directory(session, name)
    if directory is None:
        raise DirectoryNotFound(f"no directory named {name!r}")
    return directory


def ensure_directory(session: Session, name: str, display_name: str | None = None) -> Directory:
    """The directory called ``name``, created if missing (safe when two processes race); a given
    ``display_name`` is set."""
    validate_directory_name(name)
    directory = find_directory(session, name)
    if directory is None:
        insert_ignoring_duplicates(session, Directory, [{"name": name, "created_at": utcnow()}])
        directory = find_directory(session, name)
        assert directory is not None  # inserted now, or by a concurrent process
    if display_name is not None:
        directory.display_name = _display_name(display_name)
    return directory


def create_directory(session: Session, name: str, display_name: str | None = None,
                     domains: Iterable[str] = ()) -> Directory:
    """A new directory; ``DirectoryExists`` if the name is taken."""
    if find_directory(session, validate_directory_name(name)) is not None:
        raise DirectoryExists(f"directory {name!r} already exists (change it with `directories set`)")
    directory = ensure_directory(session, name, display_name)
    claim_domains(session, name, domains)
    return directory


# ------------------------------------------------------------------------------------ domains


def domains_of(session: Session, directory_id: int) -> list[str]:
    query = select(DirectoryDomain.domain).where(DirectoryDomain.directory_id == directory_id)
    return sorted(session.scalars(query))


def claiming_directory(session: Session, domain: str) -> str | None:
    """The name of the directory whose claim covers ``domain`` (the domain or a parent), if any."""
    try:
        normalized = normalize_domain(domain)
    except ValueError:
        return None
    query = (
        select(Directory.name)
        .join(DirectoryDomain, DirectoryDomain.directory_id == Directory.id)
        .where(DirectoryDomain.domain.in_(_covering(normalized)))
        .limit(1)
    )
    return session.scalar(query)


def email_allowed(session: Session, directory: str, email: str) -> bool:
    """False iff a directory other than ``directory`` claims the address's domain."""
    owner = claiming_directory(session, email.rsplit("@", 1)[-1]) if "@" in (email or "") else None
    return owner is None or owner == directory


# The write path's claim check as one statement built once: its IN list has a fixed number of slots
# (a user's addresses rarely have more suffixes; more are checked in several executions), padded by
# repeating a suffix, so it needs no per-request statement building, cache key or IN expansion.
_CLAIM_SLOTS = 8
_CLAIMED_BY_OTHERS = (
    select(DirectoryDomain.domain)
    .where(DirectoryDomain.domain.in_([bindparam(f"s{i}") for i in range(_CLAIM_SLOTS)]),
           DirectoryDomain.directory_id != bindparam("directory_id"))
    .limit(1)
)


def refuse_claimed_addresses(session: Session, directory_id: int, addresses: Iterable[str | None]) -> None:
    """Raise ``DomainClaimed`` when another directory claims the domain of any of ``addresses``.

    One indexed query for all addresses of a user (the SCIM write path), on the request's connection.
    """
    by_suffix: dict[str, str] = {}
    for address in addresses:
        domain = address_domain(address)
        if domain is not None:
            for suffix in _covering(domain):
                by_suffix.setdefault(suffix, domain)
    suffixes = sorted(by_suffix)
    connection = session.connection()
    for start in range(0, len(suffixes), _CLAIM_SLOTS):
        chunk = suffixes[start:start + _CLAIM_SLOTS]
        params: dict[str, object] = {f"s{i}": chunk[i] if i < len(chunk) else chunk[0] for i in range(_CLAIM_SLOTS)}
        params["directory_id"] = directory_id
        claimed = connection.execute(_CLAIMED_BY_OTHERS, params).scalar()
        if claimed is not None:
            raise DomainClaimed(by_suffix[claimed])


def claim_domains(session: Session, directory: str, domains: Iterable[str]) -> None:
    """Add ``domains`` to the claims of ``directory`` (created if missing). Idempotent.

    Raises ``DomainClaimed`` when another directory's claim overlaps one of them (same domain, a
    parent or a subdomain), and ``DomainInUse`` when users of other directories already have
    addresses in one of them: those users must be moved or deleted first, because the bridge never
    takes users (or their JSM access) away from a directory behind its IdP's back.
    """
    wanted = sorted({normalize_domain(d) for d in domains})
    if not wanted:
        return
    owner = ensure_directory(session, directory)
    mine = set(domains_of(session, owner.id))
    for domain in wanted:
        if domain in mine:
            continue
        _refuse_overlap(session, owner.id, domain)
        _refuse_foreign_users(session, owner.id, domain)
        insert_ignoring_duplicates(session, DirectoryDomain,
                                   [{"domain": domain, "directory_id": owner.id, "created_at": utcnow()}])
        holder = session.scalar(select(DirectoryDomain.directory_id).where(DirectoryDomain.domain == domain))
        if holder != owner.id:  # claimed by another directory at this very moment
            raise DomainClaimed(domain)


def set_domains(session: Session, directory: str, domains: Iterable[str]) -> list[str]:
    """Make ``domains`` exactly the claims of ``directory``; returns the released domains."""
    owner = require_directory(session, directory)
    wanted = {normalize_domain(d) for d in domains}
    released = [d for d in domains_of(session, owner.id) if d not in wanted]
    if released:
        session.execute(delete(DirectoryDomain).where(
            DirectoryDomain.directory_id == owner.id, DirectoryDomain.domain.in_(released)))
    claim_domains(session, directory, wanted)
    return released


def _refuse_overlap(session: Session, directory_id: int, domain: str) -> None:
    overlapping = or_(DirectoryDomain.domain.in_(_covering(domain)), DirectoryDomain.domain.like(f"%.{domain}"))
    query = select(DirectoryDomain.domain).where(overlapping, DirectoryDomain.directory_id != directory_id).limit(1)
    if session.scalar(query) is not None:
        raise DomainClaimed(domain)


def _refuse_foreign_users(session: Session, directory_id: int, domain: str) -> None:
    """``DomainInUse`` naming the directories (and a few users) that have addresses in ``domain``."""
    patterns = [f"%@{domain}", f"%@%.{domain}"]
    by_email = select(UserValue.user_id).where(
        UserValue.attribute == "emails", or_(*[UserValue.value_lower.like(p) for p in patterns]))
    query = (
        select(Directory.name, User.user_name)
        .join(Directory, Directory.id == User.directory_id)
        .where(User.directory_id != directory_id,
               or_(User.id.in_(by_email), *[User.user_name_lower.like(p) for p in patterns]))
        .order_by(Directory.name, User.user_name_lower)
    )
    found: dict[str, list[str]] = {}
    for name, user_name in session.execute(query):
        found.setdefault(name, []).append(user_name)
    if found:
        parts = [f"directory {name} has {len(users)} user(s) there ({', '.join(users[:CONFLICT_EXAMPLES])}"
                 f"{', ...' if len(users) > CONFLICT_EXAMPLES else ''})" for name, users in found.items()]
        raise DomainInUse(f"cannot claim {domain}: {'; '.join(parts)}; move or delete those users first")


# ----------------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class DirectorySummary:
    name: str
    display_name: str | None
    domains: list[str]
    users: int
    groups: int
    keys: int
    created_at: str

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def list_directories(session: Session) -> list[DirectorySummary]:
    """Every directory with its claimed domains and how many users, groups and keys it has."""
    def counts(model) -> dict[int, int]:
        return dict(session.execute(select(model.directory_id, func.count()).group_by(model.directory_id)).all())

    users, groups, keys = counts(User), counts(Group), counts(ApiKey)
    claims: dict[int, list[str]] = {}
    for directory_id, domain in session.execute(select(DirectoryDomain.directory_id, DirectoryDomain.domain)):
        claims.setdefault(directory_id, []).append(domain)
    return [
        DirectorySummary(d.name, d.display_name, sorted(claims.get(d.id, [])), users.get(d.id, 0),
                         groups.get(d.id, 0), keys.get(d.id, 0), d.created_at.isoformat())
        for d in session.scalars(select(Directory).order_by(Directory.name))
    ]

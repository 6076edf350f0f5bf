"""Which connection signs a visitor in: by the domain of the e-mail they give (``/login``).

1. Connections that route the domain (``idp add --domain``), or a parent of it.
2. Else the connections of the directory that claims the domain (``directories set --domain``).
3. Else (nobody claims it) the connections of directories that claim no domain at all: such a
   directory accepts any unclaimed address (a one-company installation needs no setup).
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from scim_server.models import Directory, DirectoryDomain
from scim_server.sso.connections import Connection, list_connections
from scim_server.store.directories import address_domain, claiming_directory


def _covers(claim: str, domain: str) -> bool:
    return domain == claim or domain.endswith("." + claim)


def _claiming_directories(session: Session) -> set[str]:
    return set(session.scalars(select(Directory.name).join(DirectoryDomain, DirectoryDomain.directory_id == Directory.id)))


def connections_for_email(session: Session, email: str) -> list[Connection]:
    """The connections that may sign ``email`` in (empty: none may)."""
    domain = address_domain(email)
    if domain is None:
        return []
    connections = list_connections(session)
    routed = [c for c in connections if any(_covers(claim, domain) for claim in c.domains)]
    if routed:
        return routed
    owner = claiming_directory(session, domain)
    if owner is not None:
        return [c for c in connections if c.directory == owner]
    claiming = _claiming_directories(session)
    return [c for c in connections if c.directory not in claiming]


def may_serve(session: Session, connection: Connection, email: str | None) -> bool:
    """Whether ``connection`` may be used for ``email`` (any connection when no e-mail is given)."""
    if not email:
        return True
    return any(c.name == connection.name for c in connections_for_email(session, email))

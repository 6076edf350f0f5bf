"""Upstream connections: the customers' own IdPs (SAML or OpenID Connect), each bound to one directory.

A login through a connection finds or creates users only in that connection's directory. The
connection named ``default`` is the one ``sso configure`` / ``sso import-metadata`` set; setting
it again keeps its other options (directory, domains, JIT, attribute map when none is given).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from scim_server.db import utcnow
from scim_server.models import ApiKey, Directory
from scim_server.models.sso import SsoConnection, SsoConnectionDomain
from scim_server.sso.idp_config import IdpConfigError, IdpSettings, check_attribute_map, parse_certificates
from scim_server.store.directories import claim_domains, ensure_directory, normalize_domain

DEFAULT_CONNECTION = "default"
DEFAULT_DIRECTORY = "default"
SAML = "saml"
OIDC = "oidc"
DEFAULT_OIDC_SCOPES = ("openid", "email", "profile")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret_sealed: str = field(repr=False)  # open with sso.sealed.unseal(..., SECRET_PURPOSE, ...)
    scopes: tuple[str, ...] = DEFAULT_OIDC_SCOPES


SECRET_PURPOSE = "oidc-client-secret"


@dataclass(frozen=True)
class Connection:
    name: str
    kind: str
    directory: str
    jit: bool | None = None  # None: on unless the directory has a SCIM key at login time
    attribute_map: dict[str, str] = field(default_factory=dict)
    domains: tuple[str, ...] = ()
    saml: IdpSettings | None = None
    oidc: OidcSettings | None = None

    @property
    def allow_idp_initiated(self) -> bool:
        return bool(self.saml and self.saml.allow_idp_initiated)


def validate_connection_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise IdpConfigError("a connection name is 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


# ------------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------------
def _from_row(row: SsoConnection, directory: str, domains: Iterable[str]) -> Connection:
    attribute_map = dict(row.attribute_map or {})
    saml = oidc = None
    if row.kind == SAML:
        saml = IdpSettings(
            entity_id=row.saml_entity_id or "",
            sso_url=row.saml_sso_url or "",
            slo_url=row.saml_slo_url,
            certificates=parse_certificates(row.saml_certificates_pem or ""),
            attribute_map=attribute_map,
            allow_idp_initiated=bool(row.allow_idp_initiated),
        )
    else:
        oidc = OidcSettings(
            issuer=row.oidc_issuer or "",
            client_id=row.oidc_client_id or "",
            client_secret_sealed=row.oidc_client_secret_sealed or "",
            scopes=tuple((row.oidc_scopes or " ".join(DEFAULT_OIDC_SCOPES)).split()),
        )
    return Connection(row.name, row.kind, directory, row.jit, attribute_map, tuple(sorted(domains)), saml, oidc)


def _domains_by_connection(session: Session) -> dict[str, list[str]]:
    routed: dict[str, list[str]] = {}
    for domain, name in session.execute(select(SsoConnectionDomain.domain, SsoConnectionDomain.connection_name)):
        routed.setdefault(name, []).append(domain)
    return routed


def list_connections(session: Session) -> list[Connection]:
    rows = session.execute(
        select(SsoConnection, Directory.name).join(Directory, Directory.id == SsoConnection.directory_id)
        .order_by(SsoConnection.name)
    ).all()
    routed = _domains_by_connection(session)
    return [_from_row(row, directory, routed.get(row.name, ())) for row, directory in rows]


def load_connection(session: Session, name: str) -> Connection | None:
    row = session.get(SsoConnection, name)
    if row is None:
        return None
    directory = session.get(Directory, row.directory_id)
    domains = session.scalars(select(SsoConnectionDomain.domain).where(SsoConnectionDomain.connection_name == name))
    return _from_row(row, directory.name, domains)


def saml_connections_for_issuer(session: Session, entity_id: str) -> list[Connection]:
    names = session.scalars(
        select(SsoConnection.name).where(SsoConnection.kind == SAML, SsoConnection.saml_entity_id == entity_id)
    ).all()
    return [c for c in (load_connection(session, n) for n in names) if c is not None]


def directory_has_scim_key(session: Session, directory: str) -> bool:
    """True when the directory has a SCIM key that is not revoked (SCIM is its source of truth)."""
    query = (
        select(ApiKey.id).join(Directory, Directory.id == ApiKey.directory_id)
        .where(Directory.name == directory, ApiKey.revoked_at.is_(None)).limit(1)
    )
    return session.scalar(query) is not None


def jit_enabled(session: Session, connection: Connection) -> bool:
    if connection.jit is not None:
        return connection.jit
    return not directory_has_scim_key(session, connection.directory)


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------
def save_connection(session: Session, connection: Connection) -> None:
    """Validate and store ``connection`` (created or replaced), and route its domains to it.

    Each domain is claimed for the connection's directory (``DomainClaimed`` if another directory
    claims it) and routed to this connection.
    """
    validate_connection_name(connection.name)
    check_attribute_map(connection.attribute_map)
    directory = ensure_directory(session, connection.directory)
    row = session.get(SsoConnection, connection.name) or SsoConnection(name=connection.name, created_at=utcnow())
    row.kind = connection.kind
    row.directory_id = directory.id
    row.jit = connection.jit
    row.attribute_map = dict(connection.attribute_map)
    _store_protocol(row, connection)
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    route_domains(session, connection.name, connection.directory, connection.domains)


def _store_protocol(row: SsoConnection, connection: Connection) -> None:
    saml, oidc = connection.saml, connection.oidc
    if connection.kind == SAML and saml is not None:
        saml.validated()
        row.allow_idp_initiated = saml.allow_idp_initiated
        row.saml_entity_id, row.saml_sso_url, row.saml_slo_url = saml.entity_id, saml.sso_url, saml.slo_url
        row.saml_certificates_pem = "".join(saml.certificates)
        row.oidc_issuer = row.oidc_client_id = row.oidc_client_secret_sealed = row.oidc_scopes = None
    elif connection.kind == OIDC and oidc is not None:
        if not oidc.issuer or not oidc.client_id or not oidc.client_secret_sealed:
            raise IdpConfigError("an OpenID Connect connection needs an issuer, a client ID and a client secret")
        row.allow_idp_initiated = False
        row.oidc_issuer, row.oidc_client_id = oidc.issuer, oidc.client_id
        row.oidc_client_secret_sealed, row.oidc_scopes = oidc.client_secret_sealed, " ".join(oidc.scopes)
        row.saml_entity_id = row.saml_sso_url = row.saml_slo_url = row.saml_certificates_pem = None
    else:
        raise IdpConfigError(f"connection kind {connection.kind!r} without its settings")


def route_domains(session: Session, name: str, directory: str, domains: Iterable[str]) -> None:
    wanted = sorted({normalize_domain(d) for d in domains})
    claim_domains(session, directory, wanted)
    for domain in wanted:
        row = session.get(SsoConnectionDomain, domain)
        if row is None:
            session.add(SsoConnectionDomain(domain=domain, connection_name=name))
        else:
            row.connection_name = name
    session.flush()


def remove_connection(session: Session, name: str) -> bool:
    """Delete the connection and its routes (the directory keeps its claimed domains)."""
    session.execute(delete(SsoConnectionDomain).where(SsoConnectionDomain.connection_name == name))
    result = session.execute(delete(SsoConnection).where(SsoConnection.name == name))
    return result.rowcount == 1


# ------------------------------------------------------------------------------------------------
# The ``default`` connection (``sso configure`` / ``sso import-metadata``)
# ------------------------------------------------------------------------------------------------
def load_idp(session: Session) -> IdpSettings | None:
    """The SAML settings of the ``default`` connection, if it is a SAML one."""
    connection = load_connection(session, DEFAULT_CONNECTION)
    return connection.saml if connection is not None else None


def save_idp(session: Session, idp: IdpSettings, directory: str | None = None, keep_attribute_map: bool = False) -> None:
    """Make ``idp`` the ``default`` connection's IdP, keeping its other options.

    ``keep_attribute_map``: a re-import without ``--map`` keeps the connection's attribute map.
    """
    current = load_connection(session, DEFAULT_CONNECTION)
    if keep_attribute_map and current is not None and not idp.attribute_map:
        idp = replace(idp, attribute_map=dict(current.attribute_map))
    base = current or Connection(DEFAULT_CONNECTION, SAML, directory or DEFAULT_DIRECTORY)
    save_connection(session, replace(
        base, kind=SAML, saml=idp, oidc=None, attribute_map=dict(idp.attribute_map),
        directory=directory or base.directory,
    ))

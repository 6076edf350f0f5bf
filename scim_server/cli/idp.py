"""``jsm-scim idp ...``: upstream connections (each company's own IdP, SAML or OpenID Connect)."""
from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from scim_server import audit
from scim_server.cli import CliContext, main, pass_cli
from scim_server.cli.ops import echo_table
from scim_server.cli.sso import attribute_mapping
from scim_server.db import transaction
from scim_server.sso.connections import (
    DEFAULT_OIDC_SCOPES,
    OIDC,
    SAML,
    SECRET_PURPOSE,
    Connection,
    OidcSettings,
    jit_enabled,
    list_connections,
    load_connection,
    remove_connection,
    save_connection,
    validate_connection_name,
)
from scim_server.sso.idp_config import MAPPABLE_FIELDS, IdpSettings, describe_certificate
from scim_server.sso.metadata import parse_idp_metadata, read_source
from scim_server.sso.oidc import OidcProviders, OidcRejected
from scim_server.sso.sealed import seal
from scim_server.sso.testlink import make_test_link

MAX_SECRET_BYTES = 4096


@main.group()
def idp() -> None:
    """Upstream connections: the identity providers customers sign in with, one directory each."""


def _read_secret(path: str) -> str:
    data = Path(path).read_bytes()[: MAX_SECRET_BYTES + 1]
    secret = data.decode("utf-8", errors="strict").strip() if len(data) <= MAX_SECRET_BYTES else ""
    if not secret:
        raise click.BadParameter("the file must hold the client secret (at most 4 KiB)", param_hint="--client-secret-file")
    return secret


def _saml_settings(cli: CliContext, source: str, entity_id: str | None, mapping: dict[str, str],
                   allow_idp_initiated: bool) -> IdpSettings:
    metadata = parse_idp_metadata(read_source(source, cli.settings.allow_private_idp_urls), entity_id)
    return IdpSettings(entity_id=metadata.entity_id, sso_url=metadata.sso_url, slo_url=metadata.slo_url,
                       certificates=metadata.certificates, attribute_map=mapping,
                       allow_idp_initiated=allow_idp_initiated).validated()


def _oidc_settings(cli: CliContext, issuer: str, client_id: str | None, secret_file: str | None,
                   scopes: tuple[str, ...]) -> OidcSettings:
    if not client_id or not secret_file:
        raise click.UsageError("--oidc-issuer needs --client-id and --client-secret-file")
    try:  # discovery now, so a wrong issuer fails here rather than at the first login
        OidcProviders(cli.settings.allow_private_idp_urls).metadata(issuer)
    except OidcRejected as exc:
        raise click.ClickException(exc.reason) from None
    sealed = seal(cli.services(), SECRET_PURPOSE, _read_secret(secret_file))
    return OidcSettings(issuer=issuer, client_id=client_id, client_secret_sealed=sealed,
                        scopes=scopes or DEFAULT_OIDC_SCOPES)


@idp.command("add")
@click.argument("name")
@click.option("--directory", required=True, help="The directory (company) whose users sign in here.")
@click.option("--saml-metadata", "saml_metadata", metavar="FILE_OR_URL", help="The SAML IdP's metadata.")
@click.option("--entity-id", default=None, help="Which IdP to use when the metadata describes several.")
@click.option("--oidc-issuer", metavar="URL", help="The OpenID provider's issuer URL (discovery is read from it).")
@click.option("--client-id", default=None, help="OIDC client ID registered at the provider.")
@click.option("--client-secret-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File holding the OIDC client secret (stored encrypted, never shown).")
@click.option("--scope", "scopes", multiple=True, help="OIDC scopes (default: openid email profile); repeatable.")
@click.option("--domain", "domains", multiple=True, help="E-mail domain routed here and claimed for the directory.")
@click.option("--map", "mappings", multiple=True, metavar="FIELD=ATTRIBUTE",
              help=f"Attribute or claim name for a field ({', '.join(MAPPABLE_FIELDS)}); repeatable.")
@click.option("--group-attribute", default=None, help="Attribute or claim carrying group names.")
@click.option("--jit/--no-jit", default=None,
              help="Create unknown users at login (default: on, unless the directory has a SCIM key).")
@click.option("--allow-idp-initiated/--no-idp-initiated", default=False, help="SAML: accept unsolicited responses.")
@click.option("--replace", is_flag=True, help="Replace an existing connection of this name.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (the connection as `idp show --json`).")
@pass_cli
def add(cli: CliContext, name: str, directory: str, saml_metadata: str | None, entity_id: str | None,
        oidc_issuer: str | None, client_id: str | None, client_secret_file: str | None, scopes: tuple[str, ...],
        domains: tuple[str, ...], mappings: tuple[str, ...], group_attribute: str | None, jit: bool | None,
        allow_idp_initiated: bool, replace: bool, as_json: bool) -> None:
    """Add connection NAME: a SAML IdP (--saml-metadata) or an OpenID provider (--oidc-issuer)."""
    validate_connection_name(name)
    if bool(saml_metadata) == bool(oidc_issuer):
        raise click.UsageError("give exactly one of --saml-metadata or --oidc-issuer")
    mapping = attribute_mapping(mappings, group_attribute)
    services = cli.services()
    with services.session_factory() as session:
        if load_connection(session, name) is not None and not replace:
            raise click.ClickException(f"connection {name} exists (idp remove {name} first, or --replace)")
    if saml_metadata:
        connection = Connection(name, SAML, directory, jit, mapping, domains,
                                saml=_saml_settings(cli, saml_metadata, entity_id, mapping, allow_idp_initiated))
    else:
        connection = Connection(name, OIDC, directory, jit, mapping, domains,
                                oidc=_oidc_settings(cli, oidc_issuer, client_id, client_secret_file, scopes))
    with transaction(services.session_factory) as session:
        save_connection(session, connection)
        audit.record(session, action="sso.connection_add", target_type="sso_connection", target_id=name,
                     actor=audit.CLI_ACTOR, detail={"kind": connection.kind, "directory": directory,
                                                    "domains": sorted(domains)})
    public_url = services.settings.effective_public_url
    if as_json:
        with services.session_factory() as session:
            data = _describe(session, connection)
        key, value = (("redirect_uri", f"{public_url}/oidc/callback") if connection.kind == OIDC
                      else ("acs_url", f"{public_url}/saml/acs"))
        click.echo(json.dumps({**data, key: value}, indent=2))
        return
    click.echo(f"Connection {name} ({connection.kind}) added for directory {directory}.")
    if connection.kind == OIDC:
        click.echo(f"Register this redirect URI at the provider: {public_url}/oidc/callback")
    else:
        click.echo(f"Give the IdP: entity ID {public_url}/saml/metadata, ACS URL {public_url}/saml/acs")


def _describe(session, connection: Connection) -> dict:
    data = {
        "name": connection.name, "kind": connection.kind, "directory": connection.directory,
        "domains": list(connection.domains),
        "jit": "auto" if connection.jit is None else ("on" if connection.jit else "off"),
        "jit_effective": jit_enabled(session, connection), "attribute_map": connection.attribute_map,
    }
    if connection.saml is not None:
        data.update(entity_id=connection.saml.entity_id, sso_url=connection.saml.sso_url,
                    allow_idp_initiated=connection.saml.allow_idp_initiated,
                    certificates=[describe_certificate(pem) for pem in connection.saml.certificates])
    if connection.oidc is not None:
        data.update(issuer=connection.oidc.issuer, client_id=connection.oidc.client_id,
                    client_secret="set (encrypted)", scopes=list(connection.oidc.scopes))
    return data


@idp.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_cli
def list_(cli: CliContext, as_json: bool) -> None:
    """Every connection with its directory, domains and JIT setting."""
    with cli.services().session_factory() as session:
        rows = [_describe(session, c) for c in list_connections(session)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("name", "kind", "directory", "domains", "jit", "issuer / entity ID")
    for row in rows:
        jit = f"{row['jit']} ({'on' if row['jit_effective'] else 'off'})"
        table.add_row(row["name"], row["kind"], row["directory"], ", ".join(row["domains"]) or "-", jit,
                      row.get("issuer") or row.get("entity_id") or "")
    echo_table(table)


@idp.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_cli
def show(cli: CliContext, name: str, as_json: bool) -> None:
    """One connection's settings (never the client secret)."""
    with cli.services().session_factory() as session:
        connection = load_connection(session, name)
        if connection is None:
            raise click.ClickException(f"no connection named {name}")
        data = _describe(session, connection)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    public_url = cli.services().settings.effective_public_url
    data["redirect_uri" if connection.kind == OIDC else "acs_url"] = (
        f"{public_url}/oidc/callback" if connection.kind == OIDC else f"{public_url}/saml/acs")
    for key, value in data.items():
        if key == "certificates":
            for cert in value:
                expired = " (EXPIRED)" if cert["expired"] else ""
                click.echo(f"{'certificate:':<20}{cert['subject']} until {cert['not_after']}{expired}")
            continue
        click.echo(f"{key + ':':<20}{', '.join(value) if isinstance(value, list) else value}")


@idp.command("remove")
@click.argument("name")
@pass_cli
def remove(cli: CliContext, name: str) -> None:
    """Remove a connection (its directory, users and claimed domains stay)."""
    with transaction(cli.services().session_factory) as session:
        if not remove_connection(session, name):
            raise click.ClickException(f"no connection named {name}")
        audit.record(session, action="sso.connection_remove", target_type="sso_connection", target_id=name,
                     actor=audit.CLI_ACTOR, detail={})
    click.echo(f"Connection {name} removed.")


@idp.command("test-link")
@click.argument("name")
@click.option("--minutes", type=click.IntRange(1, 60), default=10, show_default=True, help="How long the link works.")
@pass_cli
def test_link(cli: CliContext, name: str, minutes: int) -> None:
    """Print a short-lived admin link that tests connection NAME (shows what the IdP sends)."""
    with cli.services().session_factory() as session:
        if load_connection(session, name) is None:
            raise click.ClickException(f"no connection named {name}")
    click.echo(make_test_link(cli.services(), name, minutes * 60))

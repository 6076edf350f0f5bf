"""``jsm-scim sso ...``: configure the SAML IdP, show the SP/IdP settings, list portal login links."""
from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from scim_server import audit
from scim_server.cli import CliContext, main, pass_cli
from scim_server.cli.ops import echo_table
from scim_server.db import transaction
from scim_server.sso.connections import DEFAULT_CONNECTION, load_connection, load_idp, save_idp
from scim_server.sso.idp_config import MAPPABLE_FIELDS, IdpSettings, as_dict, parse_certificates
from scim_server.sso.metadata import parse_idp_metadata, read_source
from scim_server.sso.portal import PortalCatalog, PortalsUnavailable
from scim_server.sso.sp import service_provider
from scim_server.sso.testlink import make_test_link


@main.group()
def sso() -> None:
    """SAML single sign-on for JSM customers (this service is the SAML service provider)."""


def attribute_mapping(pairs: tuple[str, ...], group_attribute: str | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        field, separator, attribute = pair.partition("=")
        if not separator or field not in MAPPABLE_FIELDS or not attribute:
            raise click.BadParameter(f"expected FIELD=ATTRIBUTE with FIELD one of {', '.join(MAPPABLE_FIELDS)}", param_hint="--map")
        mapping[field] = attribute
    if group_attribute:
        mapping["groups"] = group_attribute
    return mapping


def _common_options(command):
    options = [
        click.option("--allow-idp-initiated/--no-idp-initiated", default=None,
                     help="Accept unsolicited responses (IdP dashboard tiles). Off (the default) is safer."),
        click.option("--directory", "--jit-directory", "directory", default=None,
                     help="Directory of the users who sign in through this IdP (default: default; "
                          "kept when already configured)."),
        click.option("--group-attribute", default=None, help="Attribute carrying group names (e.g. for JumpCloud)."),
        click.option("--map", "mappings", multiple=True, metavar="FIELD=ATTRIBUTE",
                     help=f"Attribute name for a field ({', '.join(MAPPABLE_FIELDS)}); repeatable."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _store(cli: CliContext, idp: IdpSettings, action: str, directory: str | None) -> None:
    """Set the ``default`` connection's IdP; options not given keep their current values."""
    idp.validated()
    with transaction(cli.services().session_factory) as session:
        save_idp(session, idp, directory, keep_attribute_map=True)
        audit.record(session, action=action, target_type="sso_idp", target_id=idp.entity_id[:200],
                     actor=audit.CLI_ACTOR, detail={"sso_url": idp.sso_url, "certificates": len(idp.certificates),
                                                    "connection": DEFAULT_CONNECTION})
    click.echo(f"IdP {idp.entity_id} configured as connection {DEFAULT_CONNECTION} "
               f"({len(idp.certificates)} signing certificate(s)).")
    _echo_sp(cli)


def _kept_idp_initiated(cli: CliContext, given: bool | None) -> bool:
    if given is not None:
        return given
    with cli.services().session_factory() as session:
        current = load_idp(session)
    return bool(current and current.allow_idp_initiated)


def _echo_sp(cli: CliContext) -> None:
    sp = service_provider(cli.services())
    click.echo(f"Give the IdP: entity ID {sp.entity_id}, ACS URL {sp.acs_url} (metadata: {sp.entity_id})")


@sso.command("import-metadata")
@click.argument("source", metavar="FILE_OR_URL")
@click.option("--entity-id", default=None, help="Which IdP to use when the metadata describes several.")
@_common_options
@pass_cli
def import_metadata(cli: CliContext, source: str, entity_id: str | None, allow_idp_initiated: bool | None,
                    directory: str | None, group_attribute: str | None, mappings: tuple[str, ...]) -> None:
    """Configure the IdP of connection `default` from its SAML metadata (a file or an https URL)."""
    metadata = parse_idp_metadata(read_source(source, cli.settings.allow_private_idp_urls), entity_id)
    idp = IdpSettings(
        entity_id=metadata.entity_id,
        sso_url=metadata.sso_url,
        slo_url=metadata.slo_url,
        certificates=metadata.certificates,
        attribute_map=attribute_mapping(mappings, group_attribute),
        allow_idp_initiated=_kept_idp_initiated(cli, allow_idp_initiated),
    )
    _store(cli, idp, "sso.import_metadata", directory)


@sso.command("configure")
@click.option("--entity-id", required=True, help="The IdP's entity ID (Issuer).")
@click.option("--sso-url", required=True, help="The IdP's SSO URL (HTTP-Redirect binding).")
@click.option("--slo-url", default=None, help="The IdP's single logout URL (optional).")
@click.option("--cert-file", "cert_files", required=True, multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="PEM file with the IdP signing certificate(s); repeat for a rotation.")
@_common_options
@pass_cli
def configure(cli: CliContext, entity_id: str, sso_url: str, slo_url: str | None, cert_files: tuple[str, ...],
              allow_idp_initiated: bool | None, directory: str | None, group_attribute: str | None,
              mappings: tuple[str, ...]) -> None:
    """Configure the IdP of connection `default` by hand."""
    certificates: list[str] = []
    for cert_file in cert_files:
        certificates.extend(parse_certificates(Path(cert_file).read_text(encoding="ascii", errors="replace")))
    idp = IdpSettings(
        entity_id=entity_id,
        sso_url=sso_url,
        slo_url=slo_url,
        certificates=tuple(dict.fromkeys(certificates)),
        attribute_map=attribute_mapping(mappings, group_attribute),
        allow_idp_initiated=_kept_idp_initiated(cli, allow_idp_initiated),
    )
    _store(cli, idp, "sso.configure", directory)


@sso.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_cli
def show(cli: CliContext, as_json: bool) -> None:
    """Show this service provider's settings and the IdP of connection `default`."""
    services = cli.services()
    sp = service_provider(services)
    with services.session_factory() as session:
        connection = load_connection(session, DEFAULT_CONNECTION)
    idp = connection.saml if connection is not None else None
    data = {
        "sp": {"entity_id": sp.entity_id, "acs_url": sp.acs_url, "metadata_url": sp.entity_id,
               "certificate": sp.certificate_pem},
        "idp": {**as_dict(idp), "directory": connection.directory} if idp else None,
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"SP entity ID:  {sp.entity_id}\nACS URL:       {sp.acs_url}\nSP metadata:   {sp.entity_id}")
    if idp is None:
        click.echo("IdP:           not configured (jsm-scim sso import-metadata FILE_OR_URL)")
        return
    described = data["idp"]
    for label, key in (("IdP entity ID", "entity_id"), ("IdP SSO URL", "sso_url"), ("IdP SLO URL", "slo_url"),
                       ("IdP-initiated", "allow_idp_initiated"), ("Directory", "directory"),
                       ("Attribute map", "attribute_map")):
        click.echo(f"{label + ':':<15}{described[key]}")
    for cert in described["certificates"]:
        expired = " (EXPIRED)" if cert["expired"] else ""
        click.echo(f"IdP cert:      {cert['subject']} until {cert['not_after']}{expired} sha256 {cert['sha256']}")


@sso.command("links")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_cli
def links(cli: CliContext, as_json: bool) -> None:
    """Every JSM portal (service desk) with its login link PUBLIC_URL/portal/<serviceDeskId>."""
    catalog = PortalCatalog(cli.jsm_services())
    try:
        portals = catalog.portals()
    except PortalsUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        catalog.close()
    if as_json:
        click.echo(json.dumps([
            {"serviceDeskId": p.desk_id, "projectKey": p.project_key, "name": p.name,
             "loginUrl": p.login_url, "portalUrl": p.portal_url}
            for p in portals
        ], indent=2))
        return
    table = Table("serviceDeskId", "projectKey", "name", "login link")
    for portal in portals:
        table.add_row(portal.desk_id, portal.project_key, portal.name, portal.login_url)
    echo_table(table)


@sso.command("test-link")
@click.option("--minutes", type=click.IntRange(1, 60), default=10, show_default=True, help="How long the link works.")
@pass_cli
def test_link(cli: CliContext, minutes: int) -> None:
    """Print a short-lived admin link that tests connection `default` (shows the attributes it sends)."""
    click.echo(make_test_link(cli.services(), DEFAULT_CONNECTION, minutes * 60))

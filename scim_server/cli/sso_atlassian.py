"""``jsm-scim sso atlassian``: register the SP the bridge answers as IdP, or show what to paste."""
from __future__ import annotations

import json

import click

from scim_server import audit
from scim_server.cli import CliContext, pass_cli
from scim_server.cli.sso import sso
from scim_server.db import transaction
from scim_server.idp.identity import identity_provider
from scim_server.idp.registration import RegisteredSp, parse_sp_metadata, register_sp, registered_sp
from scim_server.sso.metadata import read_source


@sso.command("atlassian")
@click.option("--sp-metadata", "sp_metadata", metavar="FILE_OR_URL", help="The service provider's SAML metadata.")
@click.option("--entity-id", default=None, help="The SP entity ID (Atlassian: 'Service provider entity URL').")
@click.option("--acs-url", default=None, help="The SP ACS URL (Atlassian: 'Service provider assertion consumer service URL').")
@click.option("--show", is_flag=True, help="Print the values to paste into Atlassian Administration.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (with --show).")
@pass_cli
def atlassian(cli: CliContext, sp_metadata: str | None, entity_id: str | None, acs_url: str | None,
              show: bool, as_json: bool) -> None:
    """The bridge as the SAML IdP of JSM's customer SSO: register Atlassian's SP (replacing any
    earlier one) from its metadata or from its entity ID and ACS URL, or --show the IdP values."""
    by_hand = entity_id is not None or acs_url is not None
    if sum((show, sp_metadata is not None, by_hand)) != 1:
        raise click.UsageError("give exactly one of --show, --sp-metadata FILE_OR_URL, or --entity-id with --acs-url")
    if as_json and not show:
        raise click.UsageError("--json goes with --show")
    if show:
        _show(cli, as_json)
        return
    if by_hand and (entity_id is None or acs_url is None):
        raise click.UsageError("--entity-id and --acs-url go together")
    sp = parse_sp_metadata(read_source(sp_metadata)) if sp_metadata is not None else RegisteredSp(entity_id, acs_url)
    with transaction(cli.services().session_factory) as session:
        stored = register_sp(session, sp)
        audit.record(session, action="idp.register_sp", target_type="idp_sp", target_id=stored.entity_id[:200],
                     actor=audit.CLI_ACTOR, detail={"acs_url": stored.acs_url})
    click.echo(f"Service provider {stored.entity_id} registered (ACS {stored.acs_url}).")
    _show(cli, False)


def _show(cli: CliContext, as_json: bool) -> None:
    services = cli.services()
    idp = identity_provider(services)
    with services.session_factory() as session:
        sp = registered_sp(session)
    if as_json:
        click.echo(json.dumps({
            "idp": {"entity_id": idp.entity_id, "sso_url": idp.sso_url, "metadata_url": idp.entity_id,
                    "certificate": idp.certificate_pem},
            "service_provider": None if sp is None else {
                "entity_id": sp.entity_id, "acs_url": sp.acs_url,
                "registered_at": sp.registered_at.isoformat() if sp.registered_at else None},
        }, indent=2))
        return
    click.echo("Paste into Atlassian Administration (portal-only customers > identity provider > SAML single sign-on):")
    click.echo(f"  Identity provider Entity ID:  {idp.entity_id}")
    click.echo(f"  Identity provider SSO URL:    {idp.sso_url}")
    click.echo("  Public x509 certificate:")
    click.echo(idp.certificate_pem.strip())
    if sp is None:
        click.echo("Service provider: none registered (jsm-scim sso atlassian --entity-id ID --acs-url URL)")
    else:
        click.echo(f"Service provider: {sp.entity_id} (ACS {sp.acs_url})")

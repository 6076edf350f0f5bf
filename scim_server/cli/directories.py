"""``jsm-scim directories create|set|list``: directories, their display names and claimed domains."""
from __future__ import annotations

import json
import logging

import click
from rich.table import Table

from scim_server import audit
from scim_server.cli import CliContext, main, pass_cli
from scim_server.cli.ops import echo_table
from scim_server.db import transaction
from scim_server.store import directories as store

log = logging.getLogger(__name__)

_DOMAIN_HELP = ("E-mail domain this directory claims (its subdomains too); repeatable. No other directory "
                "may then provision addresses there.")


@main.group()
def directories() -> None:
    """Directories (one customer company each): display names and claimed e-mail domains."""


def _audit(session, action: str, directory, **detail: object) -> None:
    audit.record(session, action=action, target_type="directory", target_id=directory.name,
                 directory_id=directory.id, actor=audit.CLI_ACTOR, detail=detail)


@directories.command("create")
@click.argument("name")
@click.option("--display-name", default=None, help="Human-readable company name.")
@click.option("--domain", "domains", multiple=True, help=_DOMAIN_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_cli
def create(cli: CliContext, name: str, display_name: str | None, domains: tuple[str, ...], as_json: bool) -> None:
    """Create directory NAME (`keys create --directory NAME` also creates one implicitly)."""
    with transaction(cli.services().session_factory) as session:
        directory = store.create_directory(session, name, display_name, domains)
        claimed = store.domains_of(session, directory.id)
        _audit(session, "directory.create", directory, display_name=directory.display_name, domains=claimed)
    log.info("created directory %s (domains: %s)", name, ", ".join(claimed) or "none")
    if as_json:
        click.echo(json.dumps({"name": name, "display_name": display_name, "domains": list(claimed)}, indent=2))
        return
    click.echo(f"Created directory {name}" + (f" claiming {', '.join(claimed)}" if claimed else ""))


@directories.command("set")
@click.argument("name")
@click.option("--domain", "domains", multiple=True,
              help="The claimed domains become exactly these (repeatable); others are released.")
@click.option("--no-domains", is_flag=True, help="Release every claimed domain.")
@click.option("--display-name", default=None, help="New display name ('' clears it).")
@pass_cli
def set_(cli: CliContext, name: str, domains: tuple[str, ...], no_domains: bool, display_name: str | None) -> None:
    """Change the claimed e-mail domains or the display name of directory NAME.

    Claiming a domain in which users of another directory already have addresses is refused
    (the error lists them); move or delete those users first.
    """
    if domains and no_domains:
        raise click.UsageError("--domain and --no-domains exclude each other")
    if not domains and not no_domains and display_name is None:
        raise click.UsageError("nothing to change: give --domain, --no-domains or --display-name")
    with transaction(cli.services().session_factory) as session:
        directory = store.require_directory(session, name)
        released: list[str] = []
        if domains or no_domains:
            released = store.set_domains(session, name, domains)
        if display_name is not None:
            store.ensure_directory(session, name, display_name)
        claimed = store.domains_of(session, directory.id)
        _audit(session, "directory.update", directory, display_name=directory.display_name, domains=claimed,
               released=released)
    log.info("updated directory %s (domains: %s)", name, ", ".join(claimed) or "none")
    click.echo(f"Directory {name}: domains {', '.join(claimed) or 'none'}"
               + (f"; released {', '.join(released)}" if released else "")
               + (f"; display name {directory.display_name!r}" if directory.display_name else ""))


@directories.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_cli
def list_(cli: CliContext, as_json: bool) -> None:
    """Every directory with its display name, claimed domains and numbers of users, groups and keys."""
    with transaction(cli.services().session_factory) as session:
        rows = [summary.as_dict() for summary in store.list_directories(session)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(rows)} directory(ies)")
    for column in ("name", "display name", "domains", "users", "groups", "keys", "created"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["display_name"] or "-", ", ".join(row["domains"]) or "(any unclaimed)",
                      str(row["users"]), str(row["groups"]), str(row["keys"]), str(row["created_at"])[:16].replace("T", " "))
    echo_table(table)

"""``jsm-scim db ...``"""
import click

from scim_server.cli import CliContext, main, pass_cli
from scim_server.db import current_revision


@main.group()
def db() -> None:
    """Database schema management."""


@db.command()
@pass_cli
def upgrade(cli: CliContext) -> None:
    """Create or migrate the schema (idempotent)."""
    services = cli.services(migrate=True)
    click.echo(f"database at revision {current_revision(services.engine)}")

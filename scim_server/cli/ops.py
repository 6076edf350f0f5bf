"""``jsm-scim audit ...``: query the audit trail."""
from __future__ import annotations

import datetime as dt
import json
import sys

import click
from rich.console import Console
from rich.table import Table

from scim_server import audit
from scim_server.cli import CliContext, main, pass_cli
from scim_server.db import transaction


def echo_table(table: Table) -> None:
    """Print a rich table; wide and uncoloured when stdout is not a terminal (pipes, tests)."""
    interactive = sys.stdout.isatty()
    Console(width=None if interactive else 200, no_color=not interactive).print(table)


@main.group("audit")
def audit_group() -> None:
    """The audit trail of SCIM writes and key operations."""


def parse_since(value: str) -> dt.datetime:
    """An ISO 8601 date or date-time; naive values are taken as UTC."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since must be an ISO 8601 date or date-time, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


@audit_group.command("list")
@click.option("--since", default=None, help="Only events at or after this ISO 8601 time.")
@click.option("--limit", type=int, default=audit.DEFAULT_LIMIT, show_default=True)
@click.option("--target", "target_id", default=None, help="Only events about this target id.")
@click.option("--action", default=None, help="Only this action, e.g. key.create, or a prefix like key.*")
@click.option("--actor", default=None, help="Only events by this actor (an API key id or cli).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_cli
def list_events(
    cli: CliContext, since: str | None, limit: int, target_id: str | None, action: str | None, actor: str | None, as_json: bool
) -> None:
    """Audit events, newest first."""
    with transaction(cli.services().session_factory) as session:
        events = audit.query_events(
            session,
            since=parse_since(since) if since else None,
            limit=limit,
            target_id=target_id,
            action=action,
            actor=actor,
        )
        directories = audit.directory_names(session, events)
        rows = [audit.event_to_dict(event, directories) for event in events]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(rows)} audit event(s)")
    for column in ("at", "actor", "directory", "action", "target", "detail"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["at"][:19].replace("T", " "),
            row["actor"],
            row["directory"] or "-",
            row["action"],
            f"{row['target_type']} {row['target_id'] or ''}".strip(),
            json.dumps(row["detail"]) if row["detail"] else "",
        )
    echo_table(table)

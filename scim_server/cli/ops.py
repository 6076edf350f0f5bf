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
from scim_server.keys import find_directory


def echo_table(table: Table) -> None:
    """Print a rich table as wide as the terminal, long cells folded rather than cut off; 200
    columns wide and uncoloured when stdout is not a terminal (pipes, tests)."""
    for column in table.columns:
        column.overflow = "fold"
    interactive = sys.stdout.isatty()
    Console(width=None if interactive else 200, no_color=not interactive).print(table)


@main.group("audit")
def audit_group() -> None:
    """The audit trail of SCIM writes and key operations."""


def parse_time(value: str, option: str = "--since") -> dt.datetime:
    """An ISO 8601 date or date-time; naive values are taken as UTC."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{option} must be an ISO 8601 date or date-time, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


@audit_group.command("list")
@click.option("--since", default=None, help="Only events at or after this ISO 8601 time.")
@click.option("--until", default=None, help="Only events before this ISO 8601 time.")
@click.option("--limit", type=int, default=audit.DEFAULT_LIMIT, show_default=True)
@click.option("--target", "target_id", default=None, help="Only events about this target id.")
@click.option("--type", "target_type", default=None,
              help="Only events about this kind of target (any case): user, group, api_key, directory, login.")
@click.option("--action", default=None, help="Only this action, e.g. key.create, or a prefix like key.*")
@click.option("--actor", default=None, help="Only events by this actor (an API key id or cli).")
@click.option("--directory", default=None, help="Only events in this directory.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_cli
def list_events(
    cli: CliContext,
    since: str | None,
    until: str | None,
    limit: int,
    target_id: str | None,
    target_type: str | None,
    action: str | None,
    actor: str | None,
    directory: str | None,
    as_json: bool,
) -> None:
    """Audit events, newest first."""
    with transaction(cli.services().session_factory) as session:
        directory_id = None
        if directory is not None:
            found = find_directory(session, directory)
            if found is None:
                raise LookupError(f"no directory named {directory!r}")
            directory_id = found.id
        events = audit.query_events(
            session,
            since=parse_time(since, "--since") if since else None,
            until=parse_time(until, "--until") if until else None,
            limit=limit,
            target_id=target_id,
            target_type=target_type,
            action=action,
            actor=actor,
            directory_id=directory_id,
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

"""``jsm-scim keys ...``: create, list, revoke and rotate SCIM API keys (every change is audited)."""
from __future__ import annotations

import getpass
import json
import logging

import click
from rich.table import Table

from scim_server import audit
from scim_server import keys as key_store
from scim_server.cli import CliContext, main, pass_cli
from scim_server.cli.ops import echo_table
from scim_server.db import transaction, utcnow

log = logging.getLogger(__name__)


@main.group()
def keys() -> None:
    """SCIM API keys (bearer tokens for identity providers)."""


def _print_issued(issued: key_store.IssuedKey, as_json: bool = False, **more: object) -> None:
    """Details first, then the token alone on the last line (scripts read the last line); or one
    JSON object with the token."""
    details = key_store.describe_key(issued.key)
    if as_json:
        click.echo(json.dumps({**details, **more, "token": issued.token}, indent=2))
        return
    click.echo("Created API key")
    for label in ("id", "name", "directory", "token_prefix", "expires"):
        click.echo(f"  {label}: {details[label]}")
    click.echo("Store this token now; it cannot be shown again:")
    click.echo(issued.token)


def _audit_key(session, action: str, key, **detail: object) -> None:
    audit.record(
        session,
        action=action,
        target_type="api_key",
        target_id=key.id,
        directory_id=key.directory_id,
        actor=audit.CLI_ACTOR,
        detail={"name": key.name, "os_user": _os_user(), **detail},
    )


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no user name in a minimal container
        return None


@keys.command("create")
@click.option("--name", required=True, help="What the key is for, e.g. the IdP connection.")
@click.option("--directory", default=key_store.DEFAULT_DIRECTORY, show_default=True, help="Directory the key is bound to.")
@click.option("--expires-in-days", type=click.IntRange(1, key_store.MAX_EXPIRY_DAYS),
              default=key_store.DEFAULT_EXPIRY_DAYS, show_default=True,
              help=f"Days until the key stops working (1-{key_store.MAX_EXPIRY_DAYS}); rotate it before.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output, the token included.")
@pass_cli
def create(cli: CliContext, name: str, directory: str, expires_in_days: int, as_json: bool) -> None:
    """Issue a new key; prints its token once, alone on the last line (or in the JSON)."""
    with transaction(cli.services().session_factory) as session:
        issued = key_store.create_key(session, name, directory, expires_in_days)
        _audit_key(session, "key.create", issued.key, directory=directory, expires=issued.key.expires_at.isoformat())
    log.info("created API key %s for directory %s", issued.key.id, directory)
    _print_issued(issued, as_json)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--directory", default=None, help="Only keys of this directory.")
@pass_cli
def list_(cli: CliContext, as_json: bool, directory: str | None) -> None:
    """All keys with their status and days left; never the token.

    Status: active, expiring (ends within JSM_SCIM_KEY_EXPIRY_WARNING_DAYS: rotate it), rotating
    (replaced, working until its grace period ends), expired or revoked.
    """
    warning_days = cli.settings.key_expiry_warning_days
    with transaction(cli.services().session_factory) as session:
        rows = [key_store.describe_key(key, warning_days=warning_days) for key in key_store.list_keys(session, directory)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    _print_table(rows)


def _print_table(rows: list[dict[str, object]]) -> None:
    table = Table(title=f"{len(rows)} API key(s)")
    columns = ["id", "name", "directory", "token_prefix", "created", "expires", "days_left", "last_used", "status"]
    for column in columns:
        table.add_column(column.replace("_", " "), no_wrap=column in ("id", "token_prefix"))
    for row in rows:
        table.add_row(*(_cell(column, row[column], row) for column in columns))
    echo_table(table)


def _cell(column: str, value: object, row: dict[str, object]) -> str:
    if column == "status" and value == "rotating":
        return f"rotating until {_cell('revoked', row['revoked'], row)}"
    if value is None:
        return "never" if column == "last_used" else "-"
    if column in ("created", "expires", "last_used", "revoked"):
        return str(value)[:16].replace("T", " ")
    return str(value)


@keys.command("revoke")
@click.argument("key_id")
@pass_cli
def revoke(cli: CliContext, key_id: str) -> None:
    """Stop a key at once (a rotating key too); revoking a revoked key changes nothing."""
    with transaction(cli.services().session_factory) as session:
        key = key_store.get_key(session, key_id)
        if key.revoked_at is not None and key.revoked_at <= utcnow():
            click.echo(f"API key {key.id} ({key.name}) is already revoked (since {key.revoked_at.isoformat()})")
            return
        key = key_store.revoke_key(session, key_id)
        _audit_key(session, "key.revoke", key)
    log.info("revoked API key %s", key.id)
    click.echo(f"Revoked API key {key.id} ({key.name})")


@keys.command("rotate")
@click.argument("key_id")
@click.option(
    "--grace-hours",
    type=float,
    default=key_store.DEFAULT_GRACE_HOURS,
    show_default=True,
    help="How long the old key keeps working.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output, the new token included.")
@pass_cli
def rotate(cli: CliContext, key_id: str, grace_hours: float, as_json: bool) -> None:
    """Issue a successor key; the old one keeps working for the grace period, then stops."""
    with transaction(cli.services().session_factory) as session:
        issued = key_store.rotate_key(session, key_id, grace_hours)
        old = key_store.get_key(session, key_id)
        _audit_key(session, "key.rotate", old, rotated_to=issued.key.id, old_key_stops=old.revoked_at.isoformat())
        _audit_key(session, "key.create", issued.key, rotated_from=old.id)
    log.info("rotated API key %s to %s", old.id, issued.key.id)
    if not as_json:
        click.echo(f"Old key {old.id} keeps working until {old.revoked_at.isoformat()}")
    _print_issued(issued, as_json, rotated_from=old.id, old_key_stops=old.revoked_at.isoformat())

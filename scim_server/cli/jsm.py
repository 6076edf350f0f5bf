"""``jsm-scim jsm check``: is the JSM site (or the running ``serve``'s emulator) usable for propagation?"""
from __future__ import annotations

import json

import click
from rich.table import Table

from scim_server.cli import CliContext, main, pass_cli
from scim_server.cli.ops import echo_table

_MARK = {True: "ok", False: "FAIL", None: "warn"}


@main.group("jsm")
def jsm_group() -> None:
    """The JSM site the bridge propagates to."""


@jsm_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_cli
def check(cli: CliContext, as_json: bool) -> None:
    """Site reachable, credentials valid, Jira administrator, the rules' service desks exist, each desk's
    customer access (open or restricted). Exit 0 when propagation can work, 1 otherwise."""
    from scim_server.sync.jsm import make_jsm_client
    from scim_server.sync.rules import RulesProvider
    from scim_server.sync.site_check import check_site

    settings = cli.jsm_settings()
    rules = RulesProvider(settings).current()
    with make_jsm_client(settings, max_attempts=2, max_retry_seconds=10.0) as client:
        report = check_site(client, rules)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _print(report)
    if not report.ok:
        failed = next(c for c in report.checks if c.ok is False)
        raise click.ClickException(f"JSM check failed: {failed.name}: {failed.detail}")


def _print(report) -> None:
    click.echo(f"JSM site {report.site}")
    for item in report.checks:
        click.echo(f"  [{_MARK[item.ok]}] {item.name}: {item.detail}")
    if report.desks:
        table = Table("id", "projectKey", "name", "customer access", "in rules", "what it means")
        for desk in report.desks:
            table.add_row(desk.id, desk.project_key, desk.name, desk.access, "yes" if desk.in_rules else "no",
                          desk.meaning)
        echo_table(table)
    click.echo("propagation can work" if report.ok else "propagation cannot work until the failures are fixed")

"""``jsm-scim worker``, ``sync status|retry|reconcile`` and ``mappings check|explain``."""
from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import datetime, timezone

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from scim_server import metrics
from scim_server.cli import CliContext, main, pass_cli
from scim_server.cli.ops import echo_table
from scim_server.db import transaction
from scim_server.sync import outbox, ownership
from scim_server.sync.policy import SyncPolicy
from scim_server.sync.rules import DEFAULT_RULES, Rules, RulesProvider, load_rules, rule_collisions

log = logging.getLogger(__name__)


def stop_on_signals(stop: threading.Event) -> None:
    """SIGINT/SIGTERM set ``stop``: the worker finishes the entity in hand and releases the rest."""
    def handler(_signum, _frame) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def configure_process_logging(settings) -> None:
    """Logging of the long-running commands (see ``logging_setup.configure_logging``)."""
    from scim_server.logging_setup import configure_logging

    configure_logging(settings)


@main.command()
@click.option("--once", is_flag=True, help="Drain the queue and exit.")
@click.option("--lease-seconds", type=float, default=None, help="How long a claimed job is reserved.")
@click.option("--poll-interval", type=float, default=1.0, show_default=True, help="Seconds between polls when idle.")
@click.option("--metrics-port", type=int, default=None,
              help="Serve Prometheus /metrics on this port (for workers on machines without gunicorn).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="Address for --metrics-port (0.0.0.0 for a scraper on another machine).")
@click.option("--reconcile-every", "reconcile_every", default=None, metavar="DURATION",
              help="Reconcile JSM with the stored state this often (e.g. 30m, 6h; 0: never; default "
                   "JSM_SCIM_RECONCILE_EVERY). One worker of all does it per period.")
@pass_cli
def worker(cli: CliContext, once: bool, lease_seconds: float | None, poll_interval: float,
           metrics_port: int | None, metrics_host: str, reconcile_every: str | None) -> None:
    """Propagate SCIM changes to JSM (run any number of these)."""
    from scim_server.settings import parse_duration
    from scim_server.sync.site_check import preflight
    from scim_server.sync.worker import DEFAULT_LEASE_SECONDS, register_queue_metrics, run_worker

    configure_process_logging(cli.settings)
    if reconcile_every is not None:
        try:
            every = parse_duration(reconcile_every)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--reconcile-every") from None
        cli.override(reconcile_every_s=every)
    if not cli.settings.uses_emulator:
        preflight(cli.settings, log)
    services = cli.jsm_services()
    if metrics_port is not None:
        register_queue_metrics(services)
        server = metrics.serve_metrics(metrics_host, metrics_port)
        log.info("metrics on http://%s:%d/metrics", metrics_host, server.server_port)
    stop = threading.Event()
    stop_on_signals(stop)
    stats = run_worker(services, stop, once=once, lease_seconds=lease_seconds or DEFAULT_LEASE_SECONDS,
                       poll_interval=poll_interval)
    click.echo(f"done {stats.done}, failed {stats.failed}, blocked {stats.blocked}, superseded {stats.superseded}")


@main.group("sync")
def sync_group() -> None:
    """Propagation jobs: status, retries and reconciliation with JSM."""


@sync_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--offline", is_flag=True, help="Do not ask JSM whether the recorded organizations still exist.")
@pass_cli
def status(cli: CliContext, as_json: bool, offline: bool) -> None:
    """Pending (of which retrying after a failed attempt), failed (dead), blocked and done jobs, and
    the organizations the bridge recorded that JSM no longer has."""
    services = cli.services()
    with transaction(services.session_factory) as session:
        counts = outbox.status_counts(session)
        pending, oldest = outbox.queue_stats(session)
        retrying = outbox.retrying_count(session)
        problems = [_problem(mark) for mark in outbox.problem_marks(session)]
        conflicts = [_conflict(row) for row in ownership.conflicts(session)]
    jsm, drift = _jsm_drift(cli, services) if not offline else ({"checked": False, "reason": "--offline"}, [])
    document = {"pending": pending, "retrying": retrying, "failed": counts[outbox.DEAD],
                "blocked": counts[outbox.BLOCKED], "done": counts[outbox.DONE], "conflicts": len(conflicts),
                "drift": len(drift), "oldest_pending_age_seconds": oldest, "jsm": jsm,
                "problems": problems + conflicts + drift}
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    age = f"{oldest:.0f}s" if oldest is not None else "-"
    click.echo(f"pending {pending} (oldest {age}, retrying {retrying}), failed {document['failed']}, "
               f"blocked {document['blocked']}, conflicts {len(conflicts)}, JSM drift {len(drift)}, "
               f"done {document['done']}")
    if not jsm["checked"]:
        click.echo(f"JSM not checked: {jsm['reason']}")
    if document["problems"]:
        table = Table("job", "status", "kind", "entity", "attempts", "last error")
        for p in document["problems"]:
            table.add_row(str(p["id"] or "-"), p["status"], p["kind"], p["entity_id"], str(p["attempts"]),
                          p["last_error"] or "")
        echo_table(table)


def _problem(mark) -> dict:
    status = "retrying" if mark.status == outbox.PENDING else mark.status
    return {"id": mark.id, "status": status, "kind": mark.kind, "entity_id": mark.entity_id,
            "directory_id": mark.directory_id, "attempts": mark.attempts, "last_error": mark.last_error,
            "updated_at": mark.updated_at.isoformat()}


def _jsm_drift(cli: CliContext, services) -> tuple[dict, list[dict]]:
    """Ask JSM which recorded organizations it lacks: ``({"checked": ...}, problem entries)``."""
    from jsm_client import JsmError
    from scim_server.sync.jsm import make_jsm_client
    from scim_server.sync.reconcile import organizations_missing_in_jsm

    try:
        with make_jsm_client(cli.jsm_settings(), max_retry_seconds=10.0) as client:
            missing = organizations_missing_in_jsm(services.session_factory, client)
    except (ValueError, JsmError) as exc:
        return {"checked": False, "reason": str(exc)}, []
    now = datetime.now(timezone.utc).isoformat()
    return {"checked": True}, [
        {"id": None, "status": "drift", "kind": "org", "entity_id": name, "directory_id": None, "attempts": 0,
         "last_error": f"recorded as JSM organization {org_id}, which JSM no longer has: `jsm-scim sync reconcile` "
                       "(or the organization's next change) creates it again with its members and desk links",
         "updated_at": now}
        for name, org_id in missing]


def _conflict(row) -> dict:
    """A refused cross-directory lead, shaped like a job problem (it has no job of its own)."""
    return {"id": None, "status": "conflict", "kind": "organization", "entity_id": row.org_key,
            "directory_id": row.directory_id, "attempts": 0, "last_error": row.message,
            "updated_at": row.detected_at.isoformat()}


@sync_group.command("retry")
@click.argument("job_id", type=int, required=False)
@pass_cli
def retry(cli: CliContext, job_id: int | None) -> None:
    """Re-queue failed (and blocked) jobs, or the one job JOB_ID."""
    with transaction(cli.services().session_factory) as session:
        count = outbox.retry(session, job_id)
    if job_id is not None and count == 0:
        raise LookupError(f"no failed or blocked job {job_id}")
    click.echo(f"re-queued {count} job{'s' if count != 1 else ''}")


@sync_group.command("reconcile")
@click.option("--dry-run", is_flag=True, help="Only report what would change.")
@pass_cli
def reconcile_command(cli: CliContext, dry_run: bool) -> None:
    """Compare stored state with JSM and repair drift (removes only what the bridge owns)."""
    from jsm_client import JsmError
    from scim_server.sync.jsm import make_jsm_client

    services = cli.jsm_services()
    rules = _rules(cli)
    try:
        result = _run_reconcile(services, make_jsm_client(services.settings), rules, dry_run,
                                cli.settings.sync_batch_size)
    except JsmError as exc:
        raise click.ClickException(f"JSM: {exc}") from exc
    _print_reconcile(result)


def _run_reconcile(services, client, rules: Rules, dry_run: bool, batch_size: int):
    from scim_server.sync.reconcile import reconcile

    with client, _progress() as progress:
        task = progress.add_task("reading JSM", total=None)

        def advance(name: str, index: int, total: int) -> None:
            progress.update(task, description=name[:40], completed=index, total=total)

        return reconcile(services.session_factory, client, rules, dry_run=dry_run, batch_size=batch_size,
                         progress=advance, policy=SyncPolicy.from_settings(services.settings))


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=None, transient=False)


def _print_reconcile(result) -> None:
    verb = "would change" if result.dry_run else "changed"
    if result.changes:
        table = Table("organization", "operations")
        for plan in result.changes:
            table.add_row(plan.name, ", ".join(_describe(op) for op in plan.operations))
        echo_table(table)
    click.echo(f"reconcile: {len(result.changes)} of {len(result.plans)} organizations {verb}")
    if result.changes:
        click.echo(f"{verb}: " + ", ".join(f"{label} {count}" for label, count in _totals(result).items()))
    if result.accounts_missing:
        click.echo(f"{result.accounts_missing} desired members had no JSM account"
                   + (" (would be created)" if result.dry_run else " (created or looked up)"))
    if result.accounts_lost:
        click.echo(f"{result.accounts_lost} recorded accounts JSM no longer shows"
                   + (" (would be created again)" if result.dry_run else " (created again)"))
    if result.properties_missing:
        click.echo(f"{result.properties_missing} organizations of the bridge without its ownership property"
                   + (" (would be set)" if result.dry_run else " (set)"))
    for message in result.refused:
        click.echo(f"refused: {message}")
    for message in result.problems:
        click.echo(f"problem: {message}")
    if not (result.changes or result.refused or result.problems or result.accounts_lost
            or result.properties_missing):
        click.echo("JSM matches the desired state")


def _totals(result) -> dict[str, int]:
    """Counts of what reconcile changed (its report) or would change (its plans, on a dry run)."""
    from scim_server.sync import differ

    if not result.dry_run:
        report = result.report
        return {"organizations created or adopted": len(report.created) + len(report.adopted),
                "deleted": len(report.deleted), "members added": report.members_added,
                "members removed": report.members_removed, "desk links added": report.links_added,
                "desk links removed": report.links_removed}
    ops = [op for plan in result.changes for op in plan.operations]

    def count(kind, weight=lambda op: 1) -> int:
        return sum(weight(op) for op in ops if isinstance(op, kind))

    size = lambda op: len(op.account_ids)  # noqa: E731
    return {"organizations created or adopted": count(differ.EnsureOrganization),
            "deleted": count(differ.DeleteOrganization), "members added": count(differ.AddMembers, size),
            "members removed": count(differ.RemoveMembers, size), "desk links added": count(differ.LinkDesk),
            "desk links removed": count(differ.UnlinkDesk)}


def _describe(op) -> str:
    name = type(op).__name__
    if hasattr(op, "account_ids"):
        return f"{name}({len(op.account_ids)})"
    if hasattr(op, "project_key"):
        return f"{name}({op.project_key})"
    return name


def _rules(cli: CliContext) -> Rules:
    return RulesProvider(cli.settings).current()


@main.group()
def mappings() -> None:
    """The mapping rules file (JSM_SCIM_MAPPINGS)."""


@mappings.command("check")
@pass_cli
def check(cli: CliContext) -> None:
    """Validate the rules file and summarise it."""
    path = cli.settings.mappings_path
    rules = load_rules(path) if path else DEFAULT_RULES
    click.echo(f"rules: {path or 'none configured (on-the-fly group mapping, all portals allowed)'}")
    click.echo(f"  on_the_fly: {str(rules.on_the_fly).lower()}")
    click.echo(f"  group mappings: {len(rules.groups)}, domain rules: {len(rules.domains)}")
    if rules.portals is None:
        click.echo("  portals: no [portals] section (nothing linked, every portal allowed)")
    else:
        for org, keys in sorted(rules.portals.items()):
            click.echo(f"  portals: {org} -> {', '.join(keys) or '(none)'}")
    for name, own in sorted(rules.directories.items()):
        on_the_fly = "global" if own.on_the_fly is None else str(own.on_the_fly).lower()
        click.echo(f"  directory {name}: on_the_fly {on_the_fly}, prefix {own.organization_prefix!r}, "
                   f"group mappings {len(own.groups)}, domain rules {len(own.domains)}")
        for org, keys in sorted((own.portals or {}).items()):
            click.echo(f"    portals: {org} -> {', '.join(keys) or '(none)'}")
    for key, names in sorted(rules.shared.items()):
        click.echo(f"  shared: {key} -> {', '.join(sorted(names))}")
    for warning in rule_collisions(rules):
        click.echo(f"  warning: {warning}")
    unknown = _unknown_project_keys(cli, rules)
    for key, organizations in sorted(unknown.items()):
        click.echo(f"  error: unknown project key {key} (portals of {', '.join(sorted(organizations))}): "
                   "JSM has no service desk with it")
    if unknown:
        raise click.ClickException(f"{len(unknown)} project key{'s' if len(unknown) != 1 else ''} of the rules "
                                   f"unknown to JSM: {', '.join(sorted(unknown))}")
    click.echo("ok")


def _unknown_project_keys(cli: CliContext, rules: Rules) -> dict[str, list[str]]:
    """The rules' project keys that JSM does not know, when JSM can be asked (else a note and none)."""
    from jsm_client import JsmError
    from scim_server.sync.jsm import make_jsm_client
    from scim_server.sync.site import SiteUnavailable
    from scim_server.sync.site_check import rules_project_keys

    named = rules_project_keys(rules)
    if not named:
        return {}
    try:
        settings = cli.jsm_settings()
        with make_jsm_client(settings, max_attempts=2, max_retry_seconds=10.0) as client:
            known = {desk.project_key.upper() for desk in client.iter_service_desks()}
    except (SiteUnavailable, JsmError) as exc:
        click.echo(f"  note: project keys not checked against JSM ({exc})")
        return {}
    click.echo(f"  project keys checked against JSM at {settings.jsm_url}: {len(named)}")
    return {key: organizations for key, organizations in named.items() if key not in known}


@mappings.command("explain")
@click.argument("email")
@click.option("--directory", default=None, help="Only the user of this directory.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_cli
def explain_command(cli: CliContext, email: str, directory: str | None, as_json: bool) -> None:
    """Which organizations and portals the user with EMAIL gets, and why."""
    from scim_server.sync.explain import explain

    rules = _rules(cli)
    with transaction(cli.services().session_factory) as session:
        found = explain(session, rules, email, directory)
    if not found:
        raise LookupError(f"no user with userName or e-mail {email}" + (f" in directory {directory}" if directory else ""))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for user in found:
        click.echo(f"{user['user_name']} (directory {user['directory']}, {'active' if user['active'] else 'inactive'})")
        click.echo(f"  JSM account e-mail: {user['account_email'] or '-'}; account id: {user['jsm_account_id'] or '-'}")
        for grant in user["grants"]:
            refused = f" - REFUSED: {grant['refused']}" if grant["refused"] else ""
            click.echo(f"  -> {grant['organization']}: {grant['reason']}{refused}")
        if not user["grants"]:
            click.echo("  -> no organization")
        portals = "all (no [portals] section)" if user["portals"] is None else (", ".join(user["portals"]) or "none")
        click.echo(f"  portals: {portals}")
        for note in user["notes"]:
            click.echo(f"  note: {note}")

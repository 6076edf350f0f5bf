"""``jsm-scim serve``: the whole product on one machine (SCIM API, SAML shim, sync worker).

When no JSM site is configured, the built-in JSM emulator runs in-process and its URL is logged and
published in the database (with the path of its token file, ``sync.site``), so every CLI command
works beside it; its state is kept in ``jsm-scim.emulator.json`` (0600) beside the database, so a
restart does not lose "JSM". With a configured site, the site is checked first
(``sync.site_check.preflight``): missing or rejected credentials refuse to start.
Production runs ``gunicorn wsgi:app`` plus ``jsm-scim worker`` processes instead.

HTTP is served by waitress, a production WSGI server: one event loop reads every request whole
(headers and body) before a thread of a fixed pool runs the application, so idle or slowly
sending clients cost a socket and a buffer, never a thread (``SERVER_OPTIONS``).
"""
from __future__ import annotations

import logging
import secrets
import threading
from pathlib import Path

import click
from waitress.server import create_server

from scim_server.cli import CliContext, main, pass_cli
from scim_server.cli.sync import configure_process_logging, stop_on_signals
from scim_server.private_files import write_private_text
from scim_server.settings import Settings

log = logging.getLogger("scim_server.serve")


@main.command()
@click.option("--host", default=None, help="Interface to listen on (default JSM_SCIM_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default JSM_SCIM_PORT or 8000).")
@pass_cli
def serve(cli: CliContext, host: str | None, port: int | None) -> None:
    """Run SCIM API, SAML login and the sync worker together (embedded single-machine mode)."""
    settings = cli.settings.with_overrides(host=host or cli.settings.host,
                                        port=cli.settings.port if port is None else port)
    configure_process_logging(settings)
    _require_free_port(settings)
    if not settings.uses_emulator:
        from scim_server.sync.site_check import preflight

        preflight(settings, log)
    stop = threading.Event()
    stop_on_signals(stop)
    emulator = _start_emulator(settings) if settings.uses_emulator else None
    try:
        if emulator is not None:
            settings = _use_emulator(settings, emulator)
        run_embedded(settings, stop, emulator)
    finally:
        if emulator is not None:
            emulator.stop()


EMULATOR_TOKEN_FILE = "jsm-scim.emulator-token"
EMULATOR_STATE_FILE = "jsm-scim.emulator.json"


def emulator_state_file(settings: Settings) -> Path:
    """Beside the SQLite database file; in the working directory for a server database."""
    from sqlalchemy.engine import make_url

    from scim_server.db import is_sqlite, normalize_url

    url = normalize_url(settings.database_url)
    database = make_url(url).database if is_sqlite(url) else None
    if database and database != ":memory:" and not database.startswith("file:"):
        return Path(database).resolve().parent / EMULATOR_STATE_FILE
    return Path(EMULATOR_STATE_FILE).resolve()


def _require_free_port(settings: Settings) -> None:
    """One clear line, before anything starts, when the port is taken."""
    import socket

    if settings.port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress does: TIME_WAIT is no user
        try:
            probe.bind((settings.host, settings.port))
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {settings.host}:{settings.port}: "
                                       f"{exc.strerror or exc} (another process uses it? choose --port)") from None


def _start_emulator(settings: Settings):
    """The built-in emulator with a token of this run: its JSM API (the password of the basic
    credentials) and its state-changing test endpoints (``Authorization: Bearer TOKEN``) need it,
    so another local user cannot change what the bridge believes JSM holds. The token is written
    to ``jsm-scim.emulator-token`` (0600) in the working directory, never logged."""
    from jsm_client.emulator import EmulatorServer, JsmEmulator
    from scim_server.sync.site import EMULATOR_EMAIL

    token = secrets.token_urlsafe(24)
    write_private_text(Path(EMULATOR_TOKEN_FILE), token)
    state_file = emulator_state_file(settings)
    emulator = JsmEmulator(expected_email=EMULATOR_EMAIL, expected_token=token, admin_token=token,
                           state_file=state_file)
    host = settings.host if settings.host in ("127.0.0.1", "localhost") else "127.0.0.1"
    server = EmulatorServer(host, emulator=emulator).start()
    log.info("JSM emulator at %s, try curl %s/_emulator/state (no JSM_SCIM_JSM_URL configured); POST "
             "/_emulator/faults and /_emulator/reset want the bearer token kept in %s",
             server.url, server.url, EMULATOR_TOKEN_FILE)
    log.info("JSM emulator state kept in %s", state_file)
    return server


def _use_emulator(settings: Settings, server) -> Settings:
    from scim_server.sync.site import EMULATOR_EMAIL

    return settings.with_overrides(jsm_url=server.url, jsm_email=EMULATOR_EMAIL,
                                   jsm_api_token=server.emulator.expected_token)


def run_embedded(settings: Settings, stop: threading.Event, emulator=None) -> None:
    """Migrate, start the worker thread and the HTTP server; return after ``stop`` is set.
    With the built-in ``emulator``, its customer SSO is wired to the bridge's IdP."""
    from scim_server.app import create_app
    from scim_server.services import services_of
    from scim_server.sync.worker import run_worker

    # Bind first: with --port 0 the default public URL (SAML entity ID, links) needs the real port.
    holder: dict[str, object] = {}
    server = create_server(lambda environ, start: holder["app"](environ, start), host=settings.host,
                           port=settings.port, max_request_body_size=settings.max_body_bytes + 1, **SERVER_OPTIONS)
    if settings.port == 0:
        settings = settings.with_overrides(port=server.effective_port)
    holder["app"] = app = create_app(settings, migrate=True)
    services = services_of(app)
    if emulator is not None:
        from scim_server.idp.emulator_link import connect_emulator_sso
        from scim_server.sync.site import publish_emulator

        connect_emulator_sso(services, emulator)
        publish_emulator(services.session_factory, emulator.url, Path(EMULATOR_TOKEN_FILE))
    worker = None
    if settings.run_worker_in_process:
        worker = threading.Thread(target=_worker_loop, args=(run_worker, services, stop), name="sync-worker",
                                  daemon=True)
        worker.start()
    http = threading.Thread(target=server.run, name="http", daemon=True)
    http.start()
    log.info("serving on http://%s:%s (SCIM base %s/scim/v2)", settings.host, server.effective_port,
             settings.effective_public_url)
    if not settings.log_json:  # JSON logs: every stderr line is JSON (the log line above says it)
        click.echo(f"jsm-scim serving on http://{settings.host}:{server.effective_port}", err=True)
    try:
        stop.wait()
    finally:
        log.info("shutting down")
        _stop_server(server)
        http.join(timeout=10)
        if worker is not None:
            worker.join(timeout=30)
        if emulator is not None:
            _withdraw(services, emulator.url)
        services.engine.dispose()


#: waitress settings of ``serve``: the application's threads, and how many connections (idle or
#: sending slowly) the event loop holds; an inactive connection is closed after ``channel_timeout``.
SERVER_OPTIONS = {"threads": 8, "connection_limit": 1000, "channel_timeout": 60, "asyncore_use_poll": True,
                  "ident": "jsm-scim-bridge", "clear_untrusted_proxy_headers": True}


def _stop_server(server) -> None:
    """Close the listening socket and every connection; the event loop ends when none is left."""
    for channel in list(server.active_channels.values()):
        channel.will_close = True
    server.pull_trigger()
    server.close()
    server.task_dispatcher.shutdown(timeout=5)


def _withdraw(services, url: str) -> None:
    from scim_server.sync.site import withdraw_emulator

    try:
        withdraw_emulator(services.session_factory, url)
    except Exception:  # noqa: BLE001 - shutting down: a stale entry only makes the CLI say serve is gone
        log.warning("could not withdraw the published emulator URL", exc_info=True)


def _worker_loop(run_worker, services, stop: threading.Event) -> None:
    """Keep the in-process worker alive: an unexpected error is logged and the loop restarts."""
    while not stop.is_set():
        try:
            run_worker(services, stop)
        except Exception:  # noqa: BLE001 - the HTTP side must keep running
            log.exception("sync worker crashed; restarting in 5 seconds")
            stop.wait(5)

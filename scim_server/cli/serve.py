"""``jsm-scim serve``: the whole product on one machine (SCIM API, SAML shim, sync worker).

When no JSM site is configured, the built-in JSM emulator runs in-process and its URL is logged.
Production runs ``gunicorn wsgi:app`` plus ``jsm-scim worker`` processes instead.
"""
from __future__ import annotations

import logging
import threading

import click
from werkzeug.serving import WSGIRequestHandler, make_server

from scim_server.cli import CliContext, main, pass_cli
from scim_server.cli.sync import configure_process_logging, stop_on_signals
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
    stop = threading.Event()
    stop_on_signals(stop)
    emulator = _start_emulator(settings) if settings.uses_emulator else None
    try:
        if emulator is not None:
            settings = _use_emulator(settings, emulator.url)
        run_embedded(settings, stop, emulator)
    finally:
        if emulator is not None:
            emulator.stop()


def _start_emulator(settings: Settings):
    from jsm_client.emulator import EmulatorServer

    server = EmulatorServer(settings.host if settings.host in ("127.0.0.1", "localhost") else "127.0.0.1").start()
    log.info("JSM emulator at %s, try curl %s/_emulator/state (no JSM_SCIM_JSM_URL configured)",
             server.url, server.url)
    return server


def _use_emulator(settings: Settings, url: str) -> Settings:
    from scim_server.sync.jsm import EMULATOR_EMAIL, EMULATOR_TOKEN

    return settings.with_overrides(jsm_url=url, jsm_email=EMULATOR_EMAIL, jsm_api_token=EMULATOR_TOKEN)


def run_embedded(settings: Settings, stop: threading.Event, emulator=None) -> None:
    """Migrate, start the worker thread and the HTTP server; return after ``stop`` is set.
    With the built-in ``emulator``, its customer SSO is wired to the bridge's IdP."""
    from scim_server.app import create_app
    from scim_server.services import services_of
    from scim_server.sync.worker import run_worker

    # Bind first: with --port 0 the default public URL (SAML entity ID, links) needs the real port.
    server = make_server(settings.host, settings.port, None, threaded=True, request_handler=_QuietRequestHandler)
    if settings.port == 0:
        settings = settings.with_overrides(port=server.server_port)
    server.app = app = create_app(settings, migrate=True)
    services = services_of(app)
    if emulator is not None:
        from scim_server.idp.emulator_link import connect_emulator_sso

        connect_emulator_sso(services, emulator)
    worker = None
    if settings.run_worker_in_process:
        worker = threading.Thread(target=_worker_loop, args=(run_worker, services, stop), name="sync-worker",
                                  daemon=True)
        worker.start()
    http = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    http.start()
    log.info("serving on http://%s:%d (SCIM base %s/scim/v2)", settings.host, server.server_port,
             settings.effective_public_url)
    click.echo(f"jsm-scim serving on http://{settings.host}:{server.server_port}", err=True)
    try:
        stop.wait()
    finally:
        log.info("shutting down")
        server.shutdown()
        server.server_close()
        if worker is not None:
            worker.join(timeout=30)
        services.engine.dispose()


class _QuietRequestHandler(WSGIRequestHandler):
    """No werkzeug access line: the app already logs one per request (``jsm_scim.access``)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _worker_loop(run_worker, services, stop: threading.Event) -> None:
    """Keep the in-process worker alive: an unexpected error is logged and the loop restarts."""
    while not stop.is_set():
        try:
            run_worker(services, stop)
        except Exception:  # noqa: BLE001 - the HTTP side must keep running
            log.exception("sync worker crashed; restarting in 5 seconds")
            stop.wait(5)

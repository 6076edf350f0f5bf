"""``jsm-scim emulator``"""
import click

from scim_server.cli import main


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--burst-limit", type=click.IntRange(min=0), default=0, show_default=True,
              help="At most this many requests per route per window, answered 429 with JSM's rate-limit "
                   "headers beyond it (0: no limit).")
@click.option("--burst-window", type=click.FloatRange(min=0.001), default=1.0, show_default=True,
              help="Seconds of one burst-limit window.")
def emulator(host: str, port: int, burst_limit: int, burst_window: float) -> None:
    """Run the JSM Cloud emulator alone (for demos and tests)."""
    from jsm_client.emulator import run_emulator

    limits = {"burst_limit": burst_limit, "burst_window_s": burst_window} if burst_limit else {}
    run_emulator(host, port, **limits)

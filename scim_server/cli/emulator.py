"""``jsm-scim emulator``"""
import click

from scim_server.cli import main


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
def emulator(host: str, port: int) -> None:
    """Run the JSM Cloud emulator alone (for demos and tests)."""
    from jsm_client.emulator import run_emulator

    run_emulator(host, port)

"""The ``jsm-scim`` admin command line."""
from __future__ import annotations

import sys

import click

from scim_server.settings import SettingsError, load_settings


class CliContext:
    """Lazily built settings and database services shared by the subcommands."""

    def __init__(self) -> None:
        self._settings = None
        self._services = None

    @property
    def settings(self):
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    def services(self, migrate: bool = True):
        if self._services is None:
            from scim_server.app import build_services

            self._services = build_services(self.settings, migrate=migrate)
        return self._services


pass_cli = click.make_pass_decorator(CliContext, ensure=True)


class _Group(click.Group):
    """Turns expected failures into a one-line error on stderr and a non-zero exit status."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (SettingsError, ValueError, LookupError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(package_name="jsm-scim-bridge")
@click.pass_context
def main(ctx: click.Context) -> None:
    """SCIM 2.0 provisioning and SAML login for Jira Service Management customers."""
    ctx.ensure_object(CliContext)


def _register() -> None:
    from scim_server.cli import db, emulator, keys, ops, serve, sso, sync  # noqa: F401


_register()

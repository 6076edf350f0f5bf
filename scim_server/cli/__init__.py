"""The ``jsm-scim`` admin command line."""
from __future__ import annotations

import sys

import click
from sqlalchemy.exc import OperationalError

from scim_server import __version__
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
            from scim_server.services import build_services

            self._services = build_services(self.settings, migrate=migrate)
        return self._services

    def override(self, **changes) -> None:
        """Command-line options that stand for settings (before the services are built)."""
        assert self._services is None, "override settings before opening the database"
        self._settings = self.settings.with_overrides(**changes)

    def jsm_services(self):
        """The services with the JSM site resolved: ``JSM_SCIM_JSM_URL``, or the emulator that a running
        ``jsm-scim serve`` published in the database (``sync.site``)."""
        from dataclasses import replace

        from scim_server.sync.site import resolve_site

        services = self.services()
        return replace(services, settings=resolve_site(services.settings, services.session_factory))

    def jsm_settings(self):
        """The settings with the JSM site resolved; the database is opened only when needed (and a
        missing SQLite file is not created: no ``serve`` can have published anything there)."""
        if not self.settings.uses_emulator:
            return self.settings
        from pathlib import Path

        from sqlalchemy.engine import make_url

        from scim_server.db import is_sqlite, normalize_url
        from scim_server.sync.site import SiteUnavailable

        url = normalize_url(self.settings.database_url)
        database = make_url(url).database if is_sqlite(url) else None
        if database and not database.startswith("file:") and database != ":memory:" and not Path(database).exists():
            raise SiteUnavailable("JSM_SCIM_JSM_URL is not set and no `jsm-scim serve` runs on this database")
        return self.jsm_services().settings


pass_cli = click.make_pass_decorator(CliContext, ensure=True)


class _Group(click.Group):
    """Every failure ends as a one-line error on stderr and a non-zero exit status (CONTRACT)."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.UsageError as exc:
            _fail(exc.format_message(), 2)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("aborted", 1)
        except (SettingsError, ValueError, LookupError) as exc:
            _fail(str(exc), 1)
        except OperationalError as exc:
            _fail(f"database unreachable: {str(exc.orig).strip().splitlines()[0]}", 1)
        if isinstance(code, int) and code != 0:  # click.exceptions.Exit with a status
            sys.exit(code)
        return code


def _fail(message: str, status: int) -> None:
    click.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(status)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="jsm-scim")  # the one place: scim_server.__version__
@click.pass_context
def main(ctx: click.Context) -> None:
    """SCIM 2.0 provisioning and SAML login for Jira Service Management customers."""
    ctx.ensure_object(CliContext)


def _register() -> None:
    from scim_server.cli import (  # noqa: F401
        db,
        directories,
        emulator,
        idp,
        jsm,
        keys,
        ops,
        serve,
        sso,
        sso_atlassian,
        sync,
    )


_register()

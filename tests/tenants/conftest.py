"""Fixtures of the tenant tests: one SCIM client per directory over real HTTP, the worker against
the emulator, and a rules file."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from scim_server.cli import main
from tests.fixtures.db import issue_token
from tests.sync.conftest import rules_file, services, sync  # noqa: F401  (fixtures shared with tests/sync)
from tests.tenants.scim_client import Scim


@pytest.fixture
def idps(live_server, session_factory):
    """``idps("acme", "globex")`` -> {name: Scim}: each directory's IdP with its own key."""
    def make(*names: str) -> dict[str, Scim]:
        return {name: Scim(live_server, issue_token(session_factory, f"{name}-idp", name)) for name in names}

    return make


@pytest.fixture
def admin(database_url, request, tmp_path, monkeypatch):
    """``admin("sync", "status", "--json")``: the admin CLI on the test database and rules file;
    returns parsed JSON when the output is JSON, else the click Result."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    rules_path = request.getfixturevalue("rules_file")

    def run(*args: str):
        env = {"JSM_SCIM_DATABASE_URL": database_url}
        if rules_path.exists():
            env["JSM_SCIM_MAPPINGS"] = str(rules_path)
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        if "--json" in args:
            assert result.exit_code == 0, result.output
            return json.loads(result.stdout)
        return result

    return run

"""Fixtures of the key tests."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from scim_server.cli import main


@pytest.fixture
def cli(database_url, tmp_path, monkeypatch):
    """Runs ``jsm-scim ARGS`` against the test database; returns the click Result."""
    monkeypatch.chdir(tmp_path)  # no stray .env file from the repository
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), env={"JSM_SCIM_DATABASE_URL": database_url}, catch_exceptions=False)

    return run

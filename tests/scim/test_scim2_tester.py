"""The external checker scim2-tester (through scim2-cli) against the server on a real socket.

No check may fail.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scim_server.settings import Settings
from tests.fixtures.db import issue_token


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The checker fires requests back to back: lift the per-key rate limit for it."""
    return Settings(database_url=database_url, secret_key="test-secret", public_url="http://testserver",
                    rate_limit_per_key=100_000.0, rate_limit_burst=100_000)


def _scim_command() -> list[str]:
    executable = shutil.which("scim") or str(Path(sys.executable).with_name("scim"))
    if not Path(executable).exists():
        pytest.skip("scim2-cli is not installed")
    return [executable]


def failed_checks(output: str) -> list[tuple[str, str]]:
    """(check name, reason) of every ERROR/CRITICAL line in scim2-tester's report."""
    lines = output.splitlines()
    failures = []
    for index, line in enumerate(lines):
        match = re.match(r"\s*(ERROR|CRITICAL)\s+(\S+)", line)
        if match:
            reason = lines[index + 1].strip() if index + 1 < len(lines) else ""
            failures.append((match.group(2), reason))
    return failures


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_scim2_tester_finds_no_failures(live_server, session_factory):
    token = issue_token(session_factory, "scim2-tester")
    result = subprocess.run(
        [*_scim_command(), "--url", f"{live_server}/scim/v2", "--header", f"Authorization: Bearer {token}", "test"],
        capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    assert output.count("SUCCESS") > 50, output[-3000:]
    assert failed_checks(output) == [], output[-6000:]

"""The external checker scim2-tester (through scim2-cli) against ``jsm-scim serve`` on its defaults.

No check may fail, and none may meet a 429: a conformance run is not abuse.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

JSM_SCIM = str(Path(sys.executable).parent / "jsm-scim")


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_scim2_tester_finds_no_failures_against_serve_on_defaults(tmp_path):
    """``jsm-scim serve`` exactly as a new user runs it (no setting but the database file): the
    default per-key rate limit lets a conformance run through."""
    command = _scim_command()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSM_SCIM_")}
    env["JSM_SCIM_DATABASE_URL"] = f"sqlite:///{tmp_path}/conformance.db"
    created = subprocess.run([JSM_SCIM, "keys", "create", "--name", "scim2-tester"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    port = _free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen([JSM_SCIM, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                                  stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 90
        while "jsm-scim serving on" not in log_path.read_text():
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.2)
        result = subprocess.run(
            [*command, "--url", f"http://127.0.0.1:{port}/scim/v2", "--header", f"Authorization: Bearer {token}",
             "test"], capture_output=True, text=True, timeout=300,
        )
    finally:
        server.terminate()
        server.wait(30)
    output = result.stdout + result.stderr
    assert output.count("SUCCESS") > 50, output[-3000:]
    assert failed_checks(output) == [], output[-6000:]
    served = log_path.read_text()
    assert " 429 " not in served and served.count("jsm_scim.access") > 50

"""``jsm-scim serve``: embedded mode with the in-process emulator, as a new user would run it."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

JSM_SCIM = str(Path(sys.executable).parent / "jsm-scim")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_until(stream, pattern: str, timeout: float, seen: list[str]) -> re.Match:
    """Read lines (kept in ``seen``) until one matches ``pattern``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"{pattern!r} not logged; got:\n{''.join(seen)}")


def _converge(emulator_url: str, expected: dict, timeout: float = 60) -> dict:
    """Poll ``/_emulator/state`` until organizations (name -> member e-mails) equal ``expected``."""
    deadline = time.monotonic() + timeout
    while True:
        state = requests.get(f"{emulator_url}/_emulator/state", timeout=5).json()
        email = {c["accountId"]: c["emailAddress"] for c in state["customers"]}
        orgs = {o["name"]: sorted(email[a] for a in o["accountIds"]) for o in state["organizations"]}
        if orgs == expected or time.monotonic() > deadline:
            assert orgs == expected
            return state
        time.sleep(0.2)


def test_serve_pushes_scim_changes_to_the_embedded_emulator_under_faults(tmp_path):
    env = {**os.environ, "JSM_SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/serve.db", "JSM_SCIM_LOG_LEVEL": "INFO"}
    env.pop("JSM_SCIM_JSM_URL", None)
    created = subprocess.run([JSM_SCIM, "keys", "create", "--name", "idp"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    port = _free_port()
    server = subprocess.Popen([JSM_SCIM, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                              stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    log_lines: list[str] = []
    try:
        emulator_url = _read_until(server.stderr, r"JSM emulator at (http://[\d.:]+)", 60, log_lines).group(1)
        _read_until(server.stderr, r"jsm-scim serving on", 60, log_lines)
        threading.Thread(target=lambda: log_lines.extend(server.stderr), daemon=True).start()  # drain the pipe
        faults = {"rate_limit_every": 3, "error_every": 5, "retry_after_s": 0}
        refused = requests.post(f"{emulator_url}/_emulator/faults", json=faults, timeout=5)
        assert refused.status_code == 401  # the emulator of `serve` needs this run's token
        token_file = tmp_path / "jsm-scim.emulator-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        emulator_token = token_file.read_text().strip()
        assert emulator_token not in "".join(log_lines)
        forged = requests.post(f"{emulator_url}/rest/servicedeskapi/organization", json={"name": "Forged"},
                               auth=("bridge@emulator.invalid", "emulator"), timeout=5)
        assert forged.status_code == 401  # its JSM API wants this run's token too
        requests.post(f"{emulator_url}/_emulator/faults", json=faults, timeout=5,
                      headers={"Authorization": f"Bearer {emulator_token}"}).raise_for_status()
        scim = requests.Session()
        scim.headers.update({"Authorization": f"Bearer {token}"})
        base = f"http://127.0.0.1:{port}/scim/v2"
        ids = []
        for name in ("alice@acme.com", "bob@acme.com"):
            user = scim.post(f"{base}/Users", timeout=10, json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})
            assert user.status_code == 201, user.text
            ids.append(user.json()["id"])
        group = scim.post(f"{base}/Groups", timeout=10, json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Staff",
            "members": [{"value": i} for i in ids]})
        assert group.status_code == 201, group.text
        _converge(emulator_url, {"Staff": ["alice@acme.com", "bob@acme.com"]})

        deactivate = scim.patch(f"{base}/Users/{ids[1]}", timeout=10, json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}]})
        assert deactivate.status_code == 200, deactivate.text
        state = _converge(emulator_url, {"Staff": ["alice@acme.com"]})
        assert sorted(c["emailAddress"] for c in state["customers"]) == ["alice@acme.com", "bob@acme.com"]
        stats = requests.get(f"{emulator_url}/_emulator/stats", timeout=5).json()
        assert stats["effects"]["customers_created"] == 2 and stats["effects"]["members_added"] == 2
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    assert server.returncode == 0
    log = "".join(log_lines)
    assert "failed (status 429)" in log and "failed (status 503)" in log  # the faults did happen
    assert log.count("jsm_scim.access") >= 4  # our access line, once per request ...
    assert "werkzeug" not in log and '"POST /scim/v2/Users HTTP/1.1"' not in log  # ... and not werkzeug's too
    assert "INFO alembic" not in log


def test_serve_on_port_zero_links_to_the_port_it_bound(tmp_path):
    """``serve --port 0`` picks a free port; the default public URL (SAML entity ID, ACS) names it."""
    env = {**os.environ, "JSM_SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/serve.db", "JSM_SCIM_LOG_LEVEL": "INFO"}
    for name in ("JSM_SCIM_JSM_URL", "JSM_SCIM_PUBLIC_URL"):
        env.pop(name, None)
    server = subprocess.Popen([JSM_SCIM, "serve", "--port", "0"], env=env, cwd=tmp_path,
                              stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    log_lines: list[str] = []
    try:
        port = _read_until(server.stderr, r"jsm-scim serving on http://127\.0\.0\.1:(\d+)", 60, log_lines).group(1)
        threading.Thread(target=lambda: log_lines.extend(server.stderr), daemon=True).start()
        metadata = requests.get(f"http://127.0.0.1:{port}/saml/metadata", timeout=10).text
        assert f'entityID="http://127.0.0.1:{port}/saml/metadata"' in metadata
        assert f'Location="http://127.0.0.1:{port}/saml/acs"' in metadata
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)

"""``serve``/``worker`` and the JSM site: refusing to start on missing or rejected credentials (one line),
and the CLI working beside a ``serve`` that runs its emulator, whose state survives a restart."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
import requests

from jsm_client.emulator import EmulatorServer, JsmEmulator
from tests.sync.test_serve import JSM_SCIM, _converge, _read_until


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSM_SCIM_")}
    env.update(JSM_SCIM_DATABASE_URL=f"sqlite:///{tmp_path}/bridge.db", JSM_SCIM_ENV_FILE=os.devnull,
               JSM_SCIM_LOG_LEVEL="INFO", **values)
    return env


def _run(env: dict[str, str], cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([JSM_SCIM, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"]])
def test_missing_credentials_stop_serve_and_worker_with_one_line(tmp_path, command):
    env = _env(tmp_path, JSM_SCIM_JSM_URL="https://acme.atlassian.net")
    done = _run(env, tmp_path, *command)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: JSM_SCIM_JSM_EMAIL and JSM_SCIM_JSM_API_TOKEN must be set to talk to JSM"]


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"]])
def test_rejected_credentials_stop_serve_and_worker_with_one_line(tmp_path, command):
    with EmulatorServer(emulator=JsmEmulator(expected_email="bot@example.com", expected_token="right")) as site:
        env = _env(tmp_path, JSM_SCIM_JSM_URL=site.url, JSM_SCIM_JSM_EMAIL="bot@example.com",
                   JSM_SCIM_JSM_API_TOKEN="wrong-token")
        done = _run(env, tmp_path, *command)
        lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1
    assert lines == [f"error: JSM at {site.url}: credentials rejected for bot@example.com (401): check "
                     "JSM_SCIM_JSM_EMAIL and JSM_SCIM_JSM_API_TOKEN"]
    assert "Traceback" not in done.stderr and "wrong-token" not in done.stderr


def _start_serve(env, cwd) -> tuple[subprocess.Popen, str, str, list[str]]:
    server = subprocess.Popen([JSM_SCIM, "serve", "--port", "0"], env=env, cwd=cwd, stderr=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, text=True)
    seen: list[str] = []
    emulator_url = _read_until(server.stderr, r"JSM emulator at (http://[\d.:]+)", 60, seen).group(1)
    port = _read_until(server.stderr, r"jsm-scim serving on http://127\.0\.0\.1:(\d+)", 60, seen).group(1)
    threading.Thread(target=lambda: seen.extend(server.stderr), daemon=True).start()
    return server, emulator_url, f"http://127.0.0.1:{port}", seen


def _stop(server: subprocess.Popen) -> None:
    # serve's own bounds: HTTP 10 s, the worker thread's current job 30 s, then the withdrawal
    server.send_signal(signal.SIGTERM)
    server.wait(90)


def test_cli_works_beside_serve_and_its_emulator_keeps_state_across_restarts(tmp_path):
    # PUBLIC_URL names the bridge in the ownership property: serve (on a free port) and the CLI must agree
    env = _env(tmp_path, JSM_SCIM_PUBLIC_URL="https://bridge.example.com")
    token = _run(env, tmp_path, "keys", "create", "--name", "idp").stdout.strip().splitlines()[-1]
    server, emulator_url, base, _ = _start_serve(env, tmp_path)
    try:
        created = requests.post(f"{base}/scim/v2/Groups", headers={"Authorization": f"Bearer {token}"}, timeout=10,
                                json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                      "displayName": "Staff", "members": []})
        assert created.status_code == 201
        user = requests.post(f"{base}/scim/v2/Users", headers={"Authorization": f"Bearer {token}"}, timeout=10,
                             json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                   "userName": "alice@acme.com"})
        requests.patch(f"{base}/scim/v2/Groups/{created.json()['id']}", timeout=10,
                       headers={"Authorization": f"Bearer {token}"},
                       json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                             "Operations": [{"op": "add", "path": "members",
                                             "value": [{"value": user.json()["id"]}]}]}).raise_for_status()
        _converge(emulator_url, {"Staff": ["alice@acme.com"]})

        other = tmp_path / "elsewhere"  # the CLI finds serve's emulator through the database, from any directory
        other.mkdir()
        check = _run(env, other, "jsm", "check", "--json")
        assert check.returncode == 0, check.stderr
        assert json.loads(check.stdout)["site"] == emulator_url
        links = _run(env, other, "sso", "links", "--json")
        assert links.returncode == 0, links.stderr
        assert [p["projectKey"] for p in json.loads(links.stdout)] == ["HELP", "BILL"]
        reconcile = _run(env, other, "sync", "reconcile", "--dry-run")
        assert reconcile.returncode == 0, reconcile.stderr
        assert "JSM matches the desired state" in reconcile.stdout

        emulator_token = (tmp_path / "jsm-scim.emulator-token").read_text().strip()
        with sqlite3.connect(tmp_path / "bridge.db") as db:
            stored = " ".join(value for (value,) in db.execute("SELECT value FROM instance_values"))
        assert emulator_url in stored and emulator_token not in stored  # the URL, never the token
    finally:
        _stop(server)
    assert server.returncode == 0
    state_file = tmp_path / "jsm-scim.emulator.json"
    assert state_file.stat().st_mode & 0o777 == 0o600
    gone = _run(env, tmp_path, "sso", "links")
    assert gone.returncode == 1 and "no `jsm-scim serve`" in gone.stderr  # withdrawn on stop

    server, emulator_url, base, _ = _start_serve(env, tmp_path)
    try:
        state = requests.get(f"{emulator_url}/_emulator/state", timeout=5).json()
        assert [c["emailAddress"] for c in state["customers"]] == ["alice@acme.com"]
        assert [o["name"] for o in state["organizations"]] == ["Staff"]
    finally:
        _stop(server)

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


def _read_until(stream, pattern: str, timeout: float) -> re.Match:
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        line = stream.readline()
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"{pattern!r} not logged; got:\n{''.join(seen)}")


def test_serve_pushes_scim_changes_to_the_embedded_emulator(tmp_path):
    env = {**os.environ, "JSM_SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/serve.db", "JSM_SCIM_LOG_LEVEL": "INFO"}
    env.pop("JSM_SCIM_JSM_URL", None)
    created = subprocess.run([JSM_SCIM, "keys", "create", "--name", "idp"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    port = _free_port()
    server = subprocess.Popen([JSM_SCIM, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                              stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        emulator_url = _read_until(server.stderr, r"JSM emulator at (http://[\d.:]+)", 60).group(1)
        _read_until(server.stderr, r"jsm-scim serving on", 60)
        threading.Thread(target=server.stderr.read, daemon=True).start()  # keep the pipe from filling up
        scim = f"http://127.0.0.1:{port}/scim/v2"
        headers = {"Authorization": f"Bearer {token}"}
        user = requests.post(f"{scim}/Users", headers=headers, timeout=10, json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice@acme.com"})
        assert user.status_code == 201, user.text
        group = requests.post(f"{scim}/Groups", headers=headers, timeout=10, json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Staff",
            "members": [{"value": user.json()["id"]}]})
        assert group.status_code == 201, group.text

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = requests.get(f"{emulator_url}/_emulator/state", timeout=5).json()
            if state["organizations"] and state["organizations"][0]["accountIds"]:
                break
            time.sleep(0.2)
        assert [c["emailAddress"] for c in state["customers"]] == ["alice@acme.com"]
        assert [(o["name"], o["accountIds"]) for o in state["organizations"]] == [
            ("Staff", [state["customers"][0]["accountId"]])]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    assert server.returncode == 0

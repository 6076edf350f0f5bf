"""``jsm-scim serve`` with the built-in emulator wires the emulator's customer SSO to the bridge."""
from __future__ import annotations

import os
import subprocess
import threading

import requests

from tests.sync.test_serve import JSM_SCIM, _free_port, _read_until


def test_serve_turns_emulator_sso_on_against_its_own_idp(tmp_path):
    env = {**os.environ, "JSM_SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/serve.db", "JSM_SCIM_LOG_LEVEL": "INFO"}
    env.pop("JSM_SCIM_JSM_URL", None)
    env.pop("JSM_SCIM_PUBLIC_URL", None)
    port = _free_port()
    server = subprocess.Popen([JSM_SCIM, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                              stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    seen: list[str] = []
    try:
        emulator_url = _read_until(server.stderr, r"JSM emulator at (http://[\d.:]+)", 60, seen).group(1)
        _read_until(server.stderr, r"jsm-scim serving on", 60, seen)
        threading.Thread(target=lambda: seen.extend(server.stderr), daemon=True).start()
        bridge = f"http://127.0.0.1:{port}"

        sso = requests.get(f"{emulator_url}/_emulator/sso", timeout=10).json()
        assert sso["enabled"] is True and sso["idp_entity_id"] == f"{bridge}/idp/metadata"
        shown = subprocess.run([JSM_SCIM, "sso", "atlassian", "--show", "--json"], env={
            **env, "JSM_SCIM_PUBLIC_URL": bridge}, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert f'"acs_url": "{sso["acs_url"]}"' in shown.stdout  # the emulator is the registered SP

        portal = requests.get(f"{emulator_url}/servicedesk/customer/portal/1", allow_redirects=False, timeout=10)
        assert portal.status_code == 302 and portal.headers["Location"].startswith(f"{bridge}/idp/sso?")
        at_idp = requests.get(portal.headers["Location"], allow_redirects=False, timeout=10)
        assert at_idp.status_code == 302 and at_idp.headers["Location"].startswith("/login?next=%2Fidp%2Fresume")
        link = requests.get(f"{bridge}/portal/1", allow_redirects=False, timeout=10)  # portal links go to JSM
        assert link.headers["Location"] == f"{emulator_url}/servicedesk/customer/portal/1"
    finally:
        server.terminate()
        server.wait(timeout=30)

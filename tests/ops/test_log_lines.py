"""JSON logs from the first line of ``jsm-scim serve``, one INFO line per JSM effect, quiet logins."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
import time

from scim_server.app import create_app
from scim_server.logging_setup import configure_logging
from scim_server.services import services_of
from scim_server.settings import Settings
from scim_server.sync.worker import run_worker

USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "eve@example.com",
        "emails": [{"value": "eve@example.com", "primary": True}]}


def test_serve_in_json_mode_writes_only_json_lines(tmp_path):
    env = {**os.environ, "JSM_SCIM_LOG_JSON": "1", "JSM_SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite"}
    process = subprocess.Popen([sys.executable, "-c", "from scim_server.cli import main; main()", "serve", "--port", "0"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "serving on" in line:
                break
    finally:
        process.terminate()
        rest = process.communicate(timeout=30)
    lines += rest[1].splitlines(keepends=True)
    assert any("serving on http://127.0.0.1:" in line for line in lines), lines
    entries = [json.loads(line) for line in lines if line.strip()]  # every line, the first included, is JSON
    assert any("JSM emulator at" in e["message"] and "jsm-scim.emulator-token" in e["message"] for e in entries)
    token = (tmp_path / "jsm-scim.emulator-token").read_text().strip()
    assert token and not any(token in line for line in lines)  # the file is named, its token never logged
    assert rest[0] == ""


def test_one_info_line_per_jsm_effect(settings, auth, jsm_emulator):
    app = create_app(settings.with_overrides(jsm_url=jsm_emulator.url, jsm_email="bridge@example.com",
                                             jsm_api_token="emulator-token", run_worker_in_process=False), migrate=False)
    client = app.test_client()
    stream = io.StringIO()
    configure_logging(Settings(log_json=True), stream)
    try:
        assert client.post("/scim/v2/Users", json=USER, headers=auth).status_code == 201
        run_worker(services_of(app), threading.Event(), once=True)
    finally:
        logging.getLogger().handlers.clear()
        services_of(app).engine.dispose()
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    effects = [e for e in entries if e.get("jsm_effect")]
    assert [(e["jsm_effect"], e["route"], e["level"]) for e in effects] == [
        ("customer created", "POST /rest/servicedeskapi/customer", "INFO")]
    assert effects[0]["directory"] == "default" and effects[0]["entity"].startswith("user ")
    assert not any("mapping rules loaded" in e["message"] and e["level"] == "INFO" for e in entries)

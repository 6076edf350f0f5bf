"""CLI polish: --json on create, option-named errors, terminal-wide tables, honest rotation expiry,
idempotent revoke, case-insensitive audit types, one-line errors for bad database URLs and busy ports."""
from __future__ import annotations

import datetime as dt
import json
import re
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from scim_server.cli import main
from scim_server.keys import looks_like_token
from tests.keys.test_cli import created_token, key_rows


def test_keys_create_json_carries_the_token(cli):
    result = cli("keys", "create", "--name", "okta", "--directory", "okta", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert looks_like_token(data["token"]) and data["directory"] == "okta" and data["status"] == "active"
    assert [row["id"] for row in key_rows(cli)] == [data["id"]]


def test_expires_in_days_has_help_and_its_error_names_the_option(cli):
    assert "Days until the key stops working" in cli("keys", "create", "--help").stdout
    result = CliRunner().invoke(main, ["keys", "create", "--name", "x", "--expires-in-days", "0"])
    assert result.exit_code == 2
    assert "--expires-in-days" in result.output and "expires_in_days" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_rotated_key_shows_its_grace_end_as_expiry(cli):
    token_result = cli("keys", "create", "--name", "a", "--json")
    old = json.loads(token_result.stdout)
    rotated = cli("keys", "rotate", old["id"], "--grace-hours", "12", "--json")
    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.stdout)
    assert looks_like_token(new["token"]) and new["rotated_from"] == old["id"]
    [row] = [row for row in key_rows(cli) if row["id"] == old["id"]]
    expires = dt.datetime.fromisoformat(row["expires"])
    assert row["status"] == "rotating" and row["expires"] == row["revoked"]
    assert dt.timedelta(hours=11) < expires - dt.datetime.now(dt.timezone.utc) <= dt.timedelta(hours=12)


def test_revoking_twice_says_already_revoked_and_audits_once(cli):
    key_id = json.loads(cli("keys", "create", "--name", "a", "--json").stdout)["id"]
    assert "Revoked API key" in cli("keys", "revoke", key_id).stdout
    again = cli("keys", "revoke", key_id)
    assert again.exit_code == 0 and "already revoked" in again.stdout
    events = json.loads(cli("audit", "list", "--action", "key.revoke", "--json").stdout)
    assert [event["target_id"] for event in events] == [key_id]


@pytest.mark.parametrize("spelling", ["api_key", "API_KEY", "Api_Key"])
def test_audit_type_is_case_insensitive(cli, spelling):
    created_token(cli("keys", "create", "--name", "a"))
    events = json.loads(cli("audit", "list", "--type", spelling, "--json").stdout)
    assert [event["action"] for event in events] == ["key.create"]


def test_tables_fit_the_terminal_width(database_url, tmp_path, cli):
    """In a terminal 80 columns wide (a real pty), every table line fits, long names folded."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    for name in ("a key with a rather long name for an identity provider connection", "b"):
        created_token(cli("keys", "create", "--name", name))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["JSM_SCIM_DATABASE_URL"] = database_url
    for args in (["keys", "list"], ["audit", "list"]):
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        process = subprocess.run([sys.executable, "-c", "from scim_server.cli import main; main()", *args],
                                 stdin=follower, stdout=follower, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
                                 timeout=60)
        os.close(follower)
        output = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        os.close(leader)
        assert process.returncode == 0, process.stderr
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode())
        lines = [line for line in text.splitlines() if line.strip()]
        assert len(lines) > 3 and max(len(line) for line in lines) <= 80, text


def test_directories_create_json(cli):
    result = cli("directories", "create", "acme", "--domain", "acme.test", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"name": "acme", "display_name": None, "domains": ["acme.test"]}


@pytest.mark.parametrize("args", [["keys", "list"], ["keys", "create", "--name", "x"], ["audit", "list"],
                                  ["sso", "show"], ["sync", "status"], ["directories", "list"], ["db", "upgrade"],
                                  ["serve"]])
@pytest.mark.parametrize("url", ["mysql://x", "nonsense"])
def test_bad_database_url_is_one_line(args, url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args, env={"JSM_SCIM_DATABASE_URL": url})
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert "JSM_SCIM_DATABASE_URL" in result.output and "Traceback" not in result.output


def test_busy_port_is_one_line_before_the_emulator_starts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--port", str(port)],
                                    env={"JSM_SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite"})
    assert result.exit_code == 1
    assert result.output.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use " \
                                    "(another process uses it? choose --port)"
    assert not Path("jsm-scim.emulator-token").exists()  # nothing started

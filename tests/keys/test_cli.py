"""``jsm-scim keys ...`` and ``jsm-scim audit list`` through click, plus one real subprocess run."""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from scim_server.db import make_engine
from scim_server.keys import find_valid_key, looks_like_token


def created_token(result) -> str:
    assert result.exit_code == 0, result.output
    token = result.stdout.rstrip("\n").splitlines()[-1]
    assert looks_like_token(token)
    return token


def key_rows(cli) -> list[dict]:
    result = cli("keys", "list", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_create_prints_token_alone_on_last_line(cli, session_factory):
    result = cli("keys", "create", "--name", "Okta prod", "--directory", "okta", "--expires-in-days", "90")
    token = created_token(result)
    assert result.stdout.count(token) == 1
    assert "okta" in result.stdout and "Okta prod" in result.stdout
    with session_factory() as session:
        key = find_valid_key(session, token)
        assert key is not None and key.directory.name == "okta"


def test_list_json_fields_days_left_and_no_token(cli, client, protected):
    token = created_token(cli("keys", "create", "--name", "a", "--expires-in-days", "45"))
    created_token(cli("keys", "create", "--name", "b"))
    assert client.get(protected, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    result = cli("keys", "list", "--json")
    assert token not in result.output and token[14:] not in result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows["a"]) >= {"id", "name", "directory", "token_prefix", "created", "expires", "days_left", "last_used", "status"}
    assert rows["a"]["days_left"] == 44  # 45 days minus the seconds already elapsed
    assert rows["b"]["days_left"] == 364
    assert rows["a"]["token_prefix"] == token[:14]
    assert rows["a"]["last_used"] is not None and rows["b"]["last_used"] is None
    assert rows["a"]["status"] == rows["b"]["status"] == "active"
    assert rows["a"]["directory"] == "default"


def test_list_flags_keys_that_expire_within_30_days(cli):
    created_token(cli("keys", "create", "--name", "soon", "--expires-in-days", "30"))
    created_token(cli("keys", "create", "--name", "later", "--expires-in-days", "32"))
    rows = {row["name"]: row for row in key_rows(cli)}
    assert (rows["soon"]["status"], rows["soon"]["days_left"]) == ("expiring", 29)
    assert (rows["later"]["status"], rows["later"]["days_left"]) == ("active", 31)
    table = cli("keys", "list").stdout
    soon_line = next(line for line in table.splitlines() if "soon" in line)
    assert "expiring" in soon_line and " 29 " in soon_line


def test_list_table_for_humans(cli):
    token = created_token(cli("keys", "create", "--name", "table-key"))
    result = cli("keys", "list")
    assert result.exit_code == 0
    assert "table-key" in result.stdout and token[:14] in result.stdout and token not in result.stdout
    assert "active" in result.stdout and "never" in result.stdout


def test_revoke_and_rotate(cli, client, protected):
    first = created_token(cli("keys", "create", "--name", "r"))
    key_id = key_rows(cli)[0]["id"]
    result = cli("keys", "rotate", key_id, "--grace-hours", "2")
    second = created_token(result)
    assert second != first
    rows = {row["id"]: row for row in key_rows(cli)}
    assert rows[key_id]["status"] == "rotating" and rows[key_id]["rotated_to"]
    assert rows[rows[key_id]["rotated_to"]]["status"] == "active"
    for t in (first, second):
        assert client.get(protected, headers={"Authorization": f"Bearer {t}"}).status_code == 200
    assert cli("keys", "revoke", key_id).exit_code == 0
    assert client.get(protected, headers={"Authorization": f"Bearer {first}"}).status_code == 401
    assert client.get(protected, headers={"Authorization": f"Bearer {second}"}).status_code == 200


@pytest.mark.parametrize("command", [["keys", "revoke", "nosuchkey"], ["keys", "rotate", "nosuchkey"]])
def test_unknown_key_id_is_a_one_line_error(cli, command):
    result = cli(*command)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and "nosuchkey" in result.stderr


@pytest.mark.parametrize(
    "args, status", [(["--name", ""], 1), (["--name", "x", "--directory", "a b"], 1),
                     (["--name", "x", "--expires-in-days", "0"], 2)]  # 2: click's usage error
)
def test_invalid_create_is_a_one_line_error(cli, args, status):
    result = cli("keys", "create", *args)
    assert result.exit_code == status and result.stderr.startswith("error: ") and result.stdout == ""
    assert key_rows(cli) == []


def test_key_operations_are_audited_and_queryable(cli):
    created_token(cli("keys", "create", "--name", "audited", "--directory", "entra"))
    key_id = key_rows(cli)[0]["id"]
    new_id = None
    created_token(cli("keys", "rotate", key_id))
    new_id = next(row["id"] for row in key_rows(cli) if row["id"] != key_id)
    assert cli("keys", "revoke", new_id).exit_code == 0

    events = json.loads(cli("audit", "list", "--json").stdout)
    assert [(e["action"], e["target_id"]) for e in events] == [
        ("key.revoke", new_id),
        ("key.create", new_id),
        ("key.rotate", key_id),
        ("key.create", key_id),
    ]
    assert all(e["actor"] == "cli" and e["directory"] == "entra" and e["target_type"] == "api_key" for e in events)

    by_target = json.loads(cli("audit", "list", "--json", "--target", key_id).stdout)
    assert {e["action"] for e in by_target} == {"key.create", "key.rotate"}
    assert len(json.loads(cli("audit", "list", "--json", "--limit", "1").stdout)) == 1
    assert len(json.loads(cli("audit", "list", "--json", "--action", "key.create").stdout)) == 2
    assert len(json.loads(cli("audit", "list", "--json", "--action", "key.*").stdout)) == 4
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).isoformat()
    assert json.loads(cli("audit", "list", "--json", "--since", future).stdout) == []
    table = cli("audit", "list")
    assert "key.rotate" in table.stdout and key_id in table.stdout

    bad = cli("audit", "list", "--since", "last tuesday")
    assert bad.exit_code == 1 and "ISO 8601" in bad.stderr


def test_no_secrets_in_logs_over_create_and_auth(cli, client, protected, caplog):
    caplog.set_level(logging.DEBUG)
    token = created_token(cli("keys", "create", "--name", "quiet"))
    client.get(protected, headers={"Authorization": f"Bearer {token}"})
    client.get(protected, headers={"Authorization": f"Bearer {token[:-1]}"})
    key_id = key_rows(cli)[0]["id"]
    created_token(cli("keys", "rotate", key_id))
    assert caplog.records, "the flow is expected to log something"
    secret_part = token[len("jsmscim_"):]
    assert secret_part not in caplog.text
    assert secret_part[:-1] not in caplog.text


def test_console_script_in_a_real_process(database_url, tmp_path):
    script = shutil.which("jsm-scim") or str(Path(sys.executable).with_name("jsm-scim"))
    env = {**os.environ, "JSM_SCIM_DATABASE_URL": database_url}
    created = subprocess.run(
        [script, "keys", "create", "--name", "subprocess"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.rstrip("\n").splitlines()[-1]
    assert looks_like_token(token)
    assert token not in created.stderr
    engine = make_engine(database_url)
    with Session(engine) as session:
        assert find_valid_key(session, token).name == "subprocess"
    engine.dispose()
    missing = subprocess.run([script, "keys", "revoke", "nope"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and missing.stderr.strip() == "error: no API key with id 'nope'"

"""``jsm-scim jsm check`` and ``mappings check`` against the emulator (a real socket)."""
from __future__ import annotations

import json

import pytest
import requests
from click.testing import CliRunner

from jsm_client.emulator import EmulatorServer, JsmEmulator
from scim_server.cli import main

EMAIL, TOKEN = "bot@example.com", "secret-token"
RULES = '[portals]\n"Acme Corp" = ["HELP"]\n'


@pytest.fixture
def site():
    server = EmulatorServer(emulator=JsmEmulator(expected_email=EMAIL, expected_token=TOKEN)).start()
    yield server
    server.stop()


@pytest.fixture
def run(site, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rules = tmp_path / "mappings.toml"
    rules.write_text(RULES)
    base = {"JSM_SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/check.db", "JSM_SCIM_JSM_URL": site.url,
            "JSM_SCIM_JSM_EMAIL": EMAIL, "JSM_SCIM_JSM_API_TOKEN": TOKEN, "JSM_SCIM_MAPPINGS": str(rules),
            "JSM_SCIM_ENV_FILE": "/dev/null"}

    def invoke(*args: str, **env: str):
        return CliRunner().invoke(main, list(args), env={**base, **env}, catch_exceptions=False)

    invoke.rules = rules
    return invoke


def test_check_passes_and_reports_each_desk_access(run, site):
    site.emulator.configure_site({"servicedesks": {"BILL": {"openAccess": True}}})
    result = run("jsm", "check", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    assert {c["name"]: c["ok"] for c in report["checks"]} == {
        "reachable": True, "credentials": True, "permission": True, "service desks": True}
    desks = {d["projectKey"]: d for d in report["servicedesks"]}
    assert desks["HELP"]["customerAccess"] == "restricted" and desks["HELP"]["namedInRules"] is True
    assert desks["BILL"]["customerAccess"] == "open" and "no effect" in desks["BILL"]["meaning"]
    assert site.emulator.state_dict()["customers"] == []  # the probes changed nothing

    text = run("jsm", "check")
    assert text.exit_code == 0 and "[ok] permission: Jira administrator" in text.output
    assert "propagation can work" in text.output


def test_an_open_desk_named_in_the_rules_is_a_warning_not_a_failure(run, site):
    site.emulator.configure_site({"servicedesks": {"HELP": {"openAccess": True}}})
    result = run("jsm", "check")
    assert result.exit_code == 0, result.output
    assert "[warn] customer access HELP: open" in result.output
    assert "portal rules and deprovisioning have no effect" in result.output


def test_not_a_jira_administrator_fails(run, site):
    requests.post(f"{site.url}/_emulator/site", json={"jira_admin": False}, timeout=5).raise_for_status()
    result = run("jsm", "check")
    assert result.exit_code == 1
    assert "[FAIL] permission: the service account is not a Jira administrator" in result.output
    assert result.stderr.strip().splitlines() == [
        "error: JSM check failed: permission: the service account is not a Jira administrator: JSM refuses to "
        "create customers (and, by site setting, organizations) for it"]


def test_rejected_credentials_fail_and_stop_the_checks(run):
    result = run("jsm", "check", "--json", JSM_SCIM_JSM_API_TOKEN="wrong")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [(c["name"], c["ok"]) for c in report["checks"]] == [("reachable", True), ("credentials", False)]
    assert "wrong" not in result.output


def test_unreachable_site_fails(run):
    result = run("jsm", "check", JSM_SCIM_JSM_URL="http://127.0.0.1:9")
    assert result.exit_code == 1
    assert "[FAIL] reachable" in result.output


def test_a_project_key_unknown_to_jsm_fails_check_and_mappings_check(run):
    run.rules.write_text('[portals]\n"Acme Corp" = ["HELP", "NOPE"]\n"Beta" = ["NOPE"]\n')
    checked = run("jsm", "check")
    assert checked.exit_code == 1
    assert "the rules name NOPE (for Acme Corp, Beta) but JSM has no service desk" in checked.output

    mappings = run("mappings", "check")
    assert mappings.exit_code == 1
    assert "error: unknown project key NOPE (portals of Acme Corp, Beta)" in mappings.output
    assert mappings.stderr.strip() == "error: 1 project key of the rules unknown to JSM: NOPE"

    run.rules.write_text(RULES)
    fine = run("mappings", "check")
    assert fine.exit_code == 0 and "project keys checked against JSM" in fine.output and fine.output.endswith("ok\n")


def test_mappings_check_without_a_reachable_jsm_only_notes_it(run):
    result = run("mappings", "check", JSM_SCIM_JSM_URL="http://127.0.0.1:9")
    assert result.exit_code == 0, result.output
    assert "note: project keys not checked against JSM" in result.output

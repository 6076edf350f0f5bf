"""``jsm-scim worker|sync|mappings`` against a real database and the emulator."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from scim_server.cli import main
from tests.sync import seed
from tests.sync.conftest import jsm_view

RULES = '[organizations.domains]\n"acme.com" = "Acme Corp"\n\n[portals]\n"Acme Corp" = ["HELP"]\n'


@pytest.fixture
def cli(database_url, jsm_emulator, rules_file, tmp_path, monkeypatch):
    rules_file.write_text(RULES)
    monkeypatch.chdir(tmp_path)  # no stray .env file
    env = {"JSM_SCIM_DATABASE_URL": database_url, "JSM_SCIM_JSM_URL": jsm_emulator.url,
           "JSM_SCIM_JSM_EMAIL": "bot@example.com", "JSM_SCIM_JSM_API_TOKEN": "secret-token",
           "JSM_SCIM_MAPPINGS": str(rules_file)}

    def run(*args: str, ok: bool = True):
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result

    return run


def test_worker_once_status_and_retry(cli, session_factory, jsm_emulator):
    alice = seed.add_user(session_factory, "alice@acme.com")
    seed.add_user(session_factory, "no-mail")
    seed.add_group(session_factory, "Staff", [alice])

    assert "done" in cli("worker", "--once").output
    assert jsm_view(jsm_emulator.emulator)["organizations"] == {"Acme Corp": ["alice@acme.com"],
                                                                "Staff": ["alice@acme.com"]}
    status = json.loads(cli("sync", "status", "--json").output)
    assert (status["pending"], status["failed"], status["blocked"]) == (0, 0, 1)
    assert status["done"] >= 3 and status["oldest_pending_age_seconds"] is None
    [problem] = status["problems"]
    assert "no usable e-mail" in problem["last_error"]
    assert "blocked 1" in cli("sync", "status").output

    assert "re-queued 1 job" in cli("sync", "retry", str(problem["id"])).output
    assert json.loads(cli("sync", "status", "--json").output)["pending"] == 1
    assert "no failed or blocked job" in cli("sync", "retry", "999999", ok=False).output


def test_reconcile_repairs_drift_and_keeps_foreign_grants(cli, session_factory, jsm_emulator):
    emulator = jsm_emulator.emulator
    alice = seed.add_user(session_factory, "alice@acme.com")
    bob = seed.add_user(session_factory, "bob@acme.com")
    seed.add_group(session_factory, "Staff", [alice, bob])
    seed.add_group(session_factory, "Ops", [bob])
    cli("worker", "--once")
    expected = jsm_view(emulator)
    # Drift behind the bridge's back: bob removed from Staff and an outsider added, Acme Corp unlinked
    # from HELP, the Ops organization deleted.
    outsider = emulator.add_customer("outsider@else.com")
    orgs = {o.name: o for o in emulator.state.organizations.values()}
    orgs["Staff"].members.discard(next(c for c in emulator.state.customers.values() if c.email == "bob@acme.com").account_id)
    orgs["Staff"].members.add(outsider)
    emulator.state.service_desks[0].organization_ids.clear()
    emulator.state.delete_organization(orgs["Ops"].id)
    drifted, before = emulator.state_dict(), emulator.stats_dict()

    dry = cli("sync", "reconcile", "--dry-run").output
    assert "3/3" in dry  # the progress bar reached the last organization
    assert "reconcile: 3 of 3 organizations would change" in dry
    assert ("would change: organizations created or adopted 1, deleted 0, members added 2, members removed 0, "
            "desk links added 1, desk links removed 0") in dry
    assert all(name in dry for name in ("Staff", "Acme Corp", "Ops"))
    assert emulator.state_dict() == drifted  # a dry run changes nothing ...
    assert _writes(emulator.stats_dict()) == _writes(before)  # ... and sends no write request

    repaired = cli("sync", "reconcile").output
    assert "reconcile: 3 of 3 organizations changed" in repaired
    assert ("changed: organizations created or adopted 1, deleted 0, members added 2, members removed 0, "
            "desk links added 1, desk links removed 0") in repaired
    view = jsm_view(emulator)
    assert view["organizations"] == {**expected["organizations"],  # the outsider someone added stays
                                     "Staff": ["alice@acme.com", "bob@acme.com", "outsider@else.com"]}
    assert view["desks"] == expected["desks"] == {"HELP": ["Acme Corp"], "BILL": []}
    assert "JSM matches the desired state" in cli("sync", "reconcile", "--dry-run").output


def _writes(stats: dict) -> dict[str, int]:
    return {route: n for route, n in stats["by_route"].items() if not route.startswith("GET ")}


def test_dead_job_shows_last_error_and_retry_requeues_it(cli, session_factory, jsm_emulator, monkeypatch):
    monkeypatch.setenv("JSM_SCIM_SYNC_MAX_ATTEMPTS", "1")
    emulator = jsm_emulator.emulator
    emulator.add_organization("STAFF")  # two JSM organizations match "Staff", none exactly
    extra = emulator.add_organization("staff")
    alice = seed.add_user(session_factory, "alice@acme.com")
    seed.add_group(session_factory, "Staff", [alice])

    assert "done 3, failed 1" in cli("worker", "--once").output  # user, group, Acme Corp; Staff died
    status = json.loads(cli("sync", "status", "--json").output)
    assert (status["pending"], status["failed"]) == (0, 1)
    [dead] = status["problems"]
    assert (dead["status"], dead["kind"], dead["entity_id"], dead["attempts"]) == ("dead", "org", "Staff", 1)
    assert "PropagationError: JSM has several organizations matching 'Staff'" in dead["last_error"]
    assert "several organizations" in cli("sync", "status").output  # the table shows the last error too

    emulator.state.delete_organization(extra)  # the admin resolves it in JSM
    assert "re-queued 1 job" in cli("sync", "retry").output
    assert json.loads(cli("sync", "status", "--json").output)["pending"] == 1
    cli("worker", "--once")
    status = json.loads(cli("sync", "status", "--json").output)
    assert (status["pending"], status["failed"], status["problems"]) == (0, 0, [])
    assert jsm_view(emulator)["organizations"]["STAFF"] == ["alice@acme.com"]  # adopted, case-insensitively


def test_mappings_check_and_explain(cli, session_factory, rules_file):
    alice = seed.add_user(session_factory, "alice@acme.com")
    seed.add_group(session_factory, "Staff", [alice])
    assert cli("mappings", "check").output.rstrip().endswith("ok")

    text = cli("mappings", "explain", "ALICE@acme.com").output
    assert "Acme Corp" in text and 'e-mail domain "acme.com"' in text and 'IdP group "Staff"' in text
    assert "portals: HELP" in text
    [explained] = json.loads(cli("mappings", "explain", "alice@acme.com", "--json").output)
    assert explained["organizations"] == ["Acme Corp", "Staff"] and explained["portals"] == ["HELP"]
    assert "no user" in cli("mappings", "explain", "nobody@acme.com", ok=False).output

    rules_file.write_text('[portals]\n"X" = "HELP"\n')
    refused = cli("mappings", "check", ok=False)
    assert refused.stdout == ""
    assert refused.stderr == f'error: {rules_file}: portals."X" must be a list of service desk project keys\n'
    rules_file.write_text("[organizations.groups\n")
    assert cli("mappings", "check", ok=False).stderr.startswith(f"error: {rules_file}: invalid TOML: ")


def test_status_reports_jsm_drift_and_reconcile_repairs_lost_accounts(cli, session_factory, jsm_emulator):
    emulator = jsm_emulator.emulator
    alice = seed.add_user(session_factory, "alice@acme.com")
    seed.add_group(session_factory, "Staff", [alice])
    cli("worker", "--once")
    assert json.loads(cli("sync", "status", "--json").output)["jsm"] == {"checked": True}
    emulator.reset()  # JSM forgot everything the bridge made

    status = json.loads(cli("sync", "status", "--json").output)
    assert status["drift"] == 2 and status["pending"] == 0  # not "all done"
    assert {p["entity_id"] for p in status["problems"] if p["status"] == "drift"} == {"Staff", "Acme Corp"}
    assert "JSM drift 2" in cli("sync", "status").output
    assert "JSM not checked: --offline" in cli("sync", "status", "--offline").output

    repaired = cli("sync", "reconcile").output  # exit 0: repaired, not aborted on "accounts do not exist"
    assert "1 recorded accounts JSM no longer shows (created again)" in repaired
    assert jsm_view(emulator)["organizations"] == {"Acme Corp": ["alice@acme.com"], "Staff": ["alice@acme.com"]}
    assert json.loads(cli("sync", "status", "--json").output)["drift"] == 0
    assert "JSM matches the desired state" in cli("sync", "reconcile", "--dry-run").output

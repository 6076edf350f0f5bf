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
    cli("worker", "--once")
    # Drift: someone removes bob from Staff, unlinks Acme Corp from HELP and adds an outsider.
    outsider = emulator.add_customer("outsider@else.com")
    staff = next(o for o in emulator.state.organizations.values() if o.name == "Staff")
    staff.members.discard(next(c for c in emulator.state.customers.values() if c.email == "bob@acme.com").account_id)
    staff.members.add(outsider)
    emulator.state.service_desks[0].organization_ids.clear()
    drifted = jsm_view(emulator)

    dry = cli("sync", "reconcile", "--dry-run").output
    assert "would change" in dry and "Staff" in dry and "Acme Corp" in dry
    assert jsm_view(emulator) == drifted

    assert "changed" in cli("sync", "reconcile").output
    view = jsm_view(emulator)
    assert view["organizations"]["Staff"] == ["alice@acme.com", "bob@acme.com", "outsider@else.com"]
    assert view["desks"]["HELP"] == ["Acme Corp"]
    assert "JSM matches the desired state" in cli("sync", "reconcile", "--dry-run").output


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
    assert "must be a list" in cli("mappings", "check", ok=False).output

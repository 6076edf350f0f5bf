"""JSM as it really behaves: organizations are never lost by accident, what JSM lost is healed,
owned organizations are marked in JSM and Atlassian Guard's are never adopted (issue 12)."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import requests
from sqlalchemy.orm import Session, sessionmaker

from scim_server.db import transaction
from scim_server.settings import Settings
from scim_server.sync import outbox, ownership, state
from scim_server.sync.policy import OWNERSHIP_PROPERTY
from scim_server.sync.reconcile import organizations_missing_in_jsm, reconcile
from scim_server.sync.rules import RulesProvider
from scim_server.sync.worker import run_worker
from tests.sync import seed
from tests.sync.conftest import jsm_view

DOMAIN_RULES = '[organizations.domains]\n"acme.com" = "Acme Corp"\n\n[portals]\n"Staff" = ["HELP"]\n'


def _account(emulator, email: str) -> str:
    return next(c["accountId"] for c in emulator.state_dict()["customers"] if c["emailAddress"] == email)


def _org(emulator, name: str) -> dict:
    return next(o for o in emulator.state_dict()["organizations"] if o["name"] == name)


def _delete_account_in_jsm(server, email: str) -> str:
    """What an Atlassian admin deleting a customer does, through the emulator's test hook."""
    account_id = _account(server.emulator, email)
    response = requests.delete(f"{server.url}/_emulator/customers/{account_id}", timeout=5)
    assert response.status_code == 204, response.text
    return account_id


# ------------------------------------------------------------------ never delete by accident


def test_last_member_deactivated_keeps_the_organization(session_factory, sync, jsm_emulator, rules_file):
    rules_file.write_text(DOMAIN_RULES)
    alice = seed.add_user(session_factory, "alice@acme.com")
    seed.add_group(session_factory, "Staff", [alice])
    sync(with_rules=True)
    assert jsm_view(jsm_emulator.emulator)["organizations"] == {"Staff": ["alice@acme.com"],
                                                                "Acme Corp": ["alice@acme.com"]}

    seed.update_user(session_factory, alice, active=False)
    stats = sync(with_rules=True)

    assert stats.failed == 0
    view = jsm_view(jsm_emulator.emulator)
    assert view["organizations"] == {"Staff": [], "Acme Corp": []}  # emptied, both kept
    assert view["desks"]["HELP"] == ["Staff"]
    assert jsm_emulator.emulator.stats_dict()["effects"]["organizations_deleted"] == 0

    seed.delete_user(session_factory, alice)  # deleted, not just deactivated: still only emptied
    sync(with_rules=True)
    assert set(jsm_view(jsm_emulator.emulator)["organizations"]) == {"Staff", "Acme Corp"}


def test_removing_the_domain_rule_deletes_the_organization_the_bridge_created(session_factory, sync, jsm_emulator,
                                                                             rules_file):
    rules_file.write_text(DOMAIN_RULES)
    seed.add_user(session_factory, "alice@acme.com")
    sync(with_rules=True)
    rules_file.write_text("")
    sync(with_rules=True)
    assert jsm_view(jsm_emulator.emulator)["organizations"] == {}


@dataclass(frozen=True)
class _Services:
    settings: Settings
    session_factory: sessionmaker[Session]


def test_keep_deleted_organizations_keeps_the_org_and_takes_back_the_bridge_grants(services, session_factory,
                                                                                 jsm_client, jsm_emulator, rules_file):
    rules_file.write_text('[portals]\n"Staff" = ["HELP"]\n')
    settings = services.settings.with_overrides(keep_deleted_organizations=True, mappings_path=str(rules_file))
    keeping = _Services(settings, session_factory)

    def sync() -> None:
        stats = run_worker(keeping, threading.Event(), once=True, client=jsm_client,
                           rules_provider=RulesProvider(settings), poll_interval=0.05)
        assert stats.failed == 0

    alice = seed.add_user(session_factory, "alice@acme.com")
    staff = seed.add_group(session_factory, "Staff", [alice])
    sync()
    assert OWNERSHIP_PROPERTY in _org(jsm_emulator.emulator, "Staff")["properties"]

    seed.delete_group(session_factory, staff)
    sync()

    view = jsm_view(jsm_emulator.emulator)
    assert view["organizations"] == {"Staff": []}  # kept, without the members the bridge granted
    assert view["desks"]["HELP"] == []
    assert "properties" not in _org(jsm_emulator.emulator, "Staff")  # no longer the bridge's
    with transaction(session_factory) as session:
        assert state.managed_organization(session, "Staff") is None


# --------------------------------------------------------------------------- self-healing


def test_accounts_deleted_in_jsm_are_recreated_by_the_worker(session_factory, sync, jsm_emulator):
    emulator = jsm_emulator.emulator
    alice = seed.add_user(session_factory, "alice@acme.com")
    bob = seed.add_user(session_factory, "bob@acme.com")
    seed.add_group(session_factory, "Staff", [alice, bob])
    sync()
    old = _delete_account_in_jsm(jsm_emulator, "alice@acme.com")
    assert jsm_view(emulator)["organizations"] == {"Staff": ["bob@acme.com"]}

    seed.add_group(session_factory, "Ops", [alice])  # JSM answers 400 "accounts do not exist" for her
    stats = sync()

    assert (stats.failed, stats.blocked) == (0, 0)
    view = jsm_view(emulator)
    assert view["organizations"] == {"Staff": ["alice@acme.com", "bob@acme.com"],  # marked and healed too
                                     "Ops": ["alice@acme.com"]}
    assert _account(emulator, "alice@acme.com") != old
    with transaction(session_factory) as session:
        assert state.account_of(session, alice).account_id == _account(emulator, "alice@acme.com")
        assert outbox.problem_marks(session) == []


def test_a_jsm_that_forgot_everything_is_rebuilt_by_the_next_change(session_factory, sync, jsm_emulator, rules_file):
    rules_file.write_text('[portals]\n"Staff" = ["HELP"]\n')
    emulator = jsm_emulator.emulator
    alice = seed.add_user(session_factory, "alice@acme.com")
    staff = seed.add_group(session_factory, "Staff", [alice])
    sync(with_rules=True)
    emulator.reset()  # e.g. the built-in emulator of an older `serve` that restarted

    seed.set_members(session_factory, staff, [alice, seed.add_user(session_factory, "bob@acme.com")])
    stats = sync(with_rules=True)

    assert (stats.failed, stats.blocked) == (0, 0)
    view = jsm_view(emulator)
    assert view["organizations"] == {"Staff": ["alice@acme.com", "bob@acme.com"]}
    assert view["desks"]["HELP"] == ["Staff"]


def test_organization_deleted_in_jsm_is_recreated_with_members_and_links(session_factory, sync, jsm_client,
                                                                       jsm_emulator, rules_file):
    rules_file.write_text('[portals]\n"Staff" = ["HELP"]\n')
    alice = seed.add_user(session_factory, "alice@acme.com")
    staff = seed.add_group(session_factory, "Staff", [alice])
    sync(with_rules=True)
    jsm_client.delete_organization(_org(jsm_emulator.emulator, "Staff")["id"])
    assert [name for name, _ in organizations_missing_in_jsm(session_factory, jsm_client)] == ["Staff"]

    bob = seed.add_user(session_factory, "bob@acme.com")
    seed.set_members(session_factory, staff, [alice, bob])
    stats = sync(with_rules=True)

    assert stats.failed == 0
    view = jsm_view(jsm_emulator.emulator)
    assert view["organizations"] == {"Staff": ["alice@acme.com", "bob@acme.com"]}
    assert view["desks"]["HELP"] == ["Staff"]
    assert organizations_missing_in_jsm(session_factory, jsm_client) == []


def test_reconcile_recreates_lost_accounts_and_organizations(services, session_factory, sync, jsm_client,
                                                             jsm_emulator):
    emulator = jsm_emulator.emulator
    alice = seed.add_user(session_factory, "alice@acme.com")
    seed.add_user(session_factory, "dave@acme.com")  # in no organization
    seed.add_group(session_factory, "Staff", [alice])
    sync()
    _delete_account_in_jsm(jsm_emulator, "alice@acme.com")
    _delete_account_in_jsm(jsm_emulator, "dave@acme.com")
    rules = RulesProvider(services.settings).current()

    dry = reconcile(session_factory, jsm_client, rules, dry_run=True)
    assert dry.accounts_lost == 2 and dry.problems == []
    assert jsm_view(emulator)["customers"] == []

    result = reconcile(session_factory, jsm_client, rules, dry_run=False)

    assert result.problems == [] and result.accounts_lost == 2
    view = jsm_view(emulator)
    assert view["customers"] == ["alice@acme.com", "dave@acme.com"]
    assert view["organizations"] == {"Staff": ["alice@acme.com"]}
    again = reconcile(session_factory, jsm_client, rules, dry_run=True)
    assert again.changes == [] and again.accounts_lost == 0


def test_adoption_that_finds_no_account_is_a_visible_blocked_problem(session_factory, sync, jsm_emulator):
    emulator = jsm_emulator.emulator
    emulator.user_search_includes_customers = False  # user search hides the account, on no desk either
    emulator.add_customer("alice@acme.com", "Alice (Atlassian account)")
    alice = seed.add_user(session_factory, "alice@acme.com")
    seed.add_group(session_factory, "Staff", [alice])

    stats = sync()

    assert (stats.failed, stats.blocked) == (0, 1)  # no retry loop
    with transaction(session_factory) as session:
        [mark] = outbox.problem_marks(session)
        assert (mark.kind, mark.entity_id, mark.status) == ("user", alice, "blocked")
        assert "no lookup" not in mark.last_error
        assert "add alice@acme.com as a customer of one of the service desks" in mark.last_error
        assert "jsm-scim sync retry" in mark.last_error

    account = _account(emulator, "alice@acme.com")  # the admin follows the advice
    emulator.state.add_desk_customers(emulator.state.service_desks[0], [account])
    with transaction(session_factory) as session:
        assert outbox.retry(session) == 1
    sync()
    assert jsm_view(emulator)["organizations"] == {"Staff": ["alice@acme.com"]}


# ------------------------------------------------------------------------------- ownership


def test_owned_organizations_carry_the_ownership_property(services, session_factory, sync, jsm_emulator):
    jsm_emulator.emulator.add_organization("Partners")  # exists before: adopted, not marked
    alice = seed.add_user(session_factory, "alice@acme.com")
    seed.add_group(session_factory, "Staff", [alice])
    seed.add_group(session_factory, "Partners", [alice])
    sync()
    assert _org(jsm_emulator.emulator, "Staff")["properties"] == {OWNERSHIP_PROPERTY: {
        "managedBy": "jsm-scim-bridge", "bridge": services.settings.effective_public_url, "directory": "default"}}
    assert "properties" not in _org(jsm_emulator.emulator, "Partners")


def test_an_organization_marked_as_ours_is_taken_back_as_owned(services, session_factory, sync, jsm_emulator):
    emulator = jsm_emulator.emulator
    org_id = emulator.add_organization("Staff")  # ours, but the database that knew it was restored
    emulator.state.set_property(emulator.state.organization(org_id), OWNERSHIP_PROPERTY, {
        "managedBy": "jsm-scim-bridge", "bridge": services.settings.effective_public_url, "directory": "default"}, 10)
    staff = seed.add_group(session_factory, "Staff", [seed.add_user(session_factory, "alice@acme.com")])
    sync()
    with transaction(session_factory) as session:
        assert state.managed_organization(session, "Staff").owned
    seed.delete_group(session_factory, staff)
    sync()
    assert jsm_view(emulator)["organizations"] == {}  # owned: deleted with its group


def test_reconcile_sets_a_missing_ownership_property(services, session_factory, sync, jsm_client, jsm_emulator):
    seed.add_group(session_factory, "Staff", [seed.add_user(session_factory, "alice@acme.com")])
    sync()
    emulator = jsm_emulator.emulator
    emulator.state.delete_property(emulator.state.organization(_org(emulator, "Staff")["id"]), OWNERSHIP_PROPERTY)
    rules = RulesProvider(services.settings).current()
    assert reconcile(session_factory, jsm_client, rules, dry_run=True).properties_missing == 1
    assert reconcile(session_factory, jsm_client, rules, dry_run=False).properties_missing == 1
    assert OWNERSHIP_PROPERTY in _org(emulator, "Staff")["properties"]
    assert reconcile(session_factory, jsm_client, rules, dry_run=True).properties_missing == 0


def test_guard_managed_organization_is_never_adopted_and_is_a_visible_conflict(services, session_factory, sync,
                                                                             jsm_client, jsm_emulator):
    emulator = jsm_emulator.emulator
    emulator.add_organization("Staff", scim_managed=True)
    seed.add_group(session_factory, "Staff", [seed.add_user(session_factory, "alice@acme.com")])

    stats = sync()

    assert stats.failed == 0
    assert jsm_view(emulator)["organizations"] == {"Staff": []}  # not touched
    assert "properties" not in _org(emulator, "Staff")
    with transaction(session_factory) as session:
        assert state.managed_organization(session, "Staff") is None
        [conflict] = ownership.conflicts(session)
        assert conflict.org_key == "staff" and "Atlassian Guard's SCIM (scimManaged)" in conflict.message
    result = reconcile(session_factory, jsm_client, RulesProvider(services.settings).current(), dry_run=False)
    assert any("scimManaged" in message for message in result.refused)
    assert jsm_view(emulator)["organizations"] == {"Staff": []}


# --------------------------------------------------------------------------- deprovisioning


def test_portal_access_is_revoked_only_on_delete_and_only_when_asked(services, session_factory, jsm_client,
                                                                   jsm_emulator):
    emulator = jsm_emulator.emulator
    settings = services.settings.with_overrides(revoke_portal_access_on_delete=True)
    revoking = _Services(settings, session_factory)

    def sync() -> None:
        stats = run_worker(revoking, threading.Event(), once=True, client=jsm_client,
                           rules_provider=RulesProvider(settings), poll_interval=0.05)
        assert stats.failed == 0

    emulator.add_customer("old@acme.com")  # a customer from before the bridge: never revoked
    alice, bob = seed.add_user(session_factory, "alice@acme.com"), seed.add_user(session_factory, "bob@acme.com")
    old = seed.add_user(session_factory, "old@acme.com")
    seed.add_group(session_factory, "Staff", [alice, bob, old])
    sync()
    seed.update_user(session_factory, bob, active=False)  # reversible in the IdP: not revoked
    seed.delete_user(session_factory, alice)
    seed.delete_user(session_factory, old)
    sync()

    active = {c["emailAddress"]: c["active"] for c in emulator.state_dict()["customers"]}
    assert active == {"alice@acme.com": False, "bob@acme.com": True, "old@acme.com": True}
    assert emulator.stats_dict()["by_route"][
        "PUT /rest/servicedeskapi/customer/user/{id}/revoke-portal-only-access"] == 1
    assert jsm_view(emulator)["organizations"] == {"Staff": []}


def test_portal_access_is_never_revoked_by_default(session_factory, sync, jsm_emulator):
    alice = seed.add_user(session_factory, "alice@acme.com")
    sync()
    seed.delete_user(session_factory, alice)
    sync()
    assert [c["active"] for c in jsm_emulator.emulator.state_dict()["customers"]] == [True]
    assert not any("revoke" in route for route in jsm_emulator.emulator.stats_dict()["by_route"])

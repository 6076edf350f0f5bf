"""End to end: stored SCIM state → worker → the JSM emulator over real HTTP."""
from __future__ import annotations

from tests.sync import seed
from tests.sync.conftest import jsm_view


def test_initial_push_creates_customers_and_organizations(session_factory, sync, jsm_emulator):
    alice = seed.add_user(session_factory, "alice@acme.com", display_name="Alice A")
    bob = seed.add_user(session_factory, "bob@acme.com")
    seed.add_group(session_factory, "Staff", [alice, bob])
    seed.add_group(session_factory, "Empty")

    stats = sync()

    assert stats.failed == 0
    view = jsm_view(jsm_emulator.emulator)
    assert view["customers"] == ["alice@acme.com", "bob@acme.com"]
    assert view["organizations"] == {"Staff": ["alice@acme.com", "bob@acme.com"], "Empty": []}
    assert view["desks"] == {"HELP": [], "BILL": []}
    names = {c["emailAddress"]: c["displayName"] for c in jsm_emulator.emulator.state_dict()["customers"]}
    assert names["alice@acme.com"] == "Alice A"


def test_second_run_makes_no_calls(session_factory, sync, jsm_emulator):
    alice = seed.add_user(session_factory, "alice@acme.com")
    seed.add_group(session_factory, "Staff", [alice])
    sync()
    before = jsm_emulator.emulator.stats_dict()["requests"]
    seed.update_user(session_factory, alice)  # touched without a change that matters to JSM
    sync()
    assert jsm_emulator.emulator.stats_dict()["requests"] == before


def test_deactivation_removes_access_and_reactivation_restores_it(session_factory, sync, jsm_emulator):
    alice = seed.add_user(session_factory, "alice@acme.com")
    bob = seed.add_user(session_factory, "bob@acme.com")
    seed.add_group(session_factory, "Staff", [alice, bob])
    sync()

    seed.update_user(session_factory, alice, active=False)
    sync()
    view = jsm_view(jsm_emulator.emulator)
    assert view["organizations"] == {"Staff": ["bob@acme.com"]}
    assert view["customers"] == ["alice@acme.com", "bob@acme.com"]  # the JSM account is kept

    seed.update_user(session_factory, alice, active=True)
    sync()
    assert jsm_view(jsm_emulator.emulator)["organizations"] == {"Staff": ["alice@acme.com", "bob@acme.com"]}
    assert len(jsm_emulator.emulator.state_dict()["customers"]) == 2  # same account, not a new one


def test_deleted_user_loses_memberships_but_keeps_account(session_factory, sync, jsm_emulator):
    alice = seed.add_user(session_factory, "alice@acme.com")
    bob = seed.add_user(session_factory, "bob@acme.com")
    seed.add_group(session_factory, "Staff", [alice, bob])
    sync()
    seed.delete_user(session_factory, alice)
    sync()
    view = jsm_view(jsm_emulator.emulator)
    assert view["organizations"] == {"Staff": ["bob@acme.com"]}
    assert view["customers"] == ["alice@acme.com", "bob@acme.com"]


def test_rename_moves_members_and_deletes_the_org_the_bridge_created(session_factory, sync, jsm_emulator):
    alice = seed.add_user(session_factory, "alice@acme.com")
    staff = seed.add_group(session_factory, "Staff", [alice])
    sync()
    seed.rename_group(session_factory, staff, "Employees")
    sync()
    assert jsm_view(jsm_emulator.emulator)["organizations"] == {"Employees": ["alice@acme.com"]}


def test_adopted_org_survives_rename_and_delete_minus_bridge_members(session_factory, sync, jsm_emulator):
    emulator = jsm_emulator.emulator
    outsider = emulator.add_customer("outsider@else.com")
    org_id = emulator.add_organization("Partners")
    emulator.state.change_members(emulator.state.organization(org_id), [outsider], add=True)
    alice = seed.add_user(session_factory, "alice@acme.com")
    partners = seed.add_group(session_factory, "Partners", [alice])
    sync()
    assert jsm_view(emulator)["organizations"] == {"Partners": ["alice@acme.com", "outsider@else.com"]}

    seed.delete_group(session_factory, partners)
    sync()
    # Adopted: never deleted; only the membership the bridge granted is taken back.
    assert jsm_view(emulator)["organizations"] == {"Partners": ["outsider@else.com"]}


def test_group_delete_deletes_the_org_the_bridge_created(session_factory, sync, jsm_emulator):
    alice = seed.add_user(session_factory, "alice@acme.com")
    staff = seed.add_group(session_factory, "Staff", [alice])
    sync()
    seed.delete_group(session_factory, staff)
    sync()
    assert jsm_view(jsm_emulator.emulator)["organizations"] == {}


def test_user_without_email_is_blocked_and_reported(session_factory, sync, jsm_emulator):
    from scim_server.db import transaction
    from scim_server.sync import outbox

    nobody = seed.add_user(session_factory, "no-mail-user")
    seed.add_group(session_factory, "Staff", [nobody])
    stats = sync()
    assert stats.blocked == 1
    assert jsm_view(jsm_emulator.emulator)["customers"] == []
    with transaction(session_factory) as session:
        [mark] = outbox.problem_marks(session)
        assert mark.status == "blocked" and "no usable e-mail" in mark.last_error
        assert outbox.status_counts(session)["blocked"] == 1


def test_existing_customer_is_adopted_not_duplicated(session_factory, sync, jsm_emulator):
    existing = jsm_emulator.emulator.add_customer("alice@acme.com", "Alice From Before")
    alice = seed.add_user(session_factory, "alice@acme.com")
    seed.add_group(session_factory, "Staff", [alice])
    sync()
    state = jsm_emulator.emulator.state_dict()
    assert [c["accountId"] for c in state["customers"]] == [existing]
    assert state["organizations"][0]["accountIds"] == [existing]


def test_email_change_moves_access_to_the_new_account(session_factory, sync, jsm_emulator):
    alice = seed.add_user(session_factory, "alice@acme.com")
    seed.add_group(session_factory, "Staff", [alice])
    sync()
    seed.update_user(session_factory, alice, email="alice@newco.com")
    sync()
    view = jsm_view(jsm_emulator.emulator)
    assert view["customers"] == ["alice@acme.com", "alice@newco.com"]
    assert view["organizations"] == {"Staff": ["alice@newco.com"]}


RULES = """
[organizations]
on_the_fly = false

[organizations.groups]
"IdP_users" = "Acme Customers"

[organizations.domains]
"acme.com" = "Acme Corp"

[portals]
"Acme Corp" = ["HELP", "BILL"]
"Acme Customers" = ["HELP"]
"""


def test_rules_map_groups_domains_and_portals(session_factory, sync, jsm_emulator, rules_file):
    rules_file.write_text(RULES)
    alice = seed.add_user(session_factory, "alice@acme.com")
    carol = seed.add_user(session_factory, "carol@other.org")
    seed.add_group(session_factory, "IdP_users", [alice, carol])
    seed.add_group(session_factory, "Unmapped", [carol])
    sync(with_rules=True)
    view = jsm_view(jsm_emulator.emulator)
    assert view["organizations"] == {
        "Acme Customers": ["alice@acme.com", "carol@other.org"],
        "Acme Corp": ["alice@acme.com"],
    }
    assert view["desks"] == {"HELP": ["Acme Corp", "Acme Customers"], "BILL": ["Acme Corp"]}


def test_rules_reload_changes_portal_links(session_factory, sync, jsm_emulator, rules_file):
    rules_file.write_text(RULES)
    alice = seed.add_user(session_factory, "alice@acme.com")
    seed.add_group(session_factory, "IdP_users", [alice])
    sync(with_rules=True)
    jsm_emulator.emulator.state.service_desks[1].organization_ids.add(  # a link made by a human
        int(jsm_emulator.emulator.add_organization("Acme Customers")))

    rules_file.write_text(RULES.replace('"Acme Corp" = ["HELP", "BILL"]', '"Acme Corp" = ["BILL"]')
                          .replace('"Acme Customers" = ["HELP"]', ""))
    stats = sync(with_rules=True)
    assert stats.failed == 0
    view = jsm_view(jsm_emulator.emulator)
    assert view["desks"] == {"HELP": [], "BILL": ["Acme Corp", "Acme Customers"]}


def test_display_name_change_is_recorded_not_applied(session_factory, sync, jsm_emulator, caplog):
    from scim_server.db import transaction
    from scim_server.models.sync import JsmAccount

    alice = seed.add_user(session_factory, "alice@acme.com", display_name="Alice")
    sync()
    seed.update_user(session_factory, alice, display_name="Alice Renamed")
    sync()
    seed.update_user(session_factory, alice, display_name="Alice Renamed")
    sync()
    [customer] = jsm_emulator.emulator.state_dict()["customers"]
    assert customer["displayName"] == "Alice"  # JSM cannot rename customers
    with transaction(session_factory) as session:
        assert session.get(JsmAccount, alice).desired_display_name == "Alice Renamed"
    assert sum("cannot rename customer" in r.message for r in caplog.records) == 1  # logged once


def test_unknown_project_key_blocks_only_its_portal_link(session_factory, sync, jsm_emulator, rules_file):
    from sqlalchemy import select

    from scim_server.db import transaction
    from scim_server.models.sync import SyncMark
    from scim_server.sync import outbox

    rules_file.write_text('[portals]\n"Staff" = ["NOPE", "HELP"]\n')
    alice = seed.add_user(session_factory, "alice@acme.com")
    seed.add_group(session_factory, "Staff", [alice])
    stats = sync(with_rules=True)
    assert stats.failed == 0
    view = jsm_view(jsm_emulator.emulator)
    assert view["organizations"] == {"Staff": ["alice@acme.com"]}  # members applied ...
    assert view["desks"] == {"HELP": ["Staff"], "BILL": []}  # ... and the valid link too
    with transaction(session_factory) as session:
        [mark] = session.scalars(select(SyncMark).where(SyncMark.kind == "org"))
        assert mark.status == "blocked"  # visible in sync status, not retried in a loop
        assert "portal link NOPE" in mark.last_error and "no service desk with project key 'NOPE'" in mark.last_error
        assert [m.entity_id for m in outbox.problem_marks(session)] == ["Staff"]

    rules_file.write_text('[portals]\n"Staff" = ["HELP"]\n')  # the admin fixes the rules
    sync(with_rules=True)
    with transaction(session_factory) as session:
        assert outbox.problem_marks(session) == []


def test_organization_leaves_members_with_pending_user_marks_to_those_marks(services, session_factory, sync,
                                                                             jsm_client, jsm_emulator):
    """Another worker may be creating a queued user's account right now: an organization converge
    must not create it too (that raced into duplicate create calls with several workers)."""
    from scim_server.sync.converge import Converger
    from scim_server.sync.rules import RulesProvider

    alice = seed.add_user(session_factory, "alice@acme.com")
    bob = seed.add_user(session_factory, "bob@acme.com")
    seed.add_group(session_factory, "Staff", [alice, bob])
    converger = Converger(session_factory, jsm_client, RulesProvider(services.settings).current(), batch_size=50)

    converger.converge_organization("Staff")  # before the user marks ran

    assert jsm_view(jsm_emulator.emulator)["organizations"] == {"Staff": []}
    assert jsm_emulator.emulator.stats_dict()["by_route"].get("POST /rest/servicedeskapi/customer", 0) == 0
    sync()
    assert jsm_view(jsm_emulator.emulator)["organizations"] == {"Staff": ["alice@acme.com", "bob@acme.com"]}
    assert jsm_emulator.emulator.stats_dict()["by_route"]["POST /rest/servicedeskapi/customer"] == 2

"""Pure units: rules parsing/reloading, the planner and the differ (no database, no JSM)."""
from __future__ import annotations

import os

import pytest

from scim_server.settings import Settings
from scim_server.sync import planner
from scim_server.sync.differ import (
    AddMembers,
    AppliedOrganization,
    DeleteOrganization,
    EnsureOrganization,
    ForgetOrganization,
    LinkDesk,
    RemoveMembers,
    UnlinkDesk,
    diff_organization,
)
from scim_server.sync.planner import DesiredMembership, GroupFacts, UserFacts
from scim_server.sync.rules import DEFAULT_RULES, RulesError, RulesProvider, parse_rules

RULES = parse_rules("""
[organizations]
on_the_fly = false
[organizations.groups]
"IdP_Users" = "Acme Customers"
[organizations.domains]
"Acme.com" = "Acme Corp"
[portals]
"Acme Corp" = ["help", "BILL"]
""")


def user(uid="u1", user_name="alice@acme.com", active=True, emails=None, **doc) -> UserFacts:
    document = {"userName": user_name, **doc}
    if emails is not None:
        document["emails"] = emails
    return UserFacts(uid, 1, user_name, active, document)


# ----------------------------------------------------------------------------------- rules

def test_rules_are_normalised():
    assert RULES.groups == {"idp_users": "Acme Customers"}
    assert RULES.domains == {"acme.com": "Acme Corp"}
    assert RULES.portals == {"Acme Corp": ("HELP", "BILL")}
    assert not RULES.on_the_fly


@pytest.mark.parametrize("text, message", [
    ("[organisations]", "unknown key organisations"),
    ("[organizations]\non_the_fly = 'yes'", "on_the_fly must be true or false"),
    ('[organizations.groups]\n"a" = ""', 'organizations.groups."a"'),
    ('[organizations.groups]\n"a" = "X"\n"A" = "Y"', "differ only in case"),
    ('[organizations.domains]\n"not a domain" = "X"', "is not an e-mail domain"),
    ('[portals]\n"X" = "HELP"', "must be a list"),
    ('[portals]\n"X" = ["HELP", 3]', "must be a list"),
    ("[organizations.groups\n", "invalid TOML"),
    ('[organizations.groups]\n"a" = "' + "x" * 201 + '"', "longer than 200"),
])
def test_invalid_rules_are_rejected_with_the_place(text, message):
    with pytest.raises(RulesError, match=message):
        parse_rules(text, "m.toml")


def test_provider_reloads_on_change_and_keeps_last_good(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('[organizations.groups]\n"a" = "X"\n')
    provider = RulesProvider(Settings(mappings_path=str(path)))
    first = provider.current()
    assert first.groups == {"a": "X"}
    path.write_text('[organizations.groups]\n"a" = "Y"\n')
    os.utime(path, ns=(1, 10**18))
    assert provider.current().groups == {"a": "Y"}
    path.write_text("broken [")
    os.utime(path, ns=(1, 2 * 10**18))
    assert provider.current().groups == {"a": "Y"}
    assert "invalid TOML" in provider.last_error


def test_provider_without_file_uses_on_the_fly_defaults():
    assert RulesProvider(Settings()).current() is DEFAULT_RULES
    with pytest.raises(RulesError, match="cannot read"):
        RulesProvider(Settings(mappings_path="/nonexistent/m.toml")).current()


# --------------------------------------------------------------------------------- planner

@pytest.mark.parametrize("facts, expected", [
    (user(emails=[{"value": "w@x.com", "type": "work"}, {"value": "p@x.com", "primary": True}]), "p@x.com"),
    (user(emails=[{"value": "h@x.com", "type": "home"}, {"value": "w@x.com", "type": "work"}]), "w@x.com"),
    (user(emails=[{"value": "not-an-email"}]), "alice@acme.com"),
    (user(user_name="alice", emails=[]), None),
])
def test_account_email_choice(facts, expected):
    assert planner.account_email(facts) == expected


def test_display_name_fallbacks():
    assert planner.customer_display_name(user(displayName="Al"), "a@x.com") == "Al"
    assert planner.customer_display_name(user(name={"givenName": "Al", "familyName": "Bo"}), "a@x.com") == "Al Bo"
    assert planner.customer_display_name(user(), "a@x.com") == "a@x.com"


def test_group_and_domain_mapping():
    assert planner.organization_for_group(RULES, "idp_users") == "Acme Customers"
    assert planner.organization_for_group(RULES, "Other") is None
    assert planner.organization_for_group(DEFAULT_RULES, "Other") == "Other"
    assert planner.organization_for_email(RULES, "bob@ACME.com") == "Acme Corp"
    assert planner.organization_for_email(RULES, "bob@sub.acme.com") is None


def test_user_organizations_and_portals():
    alice = user()
    assert planner.user_organizations(RULES, alice, ["IdP_users", "Unmapped"]) == {"Acme Customers", "Acme Corp"}
    assert planner.user_organizations(RULES, user(active=False), ["IdP_users"]) == set()
    assert planner.allowed_project_keys_for(RULES, {"Acme Corp"}) == {"HELP", "BILL"}
    assert planner.allowed_project_keys_for(RULES, {"Acme Customers"}) == set()
    assert planner.allowed_project_keys_for(DEFAULT_RULES, {"Anything"}) is None
    reasons = [g.reason for g in planner.user_grants(RULES, alice, ["IdP_users"])]
    assert any("IdP group" in r for r in reasons) and any("domain" in r for r in reasons)


def test_plan_organization_members_and_existence():
    alice, bob, carol = user("a"), user("b", "bob@else.org", active=False), user("c", "carol@acme.com")
    group = GroupFacts("g", 1, "IdP_users")
    plan = planner.plan_organization(RULES, "Acme Customers", [group], {"g": [alice, bob]}, [])
    assert plan.exists and dict(plan.members) == {"a": "alice@acme.com"} and plan.project_keys == frozenset()
    by_domain = planner.plan_organization(RULES, "Acme Corp", [], {}, [carol, user("d", "d@other.org")])
    assert by_domain.exists and set(by_domain.members) == {"c"} and by_domain.project_keys == {"HELP", "BILL"}
    gone = planner.plan_organization(RULES, "Acme Customers", [GroupFacts("x", 1, "Unmapped")], {}, [])
    assert not gone.exists
    assert planner.resolve_accounts(plan, {"a": "acc-a"}).account_ids == {"acc-a"}


def test_an_established_domain_organization_outlives_its_last_member():
    nobody_active = [user("c", "carol@acme.com", active=False)]
    assert not planner.plan_organization(RULES, "Acme Corp", [], {}, nobody_active).exists  # never created
    kept = planner.plan_organization(RULES, "Acme Corp", [], {}, nobody_active, established=True)
    assert kept.exists and dict(kept.members) == {}  # emptied, not deleted
    assert not planner.plan_organization(DEFAULT_RULES, "Acme Corp", [], {}, [], established=True).exists  # rule gone


# ---------------------------------------------------------------------------------- differ

def desired(exists=True, accounts=(), desks=()) -> DesiredMembership:
    return DesiredMembership("O", exists, frozenset(accounts), frozenset(desks))


def applied(org_id="7", owned=True, members=(), desks=(), present=None) -> AppliedOrganization:
    members, desks = frozenset(members), frozenset(desks)
    present_members = frozenset(present) if present is not None else members
    return AppliedOrganization("O", org_id, owned, present_members, members, desks, desks)


def test_new_organization_is_created_filled_and_linked():
    ops = diff_organization(desired(accounts=["b", "a"], desks=["HELP"]), None).operations
    assert ops == (EnsureOrganization(), AddMembers(("a", "b")), LinkDesk("HELP"))


def test_set_difference_only():
    ops = diff_organization(desired(accounts=["a", "c"], desks=["BILL"]), applied(members=["a", "b"], desks=["HELP"]))
    assert ops.operations == (AddMembers(("c",)), RemoveMembers(("b",)), LinkDesk("BILL"), UnlinkDesk("HELP"))
    assert diff_organization(desired(accounts=["a"]), applied(members=["a"])).empty


def test_retiring_owned_deletes_adopted_is_emptied_and_forgotten():
    assert diff_organization(desired(False), applied(members=["a"])).operations == (DeleteOrganization(),)
    assert diff_organization(desired(False), applied(owned=False, members=["a"], desks=["HELP"])).operations == (
        RemoveMembers(("a",)), UnlinkDesk("HELP"), ForgetOrganization())
    assert diff_organization(desired(False), None).empty


def test_keep_deleted_retires_an_owned_organization_without_deleting_it():
    ops = diff_organization(desired(False), applied(members=["a"], desks=["HELP"]), keep_deleted=True).operations
    assert ops == (RemoveMembers(("a",)), UnlinkDesk("HELP"), ForgetOrganization())
    assert diff_organization(desired(False), applied(org_id=None), keep_deleted=True).operations == (
        ForgetOrganization(),)


def test_reconcile_view_never_removes_foreign_members():
    # JSM has a and x; the bridge granted only a; desired is nothing but the org must exist.
    state = applied(members=["a"], present=["a", "x"])
    assert diff_organization(desired(accounts=[]), state).operations == (RemoveMembers(("a",)),)

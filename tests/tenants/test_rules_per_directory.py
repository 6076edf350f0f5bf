"""Pure units: per-directory rules, shared organizations, ownership decisions and JSM name matching."""
from __future__ import annotations

import pytest

from scim_server.sync import planner
from scim_server.sync.names import AmbiguousOrganization, match_organization, organization_key
from scim_server.sync.planner import GroupFacts, Owners, UserFacts
from scim_server.sync.rules import RulesError, parse_rules, rule_collisions

RULES = parse_rules("""
[organizations]
on_the_fly = true
[organizations.groups]
"Staff" = "Customers"
[organizations.domains]
"partner.example" = "Partners"
[portals]
"Customers" = ["HELP"]

[directories.globex]
organization_prefix = "Globex / "
[directories.globex.organizations]
on_the_fly = true
[directories.globex.organizations.groups]
"Staff" = "Globex Staff"
[directories.globex.organizations.domains]
"globex.com" = "Globex"
[directories.globex.portals]
"Globex" = ["bill"]

[directories.initech.organizations]
on_the_fly = false

[shared_organizations]
"Customers" = ["acme", "globex"]
""")


def user(directory: str, email: str, uid: str = "u") -> UserFacts:
    return UserFacts(uid, 1, email, True, {"userName": email}, directory)


def test_directory_rules_come_before_global_ones():
    assert planner.organization_for_group(RULES, "staff", "globex") == "Globex Staff"
    assert planner.organization_for_group(RULES, "staff", "acme") == "Customers"
    assert planner.organization_for_group(RULES, "Sales", "globex") == "Globex / Sales"  # prefix, on the fly
    assert planner.organization_for_group(RULES, "Sales", "acme") == "Sales"
    assert planner.organization_for_group(RULES, "Sales", "initech") is None  # on_the_fly off for initech only
    assert planner.organization_for_group(RULES, "Staff", "initech") == "Customers"  # global mapping still applies
    assert planner.organization_for_email(RULES, "g@globex.com", "globex") == "Globex"
    assert planner.organization_for_email(RULES, "g@globex.com", "acme") is None
    assert planner.organization_for_email(RULES, "p@partner.example", "globex") == "Partners"


def test_portals_per_directory_and_shared():
    assert planner.allowed_project_keys_for(RULES, {"Globex"}, "globex") == {"BILL"}
    assert planner.allowed_project_keys_for(RULES, {"Customers"}, "globex") == {"HELP"}
    assert planner.project_keys_for(RULES, "globex", ["globex"]) == {"BILL"}  # names compared as JSM does
    only_directory = parse_rules('[directories.a.portals]\n"X" = ["HELP"]\n')
    assert planner.allowed_project_keys_for(only_directory, {"Y"}, "b") is None  # b has no portals section
    assert planner.allowed_project_keys_for(only_directory, {"X"}, "a") == {"HELP"}


def test_who_may_lead_where():
    owners = Owners({"acme corp": ("Acme Corp", "acme")})
    assert planner.may_lead(RULES, owners, "ACME CORP", "acme")
    assert not planner.may_lead(RULES, owners, "acme corp ", "globex")
    assert "belongs to directory acme" in planner.refusal(RULES, owners, "Acme Corp", "globex")
    assert planner.may_lead(RULES, owners, "New Org", "globex")  # nobody owns it yet
    assert planner.may_lead(RULES, owners, "customers", "globex")  # shared in so many words
    assert not planner.may_lead(RULES, owners, "Customers", "initech")  # shared, but not with initech
    mallory = user("hooli", "mallory@acme.example")  # hooli has no rules of its own
    grants = planner.user_grants(RULES, mallory, ["ACME corp"], owners)
    assert [g.organization for g in grants] == ["Acme Corp"] and "acme" in grants[0].refused  # recorded spelling
    assert planner.user_organizations(RULES, mallory, ["ACME corp", "Sales"], owners) == {"Sales"}


def test_the_oldest_group_decides_a_new_owner():
    groups = [GroupFacts("1", 2, "Team", "globex", "2026-02-01"), GroupFacts("2", 1, "team", "acme", "2026-01-01")]
    found = planner.leads(parse_rules(""), "TEAM", groups, [])
    assert planner.first_owner(found) == "acme"
    assert planner.first_owner(planner.leads(parse_rules('[organizations.domains]\n"x.example" = "T"\n'), "T", [],
                                             [user("zeta", "a@x.example"), user("beta", "b@x.example")])) == "beta"


def test_plan_counts_only_allowed_directories():
    groups = [GroupFacts("a", 1, "Staff", "acme"), GroupFacts("g", 2, "Staff", "initech")]
    members = {"a": [user("acme", "a@acme.example", "ua")], "g": [user("initech", "i@initech.example", "ui")]}
    plan = planner.plan_organization(RULES, "customers", groups, members, [], frozenset({"acme"}))
    assert set(plan.members) == {"ua"} and plan.project_keys == {"HELP"}


@pytest.mark.parametrize("text, message", [
    ('[directories."bad name"]\norganization_prefix = "x"', "directory name"),
    ("[directories.a]\nprefix = 'x'", "unknown key"),
    ("[directories.a]\norganization_prefix = 3", "organization_prefix"),
    ('[directories.a.organizations.groups]\n"g" = ""', 'directories."a".organizations.groups."g"'),
    ('[directories.a.portals]\n"X" = "HELP"', 'directories."a".portals."X" must be a list'),
    ('[shared_organizations]\n"X" = "a"', "must be a list of directory names"),
    ('[shared_organizations]\n"X" = ["a"]\n"x " = ["b"]', "listed twice"),
])
def test_invalid_directory_rules_name_the_place(text, message):
    with pytest.raises(RulesError, match=message):
        parse_rules(text, "m.toml")


def test_collisions_between_directory_rules_are_reported():
    rules = parse_rules('[directories.a.organizations.groups]\n"x" = "Org"\n'
                        '[directories.b.organizations.domains]\n"b.example" = "org"\n')
    [warning] = rule_collisions(rules)
    assert "'org'" in warning and "a, b" in warning
    shared = parse_rules('[directories.a.organizations.groups]\n"x" = "Org"\n'
                         '[directories.b.organizations.groups]\n"y" = "Org"\n[shared_organizations]\n"Org" = ["a", "b"]\n')
    assert rule_collisions(shared) == []


def test_names_are_compared_as_jsm_does():
    assert organization_key("  Acme Corp ") == organization_key("ACME CORP") == "acme corp"
    assert organization_key("Acme  Corp") != organization_key("Acme Corp")  # inner whitespace counts
    listing = [("Acme Corp", "1"), ("Globex", "2")]
    assert match_organization(listing, "acme corp") == "1"
    assert match_organization(listing, "Initech") is None
    both = [("Acme", "1"), ("ACME", "2")]
    assert match_organization(both, "ACME") == "2"  # an exact match is unambiguous
    with pytest.raises(AmbiguousOrganization, match="several organizations matching 'acme'"):
        match_organization(both, "acme")

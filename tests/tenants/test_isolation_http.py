"""Two and three directories over real HTTP (SCIM in, worker, JSM emulator out): one directory's
pushes never change, or join, another directory's organizations and portal grants unless the rules
file shares them in so many words."""
from __future__ import annotations

import logging

from sqlalchemy import select

from scim_server.models.sync import SyncMark
from tests.sync.conftest import jsm_view


def org_ids(emulator) -> dict[str, str]:
    return {o["name"]: o["id"] for o in emulator.state_dict()["organizations"]}


def conflicts(admin) -> list[dict]:
    return [p for p in admin("sync", "status", "--json")["problems"] if p["status"] == "conflict"]


def test_same_group_name_in_another_directory_is_refused_visibly(idps, sync, jsm_emulator, admin, caplog):
    """The issue's scenario: globex pushes a group also named "Acme Corp" with its own user."""
    scim = idps("acme", "globex")
    acme, globex = scim["acme"], scim["globex"]
    acme.group("Acme Corp", acme.user("alice@acme.com"), acme.user("bob@acme.com"))
    assert sync().failed == 0
    attacker = globex.user("attacker@evil.example")
    globex.group("Acme Corp", attacker)
    globex.group("Globex Staff", attacker)

    with caplog.at_level(logging.WARNING, logger="scim_server.sync.ownership"):
        stats = sync()

    assert stats.failed == 0
    view = jsm_view(jsm_emulator.emulator)
    assert view["organizations"] == {"Acme Corp": ["alice@acme.com", "bob@acme.com"],
                                     "Globex Staff": ["attacker@evil.example"]}  # nothing else of globex blocked
    [problem] = conflicts(admin)
    assert 'group "Acme Corp"' in problem["last_error"] and "directory globex" in problem["last_error"]
    assert "belongs to directory acme" in problem["last_error"] and problem["entity_id"] == "acme corp"
    assert any("organization conflict" in r.getMessage() and 'group "Acme Corp"' in r.getMessage()
               for r in caplog.records)
    text = admin("sync", "status")
    assert "conflicts 1" in text.stdout and "Acme Corp" in text.stdout

    # acme's own changes keep working; globex's refused group changes nothing there
    globex.patch("Groups", globex_group_id(globex, "Acme Corp"),
                 {"op": "add", "path": "members", "value": [{"value": globex.user("eve@evil.example")}]})
    sync()
    assert jsm_view(jsm_emulator.emulator)["organizations"]["Acme Corp"] == ["alice@acme.com", "bob@acme.com"]


def globex_group_id(scim, name: str) -> str:
    response = scim.request("GET", f'Groups?filter=displayName eq "{name}"')
    return response.json()["Resources"][0]["id"]


def test_a_directory_prefix_gives_each_company_its_own_organizations(idps, sync, jsm_emulator, rules_file, admin):
    rules_file.write_text('[directories.globex]\norganization_prefix = "Globex / "\n')
    scim = idps("acme", "globex")
    scim["acme"].group("Staff", scim["acme"].user("alice@acme.com"))
    scim["globex"].group("Staff", scim["globex"].user("gina@globex.com"))
    assert sync(with_rules=True).failed == 0
    assert jsm_view(jsm_emulator.emulator)["organizations"] == {"Staff": ["alice@acme.com"],
                                                                "Globex / Staff": ["gina@globex.com"]}
    assert conflicts(admin) == []


def test_shared_rule_names_reach_only_the_owner_unless_shared(idps, sync, jsm_emulator, rules_file, admin):
    rules_file.write_text('[organizations.groups]\n"Staff" = "Customers"\n[portals]\n"Customers" = ["HELP"]\n')
    scim = idps("acme", "globex")
    scim["acme"].group("Staff", scim["acme"].user("alice@acme.com"))
    sync(with_rules=True)
    scim["globex"].group("staff", scim["globex"].user("gina@globex.com"))
    sync(with_rules=True)
    view = jsm_view(jsm_emulator.emulator)
    assert view["organizations"] == {"Customers": ["alice@acme.com"]}
    assert view["desks"]["HELP"] == ["Customers"]
    assert [c["last_error"] for c in conflicts(admin)][0].startswith('directory globex: group "staff" leads to')

    # the admin says in so many words that both companies share it
    rules_file.write_text('[organizations.groups]\n"Staff" = "Customers"\n[portals]\n"Customers" = ["HELP"]\n'
                          '[shared_organizations]\n"Customers" = ["acme", "globex"]\n')
    assert sync(with_rules=True).failed == 0
    view = jsm_view(jsm_emulator.emulator)
    assert view["organizations"] == {"Customers": ["alice@acme.com", "gina@globex.com"]}
    assert view["desks"]["HELP"] == ["Customers"]
    assert conflicts(admin) == []


def test_changes_in_one_directory_leave_the_others_exactly_as_they_were(idps, sync, jsm_emulator, rules_file):
    """Three directories, same group names, per-directory portals: renames, member removals and
    group deletes in globex and initech leave acme's memberships and portal grants untouched."""
    rules_file.write_text("""
[directories.globex]
organization_prefix = "Globex: "
[directories.globex.portals]
"Globex: Staff" = ["BILL"]
"Globex: Team" = ["BILL"]
[directories.initech]
organization_prefix = "Initech: "
[portals]
"Staff" = ["HELP"]
"Initech: Staff" = ["HELP"]
""")
    scim = idps("acme", "globex", "initech")
    acme_users = [scim["acme"].user(f"{n}@acme.com") for n in ("alice", "bob")]
    scim["acme"].group("Staff", *acme_users)
    globex_users = [scim["globex"].user(f"{n}@globex.com") for n in ("gina", "gus")]
    globex_staff = scim["globex"].group("Staff", *globex_users)
    initech_user = scim["initech"].user("ian@initech.example")
    initech_staff = scim["initech"].group("Staff", initech_user)
    assert sync(with_rules=True).failed == 0
    before = jsm_view(jsm_emulator.emulator)
    assert before["organizations"] == {"Staff": ["alice@acme.com", "bob@acme.com"],
                                       "Globex: Staff": ["gina@globex.com", "gus@globex.com"],
                                       "Initech: Staff": ["ian@initech.example"]}
    assert before["desks"] == {"HELP": ["Initech: Staff", "Staff"], "BILL": ["Globex: Staff"]}
    acme_org = org_ids(jsm_emulator.emulator)["Staff"]

    scim["globex"].remove_member(globex_staff, globex_users[1])
    scim["globex"].rename_group(globex_staff, "Team")
    scim["globex"].delete("Users", globex_users[0])
    scim["initech"].delete("Groups", initech_staff)
    assert sync(with_rules=True).failed == 0

    after = jsm_view(jsm_emulator.emulator)
    assert after["organizations"] == {"Staff": ["alice@acme.com", "bob@acme.com"], "Globex: Team": []}
    assert after["desks"] == {"HELP": ["Staff"], "BILL": ["Globex: Team"]}
    assert org_ids(jsm_emulator.emulator)["Staff"] == acme_org  # never recreated


def test_deleting_the_other_directorys_same_named_group_keeps_the_owners_members(idps, sync, jsm_emulator):
    """The issue's case-insensitive variant: globex's "ACME CORP" is deleted after acme's "Acme Corp"."""
    scim = idps("acme", "globex")
    scim["acme"].group("Acme Corp", scim["acme"].user("alice@acme.com"))
    sync()
    other = scim["globex"].group("ACME CORP", scim["globex"].user("mallory@evil.example"))
    sync()
    scim["globex"].delete("Groups", other)
    sync()
    assert jsm_view(jsm_emulator.emulator)["organizations"] == {"Acme Corp": ["alice@acme.com"]}


def test_case_only_rename_keeps_the_organization(idps, sync, jsm_emulator):
    scim = idps("acme")
    group = scim["acme"].group("Acme Corp", scim["acme"].user("alice@acme.com"))
    sync()
    org = org_ids(jsm_emulator.emulator)["Acme Corp"]
    effects = jsm_emulator.emulator.stats_dict()["effects"]
    scim["acme"].rename_group(group, "ACME corp ")
    assert sync().failed == 0
    assert org_ids(jsm_emulator.emulator) == {"Acme Corp": org}
    assert jsm_emulator.emulator.stats_dict()["effects"] == effects  # nothing deleted, created or moved


def test_domain_rules_of_one_directory_do_not_reach_another_directorys_users(idps, sync, jsm_emulator, rules_file,
                                                                            admin):
    rules_file.write_text('[directories.acme.organizations.domains]\n"acme.com" = "Acme Corp"\n'
                          '[organizations.domains]\n"partner.example" = "Partners"\n')
    scim = idps("acme", "globex")
    scim["acme"].user("alice@acme.com")
    scim["acme"].user("pat@partner.example")
    scim["globex"].user("mallory@acme.com")  # nobody claimed acme.com: globex may store the address
    scim["globex"].user("pia@partner.example")
    assert sync(with_rules=True).failed == 0
    assert jsm_view(jsm_emulator.emulator)["organizations"] == {"Acme Corp": ["alice@acme.com"],
                                                                "Partners": ["pat@partner.example"]}
    [problem] = conflicts(admin)
    assert 'directory globex: domain "partner.example" leads to organization "Partners"' in problem["last_error"]

    explained = admin("mappings", "explain", "pia@partner.example", "--directory", "globex", "--json")
    [grant] = explained[0]["grants"]
    assert grant["organization"] == "Partners" and "belongs to directory acme" in grant["refused"]
    assert explained[0]["organizations"] == []


def test_ambiguous_organization_names_in_jsm_are_refused(idps, sync, jsm_emulator, session_factory):
    jsm_emulator.emulator.add_organization("Acme")
    jsm_emulator.emulator.add_organization("ACME")
    scim = idps("acme")
    scim["acme"].group("acme", scim["acme"].user("alice@acme.com"))
    stats = sync()
    assert stats.failed >= 1
    view = jsm_view(jsm_emulator.emulator)
    assert view["organizations"] == {"Acme": [], "ACME": []}  # neither adopted, nobody added
    with session_factory() as session:
        mark = session.scalar(select(SyncMark).where(SyncMark.kind == "org"))
    assert mark.status == "pending" and mark.attempts >= 1  # retried with back-off, then dead-lettered
    assert "several organizations matching 'acme' ('ACME', 'Acme')" in mark.last_error


def test_another_directorys_user_with_the_same_email_never_gets_that_customer(idps, sync, jsm_emulator, admin):
    """JSM has one customer per e-mail: without a domain claim, globex may store "alice@acme.com",
    but the JSM customer stays acme's; globex's copy is blocked, and its changes touch nothing."""
    scim = idps("acme", "globex")
    scim["acme"].group("Staff", scim["acme"].user("alice@acme.com"))
    sync()
    copy = scim["globex"].user("alice@acme.com")
    team = scim["globex"].group("Team", copy, scim["globex"].user("gina@globex.com"))
    assert sync().failed == 0
    view = jsm_view(jsm_emulator.emulator)
    assert view["organizations"] == {"Staff": ["alice@acme.com"], "Team": ["gina@globex.com"]}
    [blocked] = [p for p in admin("sync", "status", "--json")["problems"] if p["status"] == "blocked"]
    assert blocked["kind"] == "user" and blocked["entity_id"] == copy
    assert "already belongs to a user of directory acme" in blocked["last_error"]

    scim["globex"].remove_member(team, copy)
    scim["globex"].delete("Users", copy)
    scim["globex"].delete("Groups", team)
    assert sync().failed == 0
    assert jsm_view(jsm_emulator.emulator)["organizations"] == {"Staff": ["alice@acme.com"]}

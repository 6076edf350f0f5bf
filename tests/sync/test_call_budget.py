"""The initial push of 1,000 users in 20 groups stays within its JSM call budget."""
from __future__ import annotations

import math

import pytest

from tests.sync import seed
from tests.sync.conftest import jsm_view

USERS, GROUPS, LINKED = 1000, 20, 5


def test_initial_push_call_budget(session_factory, sync, jsm_emulator, rules_file, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("call counts do not depend on the database; the heavy run is done once, on SQLite")
    portals = "\n".join(f'"Team {g:02d}" = ["HELP"]' for g in range(LINKED))
    rules_file.write_text(f"[organizations]\non_the_fly = true\n\n[portals]\n{portals}\n")
    emails = [f"user{n:04d}@example.com" for n in range(USERS)]
    groups = {f"Team {g:02d}": [n for n in range(USERS) if n % GROUPS == g] for g in range(GROUPS)}
    seed.bulk(session_factory, emails, groups)

    stats = sync(with_rules=True, claim_batch=50)

    assert stats.failed == 0
    view = jsm_view(jsm_emulator.emulator)
    assert view["customers"] == sorted(emails)
    assert view["organizations"] == {name: sorted(emails[i] for i in members) for name, members in groups.items()}
    assert view["desks"]["HELP"] == [f"Team {g:02d}" for g in range(LINKED)]
    memberships = sum(len(m) for m in groups.values())
    budget = USERS + 2 * GROUPS + math.ceil(memberships / 50) + LINKED + 5  # create + ownership property per org
    by_route = jsm_emulator.emulator.stats_dict()["by_route"]
    assert by_route["POST /rest/servicedeskapi/customer"] == USERS
    assert by_route["POST /rest/servicedeskapi/organization"] == GROUPS
    assert by_route["PUT /rest/servicedeskapi/organization/{id}/property/{key}"] == GROUPS
    assert jsm_emulator.emulator.stats_dict()["effects"] == {
        "customers_created": USERS, "organizations_created": GROUPS, "organizations_deleted": 0,
        "members_added": memberships, "members_removed": 0, "desk_links_added": LINKED, "desk_links_removed": 0}
    assert jsm_emulator.emulator.stats_dict()["requests"] <= budget, by_route

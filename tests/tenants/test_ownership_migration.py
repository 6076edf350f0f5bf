"""Migration 0008 on an installation from before ownership: today's owner of each organization is
the directory whose group created it (else the one most of its bridge-granted members are in)."""
from __future__ import annotations

from sqlalchemy import text

from scim_server.db import make_engine, upgrade
from tests.deploy.conftest import empty_database_url  # noqa: F401  (fixture)

ROWS = """
INSERT INTO directories (id, name, created_at) VALUES (1, 'acme', '2026-01-01'), (2, 'globex', '2026-01-01');
INSERT INTO groups (id, directory_id, display_name, display_name_lower, version, created_at, updated_at) VALUES
  ('g-acme', 1, 'Acme Corp', 'acme corp', 1, '2026-01-01', '2026-01-01'),
  ('g-globex', 2, 'ACME CORP', 'acme corp', 1, '2026-02-01', '2026-02-01'),
  ('g-team', 2, 'Team', 'team', 1, '2026-02-01', '2026-02-01');
INSERT INTO sync_group_targets (group_id, org_name) VALUES
  ('g-globex', 'Acme Corp'), ('g-acme', 'Acme Corp'), ('g-team', 'Team');
INSERT INTO jsm_organizations (name, org_id, owned, created_at) VALUES
  ('Acme Corp', '1', true, '2026-01-01'), ('Team', '2', true, '2026-01-01'),
  ('Partners', '3', true, '2026-01-01'), ('Orphan', '4', false, '2026-01-01');
INSERT INTO jsm_accounts (user_id, directory_id, email, account_id, created_by_bridge, display_name, updated_at)
  VALUES ('u1', 1, 'a@x.example', 'acc-1', true, 'A', '2026-01-01'),
         ('u2', 2, 'b@x.example', 'acc-2', true, 'B', '2026-01-01'),
         ('u3', 2, 'c@x.example', 'acc-3', true, 'C', '2026-01-01');
INSERT INTO jsm_memberships (org_name, account_id) VALUES ('Partners', 'acc-1'), ('Partners', 'acc-2'),
  ('Partners', 'acc-3');
"""


def test_existing_organizations_get_their_creating_directory_as_owner(empty_database_url):  # noqa: F811
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine, "0007")
        with engine.begin() as connection:
            for statement in filter(str.strip, ROWS.split(";")):
                connection.execute(text(statement))
        upgrade(engine)
        with engine.connect() as connection:
            owners = connection.execute(text(
                "SELECT o.key, o.name, d.name FROM organization_owners o JOIN directories d ON d.id = o.directory_id "
                "ORDER BY o.key")).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in owners] == [
        ("acme corp", "Acme Corp", "acme"),   # the older group's directory, not the later same-named one
        ("partners", "Partners", "globex"),   # domain-rule organization: most members
        ("team", "Team", "globex"),
    ]  # "Orphan" has no group and no member: it gets an owner at its next converge

"""organization ownership per directory and refused cross-directory leads (tenants feature).

Existing organizations get their owner from what the bridge recorded: the directory of the oldest
group last converged to the organization, else (domain-rule organizations) the directory most of
the organization's bridge-granted members belong to.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

import scim_server.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organization_owners",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("directory_id", sa.Integer(), nullable=False),
        sa.Column("created_at", scim_server.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["directory_id"], ["directories.id"], name=op.f("fk_organization_owners_directory_id_directories")
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_organization_owners")),
    )
    with op.batch_alter_table("organization_owners", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_organization_owners_directory_id"), ["directory_id"], unique=False)
    op.create_table(
        "organization_conflicts",
        sa.Column("org_key", sa.String(length=400), nullable=False),
        sa.Column("directory_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=400), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detected_at", scim_server.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_key", "directory_id", "source", name=op.f("pk_organization_conflicts")),
    )
    _record_existing_owners()


def _record_existing_owners() -> None:
    connection = op.get_bind()
    by_group = connection.execute(sa.text(
        "SELECT t.org_name, g.directory_id FROM sync_group_targets t JOIN groups g ON g.id = t.group_id "
        "ORDER BY g.created_at, g.id")).all()
    by_members = connection.execute(sa.text(
        "SELECT m.org_name, a.directory_id, COUNT(*) AS n FROM jsm_memberships m "
        "JOIN jsm_accounts a ON a.account_id = m.account_id GROUP BY m.org_name, a.directory_id "
        "ORDER BY n DESC, a.directory_id")).all()
    names = [row[0] for row in connection.execute(sa.text("SELECT name FROM jsm_organizations ORDER BY created_at, name"))]
    owner: dict[str, int] = {}
    for name, directory_id, *_ in [*by_group, *by_members]:
        owner.setdefault(name, directory_id)
    table = sa.table("organization_owners", sa.column("key"), sa.column("name"), sa.column("directory_id"),
                     sa.column("created_at", scim_server.db.UTCDateTime(timezone=True)))
    seen: set[str] = set()
    rows = []
    for name in names:
        key = name.strip().lower()  # scim_server.sync.names.organization_key as of this revision
        if name in owner and key not in seen:
            seen.add(key)
            rows.append({"key": key, "name": name, "directory_id": owner[name], "created_at": scim_server.db.utcnow()})
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_table("organization_conflicts")
    with op.batch_alter_table("organization_owners", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_organization_owners_directory_id"))
    op.drop_table("organization_owners")

"""directories: display name and claimed e-mail domains (owned by the tenants feature).

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

import scim_server.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("directories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display_name", sa.String(length=200), nullable=True))
    op.create_table(
        "directory_domains",
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("directory_id", sa.Integer(), nullable=False),
        sa.Column("created_at", scim_server.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["directory_id"], ["directories.id"], name=op.f("fk_directory_domains_directory_id_directories")
        ),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_directory_domains")),
    )
    with op.batch_alter_table("directory_domains", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_directory_domains_directory_id"), ["directory_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("directory_domains", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_directory_domains_directory_id"))
    op.drop_table("directory_domains")
    with op.batch_alter_table("directories", schema=None) as batch_op:
        batch_op.drop_column("display_name")

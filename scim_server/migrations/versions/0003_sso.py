"""SAML service provider state (owned by the sso feature).

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

import scim_server.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sso_idp_config",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.String(length=1000), nullable=False),
        sa.Column("sso_url", sa.String(length=2000), nullable=False),
        sa.Column("slo_url", sa.String(length=2000), nullable=True),
        sa.Column("certificates_pem", sa.Text(), nullable=False),
        sa.Column("attribute_map", sa.JSON(), nullable=False),
        sa.Column("allow_idp_initiated", sa.Boolean(), nullable=False),
        sa.Column("jit_directory", sa.String(length=100), nullable=False),
        sa.Column("updated_at", scim_server.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_idp_config")),
    )
    op.create_table(
        "sso_authn_requests",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("expires_at", scim_server.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_authn_requests")),
    )
    with op.batch_alter_table("sso_authn_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sso_authn_requests_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "sso_consumed_assertions",
        sa.Column("id", sa.String(length=300), nullable=False),
        sa.Column("expires_at", scim_server.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_consumed_assertions")),
    )
    with op.batch_alter_table("sso_consumed_assertions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sso_consumed_assertions_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sso_consumed_assertions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sso_consumed_assertions_expires_at"))
    op.drop_table("sso_consumed_assertions")
    with op.batch_alter_table("sso_authn_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sso_authn_requests_expires_at"))
    op.drop_table("sso_authn_requests")
    op.drop_table("sso_idp_config")

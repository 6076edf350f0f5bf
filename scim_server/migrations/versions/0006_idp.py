"""Downstream SAML IdP state: the registered service provider and answered AuthnRequests.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

import scim_server.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idp_service_provider",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.String(length=1000), nullable=False),
        sa.Column("acs_url", sa.String(length=2000), nullable=False),
        sa.Column("registered_at", scim_server.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idp_service_provider")),
    )
    op.create_table(
        "idp_answered_requests",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("expires_at", scim_server.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idp_answered_requests")),
    )
    with op.batch_alter_table("idp_answered_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idp_answered_requests_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("idp_answered_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idp_answered_requests_expires_at"))
    op.drop_table("idp_answered_requests")
    op.drop_table("idp_service_provider")

"""propagation outbox and applied JSM state (owned by the sync feature).

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

import scim_server.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('jsm_accounts',
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('directory_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('account_id', sa.String(length=200), nullable=False),
    sa.Column('created_by_bridge', sa.Boolean(), nullable=False),
    sa.Column('display_name', sa.String(length=300), nullable=False),
    sa.Column('desired_display_name', sa.String(length=300), nullable=True),
    sa.Column('updated_at', scim_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_jsm_accounts'))
    )
    with op.batch_alter_table('jsm_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jsm_accounts_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_jsm_accounts_directory_id'), ['directory_id'], unique=False)

    op.create_table('jsm_memberships',
    sa.Column('org_name', sa.String(length=200), nullable=False),
    sa.Column('account_id', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('org_name', 'account_id', name=op.f('pk_jsm_memberships'))
    )
    with op.batch_alter_table('jsm_memberships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jsm_memberships_account_id'), ['account_id'], unique=False)

    op.create_table('jsm_organizations',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('org_id', sa.String(length=50), nullable=True),
    sa.Column('owned', sa.Boolean(), nullable=False),
    sa.Column('created_at', scim_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_jsm_organizations'))
    )
    op.create_table('jsm_portal_links',
    sa.Column('org_name', sa.String(length=200), nullable=False),
    sa.Column('project_key', sa.String(length=50), nullable=False),
    sa.PrimaryKeyConstraint('org_name', 'project_key', name=op.f('pk_jsm_portal_links'))
    )
    op.create_table('sync_group_targets',
    sa.Column('group_id', sa.String(length=36), nullable=False),
    sa.Column('org_name', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('group_id', 'org_name', name=op.f('pk_sync_group_targets'))
    )
    op.create_table('sync_marks',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('directory_id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.String(length=300), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('available_at', scim_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('pending_since', scim_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=100), nullable=True),
    sa.Column('claimed_until', scim_server.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('done_at', scim_server.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', scim_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_marks')),
    sa.UniqueConstraint('kind', 'directory_id', 'entity_id', name=op.f('uq_sync_marks_kind_directory_id_entity_id'))
    )
    with op.batch_alter_table('sync_marks', schema=None) as batch_op:
        batch_op.create_index('ix_sync_marks_claimable', ['status', 'priority', 'available_at'], unique=False)

    op.create_table('sync_rules_state',
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('updated_at', scim_server.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_sync_rules_state'))
    )


def downgrade() -> None:
    op.drop_table('sync_rules_state')
    with op.batch_alter_table('sync_marks', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_marks_claimable')

    op.drop_table('sync_marks')
    op.drop_table('sync_group_targets')
    op.drop_table('jsm_portal_links')
    op.drop_table('jsm_organizations')
    with op.batch_alter_table('jsm_memberships', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jsm_memberships_account_id'))

    op.drop_table('jsm_memberships')
    with op.batch_alter_table('jsm_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jsm_accounts_directory_id'))
        batch_op.drop_index(batch_op.f('ix_jsm_accounts_account_id'))

    op.drop_table('jsm_accounts')

"""SSO broker upstream: many connections, server-side login sessions, stateless login requests.

The one ``sso_idp_config`` row becomes the connection named ``default`` (SAML), bound to the
directory it created users in (the old default ``sso`` becomes ``default``, where
``keys create`` puts SCIM users, so a one-company installation keeps meeting its SCIM users).
Issued AuthnRequest IDs are no longer stored (they travel in the browser's binding cookie).

Revision ID: 0007
Revises: 0006
"""
import json

import sqlalchemy as sa
from alembic import op

import scim_server.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UTC = scim_server.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sso_connections",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("directory_id", sa.Integer(), nullable=False),
        sa.Column("jit", sa.Boolean(), nullable=True),
        sa.Column("attribute_map", sa.JSON(), nullable=False),
        sa.Column("allow_idp_initiated", sa.Boolean(), nullable=False),
        sa.Column("saml_entity_id", sa.String(length=1000), nullable=True),
        sa.Column("saml_sso_url", sa.String(length=2000), nullable=True),
        sa.Column("saml_slo_url", sa.String(length=2000), nullable=True),
        sa.Column("saml_certificates_pem", sa.Text(), nullable=True),
        sa.Column("oidc_issuer", sa.String(length=2000), nullable=True),
        sa.Column("oidc_client_id", sa.String(length=500), nullable=True),
        sa.Column("oidc_client_secret_sealed", sa.Text(), nullable=True),
        sa.Column("oidc_scopes", sa.String(length=500), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["directory_id"], ["directories.id"],
                                name=op.f("fk_sso_connections_directory_id_directories")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sso_connections")),
    )
    with op.batch_alter_table("sso_connections") as batch_op:
        batch_op.create_index(batch_op.f("ix_sso_connections_directory_id"), ["directory_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sso_connections_saml_entity_id"), ["saml_entity_id"], unique=False)
    op.create_table(
        "sso_connection_domains",
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("connection_name", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["connection_name"], ["sso_connections.name"], ondelete="CASCADE",
                                name=op.f("fk_sso_connection_domains_connection_name_sso_connections")),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_sso_connection_domains")),
    )
    with op.batch_alter_table("sso_connection_domains") as batch_op:
        batch_op.create_index(batch_op.f("ix_sso_connection_domains_connection_name"), ["connection_name"],
                              unique=False)
    op.create_table(
        "sso_login_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("directory", sa.String(length=100), nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_login_sessions")),
    )
    with op.batch_alter_table("sso_login_sessions") as batch_op:
        batch_op.create_index(batch_op.f("ix_sso_login_sessions_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sso_login_sessions_user_id"), ["user_id"], unique=False)
    op.create_table(
        "sso_pending_logins",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_pending_logins")),
    )
    with op.batch_alter_table("sso_pending_logins") as batch_op:
        batch_op.create_index(batch_op.f("ix_sso_pending_logins_expires_at"), ["expires_at"], unique=False)
    _copy_single_idp()
    with op.batch_alter_table("sso_authn_requests") as batch_op:
        batch_op.drop_index(batch_op.f("ix_sso_authn_requests_expires_at"))
    op.drop_table("sso_authn_requests")
    op.drop_table("sso_idp_config")


def _copy_single_idp() -> None:
    bind = op.get_bind()
    row = bind.execute(sa.text(
        "SELECT entity_id, sso_url, slo_url, certificates_pem, attribute_map, allow_idp_initiated, jit_directory,"
        " updated_at FROM sso_idp_config WHERE id = 1"
    )).mappings().first()
    if row is None:
        return
    directory = "default" if row["jit_directory"] == "sso" else row["jit_directory"]
    directory_id = bind.execute(sa.text("SELECT id FROM directories WHERE name = :n"), {"n": directory}).scalar()
    if directory_id is None:
        bind.execute(sa.text("INSERT INTO directories (name, created_at) VALUES (:n, :t)"),
                     {"n": directory, "t": row["updated_at"]})
        directory_id = bind.execute(sa.text("SELECT id FROM directories WHERE name = :n"), {"n": directory}).scalar()
    connections = sa.table(
        "sso_connections", *(sa.column(name) for name in (
            "name", "kind", "directory_id", "jit", "allow_idp_initiated", "saml_entity_id", "saml_sso_url",
            "saml_slo_url", "saml_certificates_pem", "created_at", "updated_at")),
        sa.column("attribute_map", sa.JSON()),
    )
    bind.execute(connections.insert().values(
        name="default", kind="saml", directory_id=directory_id, jit=None,
        attribute_map=_as_dict(row["attribute_map"]),
        allow_idp_initiated=bool(row["allow_idp_initiated"]), saml_entity_id=row["entity_id"],
        saml_sso_url=row["sso_url"], saml_slo_url=row["slo_url"], saml_certificates_pem=row["certificates_pem"],
        created_at=row["updated_at"], updated_at=row["updated_at"],
    ))


def _as_dict(value) -> dict:
    """A JSON column read with plain SQL: a dict (PostgreSQL) or its text (SQLite)."""
    if isinstance(value, str):
        value = json.loads(value or "{}")
    return value if isinstance(value, dict) else {}


def downgrade() -> None:
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
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_idp_config")),
    )
    op.create_table(
        "sso_authn_requests",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("expires_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_authn_requests")),
    )
    with op.batch_alter_table("sso_authn_requests") as batch_op:
        batch_op.create_index(batch_op.f("ix_sso_authn_requests_expires_at"), ["expires_at"], unique=False)
    op.execute(
        "INSERT INTO sso_idp_config (id, entity_id, sso_url, slo_url, certificates_pem, attribute_map,"
        " allow_idp_initiated, jit_directory, updated_at)"
        " SELECT 1, c.saml_entity_id, c.saml_sso_url, c.saml_slo_url, c.saml_certificates_pem, c.attribute_map,"
        " c.allow_idp_initiated, d.name, c.updated_at FROM sso_connections c JOIN directories d"
        " ON d.id = c.directory_id WHERE c.name = 'default' AND c.kind = 'saml'"
    )
    for table in ("sso_pending_logins", "sso_login_sessions", "sso_connection_domains", "sso_connections"):
        op.drop_table(table)

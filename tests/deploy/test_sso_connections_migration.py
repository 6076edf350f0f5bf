"""Migration 0007: the single SAML IdP of an existing installation becomes the connection ``default``."""
from __future__ import annotations

from sqlalchemy import text

from scim_server.db import make_engine, make_session_factory, upgrade
from scim_server.sso.connections import load_connection
from tests.deploy.test_migrations import downgrade
from tests.sso.idp import ENTITY_ID, SSO_URL


def test_the_single_idp_becomes_connection_default(empty_database_url, tmp_path):
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine, "0006")
        from tests.sso.idp import _key_and_cert

        _key, cert_path = _key_and_cert(tmp_path, "migration-idp")
        pem = cert_path.read_text()
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO sso_idp_config (id, entity_id, sso_url, slo_url, certificates_pem, attribute_map,"
                " allow_idp_initiated, jit_directory, updated_at) VALUES (1, :e, :s, NULL, :c, :m, :i, 'sso', :t)"),
                {"e": ENTITY_ID, "s": SSO_URL, "c": pem, "m": '{"groups": "memberOf"}', "i": True,
                 "t": "2026-01-01 00:00:00+00:00"})
        upgrade(engine)
        with make_session_factory(engine)() as session:
            connection = load_connection(session, "default")
        assert connection is not None and connection.kind == "saml"
        assert connection.directory == "default"  # the old default "sso" became the SCIM default
        assert connection.saml.entity_id == ENTITY_ID and connection.saml.sso_url == SSO_URL
        assert connection.saml.allow_idp_initiated is True
        assert connection.attribute_map == {"groups": "memberOf"} and len(connection.saml.certificates) == 1
        downgrade(engine, "0006")
        with engine.connect() as connection:
            row = connection.execute(text("SELECT entity_id, jit_directory FROM sso_idp_config")).one()
        assert tuple(row) == (ENTITY_ID, "default")
    finally:
        engine.dispose()

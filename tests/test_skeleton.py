"""Smoke tests of the foundation: migrations, settings and key verification."""
from scim_server.db import current_revision, make_engine
from scim_server.keys import find_valid_key
from scim_server.settings import load_settings


def test_settings_from_environment():
    s = load_settings({"JSM_SCIM_DATABASE_URL": "sqlite:///x.db", "JSM_SCIM_PORT": "9000"})
    assert s.database_url == "sqlite:///x.db"
    assert s.port == 9000
    assert s.effective_public_url == "http://127.0.0.1:9000"
    assert s.uses_emulator


def test_database_migrated_to_head(database_url):
    engine = make_engine(database_url)
    assert current_revision(engine) is not None
    engine.dispose()


def test_token_round_trip(session_factory, token):
    with session_factory() as session:
        assert find_valid_key(session, token) is not None
        assert find_valid_key(session, token + "x") is None

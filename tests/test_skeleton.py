"""The foundation: settings from the environment and ``.env``, migrations to head, key verification."""
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import select

from scim_server.db import alembic_config, current_revision, make_engine
from scim_server.keys import find_valid_key, hash_token
from scim_server.models import ApiKey
from scim_server.settings import SettingsError, load_settings


def test_settings_from_environment_and_env_file(tmp_path):
    env_file = tmp_path / "bridge.env"
    env_file.write_text('# comment\nexport JSM_SCIM_PORT="9100"\nJSM_SCIM_LOG_JSON=yes\nJSM_SCIM_HOST=10.0.0.1\n')
    s = load_settings({"JSM_SCIM_ENV_FILE": str(env_file), "JSM_SCIM_DATABASE_URL": "sqlite:///x.db",
                       "JSM_SCIM_HOST": "127.0.0.5"})
    assert s.database_url == "sqlite:///x.db"
    assert (s.host, s.port, s.log_json) == ("127.0.0.5", 9100, True)  # the environment wins over the file
    assert s.effective_public_url == "http://127.0.0.5:9100"
    assert s.uses_emulator
    assert load_settings({"JSM_SCIM_ENV_FILE": str(env_file), "JSM_SCIM_PUBLIC_URL": "https://b.example/"}
                         ).effective_public_url == "https://b.example"


@pytest.mark.parametrize(("name", "raw"), [("JSM_SCIM_PORT", "eighty"), ("JSM_SCIM_LOG_JSON", "maybe")])
def test_invalid_setting_names_the_variable(tmp_path, name, raw):
    with pytest.raises(SettingsError, match=name):
        load_settings({"JSM_SCIM_ENV_FILE": str(tmp_path / "absent.env"), name: raw})


def test_database_migrated_to_head(database_url):
    engine = make_engine(database_url)
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert head is not None and current_revision(engine) == head
    engine.dispose()


def test_token_round_trip_stores_only_a_hash(session_factory, token):
    with session_factory() as session:
        key = find_valid_key(session, token)
        assert key is not None and key.token_hash == hash_token(token)
        assert find_valid_key(session, token + "x") is None
        assert find_valid_key(session, token[:-1]) is None
        stored = [value for row in session.execute(select(ApiKey)) for value in vars(row[0]).values()]
        assert token not in stored

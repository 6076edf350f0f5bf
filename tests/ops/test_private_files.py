"""Private files and secrets: the SQLite database, its -wal/-shm and the secret file are 0600 (the
secret file's new directories 0700) whatever the umask; the session secret is never in the database, and installs
that kept it there are migrated without losing the SAML SP key."""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import select, text

from scim_server.db import make_engine, transaction
from scim_server.models import InstanceValue
from scim_server.services import SESSION_SECRET_NAME, build_services, installation_secret
from scim_server.settings import Settings
from scim_server.sso import sp
from tests.scim.resources_helpers import user_body


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    previous = os.umask(0o022)  # what most shells have: new files 0644 unless we say otherwise
    yield
    os.umask(previous)


def test_new_sqlite_database_and_companions_are_private(tmp_path, loose_umask, monkeypatch):
    from scim_server.app import create_app
    from tests.fixtures.db import issue_token

    monkeypatch.chdir(tmp_path)
    database = tmp_path / "bridge.db"
    app = create_app(Settings(database_url=f"sqlite:///{database}", public_url="http://testserver"))
    token = issue_token(app.extensions["jsm_scim"].session_factory)
    response = app.test_client().post("/scim/v2/Users", json=user_body("ada@example.com"),
                                      headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201
    wal, shm = Path(f"{database}-wal"), Path(f"{database}-shm")
    assert wal.exists() and shm.exists()
    assert {p.name: mode(p) for p in (database, wal, shm)} == {p.name: 0o600 for p in (database, wal, shm)}
    secret = tmp_path / "jsm-scim.secret"
    assert mode(secret) == 0o600 and app.config["SECRET_KEY"] == secret.read_text().strip()
    app.extensions["jsm_scim"].engine.dispose()


def test_existing_readable_database_is_tightened_on_start(tmp_path, loose_umask, caplog):
    database = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x)"))
    engine.dispose()
    for path in (database, Path(f"{database}-wal")):
        path.touch()
        os.chmod(path, 0o644)
    caplog.set_level(logging.WARNING)
    make_engine(f"sqlite:///{database}").dispose()
    assert mode(database) == 0o600 and mode(Path(f"{database}-wal")) == 0o600
    assert any("readable by other users" in r.getMessage() for r in caplog.records)


def test_sqlite_syncs_every_commit(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'sync.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def _stored_secret(factory) -> str | None:
    with transaction(factory) as session:
        row = session.get(InstanceValue, SESSION_SECRET_NAME)
        return row.value if row else None


def test_generated_secret_lives_in_a_private_file_not_in_the_database(database_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    services = build_services(Settings(database_url=database_url, secret_file=str(tmp_path / "s" / "t" / "secret")),
                              migrate=False)
    secret = installation_secret(services)
    path = tmp_path / "s" / "t" / "secret"
    assert path.read_text().strip() == secret and len(secret) >= 40
    assert mode(path) == 0o600 and mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700
    assert _stored_secret(services.session_factory) is None
    with transaction(services.session_factory) as session:
        assert secret not in {row.value for row in session.scalars(select(InstanceValue))}
    services.engine.dispose()


def test_an_install_that_kept_the_secret_in_the_database_is_migrated(database_url, tmp_path, caplog):
    settings = Settings(database_url=database_url, secret_file=str(tmp_path / "secret"),
                        public_url="http://testserver")
    services = build_services(settings, migrate=False)
    with transaction(services.session_factory) as session:  # what an earlier version left behind
        session.add(InstanceValue(name=SESSION_SECRET_NAME, value="legacy-secret-value"))
        session.add(InstanceValue(name=sp.KEY_NAME, value=sp._encrypted_new_key(b"legacy-secret-value")))
    caplog.set_level(logging.WARNING)

    assert installation_secret(services) == "legacy-secret-value"
    assert (tmp_path / "secret").read_text().strip() == "legacy-secret-value"
    assert mode(tmp_path / "secret") == 0o600
    assert _stored_secret(services.session_factory) is None
    with transaction(services.session_factory) as session:
        key_before = session.get(InstanceValue, sp.KEY_NAME).value
    sp.service_provider(services)  # the SP key still decrypts: not regenerated
    with transaction(services.session_factory) as session:
        assert session.get(InstanceValue, sp.KEY_NAME).value == key_before
    assert not any("cannot be decrypted" in r.getMessage() for r in caplog.records)
    services.engine.dispose()


def test_a_configured_secret_key_drops_a_stored_one(database_url, tmp_path):
    services = build_services(Settings(database_url=database_url, secret_key="from-the-environment",
                                       secret_file=str(tmp_path / "unused")), migrate=False)
    with transaction(services.session_factory) as session:
        session.add(InstanceValue(name=SESSION_SECRET_NAME, value="stale"))
    assert installation_secret(services) == "from-the-environment"
    assert _stored_secret(services.session_factory) is None
    assert not (tmp_path / "unused").exists()
    services.engine.dispose()

"""Key lifecycle in the store: token shape, hashing, rotation with grace, revocation, days left."""
from __future__ import annotations

import base64
import datetime as dt
import re

import pytest
from sqlalchemy import select, text

from scim_server import keys
from scim_server.models import ApiKey, Directory

NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.timezone.utc)


def issue(session_factory, name="idp", directory="default", now=NOW, **kw) -> keys.IssuedKey:
    with session_factory() as session, session.begin():
        return keys.create_key(session, name, directory, now=now, **kw)


def valid(session_factory, token, now) -> ApiKey | None:
    with session_factory() as session:
        return keys.find_valid_key(session, token, now=now)


def test_token_format_entropy_and_prefix(session_factory):
    issued = [issue(session_factory, f"k{i}") for i in range(5)]
    tokens = {i.token for i in issued}
    assert len(tokens) == 5
    for item in issued:
        assert re.fullmatch(r"jsmscim_[A-Za-z0-9_-]{43}", item.token)
        raw = base64.urlsafe_b64decode(item.token.removeprefix("jsmscim_") + "=")
        assert len(raw) == 32  # 256 random bits
        assert item.key.token_prefix == item.token[:14]
        assert re.fullmatch(r"[0-9a-f]{12}", item.key.id)


def test_only_the_hash_is_stored(session_factory, database_url):
    issued = issue(session_factory)
    with session_factory() as session:
        row = session.execute(text("SELECT * FROM api_keys WHERE id = :id"), {"id": issued.key.id}).one()
    stored = " ".join(str(value) for value in row)
    assert issued.token not in stored
    assert issued.token[14:] not in stored  # not even the secret part without the prefix
    assert keys.hash_token(issued.token) in stored


def test_directory_binding_and_names(session_factory):
    a = issue(session_factory, "okta", "okta-prod")
    b = issue(session_factory, "entra", "entra.prod")
    c = issue(session_factory, "okta-2", "okta-prod")
    with session_factory() as session:
        names = dict(session.execute(select(ApiKey.id, Directory.name).join(Directory)).all())
        assert names == {a.key.id: "okta-prod", b.key.id: "entra.prod", c.key.id: "okta-prod"}
        assert {k.id for k in keys.list_keys(session, "okta-prod")} == {a.key.id, c.key.id}
        assert len(keys.list_keys(session)) == 3


@pytest.mark.parametrize(
    "name, directory, days",
    [("", "default", 30), ("   ", "default", 30), ("x" * 201, "default", 30), ("tab\tname", "default", 30),
     ("ok", "has space", 30), ("ok", "", 30), ("ok", "-lead", 30), ("ok", "default", 0), ("ok", "default", 10_000)],
)
def test_invalid_input_is_refused(session_factory, name, directory, days):
    with pytest.raises(ValueError):
        issue(session_factory, name, directory, expires_in_days=days)
    with session_factory() as session:
        assert session.scalar(select(ApiKey)) is None


def test_expiry_and_days_left(session_factory):
    issued = issue(session_factory, expires_in_days=10)
    assert valid(session_factory, issued.token, NOW + dt.timedelta(days=9, hours=23)) is not None
    assert valid(session_factory, issued.token, NOW + dt.timedelta(days=10)) is None
    key = issued.key
    assert keys.days_left(key, NOW) == 10
    assert keys.days_left(key, NOW + dt.timedelta(days=2, hours=1)) == 7
    assert keys.days_left(key, NOW + dt.timedelta(days=11)) == 0
    assert keys.key_status(key, NOW + dt.timedelta(days=11)) == "expired"


def test_revoke_is_immediate_and_idempotent(session_factory):
    issued = issue(session_factory)
    with session_factory() as session, session.begin():
        keys.revoke_key(session, issued.key.id, now=NOW + dt.timedelta(hours=1))
    assert valid(session_factory, issued.token, NOW + dt.timedelta(hours=1)) is None
    with session_factory() as session, session.begin():
        again = keys.revoke_key(session, issued.key.id, now=NOW + dt.timedelta(hours=5))
        assert again.revoked_at == NOW + dt.timedelta(hours=1)  # the first revocation time is kept
        assert keys.describe_key(again, NOW + dt.timedelta(hours=5))["status"] == "revoked"


def test_rotate_grace_period(session_factory):
    old = issue(session_factory)
    with session_factory() as session, session.begin():
        new = keys.rotate_key(session, old.key.id, grace_hours=24, now=NOW)
        assert new.key.directory.name == "default" and new.key.name == old.key.name
    during = NOW + dt.timedelta(hours=23, minutes=59)
    after = NOW + dt.timedelta(hours=24)
    assert valid(session_factory, old.token, during) is not None
    assert valid(session_factory, new.token, during) is not None
    assert valid(session_factory, old.token, after) is None
    assert valid(session_factory, new.token, after) is not None
    with session_factory() as session:
        stored = keys.get_key(session, old.key.id)
        assert stored.rotated_to_id == new.key.id
        assert keys.display_status(stored, during) == "rotating"
        assert keys.days_left(stored, NOW) == 1
        assert keys.display_status(stored, after) == "revoked"


def test_rotate_refuses_dead_or_already_rotated_keys(session_factory):
    old = issue(session_factory)
    with session_factory() as session, session.begin():
        keys.rotate_key(session, old.key.id, now=NOW)
    with session_factory() as session, session.begin(), pytest.raises(keys.KeyStateError, match="already rotated"):
        keys.rotate_key(session, old.key.id, now=NOW)
    revoked = issue(session_factory, "r")
    with session_factory() as session, session.begin():
        keys.revoke_key(session, revoked.key.id, now=NOW)
    with session_factory() as session, session.begin(), pytest.raises(keys.KeyStateError, match="revoked"):
        keys.rotate_key(session, revoked.key.id, now=NOW)
    with session_factory() as session, pytest.raises(ValueError, match="grace_hours"):
        keys.rotate_key(session, old.key.id, grace_hours=-1, now=NOW)


def test_unknown_key_id(session_factory):
    with session_factory() as session, pytest.raises(keys.KeyNotFound):
        keys.revoke_key(session, "000000000000")


def test_revoking_during_grace_stops_the_old_key_at_once(session_factory):
    old = issue(session_factory)
    with session_factory() as session, session.begin():
        keys.rotate_key(session, old.key.id, grace_hours=24, now=NOW)
        keys.revoke_key(session, old.key.id, now=NOW + dt.timedelta(hours=1))
    assert valid(session_factory, old.token, NOW + dt.timedelta(hours=1)) is None


def test_tokens_of_the_wrong_shape_are_not_looked_up(session_factory):
    issued = issue(session_factory)
    for bad in ("", issued.token + "x", issued.token[:-1], "Bearer " + issued.token, issued.token.upper()):
        assert valid(session_factory, bad, NOW) is None

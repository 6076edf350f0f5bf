"""The verified-key cache: one lookup per key and TTL, expiry exact, revocation within the TTL (and at
once in the revoking process), rejected tokens never cached."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import event, select, update

from scim_server import key_cache, keys
from scim_server.auth import authenticate
from scim_server.db import make_engine, utcnow
from scim_server.models import ApiKey
from scim_server.scim.errors import ScimError
from tests.fixtures.db import issue_token


@pytest.fixture(autouse=True)
def empty_cache():
    key_cache.clear()
    yield
    key_cache.clear()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def key_selects(engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: seen.append(statement) if "FROM api_keys" in statement else None)
    return seen


def test_a_verified_key_is_read_once_per_ttl(client, app, token):
    seen = key_selects(app.extensions["jsm_scim"].engine)
    for _ in range(5):
        assert client.get("/scim/v2/Users", headers=bearer(token)).status_code == 200
    assert len(seen) == 1


def test_cache_off_reads_the_key_every_time(session_factory, token):
    with session_factory() as session:
        for _ in range(3):
            authenticate(session, f"Bearer {token}", warning_days=30, cache_seconds=0)
    assert key_cache.get(keys.hash_token(token), 60) is None


def test_revocation_in_this_process_takes_effect_at_once(client, session_factory, token):
    assert client.get("/scim/v2/Users", headers=bearer(token)).status_code == 200
    with session_factory() as session, session.begin():
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.token_hash == keys.hash_token(token)))
        keys.revoke_key(session, key_id)
    assert client.get("/scim/v2/Users", headers=bearer(token)).status_code == 401


def test_revocation_by_another_process_takes_effect_within_the_ttl(settings, session_factory):
    token = issue_token(session_factory)
    ttl = 2.0  # long enough for the steps below on a loaded machine
    with session_factory() as session:
        assert authenticate(session, f"Bearer {token}", warning_days=30, cache_seconds=ttl)
    other_process = make_engine(settings.database_url)  # as `jsm-scim keys revoke` would: no forget()
    with other_process.begin() as connection:
        connection.execute(update(ApiKey).where(ApiKey.token_hash == keys.hash_token(token)).values(revoked_at=utcnow()))
    other_process.dispose()
    with session_factory() as session:
        authenticate(session, f"Bearer {token}", warning_days=30, cache_seconds=ttl)  # still trusted: within the TTL
        time.sleep(ttl + 0.1)
        with pytest.raises(ScimError) as rejected:
            authenticate(session, f"Bearer {token}", warning_days=30, cache_seconds=ttl)
    assert rejected.value.status == 401


def test_expiry_and_scheduled_revocation_are_exact_for_a_cached_key(session_factory):
    token = issue_token(session_factory)
    with session_factory() as session, session.begin():
        key = authenticate(session, f"Bearer {token}", warning_days=30, cache_seconds=60)
        keys.rotate_key(session, key.id, grace_hours=1)
    with session_factory() as session:
        cached = authenticate(session, f"Bearer {token}", warning_days=30, cache_seconds=60)
        assert key_cache.get(keys.hash_token(token), 60) is cached
        assert cached.revoked_at is not None  # re-read after the rotation: the grace period is known
        with pytest.raises(ScimError):
            authenticate(session, f"Bearer {token}", now=cached.revoked_at + dt.timedelta(seconds=1), warning_days=30, cache_seconds=60)
        with pytest.raises(ScimError):
            authenticate(session, f"Bearer {token}", now=cached.expires_at, warning_days=30, cache_seconds=60)


def test_unknown_tokens_are_not_cached(client):
    unknown = keys.new_token()
    for _ in range(2):
        assert client.get("/scim/v2/Users", headers=bearer(unknown)).status_code == 401
    assert key_cache.get(keys.hash_token(unknown), 60) is None

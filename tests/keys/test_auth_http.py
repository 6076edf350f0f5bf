"""Bearer authentication over HTTP: 401 shapes, rotation/revocation, last use, expiry warnings."""
from __future__ import annotations

import datetime as dt
import logging

import pytest
import requests
from sqlalchemy import select

from scim_server import keys
from scim_server.auth import authenticate
from scim_server.db import utcnow
from scim_server.key_expiry import warn_expiring_keys
from scim_server.models import ApiKey
from scim_server.scim.errors import ERROR_SCHEMA, ScimError
from tests.fixtures.db import issue_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def key_of(session_factory, token: str):
    with session_factory() as session:
        return session.scalar(select(ApiKey).where(ApiKey.token_hash == keys.hash_token(token)))


def assert_unauthorized(response) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.json() if callable(response.json) else response.json
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == "401"
    assert body["detail"]


def test_valid_key_over_real_http(live_server, protected, token):
    response = requests.get(live_server + protected, headers=bearer(token), timeout=10)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer jsmscim_" + "A" * 43, "Bearer not-a-token"],
)
def test_missing_unknown_and_malformed_keys(client, protected, header):
    headers = {} if header is None else {"Authorization": header}
    assert_unauthorized(client.get(protected, headers=headers))


def test_expired_key(client, protected, session_factory):
    token = issue_token(session_factory, now=utcnow() - dt.timedelta(days=2), expires_in_days=1)
    assert_unauthorized(client.get(protected, headers=bearer(token)))


def test_revoke_takes_effect_immediately(live_server, protected, session_factory, token):
    assert requests.get(live_server + protected, headers=bearer(token), timeout=10).status_code == 200
    with session_factory() as session, session.begin():
        keys.revoke_key(session, key_of(session_factory, token).id)
    assert_unauthorized(requests.get(live_server + protected, headers=bearer(token), timeout=10))


def test_rotation_over_http_old_and_new_work_during_grace(live_server, protected, session_factory, token):
    old_id = key_of(session_factory, token).id
    with session_factory() as session, session.begin():
        new_token = keys.rotate_key(session, old_id, grace_hours=1).token
    for t in (token, new_token):
        assert requests.get(live_server + protected, headers=bearer(t), timeout=10).status_code == 200
    # one hour later (injected clock): the old key is refused, the new one accepted
    later = utcnow() + dt.timedelta(hours=1, seconds=1)
    with session_factory() as session:
        with pytest.raises(ScimError) as refused:
            authenticate(session, f"Bearer {token}", now=later, warning_days=30)
        assert refused.value.status == 401 and "WWW-Authenticate" in refused.value.headers
        assert authenticate(session, f"Bearer {new_token}", now=later, warning_days=30).id != old_id


def test_rotation_with_zero_grace_stops_old_key_now(client, protected, session_factory, token):
    with session_factory() as session, session.begin():
        new_token = keys.rotate_key(session, key_of(session_factory, token).id, grace_hours=0).token
    assert client.get(protected, headers=bearer(token)).status_code == 401
    assert client.get(protected, headers=bearer(new_token)).status_code == 200


def test_last_used_is_recorded(client, protected, session_factory, token):
    assert key_of(session_factory, token).last_used_at is None
    before = utcnow()
    assert client.get(protected, headers=bearer(token)).status_code == 200
    used = key_of(session_factory, token).last_used_at
    assert used is not None and used >= before - dt.timedelta(seconds=1)
    # within a minute a second request does not rewrite it
    assert client.get(protected, headers=bearer(token)).status_code == 200
    assert key_of(session_factory, token).last_used_at == used


def expiry_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "scim_server.key_expiry" and r.levelno == logging.WARNING]


def test_expiry_warning_logged_once_per_day(client, protected, session_factory, caplog):
    caplog.set_level(logging.WARNING, logger="scim_server.key_expiry")
    token = issue_token(session_factory, expires_in_days=10)
    key_id = key_of(session_factory, token).id
    for _ in range(3):
        assert client.get(protected, headers=bearer(token)).status_code == 200
    warnings = expiry_warnings(caplog)
    assert len(warnings) == 1
    assert key_id in warnings[0].getMessage() and "keys rotate" in warnings[0].getMessage()
    assert token not in caplog.text
    # a day later the next use warns again, once
    tomorrow = utcnow() + dt.timedelta(days=1, minutes=1)
    with session_factory() as session:
        authenticate(session, f"Bearer {token}", now=tomorrow, warning_days=30)
        authenticate(session, f"Bearer {token}", now=tomorrow + dt.timedelta(minutes=5), warning_days=30)
    assert len(expiry_warnings(caplog)) == 2


def test_no_expiry_warning_for_keys_far_from_expiry(client, protected, session_factory, caplog):
    caplog.set_level(logging.WARNING, logger="scim_server.key_expiry")
    token = issue_token(session_factory, expires_in_days=31)
    assert client.get(protected, headers=bearer(token)).status_code == 200
    assert expiry_warnings(caplog) == []


def test_periodic_expiry_check_warns_used_keys_once(settings, session_factory, caplog):
    caplog.set_level(logging.WARNING, logger="scim_server.key_expiry")
    used = issue_token(session_factory, "used", expires_in_days=5)
    issue_token(session_factory, "never-used", expires_in_days=5)
    issue_token(session_factory, "far", expires_in_days=90)
    with session_factory() as session, session.begin():
        authenticate(session, f"Bearer {used}", now=utcnow() - dt.timedelta(days=2), warning_days=30)  # used (and warned) 2 days ago
    caplog.clear()
    now = utcnow()
    with session_factory() as session, session.begin():
        first = warn_expiring_keys(session, settings, now=now)
    with session_factory() as session, session.begin():
        second = warn_expiring_keys(session, settings, now=now + dt.timedelta(hours=3))
    with session_factory() as session, session.begin():
        next_day = warn_expiring_keys(session, settings, now=now + dt.timedelta(days=1, hours=3))
    assert [k.name for k in first] == ["used"]
    assert second == []
    assert [k.name for k in next_day] == ["used"]
    assert len(expiry_warnings(caplog)) == 2

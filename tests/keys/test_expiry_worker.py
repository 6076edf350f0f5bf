"""A long-running sync worker warns about used API keys that expire soon (``Worker._housekeeping``)."""
from __future__ import annotations

import datetime as dt
import logging
import threading

from sqlalchemy import select

from scim_server.auth import authenticate
from scim_server.db import utcnow
from scim_server.models import ApiKey
from scim_server.services import services_of
from scim_server.sync.worker import Worker, run_worker
from tests.fixtures.db import issue_token


def expiry_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "scim_server.key_expiry" and r.levelno == logging.WARNING]


def use(session_factory, token: str, when: dt.datetime) -> str:
    """Authenticate ``token`` at ``when`` (records last use); returns the key id."""
    with session_factory() as session, session.begin():
        return authenticate(session, f"Bearer {token}", now=when, warning_days=30).id


def test_worker_loop_warns_about_used_keys_expiring_within_30_days(app, jsm_client, session_factory, caplog):
    services = services_of(app)
    assert services.settings.key_expiry_warning_days == 30
    three_days_ago = utcnow() - dt.timedelta(days=3)
    # Used three days ago, when they were still far from expiry: no warning was logged then.
    soon = use(session_factory, issue_token(session_factory, "soon", now=three_days_ago, expires_in_days=32), three_days_ago)
    later = use(session_factory, issue_token(session_factory, "later", now=three_days_ago, expires_in_days=34),
                three_days_ago)
    issue_token(session_factory, "unused", expires_in_days=5)  # never used: nobody depends on it
    assert expiry_warnings(caplog) == []
    caplog.set_level(logging.WARNING, logger="scim_server.key_expiry")

    run_worker(services, threading.Event(), once=True, client=jsm_client)  # housekeeping runs first

    warnings = expiry_warnings(caplog)
    assert len(warnings) == 1
    assert soon in warnings[0] and "expires in 28 days" in warnings[0] and f"keys rotate {soon}" in warnings[0]
    assert later not in " ".join(warnings)  # 31 days left: outside the window
    with session_factory() as session:
        warned = dict(session.execute(select(ApiKey.name, ApiKey.last_expiry_warning_at)).all())
    assert warned["soon"] is not None and warned["later"] is None and warned["unused"] is None

    # Another worker process (or the next hourly run) the same day does not repeat the warning.
    worker = Worker(services, client=jsm_client)
    worker._housekeeping()
    assert len(expiry_warnings(caplog)) == 1


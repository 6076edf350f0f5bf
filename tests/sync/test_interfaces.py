"""The interface used by the SAML feature: access checks and immediate convergence."""
from __future__ import annotations

import dataclasses
import threading

import requests
from sqlalchemy import select

from jsm_client import JsmClient
from scim_server.db import transaction
from scim_server.models.sync import SyncMark
from scim_server.sync import outbox
from scim_server.sync.access import allowed_project_keys
from scim_server.sync.jsm import make_jsm_client
from scim_server.sync.rules import DEFAULT_RULES, RulesProvider, parse_rules
from scim_server.sync.worker import converge_user_now, run_worker
from tests.sync import seed
from tests.sync.conftest import jsm_view


def pending_marks(session_factory) -> set[tuple[str, str]]:
    with transaction(session_factory) as session:
        rows = session.execute(select(SyncMark.kind, SyncMark.entity_id).where(SyncMark.status == outbox.PENDING))
        return {(kind, entity) for kind, entity in rows}


RULES = parse_rules('[organizations.groups]\n"Staff" = "Acme"\n\n[portals]\n"Acme" = ["HELP"]\n')


def test_allowed_project_keys(session_factory):
    alice = seed.add_user(session_factory, "alice@acme.com")
    carol = seed.add_user(session_factory, "carol@acme.com", active=False)
    seed.add_group(session_factory, "Staff", [alice, carol])
    with transaction(session_factory) as session:
        assert allowed_project_keys(session, RULES, alice) == {"HELP"}
        assert allowed_project_keys(session, RULES, carol) == set()
        assert allowed_project_keys(session, RULES, "unknown-id") == set()
        assert allowed_project_keys(session, DEFAULT_RULES, alice) is None


def test_converge_user_now_returns_account_and_grants_access(services, session_factory, jsm_emulator, rules_file):
    rules_file.write_text('[organizations.groups]\n"Staff" = "Acme"\n\n[portals]\n"Acme" = ["HELP"]\n')
    settings = services.settings.with_overrides(jsm_url=jsm_emulator.url, jsm_email="bot@example.com",
                                                jsm_api_token="secret-token", mappings_path=str(rules_file))
    services = dataclasses.replace(services, settings=settings)
    alice = seed.add_user(session_factory, "alice@acme.com")
    staff = seed.add_group(session_factory, "Staff", [alice])

    account = converge_user_now(services, alice)

    state = jsm_emulator.emulator.state_dict()
    assert [c["accountId"] for c in state["customers"]] == [account]
    assert jsm_view(jsm_emulator.emulator)["organizations"] == {"Acme": ["alice@acme.com"]}
    assert jsm_view(jsm_emulator.emulator)["desks"]["HELP"] == ["Acme"]
    # The marks stay queued for the worker, which then finds nothing left to do in JSM.
    assert pending_marks(session_factory) >= {("user", alice), ("group", staff)}
    before = jsm_emulator.emulator.stats_dict()["requests"]
    with make_jsm_client(settings) as client:
        run_worker(services, threading.Event(), once=True, client=client, rules_provider=RulesProvider(settings))
    assert jsm_emulator.emulator.stats_dict()["requests"] == before
    assert pending_marks(session_factory) == set()


def test_converge_user_now_on_jsm_failure_returns_none_and_keeps_marks(services, session_factory, jsm_emulator):
    services = dataclasses.replace(services, settings=services.settings.with_overrides(jsm_url=jsm_emulator.url, jsm_email="bot@example.com",
                                                         jsm_api_token="secret-token"))
    alice = seed.add_user(session_factory, "alice@acme.com")
    requests.post(f"{jsm_emulator.url}/_emulator/faults", json={"error_every": 1}, timeout=5)
    with JsmClient(jsm_emulator.url, "bot@example.com", "secret-token", max_attempts=2, backoff_base=0.01) as client:
        assert converge_user_now(services, alice, client=client) is None
    # The failure did not count against the mark: still pending, no attempt used up, no error stored.
    with transaction(session_factory) as session:
        mark = session.scalars(select(SyncMark).where(SyncMark.entity_id == alice)).one()
        assert (mark.kind, mark.status, mark.attempts, mark.last_error) == ("user", outbox.PENDING, 0, None)
    assert jsm_emulator.emulator.state_dict()["customers"] == []
    # Once JSM answers again, the worker finishes the job from that mark.
    requests.post(f"{jsm_emulator.url}/_emulator/faults", json={}, timeout=5)
    with make_jsm_client(services.settings) as client:
        run_worker(services, threading.Event(), once=True, client=client, rules_provider=RulesProvider(services.settings))
    assert [c["emailAddress"] for c in jsm_emulator.emulator.state_dict()["customers"]] == ["alice@acme.com"]
    assert pending_marks(session_factory) == set()

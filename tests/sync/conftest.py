"""Fixtures of the propagation tests: services, a one-shot worker run and a readable JSM view."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import pytest

from scim_server.services import build_services
from scim_server.sync.rules import RulesProvider
from scim_server.sync.worker import WorkerStats, run_worker


@pytest.fixture
def services(settings):
    """Database services without the Flask app (the worker needs no HTTP side)."""
    built = build_services(settings, migrate=False)
    yield built
    built.engine.dispose()


@pytest.fixture
def session_factory(services):
    return services.session_factory


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    """Path of a rules file the test may write; not used unless ``sync(rules=...)`` points at it."""
    return tmp_path / "mappings.toml"


@pytest.fixture
def sync(services, jsm_client, rules_file) -> Callable[..., WorkerStats]:
    """Run the worker until the queue is drained (``once``) against the emulator."""
    providers: dict[bool, RulesProvider] = {}

    def run(*, with_rules: bool = False, **options) -> WorkerStats:
        if with_rules not in providers:
            settings = services.settings.with_overrides(mappings_path=str(rules_file) if with_rules else None)
            providers[with_rules] = RulesProvider(settings)
        options.setdefault("poll_interval", 0.05)
        return run_worker(services, threading.Event(), once=True, client=jsm_client,
                          rules_provider=providers[with_rules], **options)

    return run


def jsm_view(emulator) -> dict:
    """The emulator's state by names: customers by e-mail, organizations' member e-mails, desks' orgs."""
    state = emulator.state_dict()
    email_of = {c["accountId"]: c["emailAddress"] for c in state["customers"]}
    name_of = {o["id"]: o["name"] for o in state["organizations"]}
    return {
        "customers": sorted(c["emailAddress"] for c in state["customers"]),
        "organizations": {o["name"]: sorted(email_of[a] for a in o["accountIds"]) for o in state["organizations"]},
        "desks": {d["projectKey"]: sorted(name_of[i] for i in d["organizationIds"]) for d in state["servicedesks"]},
    }


def org_count(emulator) -> int:
    return len(emulator.state_dict()["organizations"])

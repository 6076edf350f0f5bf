"""Production topology on PostgreSQL: gunicorn with several workers plus THREE ``jsm-scim worker``
processes against one JSM (the emulator), pushed concurrently over real HTTP.

Every propagation job must be applied exactly once: one ``POST /customer`` per user, one
organization per group, no duplicates, and exactly the expected memberships in the end. Each
phase pushes its own workload (own e-mail domain and group names) and compares only its own part
of the JSM state, and the JSM requests it caused.
"""
from __future__ import annotations

from typing import Iterator

import pytest

from benchmarks.common import HttpDriver, Stack, bridge_stack
from benchmarks.workload import (
    Workload,
    jsm_state_problems,
    members_patch,
    outbox_counts,
    push_groups,
    push_memberships,
    push_users,
    wait_for_convergence,
)
from jsm_client.emulator import EmulatorServer
from tests.fixtures.db import BACKENDS, POSTGRES_URL

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL backend not selected"),
]

CREATE_CUSTOMER = "POST /rest/servicedeskapi/customer"
CREATE_ORGANIZATION = "POST /rest/servicedeskapi/organization"
HTTP_WORKERS, SYNC_WORKERS = 2, 3


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def production_stack(emulator: EmulatorServer, tmp_path) -> Iterator[Stack]:
    with bridge_stack(backend="postgresql", http_workers=HTTP_WORKERS, sync_workers=SYNC_WORKERS,
                      jsm_url=emulator.url, workdir=tmp_path, postgres_admin_url=POSTGRES_URL) as stack:
        yield stack


@pytest.fixture
def driver(production_stack: Stack) -> Iterator[HttpDriver]:
    client = HttpDriver(production_stack.scim_url, production_stack.token, threads=8)
    yield client
    client.close()


class RouteCounter:
    """JSM requests per route since the counter was made."""

    def __init__(self, emulator: EmulatorServer):
        self.emulator = emulator
        self.before = dict(self._now())

    def _now(self) -> dict[str, int]:
        return self.emulator.emulator.stats_dict()["by_route"]

    def __getitem__(self, route: str) -> int:
        return self._now().get(route, 0) - self.before.get(route, 0)


def assert_converged_exactly(stack: Stack, emulator: EmulatorServer, workload: Workload) -> None:
    wait_for_convergence(stack, workload, timeout=120, interval=0.5)
    assert jsm_state_problems(emulator.emulator.state_dict(), workload) == []
    assert set(outbox_counts(stack.database_url)) <= {"done"}, "failed or blocked propagation jobs"
    stack.check_alive()


def push_concurrently_and_check_exactly_once(stack: Stack, emulator: EmulatorServer, driver: HttpDriver) -> None:
    workload = Workload(users=120, groups=6, memberships_per_user=2, domain="exactly-once.example.com",
                        label="Once")
    calls = RouteCounter(emulator)
    # Users and groups are created at the same time, while the sync workers are already converging.
    user_ids, group_ids = [], []
    driver.map("push", lambda push: push(), [lambda: user_ids.extend(push_users(driver, workload)),
                                             lambda: group_ids.extend(push_groups(driver, workload))])
    push_memberships(driver, workload, user_ids, group_ids, per_patch=10)

    assert_converged_exactly(stack, emulator, workload)
    customers = [c for c in emulator.emulator.state_dict()["customers"] if workload.owns_email(c["emailAddress"])]
    assert len(customers) == workload.users
    assert calls[CREATE_CUSTOMER] == workload.users
    assert calls[CREATE_ORGANIZATION] == workload.groups


def remove_memberships_and_check_nothing_is_recreated(stack: Stack, emulator: EmulatorServer,
                                                      driver: HttpDriver) -> None:
    both = Workload(users=40, groups=4, memberships_per_user=2, domain="removals.example.com", label="Leave")
    user_ids = push_users(driver, both)
    group_ids = push_groups(driver, both)
    push_memberships(driver, both, user_ids, group_ids, per_patch=5)
    assert_converged_exactly(stack, emulator, both)
    calls = RouteCounter(emulator)

    # Every user leaves its second group, concurrently in all groups: each stays in one organization.
    leaving = {j: [user_ids[i] for i in range(both.users) if (i + 1) % both.groups == j] for j in range(both.groups)}
    driver.map("remove", lambda j: driver.call("remove", "PATCH", f"/Groups/{group_ids[j]}",
                                                body=members_patch("remove", leaving[j]), expect=(200, 204)),
               list(leaving))
    one = Workload(users=40, groups=4, memberships_per_user=1, domain="removals.example.com", label="Leave")
    assert_converged_exactly(stack, emulator, one)
    assert calls[CREATE_CUSTOMER] == 0
    assert calls[CREATE_ORGANIZATION] == 0
    assert calls["POST /rest/servicedeskapi/organization/{id}/user"] == 0
    assert calls["DELETE /rest/servicedeskapi/organization/{id}/user"] >= 1


def test_gunicorn_and_three_sync_workers_apply_every_job_exactly_once(production_stack, emulator, driver):
    """One deployment (starting it is most of the cost), two workloads one after the other."""
    push_concurrently_and_check_exactly_once(production_stack, emulator, driver)
    remove_memberships_and_check_nothing_is_recreated(production_stack, emulator, driver)
    gunicorn_log = (production_stack.log_dir / "gunicorn.log").read_text()
    assert gunicorn_log.count("Booting worker") >= HTTP_WORKERS, "gunicorn did not run several workers"

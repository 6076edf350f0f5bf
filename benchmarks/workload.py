"""The SCIM workload the benchmarks and deployment tests push, and what JSM must look like after it.

Plain RFC 7644 traffic, shaped like an IdP's: ``POST /Users``, ``POST /Groups``, then ``PATCH``
of group ``members`` in batches. User ``i`` belongs to ``memberships_per_user`` groups
(``i % G``, ``(i + 1) % G``, ...), so the expected JSM state is known without asking the server.
With no mapping rules every group becomes a JSM organization of the same name (on-the-fly).
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any, Callable

import requests
from sqlalchemy import func, select

from benchmarks.common import BenchError, HttpDriver, Stack, bridge_stack
from scim_server.db import make_engine
from scim_server.models.sync import SyncMark
from scim_server.sync.outbox import PENDING

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MEMBERS_PER_PATCH = 50
MEMBERS_PER_JSM_CALL = 50  # batch size of organization/user adds (no documented maximum; the bridge uses ~50)

CREATE_USER = "POST /Users"
CREATE_GROUP = "POST /Groups"
PATCH_MEMBERS = "PATCH /Groups members"


@dataclasses.dataclass(frozen=True)
class Workload:
    users: int
    groups: int
    memberships_per_user: int = 1
    domain: str = "bench.example.com"
    label: str = "Bench"  # prefix of group names: several workloads can share one directory and JSM

    def owns_email(self, email: str) -> bool:
        return email.lower().endswith("@" + self.domain)

    def owns_group_name(self, name: str) -> bool:
        return name.startswith(f"{self.label} Customers ")

    def email(self, i: int) -> str:
        return f"user{i:06d}@{self.domain}"

    def group_name(self, j: int) -> str:
        return f"{self.label} Customers {j:04d}"

    def groups_of(self, i: int) -> list[int]:
        if not self.groups:
            return []
        return sorted({(i + k) % self.groups for k in range(self.memberships_per_user)})

    def members_of(self) -> dict[int, list[int]]:
        members: dict[int, list[int]] = {j: [] for j in range(self.groups)}
        for i in range(self.users):
            for j in self.groups_of(i):
                members[j].append(i)
        return members

    @property
    def memberships(self) -> int:
        return sum(len(m) for m in self.members_of().values())


def user_document(workload: Workload, i: int) -> dict[str, Any]:
    email = workload.email(i)
    return {
        "schemas": [USER_SCHEMA],
        "userName": email,
        "externalId": f"ext-{i:06d}",
        "name": {"givenName": "Bench", "familyName": f"User {i}"},
        "displayName": f"Bench User {i}",
        "emails": [{"value": email, "type": "work", "primary": True}],
        "active": True,
    }


def group_document(workload: Workload, j: int) -> dict[str, Any]:
    return {"schemas": [GROUP_SCHEMA], "displayName": workload.group_name(j), "externalId": f"grp-{j:04d}"}


def members_patch(op: str, user_ids: list[str]) -> dict[str, Any]:
    """``add`` or ``remove`` of ``members`` with a value list (the form Entra ID and Okta send)."""
    return {"schemas": [PATCH_SCHEMA],
            "Operations": [{"op": op, "path": "members", "value": [{"value": uid} for uid in user_ids]}]}


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[k:k + size] for k in range(0, len(items), size)]


def push_users(driver: HttpDriver, workload: Workload, label: str = CREATE_USER) -> list[str]:
    """Create every user concurrently; their ids in index order."""
    def create(i: int) -> str:
        return driver.call(label, "POST", "/Users", body=user_document(workload, i),
                           expect=(201,)).json()["id"]
    return driver.map(label, create, range(workload.users))


def push_groups(driver: HttpDriver, workload: Workload) -> list[str]:
    def create(j: int) -> str:
        return driver.call(CREATE_GROUP, "POST", "/Groups", body=group_document(workload, j),
                           expect=(201,)).json()["id"]
    return driver.map(CREATE_GROUP, create, range(workload.groups))


def push_memberships(driver: HttpDriver, workload: Workload, user_ids: list[str], group_ids: list[str],
                     per_patch: int = MEMBERS_PER_PATCH) -> None:
    """PATCH members in batches of ``per_patch``; batches of different groups run concurrently."""
    batches = [(group_ids[j], [user_ids[i] for i in chunk])
               for j, members in workload.members_of().items() for chunk in chunks(members, per_patch)]

    def patch(batch: tuple[str, list[str]]) -> None:
        group_id, ids = batch
        driver.call(PATCH_MEMBERS, "PATCH", f"/Groups/{group_id}", body=members_patch("add", ids),
                    expect=(200, 204))
    # Interleave groups so that concurrent PATCHes rarely hit the same group at once.
    driver.map(PATCH_MEMBERS, patch, _round_robin(batches))


def _round_robin(batches: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """First batch of every group, then the second of every group, ..."""
    by_group: dict[str, list[tuple[str, list[str]]]] = {}
    for batch in batches:
        by_group.setdefault(batch[0], []).append(batch)
    queues = list(by_group.values())
    ordered = []
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    return ordered


def push_all(driver: HttpDriver, workload: Workload) -> tuple[list[str], list[str]]:
    user_ids = push_users(driver, workload)
    group_ids = push_groups(driver, workload)
    push_memberships(driver, workload, user_ids, group_ids)
    return user_ids, group_ids


# ----------------------------------------------------------------------------- JSM expectations


def emulator_get(jsm_url: str, what: str) -> dict[str, Any]:
    response = requests.get(f"{jsm_url}/_emulator/{what}", timeout=60)
    response.raise_for_status()
    return response.json()


def jsm_state_problems(state: dict[str, Any], workload: Workload) -> list[str]:
    """Differences between the emulator's state and what the workload must produce (empty when exact).

    Only the workload's own customers (its e-mail domain) and organizations (its group-name label)
    are compared, so several workloads can share one emulator.
    """
    problems: list[str] = []
    email_of = {c["accountId"]: c["emailAddress"].lower() for c in state.get("customers", [])}
    customers = [c for c in state.get("customers", []) if workload.owns_email(c["emailAddress"])]
    emails = [c["emailAddress"].lower() for c in customers]
    expected_emails = {workload.email(i) for i in range(workload.users)}
    if len(emails) != len(set(emails)):
        problems.append(f"duplicate customers: {len(emails) - len(set(emails))}")
    if set(emails) != expected_emails:
        missing, extra = expected_emails - set(emails), set(emails) - expected_emails
        problems.append(f"customers: {len(missing)} missing, {len(extra)} unexpected")
    organizations = [o for o in state.get("organizations", []) if workload.owns_group_name(o["name"])]
    names = [o["name"] for o in organizations]
    if len(names) != len(set(names)):
        problems.append(f"duplicate organizations: {len(names) - len(set(names))}")
    expected = {workload.group_name(j): {workload.email(i) for i in members}
                for j, members in workload.members_of().items()}
    if set(names) != set(expected):
        problems.append(f"organizations: {len(set(expected) - set(names))} missing, "
                        f"{len(set(names) - set(expected))} unexpected")
    wrong = [o["name"] for o in organizations if o["name"] in expected
             and {email_of.get(a, a) for a in o.get("accountIds", [])} != expected[o["name"]]]
    if wrong:
        problems.append(f"{len(wrong)} organizations with wrong members, e.g. {wrong[:3]}")
    return problems


def outbox_counts(database_url: str) -> dict[str, int]:
    """Propagation marks by status, read straight from the outbox table.

    Polled every few seconds while converging: a ``jsm-scim sync status`` subprocess per poll
    would cost a Python start-up (most of a core for a second) and skew the measurement.
    """
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(SyncMark.status, func.count()).group_by(SyncMark.status))
            return {status: count for status, count in rows}
    finally:
        engine.dispose()


def failed_jobs(status: dict[str, Any]) -> int:
    """Failed (dead) plus blocked jobs in ``jsm-scim sync status --json`` output."""
    def count(value: Any) -> int:
        return int(value.get("count", 0) if isinstance(value, dict) else value or 0)
    return count(status.get("failed", status.get("dead", 0))) + count(status.get("blocked", 0))


def wait_for_convergence(stack: Stack, workload: Workload, timeout: float,
                         on_poll: Callable[[list[str], dict[str, int]], None] | None = None,
                         interval: float = 2.0) -> float:
    """Seconds until the emulator holds exactly the expected state and no mark is pending."""
    started = time.monotonic()
    problems: list[str] = ["not polled yet"]
    counts: dict[str, int] = {}
    while time.monotonic() - started < timeout:
        stack.check_alive()
        problems = jsm_state_problems(emulator_get(stack.jsm_url, "state"), workload)
        counts = outbox_counts(stack.database_url)
        if not problems and not counts.get(PENDING):
            return time.monotonic() - started
        if on_poll is not None:
            on_poll(problems, counts)
        time.sleep(interval)
    raise BenchError(f"no convergence after {timeout:.0f}s: {problems}; outbox {counts}")


def push_and_converge(stack: Stack, workload: Workload, threads: int, timeout: float) -> dict[str, Any]:
    """Push the whole workload while the sync workers run; seconds for the push and until converged."""
    driver = HttpDriver(stack.scim_url, stack.token, threads=threads)
    started = time.monotonic()
    push_all(driver, workload)
    pushed = time.monotonic() - started

    def progress(problems: list[str], counts: dict[str, int]) -> None:
        print(f"  {time.monotonic() - started:6.1f}s  outbox {counts}  {'; '.join(problems)}", flush=True)

    wait_for_convergence(stack, workload, timeout=timeout - pushed, on_poll=progress)
    return {"push_s": pushed, "total_s": time.monotonic() - started, "driver": driver}


def minimum_jsm_calls(workload: Workload, portal_links: int = 0) -> int:
    """Fewest JSM requests that can produce the workload's state from an empty site.

    One create per customer and per organization, one add-users call per 50 members of each
    organization (the batch size), one call per portal link.
    """
    adds = sum(-(-len(members) // MEMBERS_PER_JSM_CALL) for members in workload.members_of().values())
    return workload.users + workload.groups + adds + portal_links


def add_propagation_arguments(parser: argparse.ArgumentParser, users: int, groups: int, sync_workers: int) -> None:
    """The options of a benchmark that pushes a workload and waits for JSM to converge."""
    parser.add_argument("--users", type=int, default=users)
    parser.add_argument("--groups", type=int, default=groups)
    parser.add_argument("--memberships-per-user", type=int, default=1)
    parser.add_argument("--sync-workers", type=int, default=sync_workers)
    parser.add_argument("--burst-limit", type=int, default=0,
                        help="The emulator answers 429 past this many requests per route per second (0: no limit).")


def run_propagation(args: argparse.Namespace, timeout: float) -> tuple[Workload, dict[str, Any], dict[str, Any]]:
    """Start the stack with the emulator, push the workload, wait until JSM is exact; returns the
    workload, the timings of ``push_and_converge`` and the emulator's stats."""
    workload = Workload(args.users, args.groups, args.memberships_per_user)
    burst = getattr(args, "burst_limit", 0)
    emulator_args = ("--burst-limit", str(burst)) if burst else ()
    with bridge_stack(backend=args.backend, http_workers=args.http_workers, sync_workers=args.sync_workers,
                      with_emulator=True, emulator_args=emulator_args) as stack:
        timings = push_and_converge(stack, workload, args.threads, timeout)
        stats = emulator_get(stack.jsm_url, "stats")
        timings["outbox"] = outbox_counts(stack.database_url)
    return workload, timings, stats

"""(b) Filtered GET latency on 100,000 users; target p99 < 20 ms.

    python benchmarks/filtered_get.py [--users 100000] [--queries 300] [--backend sqlite] [--json]

The users are seeded straight into the database (``benchmarks/seed.py``: bulk INSERT through the
models, then ANALYZE) rather than over HTTP. Each filter is then sent ``--queries`` times for
random existing users, one request at a time (latency, where the target applies), and again
from ``--threads`` client threads (throughput under load, reported only).
"""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import HttpDriver, Target, base_parser, bridge_stack, finish, print_summaries, run_main
from benchmarks.seed import seed_users
from benchmarks.workload import Workload

P99_TARGET_MS = 20.0


def filters(workload: Workload, i: int) -> dict[str, str]:
    """The filters measured, each matching exactly user ``i``."""
    local_part = workload.email(i).split("@")[0]
    return {
        "userName eq": f'userName eq "{workload.email(i)}"',
        "emails[type eq work and value co]": f'emails[type eq "work" and value co "{local_part}@"]',
        "externalId eq": f'externalId eq "ext-{i:06d}"',
    }


def measure(driver: HttpDriver, workload: Workload, queries: int, suffix: str, threads: int) -> None:
    rng = random.Random(7)
    picks = [rng.randrange(workload.users) for _ in range(queries)]
    for name in filters(workload, 0):
        label = f"{name}{suffix}"

        def query(i: int, name: str = name, label: str = label) -> None:
            response = driver.call(label, "GET", "/Users", params={"filter": filters(workload, i)[name]})
            if response.json().get("totalResults") != 1:
                raise AssertionError(f"{label}: expected exactly one match for user {i}: {response.text[:300]}")

        driver.threads = threads
        driver.map(label, query, picks)


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300, help="requests per filter and pass")
    args = parser.parse_args()
    workload = Workload(args.users, 0)
    with bridge_stack(backend=args.backend, http_workers=args.http_workers) as stack:
        started = time.perf_counter()
        seed_users(stack.database_url, workload)
        seed_s = time.perf_counter() - started
        print(f"seeded {args.users} users in {seed_s:.1f}s")
        driver = HttpDriver(stack.scim_url, stack.token)
        measure(driver, workload, 20, " (warm-up)", 1)
        measure(driver, workload, args.queries, "", 1)
        measure(driver, workload, args.queries, f" x{args.threads} threads", args.threads)
    summaries = [s for s in driver.recorder.summaries() if "warm-up" not in s.label]
    print_summaries(f"GET /Users?filter=... on {args.users} users ({args.backend})", summaries)
    targets = [Target(f"p99 {s.label}", s.p99_ms, P99_TARGET_MS, "ms") for s in summaries if " x" not in s.label]
    return finish("filtered_get", args, targets,
                  {"seed_seconds": seed_s, "summaries": {s.label: s.as_dict() for s in summaries}})


if __name__ == "__main__":
    run_main(main)

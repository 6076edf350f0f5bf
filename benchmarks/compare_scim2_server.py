"""(e) The same SCIM workload against scim2-server and against us, in the same run; target >= 2x.

    python benchmarks/compare_scim2_server.py [--users 2000] [--queries 300] [--json]

scim2-server (PyPI, the python-scim project's reference server) runs as its own process with its
in-memory storage: its WSGI application under gunicorn (one process, as its storage requires,
``--threads`` threads, keep-alive; ``--scim2-server-cli`` runs its own command's HTTP/1.0 test
server instead, which stalls 1 s whenever its listen backlog of 5 overflows); we run as in production (gunicorn + PostgreSQL, or
``--backend sqlite`` for ``jsm-scim serve``). Both get the same ``POST /Users`` workload from the
same client (``--threads`` threads), then the same filtered GETs for random existing users,
sent from ``--threads`` threads as well. The ratio is our throughput over theirs. Before the clock
starts, both servers get the same warm-up (20 users per client thread created, then looked up), so
that both are compared in steady state rather than with cold processes.
"""
from __future__ import annotations

import contextlib
import random
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Iterator

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    HttpDriver,
    Summary,
    Target,
    base_parser,
    bridge_stack,
    finish,
    print_rows,
    print_summaries,
    run_main,
    start_scim2_server,
)
from benchmarks.workload import CREATE_USER, Workload, push_users

TARGET_RATIO = 2.0
FILTERED_GET = "GET /Users?filter=userName eq"


WARM_UP = "warm-up (not reported)"


def warm_up(driver: HttpDriver, threads: int) -> None:
    """Steady state for both servers: every server process/thread has answered some requests
    (imports, connection pools, statement caches) before the clock starts. Same requests for both."""
    warm = Workload(20 * threads, 0, domain="warm-up.example.com")
    push_users(driver, warm, label=WARM_UP)
    driver.map(WARM_UP, lambda i: driver.call(WARM_UP, "GET", "/Users",
                                               params={"filter": f'userName eq "{warm.email(i)}"'}),
               range(warm.users))


def run_workload(driver: HttpDriver, workload: Workload, queries: int) -> dict[str, Summary]:
    warm_up(driver, driver.threads)
    push_users(driver, workload)
    rng = random.Random(11)
    picks = [rng.randrange(workload.users) for _ in range(queries)]

    def query(i: int) -> None:
        response = driver.call(FILTERED_GET, "GET", "/Users", params={"filter": f'userName eq "{workload.email(i)}"'})
        if response.json().get("totalResults") != 1:
            raise AssertionError(f"expected one match for {workload.email(i)}: {response.text[:300]}")

    driver.map(FILTERED_GET, query, picks)
    return {label: driver.recorder.summary(label) for label in (CREATE_USER, FILTERED_GET)}


@contextlib.contextmanager
def scim2_server(threads: int, cli: bool) -> Iterator[tuple[str, str]]:
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="scim2-server-") as workdir:
        process, url = start_scim2_server(token, Path(workdir), threads=threads, cli=cli)
        try:
            yield url, token
        finally:
            process.stop()


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--scim2-server-cli", action="store_true",
                        help="run the scim2-server command's own HTTP/1.0 test server (before 2026-11-26 the "
                             "default) instead of its application under gunicorn")
    args = parser.parse_args()
    workload = Workload(args.users, 0)
    results: dict[str, dict[str, Summary]] = {}
    with scim2_server(args.threads, args.scim2_server_cli) as (url, token):
        results["scim2-server"] = run_workload(HttpDriver(url, token, threads=args.threads), workload, args.queries)
    with bridge_stack(backend=args.backend, http_workers=args.http_workers) as stack:
        driver = HttpDriver(stack.scim_url, stack.token, threads=args.threads)
        results["jsm-scim-bridge"] = run_workload(driver, workload, args.queries)
    for server, summaries in results.items():
        print_summaries(f"{server}: {args.users} users, {args.queries} filtered GETs, {args.threads} threads",
                        list(summaries.values()))
    targets = []
    rows = []
    for label in (CREATE_USER, FILTERED_GET):
        ours, theirs = results["jsm-scim-bridge"][label], results["scim2-server"][label]
        ratio = ours.per_second / theirs.per_second
        rows.append((label, f"{ours.per_second:.0f}/s", f"{theirs.per_second:.0f}/s", f"{ratio:.2f}x"))
        targets.append(Target(f"{label} throughput vs scim2-server", ratio, TARGET_RATIO, "x", higher_is_better=True))
    print_rows("jsm-scim-bridge vs scim2-server", ("operation", "ours", "scim2-server", "ratio"), rows)
    return finish("compare_scim2_server", args, targets,
                  {server: {k: v.as_dict() for k, v in s.items()} for server, s in results.items()})


if __name__ == "__main__":
    run_main(main)

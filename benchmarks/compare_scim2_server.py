"""(e) Us against scim2-server in one run: creates/s, filtered GETs/s, server CPU ms per request.

    python benchmarks/compare_scim2_server.py [--users 2000] [--queries 2000] [--rounds 4] [--json]
    python benchmarks/compare_scim2_server.py --growth 1000,10000            # cost growth, a few minutes
    python benchmarks/compare_scim2_server.py --growth 1000,10000,100000 --backends postgresql

Comparison (the default): scim2-server 0.8.3 (the python-scim project's reference server, in-memory
storage, its WSGI application under gunicorn: one gthread process, ``--threads`` threads,
keep-alive) and our server as README deploys it (``gunicorn wsgi:app -c gunicorn.conf.py``, per-key
rate limits lifted, on each of ``--backends``) all run at once. After the same warm-up for each,
``--rounds`` rounds alternate between them (the order rotates each round), each round sending every
server a share of the ``POST /Users`` workload and then filtered GETs (``userName eq``, a hit) for
random users it holds, from ``--threads`` client threads. Throughput is requests over the summed wall
time of its phases; CPU is the server processes' own CPU time (``/proc``: the gunicorn master and
its workers; for PostgreSQL also the database backends serving our connections), which load from
other processes disturbs far less than wall time. Ratios are ours over scim2-server's; the
per-round ratios show the noise.

Growth (``--growth N1,N2,...``): for each backend one server; the database is filled to N users
(seeded straight into the tables, ``benchmarks/seed.py``, then ANALYZEd as after any bulk load),
then ``--growth-requests`` creates (``--threads`` clients) and as many filtered GETs (one client:
latency) are measured, CPU per request included. The cost per request should stay flat.
"""
from __future__ import annotations

import contextlib
import dataclasses
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    DatabaseCpu,
    HttpDriver,
    Target,
    base_parser,
    bridge_stack,
    finish,
    percentile,
    print_rows,
    process_tree_cpu,
    run_main,
    start_scim2_server,
)
from benchmarks.seed import seed_users
from benchmarks.workload import Workload, user_document

SCIM2_SERVER = "scim2-server"
CREATE, GET = "POST /Users", "GET /Users?filter=userName eq"
RATIO_TARGETS = {"sqlite": 2.0, "postgresql": 1.5}
SQLITE_CREATE_P99_MS = 100.0
GROWTH_GET_P99_MS = 10.0  # PostgreSQL, 100,000 users
WARM_UP = "warm-up"


@dataclasses.dataclass
class Phase:
    """One timed batch of requests against one server."""

    count: int
    wall_s: float
    server_cpu_s: float
    database_cpu_s: float
    latencies_ms: list[float]


@dataclasses.dataclass
class Subject:
    """A server under test: how to reach it and how to read its CPU time."""

    name: str
    driver: HttpDriver
    server_cpu: Callable[[], float]
    database_cpu: Callable[[], float] = lambda: 0.0
    workload: Workload = dataclasses.field(default_factory=lambda: Workload(0, 0))
    created: int = 0
    phases: dict[str, list[Phase]] = dataclasses.field(default_factory=dict)

    def measure(self, label: str, fn: Callable[[int], None], items: list[int], threads: int | None = None) -> Phase:
        self.driver.threads = threads or self.driver.threads
        server, database, started = self.server_cpu(), self.database_cpu(), time.perf_counter()
        self.driver.map(label, fn, items)
        wall = time.perf_counter() - started
        phase = Phase(len(items), wall, self.server_cpu() - server, self.database_cpu() - database,
                      [s * 1000 for s in self.driver.recorder.latencies.pop(label, [])])
        self.phases.setdefault(label, []).append(phase)
        return phase

    def create(self, count: int, label: str = CREATE, threads: int | None = None) -> Phase:
        start, self.created = self.created, self.created + count

        def one(i: int) -> None:
            self.driver.call(label, "POST", "/Users", body=user_document(self.workload, i), expect=(201,))
        return self.measure(label, one, list(range(start, start + count)), threads)

    def lookups(self, count: int, rng: random.Random, label: str = GET, threads: int | None = None,
                pick: Callable[[random.Random], str] | None = None) -> Phase:
        choose = pick or (lambda r: self.workload.email(r.randrange(self.created)))
        names = [choose(rng) for _ in range(count)]

        def one(i: int) -> None:
            response = self.driver.call(label, "GET", "/Users", params={"filter": f'userName eq "{names[i]}"'})
            if response.json().get("totalResults") != 1:
                raise AssertionError(f"{self.name}: expected one match for {names[i]}: {response.text[:300]}")
        return self.measure(label, one, list(range(count)), threads)


@dataclasses.dataclass
class Totals:
    count: int
    per_second: float
    cpu_ms: float
    database_cpu_ms: float
    p50_ms: float
    p99_ms: float
    round_rates: list[float]

    @classmethod
    def of(cls, phases: list[Phase]) -> "Totals":
        count = sum(p.count for p in phases)
        latencies = [ms for p in phases for ms in p.latencies_ms]
        return cls(count, count / sum(p.wall_s for p in phases), 1000 * sum(p.server_cpu_s for p in phases) / count,
                   1000 * sum(p.database_cpu_s for p in phases) / count, percentile(latencies, 50),
                   percentile(latencies, 99), [p.count / p.wall_s for p in phases])

    def cpu_text(self) -> str:
        return f"{self.cpu_ms:.2f}" + (f" + {self.database_cpu_ms:.2f} db" if self.database_cpu_ms else "")


# ------------------------------------------------------------------------------------- servers
@contextlib.contextmanager
def scim2_server(threads: int) -> Iterator[Subject]:
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="scim2-server-") as workdir:
        process, url = start_scim2_server(token, Path(workdir), threads=threads)
        try:
            yield Subject(SCIM2_SERVER, HttpDriver(url, token, threads=threads),
                          lambda: process_tree_cpu(process.popen.pid))
        finally:
            process.stop()


@contextlib.contextmanager
def our_server(backend: str, args) -> Iterator[tuple[Subject, str]]:
    """Our server as README deploys it: gunicorn with the shipped gunicorn.conf.py."""
    with bridge_stack(backend=backend, http_workers=args.http_workers, server="gunicorn") as stack:
        pid = stack.http_process.popen.pid
        database = DatabaseCpu(stack.database_url) if backend == "postgresql" else None
        try:
            yield Subject(f"ours ({backend})", HttpDriver(stack.scim_url, stack.token, threads=args.threads),
                          lambda: process_tree_cpu(pid), database.seconds if database else (lambda: 0.0)), \
                stack.database_url
        finally:
            if database:
                database.close()


def warm_up(subject: Subject, threads: int) -> None:
    """The same start for every server: each process/thread has answered requests (imports,
    pools, statement caches) before the clock starts."""
    subject.workload = Workload(0, 0, domain="warm-up.example.com")
    subject.create(20 * threads, WARM_UP)
    subject.lookups(20 * threads, random.Random(1), WARM_UP)
    subject.workload, subject.created = Workload(0, 0), 0
    subject.phases.pop(WARM_UP, None)


# ---------------------------------------------------------------------------------- comparison
def compare(args) -> int:
    backends = [b for b in args.backends.split(",") if b]
    with contextlib.ExitStack() as servers:
        subjects = [servers.enter_context(scim2_server(args.threads))]
        subjects += [servers.enter_context(our_server(backend, args))[0] for backend in backends]
        for subject in subjects:
            warm_up(subject, args.threads)
        rng = random.Random(11)
        for round_no in range(args.rounds):
            order = subjects[round_no % len(subjects):] + subjects[:round_no % len(subjects)]
            for subject in order:
                subject.create(args.users // args.rounds)
                subject.lookups(args.queries // args.rounds, rng)
            print(f"round {round_no + 1}/{args.rounds} done", flush=True)
    totals = {s.name: {label: Totals.of(phases) for label, phases in s.phases.items()} for s in subjects}
    theirs = totals[SCIM2_SERVER]
    rows, targets = [], []
    for name, mine in totals.items():
        for label in (CREATE, GET):
            t = mine[label]
            ratio = t.per_second / theirs[label].per_second
            per_round = [a / b for a, b in zip(t.round_rates, theirs[label].round_rates, strict=True)]
            rows.append((name, label, f"{t.per_second:.0f}/s", f"{t.p50_ms:.1f} / {t.p99_ms:.1f}", t.cpu_text(),
                         "-" if name == SCIM2_SERVER else f"{ratio:.2f}x",
                         "-" if name == SCIM2_SERVER else f"{min(per_round):.2f}-{max(per_round):.2f}x",
                         "-" if name == SCIM2_SERVER else f"{theirs[label].cpu_ms / t.cpu_ms:.2f}x"))
            if name != SCIM2_SERVER:
                backend = name[name.index("(") + 1:-1]
                targets.append(Target(f"{label} throughput vs scim2-server ({backend})", ratio,
                                      RATIO_TARGETS[backend], "x", higher_is_better=True))
                if backend == "sqlite" and label == CREATE:
                    targets.append(Target(f"{label} p99, {args.threads} clients (sqlite)", t.p99_ms,
                                          SQLITE_CREATE_P99_MS, "ms"))
    print_rows(f"{args.users} creates and {args.queries} filtered GETs per server in {args.rounds} alternating "
               f"rounds, {args.threads} client threads",
               ("server", "operation", "throughput", "p50 / p99 ms", "CPU ms/request", "ratio", "per round",
                "CPU ratio (theirs/ours)"), rows)
    payload = {name: {label: dataclasses.asdict(t) for label, t in mine.items()} for name, mine in totals.items()}
    return finish("compare_scim2_server", args, targets, {"totals": payload})


# -------------------------------------------------------------------------------------- growth
def growth(args) -> int:
    sizes = sorted(int(n) for n in args.growth.split(","))
    rows, targets, payload = [], [], {}
    for backend in [b for b in args.backends.split(",") if b]:
        with our_server(backend, args) as (subject, database_url):
            warm_up(subject, args.threads)
            seeded: list[Workload] = []
            created = 0  # users added over HTTP by earlier steps
            for size in sizes:
                missing = size - sum(w.users for w in seeded) - created
                if missing > 0:
                    seeded.append(Workload(missing, 0, domain=f"seed{len(seeded)}.example.com"))
                    started = time.perf_counter()
                    seed_users(database_url, seeded[-1])
                    print(f"{backend}: seeded {missing} users in {time.perf_counter() - started:.1f}s", flush=True)
                subject.workload, subject.created = Workload(0, 0, domain=f"growth{size}.example.com"), 0
                label = f"{size}"
                creates = Totals.of([subject.create(args.growth_requests, f"{CREATE} {label}", args.threads)])
                created += args.growth_requests

                def pick(rng: random.Random, seeded: list[Workload] = seeded) -> str:
                    workload = rng.choice(seeded)
                    return workload.email(rng.randrange(workload.users))
                gets = Totals.of([subject.lookups(args.growth_requests, random.Random(size), f"{GET} {label}",
                                                  threads=1, pick=pick)])
                subject.driver.threads = args.threads
                rows.append((backend, f"{size:,}", creates.cpu_text(), f"{creates.per_second:.0f}/s",
                             f"{creates.p99_ms:.1f}", gets.cpu_text(), f"{gets.p50_ms:.1f} / {gets.p99_ms:.1f}"))
                payload[f"{backend} {size}"] = {"create": dataclasses.asdict(creates), "get": dataclasses.asdict(gets)}
                if backend == "postgresql" and size >= 100_000:
                    targets.append(Target(f"filtered GET p99 at {size:,} users (postgresql)", gets.p99_ms,
                                          GROWTH_GET_P99_MS, "ms"))
    print_rows(f"cost per request as the directory grows ({args.growth_requests} creates with {args.threads} clients, "
               f"{args.growth_requests} filtered GETs one at a time)",
               ("backend", "stored users", "create CPU ms", "creates/s", "create p99 ms", "GET CPU ms",
                "GET p50 / p99 ms"), rows)
    return finish("compare_scim2_server_growth", args, targets, {"growth": payload})


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated (default both)")
    parser.add_argument("--users", type=int, default=2_000, help="creates per server (default 2000)")
    parser.add_argument("--queries", type=int, default=2_000, help="filtered GETs per server (default 2000)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (default 4)")
    parser.add_argument("--growth", default="", help="comma-separated directory sizes: measure cost growth instead")
    parser.add_argument("--growth-requests", type=int, default=500, help="creates and GETs per size (default 500)")
    args = parser.parse_args()
    return growth(args) if args.growth else compare(args)


if __name__ == "__main__":
    run_main(main)

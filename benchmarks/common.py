"""Shared benchmark plumbing: real server processes, scratch databases, an HTTP load driver,
percentiles and result tables.

Everything here drives the product the way production does: separate OS processes started from
the installed console scripts (``gunicorn wsgi:app``, ``jsm-scim ...``), talking HTTP on loopback.
The deployment tests in ``tests/deploy/`` reuse the same helpers.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import requests
from sqlalchemy import text
from sqlalchemy.engine import make_url

from scim_server.db import make_engine, normalize_url

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
BIN_DIR = Path(sys.executable).parent
#: Maintenance database used to create and drop scratch databases.
ADMIN_POSTGRES_URL = os.environ.get("JSM_SCIM_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
JSM_EMAIL = "bench-bot@example.com"
JSM_API_TOKEN = "bench-api-token"
SCIM_MEDIA_TYPE = "application/scim+json"

T = TypeVar("T")
R = TypeVar("R")


class BenchError(RuntimeError):
    """The system under test did not start or answered in a way that makes the figures meaningless."""


# ------------------------------------------------------------------------------------ databases


@contextlib.contextmanager
def scratch_database(backend: str, label: str, directory: Path, admin_url: str = ADMIN_POSTGRES_URL) -> Iterator[str]:
    """A new, empty database on ``backend`` ("postgresql" | "sqlite"), dropped afterwards.

    PostgreSQL databases are created through ``admin_url`` (any existing database of the server).
    """
    if backend == "sqlite":
        yield f"sqlite:///{directory / f'{label}.db'}"
        return
    if backend != "postgresql":
        raise ValueError(f"unknown backend {backend!r}")
    server_url = make_url(normalize_url(admin_url))
    name = f"jsmscim_{label}_{os.getpid()}"
    admin = make_engine(server_url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    try:
        _execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
        yield server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        _execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _execute(engine, *statements: str) -> None:
    with engine.connect() as connection:
        for statement in statements:
            connection.execute(text(statement))


# ------------------------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ManagedProcess:
    """A child process in its own session (so its whole group stops together), logging to a file."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log_dir: Path, cwd: Path = REPO_ROOT):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(
            list(argv), env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        content = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(content[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group (graceful), SIGKILL it if it has not exited in ``timeout``."""
        if self.alive:
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait(5)
        self._log.close()

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)


def bridge_env(database_url: str, *, jsm_url: str | None = None, in_process_worker: bool = False,
               extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for our processes: production-like settings, no rate limit (we measure capacity)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSM_SCIM_")}
    env.update(
        JSM_SCIM_ENV_FILE=os.devnull,  # never pick up a developer's ./.env
        JSM_SCIM_DATABASE_URL=database_url,
        JSM_SCIM_SECRET_KEY="benchmark-secret-key-not-for-production",
        JSM_SCIM_RATE_LIMIT_PER_KEY="1000000",
        JSM_SCIM_RATE_LIMIT_BURST="1000000",
        JSM_SCIM_RUN_WORKER_IN_PROCESS="true" if in_process_worker else "false",
        JSM_SCIM_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    if jsm_url:
        env.update(JSM_SCIM_JSM_URL=jsm_url, JSM_SCIM_JSM_EMAIL=JSM_EMAIL, JSM_SCIM_JSM_API_TOKEN=JSM_API_TOKEN)
    env.update(extra or {})
    return env


def jsm_scim_argv(*args: str) -> list[str]:
    return [str(BIN_DIR / "jsm-scim"), *args]


def run_cli(env: dict[str, str], *args: str, timeout: float = 300.0) -> str:
    """Run ``jsm-scim ARGS``; return stdout, raise ``BenchError`` with stderr on failure."""
    done = subprocess.run(jsm_scim_argv(*args), env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        raise BenchError(f"jsm-scim {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def create_key(env: dict[str, str], name: str = "bench", directory: str = "default") -> str:
    """A new SCIM token through the CLI (the token is alone on the last line of stdout)."""
    lines = run_cli(env, "keys", "create", "--name", name, "--directory", directory).strip().splitlines()
    if not lines:
        raise BenchError("jsm-scim keys create printed nothing")
    return lines[-1].strip()


def sync_status(env: dict[str, str]) -> dict[str, Any]:
    return json.loads(run_cli(env, "sync", "status", "--json"))


# ----------------------------------------------------------------------------------- CPU time


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, own CPU seconds, CPU seconds of reaped children) from ``/proc/PID/stat``."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) ": state is fields[0]
    ppid, utime, stime, cutime, cstime = int(fields[1]), *(int(v) for v in fields[11:15])
    return ppid, (utime + stime) / CLOCK_TICKS, (cutime + cstime) / CLOCK_TICKS


def process_tree_cpu(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` and all its descendants, including children that
    already exited and were reaped (a recycled gunicorn worker counts in its master's total)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _proc_stat(int(entry))) is not None:
            stats[int(entry)] = stat
    children: dict[int, list[int]] = {}
    for child, (parent, _, _) in stats.items():
        children.setdefault(parent, []).append(child)
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            _, own, reaped = stats[current]
            total += own + (reaped if current == pid else 0.0)  # a live child's reaped ones: rare, its own
            todo.extend(children.get(current, []))
    return total


def processes_cpu(pids: Iterable[int]) -> float:
    return sum(stat[1] for pid in pids if (stat := _proc_stat(pid)) is not None)


class DatabaseCpu:
    """CPU seconds of the PostgreSQL backends serving one database (its pooled connections live as
    long as the server's pool, so the difference of two readings is the work done in between)."""

    def __init__(self, database_url: str, admin_url: str = ADMIN_POSTGRES_URL):
        self.database = make_url(normalize_url(database_url)).database
        self.admin = make_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
        self.seen: set[int] = set()

    def seconds(self) -> float:
        with self.admin.connect() as connection:
            pids = connection.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :name"),
                                      {"name": self.database}).scalars().all()
        self.seen.update(pids)
        return processes_cpu(self.seen)

    def close(self) -> None:
        self.admin.dispose()


def start_gunicorn(env: dict[str, str], port: int, workers: int | None, log_dir: Path) -> ManagedProcess:
    """``gunicorn wsgi:app -c gunicorn.conf.py`` on ``port``; ``workers`` None keeps the file's default."""
    argv = [str(BIN_DIR / "gunicorn"), "wsgi:app"]
    if (REPO_ROOT / "gunicorn.conf.py").is_file():
        argv += ["-c", str(REPO_ROOT / "gunicorn.conf.py")]
    argv += ["--bind", f"127.0.0.1:{port}"]  # the command line wins over the file
    if workers is not None:
        argv += ["--workers", str(workers)]
    return ManagedProcess("gunicorn", argv, env, log_dir)


def start_serve(env: dict[str, str], port: int, log_dir: Path) -> ManagedProcess:
    return ManagedProcess("serve", jsm_scim_argv("serve", "--host", "127.0.0.1", "--port", str(port)), env, log_dir)


def start_sync_workers(env: dict[str, str], count: int, log_dir: Path) -> list[ManagedProcess]:
    return [ManagedProcess(f"worker-{n}", jsm_scim_argv("worker"), env, log_dir) for n in range(count)]


def start_scim2_server(token: str, log_dir: Path, *, threads: int = 8, cli: bool = False) -> tuple[ManagedProcess, str]:
    """The reference scim2-server (in-memory storage); its SCIM base URL.

    By default its application runs under gunicorn (one gthread process, ``threads`` threads,
    keep-alive), as ours does: see ``benchmarks/scim2_server_wsgi.py`` for why its own command's
    server is not a fair subject. ``cli=True`` runs the ``scim2-server`` command instead.
    """
    port = free_port()
    env = dict(os.environ)
    if cli:
        argv = [str(BIN_DIR / "scim2-server"), "--port", str(port), f"--bearer-token={token}"]
    else:
        env["SCIM2_BENCH_TOKEN"] = token
        argv = [str(BIN_DIR / "gunicorn"), "benchmarks.scim2_server_wsgi:app", "--bind", f"127.0.0.1:{port}",
                "--workers", "1", "--worker-class", "gthread", "--threads", str(threads), "--keep-alive", "5"]
    process = ManagedProcess("scim2-server", argv, env, log_dir)
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(f"{url}/ServiceProviderConfig", process, headers={"Authorization": f"Bearer {token}"})
    return process, url


def start_emulator(log_dir: Path, *extra_args: str) -> tuple[ManagedProcess, str]:
    """``jsm-scim emulator`` as its own process (it then competes for CPU like a remote site would not);
    ``extra_args`` e.g. ``--burst-limit 40``."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSM_SCIM_")}
    process = ManagedProcess("emulator", jsm_scim_argv("emulator", "--port", str(port), *extra_args), env, log_dir)
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(f"{url}/_emulator/stats", process)
    return process, url


def wait_until_ready(url: str, process: ManagedProcess, timeout: float = 60.0,
                     headers: dict[str, str] | None = None) -> None:
    """Poll ``url`` until it answers 200; fail early (with the log) if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive:
            raise BenchError(f"{process.name} exited with {process.popen.returncode}:\n{process.log_tail()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, headers=headers, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise BenchError(f"{process.name} not ready at {url} after {timeout:.0f}s:\n{process.log_tail()}")


@dataclasses.dataclass
class Stack:
    """A running deployment: HTTP server, optional sync workers and JSM emulator."""

    backend: str
    server: str
    env: dict[str, str]
    base_url: str
    token: str
    database_url: str
    jsm_url: str | None
    log_dir: Path
    processes: list[ManagedProcess]

    @property
    def scim_url(self) -> str:
        return f"{self.base_url}/scim/v2"

    @property
    def http_process(self) -> ManagedProcess:
        return next(process for process in self.processes if process.name == self.server)

    def check_alive(self) -> None:
        for process in self.processes:
            if not process.alive:
                raise BenchError(f"{process.name} died:\n{process.log_tail()}")


@contextlib.contextmanager
def bridge_stack(*, backend: str = "postgresql", http_workers: int | None = None, sync_workers: int = 0,
                 with_emulator: bool = False, jsm_url: str | None = None, in_process_worker: bool = False,
                 workdir: Path | None = None, postgres_admin_url: str = ADMIN_POSTGRES_URL,
                 server: str | None = None, emulator_args: Sequence[str] = ()) -> Iterator[Stack]:
    """Start the product as production does and yield it; everything is stopped and dropped after.

    ``server`` "gunicorn" (``gunicorn wsgi:app -c gunicorn.conf.py``) or "serve" (``jsm-scim
    serve``); by default PostgreSQL runs behind gunicorn and SQLite behind ``serve`` (the one-machine
    story). The schema is migrated by ``jsm-scim keys create`` (every command migrates on start, as
    ``jsm-scim db upgrade`` does) before any server starts.
    """
    with contextlib.ExitStack() as exits:
        workdir = workdir or Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="jsmscim-bench-")))
        database_url = exits.enter_context(scratch_database(backend, "bench", workdir, postgres_admin_url))
        processes: list[ManagedProcess] = []
        exits.callback(_stop_all, processes)
        if with_emulator:
            emulator, jsm_url = start_emulator(workdir, *emulator_args)
            processes.append(emulator)
        env = bridge_env(database_url, jsm_url=jsm_url, in_process_worker=in_process_worker)
        token = create_key(env)  # every jsm-scim command migrates first, like `jsm-scim db upgrade`
        port = free_port()
        server_kind = server or ("gunicorn" if backend == "postgresql" else "serve")
        http = start_gunicorn(env, port, http_workers, workdir) if server_kind == "gunicorn" else start_serve(
            env, port, workdir)
        processes.append(http)
        processes.extend(start_sync_workers(env, sync_workers, workdir))  # start while gunicorn boots
        base_url = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{base_url}/healthz", http, timeout=180)  # 5 workers importing on a busy machine
        yield Stack(backend, http.name, env, base_url, token, database_url, jsm_url, workdir, processes)


def _stop_all(processes: list[ManagedProcess]) -> None:
    for process in reversed(processes):
        process.stop()


# ---------------------------------------------------------------------------------- load driver


@dataclasses.dataclass
class HttpResponse:
    """What the benchmarks read of an answer (the subset of ``requests.Response`` they use)."""

    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


# An idle keep-alive connection the server closed shows up as one of these on the next request; the
# request never reached the server, so it is sent again on a new connection (as urllib3 does).
_STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                     http.client.CannotSendRequest)


class HttpDriver:
    """Concurrent calls to a SCIM base URL: one keep-alive ``http.client`` connection per thread,
    timed per label.

    The client must cost far less than the servers it measures: ``requests`` spends about 0.9 ms of
    CPU per call (one GIL, so at most ~1,000 calls/s from any number of threads, less than what the
    servers under test answer); ``http.client`` about 0.18 ms.
    """

    def __init__(self, base_url: str, token: str, threads: int = 8):
        parsed = urllib.parse.urlsplit(base_url.rstrip("/"))
        self.base_url = base_url.rstrip("/")
        self.host, self.port, self.prefix = parsed.hostname or "127.0.0.1", parsed.port or 80, parsed.path
        self.threads = threads
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM_MEDIA_TYPE,
                        "Accept": SCIM_MEDIA_TYPE}
        self.recorder = Recorder()
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None or fresh:
            if connection is not None:
                connection.close()
            connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def close(self) -> None:
        """Close every thread's keep-alive connections (a server then stops without waiting for them)."""
        with self._lock:
            for connection in self._connections:
                connection.close()

    def _exchange(self, method: str, target: str, payload: bytes | None) -> HttpResponse:
        for attempt in (0, 1):
            connection = self.connection(fresh=attempt == 1)
            try:
                connection.request(method, target, body=payload, headers=self.headers)
                answer = connection.getresponse()
                content = answer.read()
            except _STALE_CONNECTION:
                if attempt == 1:
                    raise
                continue
            if answer.will_close:
                connection.close()
            return HttpResponse(answer.status, dict(answer.getheaders()), content)
        raise AssertionError("unreachable")

    def call(self, label: str, method: str, path: str, *, body: Any = None, params: dict | None = None,
             expect: Iterable[int] = (200, 201, 204)) -> HttpResponse:
        """One timed request; an unexpected status is counted as an error for ``label`` and raised."""
        target = self.prefix + path + ("?" + urllib.parse.urlencode(params) if params else "")
        payload = None if body is None else json.dumps(body).encode()
        started = time.perf_counter()
        response = self._exchange(method, target, payload)
        elapsed = time.perf_counter() - started
        ok = response.status_code in tuple(expect)
        self.recorder.add(label, elapsed, None if ok else f"{response.status_code} {response.text[:300]}")
        if not ok:
            raise BenchError(f"{label}: {method} {path} answered {response.status_code}: {response.text[:500]}")
        return response

    def map(self, label: str, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``fn`` over ``items`` on the thread pool, timing the whole phase as ``label``'s wall time."""
        started = time.perf_counter()
        pool = ThreadPoolExecutor(self.threads)
        try:
            results = list(pool.map(fn, items))
        finally:  # on a failure (or Ctrl-C) drop the queued calls instead of running them all
            pool.shutdown(wait=True, cancel_futures=True)
        self.recorder.set_wall(label, time.perf_counter() - started)
        return results


@dataclasses.dataclass
class Summary:
    label: str
    count: int
    errors: int
    wall_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @property
    def per_second(self) -> float:
        return self.count / self.wall_s if self.wall_s else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "per_second": round(self.per_second, 1)}


class Recorder:
    """Latencies (seconds) and errors per label; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latencies: dict[str, list[float]] = {}
        self.errors: dict[str, list[str]] = {}
        self.walls: dict[str, float] = {}

    def add(self, label: str, seconds: float, error: str | None = None) -> None:
        with self._lock:
            self.latencies.setdefault(label, []).append(seconds)
            if error is not None:
                self.errors.setdefault(label, []).append(error)

    def set_wall(self, label: str, seconds: float) -> None:
        with self._lock:
            self.walls[label] = seconds

    def summary(self, label: str) -> Summary:
        values = self.latencies.get(label, [])
        wall = self.walls.get(label, sum(values))
        ms = [v * 1000 for v in values]
        return Summary(label, len(values), len(self.errors.get(label, [])), wall, percentile(ms, 50),
                       percentile(ms, 95), percentile(ms, 99), max(ms, default=float("nan")))

    def summaries(self) -> list[Summary]:
        return [self.summary(label) for label in self.latencies]


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile with linear interpolation between closest ranks (NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# ------------------------------------------------------------------------------------ reporting


@dataclasses.dataclass
class Target:
    """One figure against its goal: ``value <= limit`` (or ``>=`` when ``higher_is_better``)."""

    name: str
    value: float
    limit: float
    unit: str
    higher_is_better: bool = False

    @property
    def passed(self) -> bool:
        if math.isnan(self.value):
            return False
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "passed": self.passed}


def _console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160, markup=False, highlight=False)


def print_summaries(title: str, summaries: Sequence[Summary]) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in ("operation", "count", "errors", "wall s", "per s", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for s in summaries:
        table.add_row(s.label, str(s.count), str(s.errors), f"{s.wall_s:.2f}", f"{s.per_second:.1f}",
                      f"{s.p50_ms:.1f}", f"{s.p95_ms:.1f}", f"{s.p99_ms:.1f}", f"{s.max_ms:.1f}")
    _console().print(table)


def print_rows(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    _console().print(table)


def report_targets(targets: Sequence[Target]) -> bool:
    """Print PASS/MISS per target; True when all passed."""
    rows = []
    for t in targets:
        comparator = ">=" if t.higher_is_better else "<="
        rows.append((t.name, f"{t.value:.2f} {t.unit}", f"{comparator} {t.limit:g} {t.unit}",
                     "PASS" if t.passed else "MISS"))
    print_rows("targets", ("target", "measured", "goal", "verdict"), rows)
    return all(t.passed for t in targets)


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """``benchmarks/results/NAME-TIMESTAMP.json`` with the figures and the machine they ran on."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    machine = {"cpus": os.cpu_count(), "loadavg": os.getloadavg(), "python": sys.version.split()[0],
               "argv": sys.argv}
    path.write_text(json.dumps({"benchmark": name, "machine": machine, **payload}, indent=2, default=str))
    print(f"results written to {path}")
    return path


def base_parser(description: str) -> argparse.ArgumentParser:
    """Options every benchmark shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql",
                        help="postgresql: gunicorn wsgi:app; sqlite: jsm-scim serve (default postgresql)")
    parser.add_argument("--http-workers", type=int, default=None,
                        help="gunicorn workers (default: gunicorn.conf.py's, 2 x cores + 1)")
    parser.add_argument("--threads", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--json", action="store_true", help="also write benchmarks/results/NAME-TIME.json")
    return parser


def finish(name: str, args: argparse.Namespace, targets: Sequence[Target], payload: dict[str, Any]) -> int:
    """Print the verdicts, optionally write JSON; the exit status is 0 only when every target passed."""
    passed = report_targets(targets)
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} cores"
          + (" -- other processes competed for the CPU: figures are pessimistic" if load > 1.5 * (os.cpu_count() or 1) else ""))
    if args.json:
        write_results(name, {"args": vars(args), "targets": [t.as_dict() for t in targets], **payload})
    return 0 if passed else 1


def run_main(main: Callable[[], int]) -> None:
    """Exit with ``main()``'s status; a ``BenchError`` is printed as one line and exits 2."""
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"benchmark aborted: {exc}", file=sys.stderr)
        sys.exit(2)

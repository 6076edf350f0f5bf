"""Where a request's time goes: wall and CPU milliseconds, SQL statements and pool checkouts per
request, in-process (Flask test client, no HTTP server), plus an optional cProfile listing.

    python benchmarks/profile_requests.py [--backend sqlite] [--users 20000] [--profile "POST /Users"]
    python benchmarks/profile_requests.py --backend sqlite --users 1000 --instructions   # under callgrind

Run it before and after a change to the request path: unlike the HTTP benchmarks its figures
hardly depend on other load on the machine (statement counts do not at all). CPU time still does
when other processes compete for the cores and caches (up to 2x on a busy 2-core machine):
``--instructions`` runs the script under valgrind's callgrind, counts the instructions of the
measured requests only (instrumentation is switched on around them) and adds millions of
instructions per request to the table, a figure that other load does not change.
"""
from __future__ import annotations

import cProfile
import glob
import logging
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event

from benchmarks.common import print_rows, run_main, scratch_database
from benchmarks.seed import seed_users
from benchmarks.workload import Workload, group_document, members_patch, user_document
from scim_server.app import create_app
from scim_server.db import transaction
from scim_server.keys import create_key
from scim_server.services import services_of
from scim_server.settings import Settings

REPEAT = 200
CALLGRIND_REPEAT = 30  # about 50x slower under valgrind
_CALLGRIND_DIR = "JSM_SCIM_PROFILE_CALLGRIND_DIR"  # set when this script runs under callgrind
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class StatementCounter:
    def __init__(self, engine) -> None:
        self.statements = self.checkouts = 0
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine.pool, "checkout", self._checkout)

    def _statement(self, *_args: Any) -> None:
        self.statements += 1

    def _checkout(self, *_args: Any) -> None:
        self.checkouts += 1


def operations(client, headers: dict[str, str], workload: Workload, user_ids: list[str]) -> dict[str, Callable[[int], Any]]:
    group_id = client.post("/scim/v2/Groups", json=group_document(workload, 0), headers=headers).json["id"]
    fresh = Workload(workload.users + 10 * REPEAT, 0, domain="fresh.example.com")
    user_url = "/scim/v2/Users/{}"

    def rename(i: int) -> dict[str, Any]:
        return {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": f"Renamed {i}"}]}

    def replaced(i: int) -> dict[str, Any]:
        return {**user_document(workload, i % len(user_ids)), "displayName": f"Replaced {i}"}

    def get(filter_for: Callable[[int], str]) -> Callable[[int], Any]:
        return lambda i: client.get("/scim/v2/Users", query_string={"filter": filter_for(i)}, headers=headers)

    return {
        "POST /Users": lambda i: client.post("/scim/v2/Users", json=user_document(fresh, i), headers=headers),
        "GET userName eq": get(lambda i: f'userName eq "{workload.email(i)}"'),
        "GET /Users/{id}": lambda i: client.get(user_url.format(user_ids[i % len(user_ids)]), headers=headers),
        "PATCH /Users/{id} displayName": lambda i: client.patch(user_url.format(user_ids[i % len(user_ids)]),
                                                                json=rename(i), headers=headers),
        "PUT /Users/{id}": lambda i: client.put(user_url.format(user_ids[i % len(user_ids)]), json=replaced(i),
                                                headers=headers),
        "GET emails[... co]": get(lambda i: f'emails[type eq "work" and value co "{workload.email(i).split("@")[0]}@"]'),
        "PATCH add 50 members": lambda i: client.patch(
            f"/scim/v2/Groups/{group_id}", json=members_patch("add", user_ids[i * 50 % len(user_ids):][:50]),
            headers=headers),
    }


class Callgrind:
    """Instruction counts of one stretch of this process, which runs under callgrind (--instructions)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _control(self, *args: str) -> None:
        subprocess.run(["callgrind_control", *args, str(os.getpid())], check=True, capture_output=True)

    def start(self) -> None:
        self._control("-i", "on")
        self._control("-z")

    def stop(self, label: str) -> int:
        """Instructions since :meth:`start`, dumped under ``label``."""
        self._control("-d", label)
        self._control("-i", "off")
        for path in sorted(glob.glob(os.path.join(self.directory, f"cg.{os.getpid()}.*"))):
            with open(path, errors="replace") as dump:
                text = dump.read()
            if f"Trigger: dump {label}\n" in text:
                return next(int(line.split()[1]) for line in text.splitlines() if line.startswith("totals:"))
        raise AssertionError(f"no callgrind dump for {label}")


def run_under_callgrind() -> None:
    """Start this script again under callgrind, instrumentation off until the measured requests."""
    if not shutil.which("valgrind"):
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    directory = tempfile.mkdtemp(prefix="profile-callgrind-")
    os.environ[_CALLGRIND_DIR] = directory
    os.execvp("valgrind", ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                           f"--callgrind-out-file={directory}/cg.%p", sys.executable, *sys.argv])


def measure(name: str, call: Callable[[int], Any], counter: StatementCounter, profile: bool,
            callgrind: Callgrind | None = None) -> tuple:
    for i in range(10):  # warm-up: caches, prepared statements, pool
        call(i)
    repeat = CALLGRIND_REPEAT if callgrind else REPEAT
    counter.statements = counter.checkouts = 0
    profiler = cProfile.Profile() if profile else None
    if callgrind:
        callgrind.start()
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    for i in range(10, 10 + repeat):
        response = call(i)
        if response.status_code >= 300:
            raise AssertionError(f"{name}: {response.status_code} {response.get_data(as_text=True)[:300]}")
    instructions = callgrind.stop(name) / repeat / 1e6 if callgrind else None
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(r"scim_server|schemas", 30)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)  # libraries included (driver, ORM)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    row = (name, f"{wall / repeat * 1000:.2f}", f"{cpu / repeat * 1000:.2f}",
           f"{counter.statements / repeat:.1f}", f"{counter.checkouts / repeat:.1f}")
    return row + (f"{instructions:.2f}",) if instructions is not None else row


def main() -> int:
    parser = __import__("argparse").ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--profile", metavar="OPERATION", help="print a cProfile listing of this operation")
    parser.add_argument("--instructions", action="store_true",
                        help="run under valgrind's callgrind and count instructions per request (load-independent)")
    args = parser.parse_args()
    if args.instructions and not os.environ.get(_CALLGRIND_DIR):
        run_under_callgrind()
    callgrind = Callgrind(os.environ[_CALLGRIND_DIR]) if args.instructions else None
    logging.disable(logging.INFO)
    workload = Workload(args.users, 1)
    with tempfile.TemporaryDirectory() as workdir, scratch_database(args.backend, "profile", Path(workdir)) as url:
        app = create_app(Settings(database_url=url, secret_key="profile", rate_limit_per_key=1e9,
                                  rate_limit_burst=10**9, log_level="WARNING", run_worker_in_process=False))
        services = services_of(app)
        try:
            with transaction(services.session_factory) as session:
                token = create_key(session, "profile").token
            user_ids = seed_users(url, workload)
            counter = StatementCounter(services.engine)
            ops = operations(app.test_client(), {"Authorization": f"Bearer {token}"}, workload, user_ids)
            rows = [measure(name, call, counter, name == args.profile, callgrind) for name, call in ops.items()]
        finally:
            services.engine.dispose()
    print_rows(f"per request, in-process, {args.users} users ({args.backend})",
               ("operation", "wall ms", "CPU ms", "SQL statements", "pool checkouts")
               + (("M instructions",) if callgrind else ()), rows)
    return 0


if __name__ == "__main__":
    run_main(main)

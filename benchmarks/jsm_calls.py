"""(d) JSM requests per provisioned user, against the minimum that can produce the same state.

    python benchmarks/jsm_calls.py [--users 1000] [--groups 20] [--sync-workers 2] [--burst-limit N] [--json]

Provisions the workload over SCIM, runs ``jsm-scim worker`` processes to convergence against
``jsm-scim emulator`` and reads ``/_emulator/stats``. The minimum is users + organizations +
ceil(members/50) per organization (+ portal links, none without mapping rules). Every request
counts, 429 answers included. This script flags more than ``--max-ratio`` (default 1.5; issue 12
asks 1.05 for a burst-limited initial push) times the minimum, and any dead (failed) job.
With ``--burst-limit N`` the emulator refuses (429, with JSM's rate-limit headers) more than N
requests per route per second: the workers must pace themselves.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import Target, base_parser, finish, print_rows, run_main
from benchmarks.workload import add_propagation_arguments, minimum_jsm_calls, run_propagation


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    add_propagation_arguments(parser, users=1_000, groups=20, sync_workers=2)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--max-ratio", type=float, default=1.5)
    args = parser.parse_args()
    workload, timings, stats = run_propagation(args, args.timeout)
    minimum = minimum_jsm_calls(workload)
    by_route = sorted(stats["by_route"].items(), key=lambda item: -item[1])
    print_rows(f"JSM requests for {args.users} users, {args.groups} groups, {workload.memberships} memberships",
               ("route", "requests", "per user"),
               [(route, n, f"{n / args.users:.3f}") for route, n in by_route]
               + [("of which 429", stats.get("rate_limited", 0), f"{stats.get('rate_limited', 0) / args.users:.3f}"),
                  ("total", stats["requests"], f"{stats['requests'] / args.users:.3f}"),
                  ("minimum", minimum, f"{minimum / args.users:.3f}")])
    print(f"converged in {timings['total_s']:.1f}s (push {timings['push_s']:.1f}s); outbox {timings['outbox']}")
    dead = timings["outbox"].get("dead", 0) + timings["outbox"].get("blocked", 0)
    targets = [Target("JSM requests / minimum", stats["requests"] / minimum, args.max_ratio, "x"),
               Target("dead or blocked jobs", dead, 0, "jobs")]
    return finish("jsm_calls", args, targets, {"stats": stats, "minimum": minimum, "outbox": timings["outbox"],
                                               "push_s": timings["push_s"], "total_s": timings["total_s"]})


if __name__ == "__main__":
    run_main(main)

"""(f) 10,000 users and 100 groups pushed and fully propagated to JSM in under 5 minutes.

    python benchmarks/end_to_end.py [--users 10000] [--groups 100] [--sync-workers 3] [--json]

Production topology on one machine: gunicorn (``--http-workers``) on PostgreSQL, ``--sync-workers``
``jsm-scim worker`` processes and ``jsm-scim emulator`` as the JSM site. The clock runs from the
first SCIM request until the emulator holds exactly the expected customers, organizations and
memberships and ``jsm-scim sync status`` reports nothing pending.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import Target, base_parser, finish, print_summaries, run_main
from benchmarks.workload import add_propagation_arguments, run_propagation

TARGET_S = 300.0


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    add_propagation_arguments(parser, users=10_000, groups=100, sync_workers=3)
    args = parser.parse_args()
    _, timings, stats = run_propagation(args, timeout=2 * TARGET_S)
    summaries = timings["driver"].recorder.summaries()
    print_summaries(f"end to end: {args.users} users, {args.groups} groups ({args.backend}, "
                    f"{args.http_workers} HTTP workers, {args.sync_workers} sync workers)", summaries)
    print(f"pushed in {timings['push_s']:.1f}s, propagated (verified) after {timings['total_s']:.1f}s; "
          f"{stats['requests']} JSM requests")
    targets = [Target("push + propagation", timings["total_s"], TARGET_S, "s")]
    return finish("end_to_end", args, targets, {
        "push_s": timings["push_s"], "total_s": timings["total_s"], "jsm_requests": stats["requests"],
        "summaries": {s.label: s.as_dict() for s in summaries}})


if __name__ == "__main__":
    run_main(main)

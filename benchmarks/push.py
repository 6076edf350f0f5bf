"""(a) Push N users and G groups with memberships over HTTP; requests/s and p50/p99 latency.

    python benchmarks/push.py --users 10000 --groups 100 [--backend sqlite] [--json]

No target is fixed for this one; it reports throughput of user creation and group PATCH
(``MEMBERS_PER_PATCH`` members per request, the batch size Entra ID uses) and fails only on errors.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import HttpDriver, Target, base_parser, bridge_stack, finish, print_summaries, run_main
from benchmarks.workload import CREATE_USER, PATCH_MEMBERS, Workload, push_all


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--memberships-per-user", type=int, default=1)
    args = parser.parse_args()
    workload = Workload(args.users, args.groups, args.memberships_per_user)
    with bridge_stack(backend=args.backend, http_workers=args.http_workers) as stack:
        driver = HttpDriver(stack.scim_url, stack.token, threads=args.threads)
        push_all(driver, workload)
    summaries = driver.recorder.summaries()
    print_summaries(f"push: {args.users} users, {args.groups} groups, {workload.memberships} memberships "
                    f"({args.backend}, {args.http_workers} HTTP workers, {args.threads} client threads)",
                    summaries)
    errors = sum(s.errors for s in summaries)
    targets = [Target("errors", errors, 0, "requests")]
    figures = {s.label: s.as_dict() for s in summaries}
    users, patches = driver.recorder.summary(CREATE_USER), driver.recorder.summary(PATCH_MEMBERS)
    print(f"user creation {users.per_second:.0f}/s p50 {users.p50_ms:.1f} ms p99 {users.p99_ms:.1f} ms; "
          f"group PATCH {patches.per_second:.0f}/s p50 {patches.p50_ms:.1f} ms p99 {patches.p99_ms:.1f} ms")
    return finish("push", args, targets, {"summaries": figures})


if __name__ == "__main__":
    run_main(main)

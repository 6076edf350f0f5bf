"""(c) One PATCH adding 10,000 members to one group, and removing them; target < 2 s each.

    python benchmarks/big_patch.py [--members 10000] [--backend sqlite] [--json]

The users are seeded straight into the database (``benchmarks/seed.py``); the group is created
and patched over HTTP. Removal is measured in both forms IdPs send: a value list on ``members``
(Entra ID) and ``members[value eq "..."]`` filter paths (Okta), 10,000 of them in one request
when ``--filter-removal`` is given; finally ``remove`` of the whole ``members`` attribute.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    BenchError,
    HttpDriver,
    Target,
    base_parser,
    bridge_stack,
    finish,
    print_summaries,
    run_main,
)
from benchmarks.seed import seed_users
from benchmarks.workload import PATCH_SCHEMA, Workload, group_document, members_patch

TARGET_S = 2.0


def member_count(driver: HttpDriver, group_id: str) -> int:
    response = driver.call("GET group", "GET", f"/Groups/{group_id}", params={"attributes": "members"})
    return len(response.json().get("members", []))


def timed_patch(driver: HttpDriver, label: str, group_id: str, body: dict, expected_members: int) -> None:
    driver.call(label, "PATCH", f"/Groups/{group_id}", body=body, expect=(200, 204))
    found = member_count(driver, group_id)
    if found != expected_members:
        raise BenchError(f"{label}: group has {found} members, expected {expected_members}")


def filter_removal(user_ids: list[str]) -> dict:
    return {"schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "remove", "path": f'members[value eq "{uid}"]'} for uid in user_ids]}


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--filter-removal", action="store_true",
                        help="also time one PATCH with one members[value eq ...] removal per member")
    args = parser.parse_args()
    workload = Workload(args.members, 1)
    with bridge_stack(backend=args.backend, http_workers=args.http_workers) as stack:
        user_ids = seed_users(stack.database_url, workload)
        driver = HttpDriver(stack.scim_url, stack.token, threads=1)
        group_id = driver.call("POST /Groups", "POST", "/Groups", body=group_document(workload, 0),
                               expect=(201,)).json()["id"]
        n = len(user_ids)
        timed_patch(driver, f"add {n} members", group_id, members_patch("add", user_ids), n)
        timed_patch(driver, f"remove {n} members (value list)", group_id, members_patch("remove", user_ids), 0)
        if args.filter_removal:
            timed_patch(driver, f"add {n} members again", group_id, members_patch("add", user_ids), n)
            timed_patch(driver, f"remove {n} members (filter paths)", group_id, filter_removal(user_ids), 0)
        timed_patch(driver, f"add {n} members (before remove all)", group_id, members_patch("add", user_ids), n)
        timed_patch(driver, "remove all members (path only)", group_id,
                    {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "remove", "path": "members"}]}, 0)
    summaries = [s for s in driver.recorder.summaries() if s.label not in ("POST /Groups", "GET group")]
    print_summaries(f"one PATCH of {n} members ({args.backend})", summaries)
    targets = [Target(s.label, s.max_ms / 1000, TARGET_S, "s") for s in summaries]
    return finish("big_patch", args, targets, {"summaries": {s.label: s.as_dict() for s in summaries}})


if __name__ == "__main__":
    run_main(main)

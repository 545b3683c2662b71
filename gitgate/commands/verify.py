"""`gitgate verify [REV]`: what the reconciler would accept, commit by commit, and why."""

from __future__ import annotations

import argparse

from gitgate.service import inspect


def run(args: argparse.Namespace) -> int:
    seen = inspect(args, args.rev)
    ev = seen.evaluation
    start = (
        f"after the last verified commit {seen.base[:12]}"
        if seen.base
        else (f"after --trust-from {args.trust_from}" if args.trust_from else "the head only (no verified state yet)")
    )
    print(f"Checking {seen.head[:12]}, {start}:")
    for v in ev.verdicts:
        mark = "ok  " if v.trusted else "FAIL"
        who = f" by {v.signer}" if v.signer else ""
        print(f"  {mark} {v.commit[:12]} {v.subject[:60]!r}: {v.reason}{who}")
    if not ev.verdicts and ev.refusal is None:
        print("  (--verify off: signatures are not checked; answers are UNVERIFIED)")
    for problem in seen.problems:
        print(f"  FAIL {problem.render()}")
    if ev.refusal is not None:
        print(f"refused: {ev.refusal[1]}")
        return 1
    if seen.problems:
        print(f"refused: {len(seen.problems)} invalid file(s); a commit is accepted whole or not at all")
        return 1
    gates = len(seen.snapshot.gates) if seen.snapshot else 0
    print(f"accepted: {seen.head[:12]} would be served ({gates} gate file(s))")
    return 0

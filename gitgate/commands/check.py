"""`gitgate check`: answer one gate check as the service would, with the reason."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from gitgate.commands.common import hook_and_canary
from gitgate.commands.http import call
from gitgate.decide import decide
from gitgate.model import CheckRequest, Hook
from gitgate.service import inspect


def run(args: argparse.Namespace) -> int:
    hook, canary = hook_and_canary(args)
    if args.url:
        path = {Hook.ROLLBACK: "/rollback/check", Hook.ANY: "/gate/check"}.get(hook, f"/gate/check/{hook.value}")
        body = {
            "name": args.name,
            "namespace": args.namespace,
            "checksum": args.checksum,
            "phase": args.phase or "Progressing",
        }
        status, text = call(args.url.rstrip("/") + path, body=body)
        print(f"{'open' if status == 200 else 'closed'} ({status}): {text.strip()}")
        return 0 if status == 200 else 1
    seen = inspect(args)
    now = datetime.now(UTC)
    req = CheckRequest(canary, hook, args.checksum, args.phase)
    decision = decide(seen.snapshot, req, now)
    print(f"{'open' if decision.open else 'closed'}: {decision.reason}")
    if seen.answered_from == "last verified":
        print(
            f"note: the branch head {seen.head[:12]} is refused; "
            f"this is the answer from the last verified commit (see `gitgate verify`)"
        )
    return 0 if decision.open else 1

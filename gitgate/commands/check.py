"""`gitgate check`: answer one gate check as the service would, with the reason."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from gitgate.commands.http import call
from gitgate.decide import decide
from gitgate.errors import UsageError
from gitgate.model import CanaryRef, CheckRequest, Hook
from gitgate.schema import valid_ref
from gitgate.service import inspect


def run(args: argparse.Namespace) -> int:
    try:
        hook = Hook(args.hook)
    except ValueError:
        raise UsageError(f"--hook {args.hook!r}: use one of {', '.join(h.value for h in Hook)}") from None
    if not valid_ref(args.namespace, args.name):
        raise UsageError(f"{args.namespace}/{args.name} is not a Kubernetes namespace/name")
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
    req = CheckRequest(CanaryRef(args.namespace, args.name), hook, args.checksum, args.phase)
    decision = decide(seen.snapshot, req, now)
    print(f"{'open' if decision.open else 'closed'}: {decision.reason}")
    if seen.answered_from == "last verified":
        print(
            f"note: the branch head {seen.head[:12]} is refused; "
            f"this is the answer from the last verified commit (see `gitgate verify`)"
        )
    return 0 if decision.open else 1

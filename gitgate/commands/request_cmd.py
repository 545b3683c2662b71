"""`gitgate request`: open (or find) the approval request for one gate and print its URL."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from gitgate.commands.common import hook_and_canary
from gitgate.errors import UsageError
from gitgate.request import RequestSpec
from gitgate.service import make_forge, repo_settings
from gitgate.settings import seconds


def spec_from_args(args: argparse.Namespace) -> RequestSpec:
    hook, canary = hook_and_canary(args)
    if not args.checksum or any(c in args.checksum for c in "/ \n\t"):
        raise UsageError(f"--checksum {args.checksum!r}: give Flagger's checksum (the 403 answer names it)")
    expires = None
    if args.expires_in:
        expires = timedelta(seconds=seconds(args.expires_in, "--expires-in"))
    return RequestSpec(
        canary=canary,
        hook=hook,
        checksum=args.checksum,
        phase=args.phase or None,
        message=args.message or None,
        expires_in=expires,
        reviewers=tuple(r for r in (args.reviewers or "").split(",") if r.strip()),
        labels=tuple(label for label in (args.labels or "").split(",") if label.strip()),
    )


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    rs = repo_settings(args)
    forge = make_forge(args, rs)
    ref = forge.open_request(spec, gates_path=rs.path, now=datetime.now(UTC))
    print(ref.url)
    return 0

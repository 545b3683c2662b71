"""`gitgate requests`, `approve`, `reject`: the local forge's review flow."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from gitgate.commands.http import call
from gitgate.errors import GitgateError, UsageError
from gitgate.forges.local import LocalForge, default_user
from gitgate.service import repo_settings


def _local(args: argparse.Namespace) -> LocalForge:
    rs = repo_settings(args)
    if not rs.is_local:
        raise UsageError("requests, approve and reject work on a local approvals repo (--repo PATH)")
    return LocalForge(repo=Path(rs.repo), base_branch=rs.branch, user=default_user())


def _number(text: str) -> int:
    digits = text.lstrip("#")
    if not digits.isdigit():
        raise UsageError(f"{text!r}: name a request by its number, e.g. 3 or #3 (`gitgate requests` lists them)")
    return int(digits)


def list_requests(args: argparse.Namespace) -> int:
    forge = _local(args)
    requests = forge.open_requests()
    for r in requests:
        print(f"#{r.number}  {r.title}  (by {r.author}, branch {r.branch})")
    if not requests:
        print("no open requests")
    return 0


def approve(args: argparse.Namespace) -> int:
    if not args.signing_key:
        raise UsageError("approve needs --signing-key KEY (your SSH signing key; the merge commit is signed with it)")
    forge = _local(args)
    commit = forge.approve(_number(args.request), signing_key=Path(args.signing_key), now=datetime.now(UTC))
    print(f"merged request {args.request} as {commit[:12]}, signed with {args.signing_key}")
    if args.notify:
        code, text = call(args.notify.rstrip("/") + "/hooks/local", body={})
        if code != 202:
            raise GitgateError(
                f"merged, but {args.notify} did not take the notification ({code}: {text.strip()[:100]})"
            )
        print(f"told {args.notify}: it reconciles now")
    return 0


def reject(args: argparse.Namespace) -> int:
    forge = _local(args)
    forge.reject(_number(args.request), reason=args.reason or "")
    print(f"closed request {args.request}")
    return 0

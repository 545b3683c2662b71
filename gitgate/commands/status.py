"""`gitgate status [--url]`: what a running service answers from, and why."""

from __future__ import annotations

import argparse
import json

from gitgate.commands.http import call
from gitgate.errors import GitgateError


def run(args: argparse.Namespace) -> int:
    code, text = call(args.url.rstrip("/") + "/api/v1/status")
    if code != 200:
        raise GitgateError(f"{args.url}/api/v1/status answered {code}: {text.strip()[:200]}")
    status = json.loads(text)
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    verified = status.get("verified") or {}
    print(f"repo      {status['repo']} ({status['branch']}), {status['trust']}")
    print(f"ready     {'yes' if status['ready'] else 'NO'}")
    if verified:
        print(
            f"serving   {verified['commit'][:12]} signed by {verified['signer']}, committed {verified['committed_at']}"
        )
    fetch = status["last_fetch"]
    print(
        f"fetched   {fetch['ok_at'] or 'never'}"
        + (f" (last attempt failed: {fetch['error']})" if fetch["error"] else "")
    )
    for refusal in status["refused"][:5]:
        print(f"refused   {refusal['commit'][:12]} {refusal['reason']}")
    for gate in status["gates"]:
        for hook, check in gate["checks"].items():
            answer = "open" if check["open"] else "closed"
            print(f"{answer:9} {gate['namespace']}/{gate['name']} {hook}: {check['reason']}")
    return 0 if status["ready"] else 1

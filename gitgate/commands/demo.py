"""`gitgate demo`: the whole story on this machine, printed as it happens.

An approvals repo with signing keys, the service on a loopback port, a simulated Flagger walking
a canary to a closed gate, the request gitgate opens by itself, a reviewer's signed approval, and
the gate opening — all real: real git, real signatures, real HTTP.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from waitress.server import create_server

from gitgate.commands.init import init_repo
from gitgate.errors import GitgateError
from gitgate.forges.local import LocalForge
from gitgate.git import Mirror
from gitgate.metrics import Metrics
from gitgate.reconcile import Reconciler
from gitgate.requester import Requester
from gitgate.server import create_app
from gitgate.snapshot import SnapshotBuilder
from gitgate.state import StateDir
from gitgate.trust import TrustRoots, VerifyMode

CANARY = {"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "7b9c6d5f8d"}


def _say(text: str) -> None:
    print(f"[{datetime.now(UTC).strftime('%H:%M:%S.%f')[:-3]}] {text}", flush=True)


def _post(url: str, body: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(  # noqa: S310 - the demo's own loopback URL
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="gitgate-demo-") as tmp:
        root = Path(args.dir).resolve() if args.dir else Path(tmp)
        return _story(root)


def _story(root: Path) -> int:
    state = StateDir(root / ".gitgate")
    _say(f"gitgate init {root / 'approvals'}: a new approvals repo, signed by the operator's new SSH key")
    repo = init_repo(root / "approvals", state)
    reviewer_key = state.keys_dir / "reviewer"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "reviewer@demo", "-f", str(reviewer_key)],
        check=True,
        capture_output=True,
    )
    pub = reviewer_key.with_suffix(".pub").read_text().split()
    signers = state.trust_dir / "allowed_signers"
    signers.write_text(signers.read_text() + f'reviewer@demo namespaces="git" {pub[0]} {pub[1]}\n')
    _say(f"trust roots (outside the repo): {signers} — the operator and reviewer@demo")

    mirror = Mirror(state.mirror_dir)
    metrics = Metrics()
    reconciler = Reconciler(
        repo=str(repo),
        branch="main",
        mirror=mirror,
        state=state,
        trust=TrustRoots(VerifyMode.ALL, signers, frozenset(), None),
        builder=SnapshotBuilder(mirror, "gates"),
        metrics=metrics,
    )
    reconciler.resume()
    requester = Requester(forge=LocalForge(repo=repo, user="gitgate"), gates_path="gates")
    requester.start()
    app = create_app(source=reconciler, metrics=metrics, requester=requester, request_on_deny=True)
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    url = f"http://127.0.0.1:{server.effective_port}"
    threading.Thread(target=server.run, daemon=True).start()
    stop = threading.Event()
    threading.Thread(target=reconciler.run, args=(stop, 0.5), daemon=True).start()
    try:
        while reconciler.snapshot is None:
            time.sleep(0.05)
        _say(f"gitgate serves {url}, answering from verified commit {reconciler.snapshot.commit[:12]}")

        check = f"{url}/gate/check/confirm-promotion"
        _say(f"Flagger: canary test/podinfo reached max weight; POST {check} (checksum {CANARY['checksum']})")
        status, body = _post(check, CANARY)
        _say(f"gitgate: {status} {body.strip()}")
        requester.drain()
        [request] = [r for r in requester.status() if r["state"] == "opened"]
        _say(f"gitgate opened approval request #{request['number']} by itself: {request['url']}")
        status, body = _post(check, CANARY)
        _say(f"Flagger polls again: {status} {body.strip()}")

        _say("the requester (gitgate) may not approve its own request; reviewer@demo approves it:")
        _say(f"  gitgate approve {request['number']} --signing-key {reviewer_key}")
        merged_at = time.monotonic()
        commit = LocalForge(repo=repo, user="reviewer@demo").approve(
            int(request["number"]), signing_key=reviewer_key, now=datetime.now(UTC)
        )
        _say(f"merged as {commit[:12]}, signed by reviewer@demo")
        reconciler.trigger()
        while True:
            status, body = _post(check, CANARY)
            if status == 200 or time.monotonic() - merged_at > 15:
                break
            time.sleep(0.1)
        took = time.monotonic() - merged_at
        _say(f"Flagger polls: {status} {body.strip()}  ({took:.2f}s after the merge)")
        if status != 200:
            raise GitgateError("the gate did not open after the approval; see `gitgate verify`")
        _say("Flagger promotes the canary. Git history is the audit log:")
        log = subprocess.run(
            ["git", "-C", str(repo), "log", "--format=  %h %G? %s", "-3"],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": "/usr/bin:/bin", "HOME": str(root)},
        ).stdout
        print(log.rstrip())
        _say("(G = good signature by a trusted key. The request's own commit needs none: only commits on main's")
        _say(" first-parent path are verified, and the reviewer's signed merge vouches for what it brings in.)")
        unsigned = _post(f"{url}/rollback/check", CANARY)
        _say(f"rollback stays closed without its own approval: {unsigned[0]}")
    finally:
        stop.set()
        requester.stop()
        server.close()
    return 0

"""Approval requests end to end on the local forge: Flagger is denied, gitgate opens the request by
itself, another person approves it with a signed merge, and the gate opens. Plus the admin write
endpoints, Flagger's events, push webhooks and --require-approvals, against the real service."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
import requests
from flagger import Canary, Phase, gitgate_webhooks
from helpers import Approvals, Keys, Service, wait_for

from gitgate.forges.base import Approver, Review, approved_by_others
from gitgate.forges.local import LocalForge

NS, NAME = "test", "podinfo"
MARGIN = 3.0


def serve(approvals: Approvals, keys: Keys, tmp_path: Path, *extra: str) -> Service:
    args = [
        "--repo",
        approvals.url,
        "--trust-ssh",
        str(keys.allowed_signers),
        "--state-dir",
        str(tmp_path / "st"),
        "--forge",
        "local",
        *extra,
    ]
    return Service(args, tmp_path).start()


def opened(svc: Service) -> list[dict[str, object]]:
    return [r for r in svc.status()["requests"] if r["state"] == "opened"]


def test_a_denied_canary_gets_one_request_and_its_merge_opens_the_gate(
    approvals: Approvals, keys: Keys, tmp_path: Path
) -> None:
    svc = serve(approvals, keys, tmp_path)
    try:
        canary = Canary(NAME, NS, gitgate_webhooks(svc.url, rollout=False, traffic=False, rollback=False))
        canary.deploy("v2")
        canary.step_until(lambda c: c.phase is Phase.WAITING_PROMOTION, timeout=10)
        checksum = canary.checksum
        [request] = wait_for(lambda: opened(svc))
        assert request["branch"] == f"gitgate/{NS}/{NAME}/confirm-promotion/{checksum}"
        # Flagger keeps asking: still one request, and now the 403 says where to approve.
        for _ in range(3):
            canary.step()
        assert len(svc.status()["requests"]) == 1
        last = canary.last_call(canary.webhooks[0].type)
        assert last.status == 403 and f"to approve, merge {request['url']}" in last.body
        forge = LocalForge(repo=approvals.remote, user="gitgate")
        assert [r.branch for r in forge.open_requests()] == [request["branch"]]

        LocalForge(repo=approvals.remote, user="bob@example.test").approve(
            int(str(request["number"])), signing_key=Path(keys.alice.key), now=__import__("datetime").datetime.now()
        )
        merged = time.monotonic()
        canary.step_until(lambda c: c.phase in (Phase.PROMOTING, Phase.FINALISING, Phase.SUCCEEDED), timeout=10)
        assert time.monotonic() - merged < 1.0 + MARGIN
        assert forge.open_requests() == []
    finally:
        svc.stop()


def test_admin_write_endpoints_open_requests_and_revocations(approvals: Approvals, keys: Keys, tmp_path: Path) -> None:
    svc = serve(approvals, keys, tmp_path, "--admin-token", "t0ken", "--no-request-on-deny")
    try:
        body = {"name": NAME, "namespace": NS, "checksum": "abc"}
        assert requests.post(svc.url + "/gate/open", json=body, timeout=10).status_code == 401
        auth = {"Authorization": "Bearer t0ken"}
        opened_ = requests.post(svc.url + "/gate/open", json=body, headers=auth, timeout=10)
        assert opened_.status_code == 202 and "gitgate-request-1" in opened_.text
        again = requests.post(svc.url + "/gate/open", json=body, headers=auth, timeout=10)
        assert again.text == opened_.text  # the same request, not a second one
        closing = requests.post(svc.url + "/rollback/close", json=body, headers=auth, timeout=10)
        assert closing.status_code == 202
        branches = {r.branch for r in LocalForge(repo=approvals.remote, user="x").open_requests()}
        assert branches == {f"gitgate/{NS}/{NAME}/any/abc", f"gitgate/revoke/{NS}/{NAME}/rollback/abc"}
        no_sum = requests.post(svc.url + "/gate/open", json={"name": NAME, "namespace": NS}, headers=auth, timeout=10)
        assert no_sum.status_code == 400 and "checksum" in no_sum.text
        # Nothing an endpoint did changed an answer: the gate is still closed until a merge.
        assert svc.check("confirm-promotion", NS, NAME, "abc").status_code == 403
        # Denied checks do not open requests with --no-request-on-deny.
        svc.check("confirm-promotion", NS, NAME, "zzz")
        time.sleep(0.5)
        assert "zzz" not in json.dumps(svc.status()["requests"])
    finally:
        svc.stop()


def test_a_finished_canary_closes_requests_for_its_other_revisions(
    approvals: Approvals, keys: Keys, tmp_path: Path
) -> None:
    svc = serve(approvals, keys, tmp_path)
    try:
        for checksum in ("old1", "old2", "final"):
            assert svc.check("confirm-promotion", NS, NAME, checksum).status_code == 403
        wait_for(lambda: len(opened(svc)) == 3)
        event = {
            "name": NAME,
            "namespace": NS,
            "phase": "Succeeded",
            "checksum": "final",
            "metadata": {
                "eventMessage": "Promotion completed! podinfo.test",
                "eventType": "Normal",
                "timestamp": "1795000000000",
            },
        }
        assert requests.post(svc.url + "/events", json=event, timeout=5).status_code == 202
        forge = LocalForge(repo=approvals.remote, user="x")
        wait_for(lambda: [r.branch.rsplit("/", 1)[1] for r in forge.open_requests()] == ["final"])
        closed = forge.get(1)
        assert closed.state == "closed" and "reached Succeeded with revision final" in closed.comments[-1]["text"]
        assert svc.status()["events"][-1]["message"] == "Promotion completed! podinfo.test"
    finally:
        svc.stop()


def _signed(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_push_webhook_reconciles_at_once_and_a_forged_one_is_refused(
    approvals: Approvals, keys: Keys, tmp_path: Path
) -> None:
    args = [
        "--repo",
        approvals.url,
        "--trust-ssh",
        str(keys.allowed_signers),
        "--state-dir",
        str(tmp_path / "st"),
        "--interval",
        "300s",
        "--github-webhook-secret",
        "It's a Secret to Everybody",
        "--gitlab-webhook-token",
        "gl-token",
    ]
    svc = Service(args, tmp_path).start()
    try:
        approvals.approve(NS, NAME, "confirm-promotion", "abc")
        approvals.land("approve", keys.alice)
        push = json.dumps({"ref": "refs/heads/main", "after": approvals.head()}).encode()
        forged = requests.post(
            svc.url + "/hooks/github",
            data=push,
            timeout=5,
            headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": _signed("guess", push)},
        )
        assert forged.status_code == 401
        time.sleep(1.5)
        assert svc.check("confirm-promotion", NS, NAME, "abc").status_code == 403  # nothing moved
        started = time.monotonic()
        good = requests.post(
            svc.url + "/hooks/github",
            data=push,
            timeout=5,
            headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": _signed("It's a Secret to Everybody", push)},
        )
        assert good.status_code == 202
        wait_for(lambda: svc.check("confirm-promotion", NS, NAME, "abc").status_code == 200, timeout=5)
        assert time.monotonic() - started < 1.0 + MARGIN
        other = json.dumps({"ref": "refs/heads/feature"}).encode()
        ignored = requests.post(
            svc.url + "/hooks/gitlab", data=other, headers={"X-Gitlab-Token": "gl-token"}, timeout=5
        )
        assert ignored.status_code == 200 and "ignored" in ignored.text
        assert (
            requests.post(
                svc.url + "/hooks/gitlab", data=push, headers={"X-Gitlab-Token": "nope"}, timeout=5
            ).status_code
            == 401
        )
    finally:
        svc.stop()


def test_require_approvals_refuses_a_commit_that_bypassed_review(
    approvals: Approvals, keys: Keys, tmp_path: Path
) -> None:
    svc = serve(approvals, keys, tmp_path, "--require-approvals", "1")
    try:
        assert svc.check("confirm-promotion", NS, NAME, "abc").status_code == 403
        [request] = wait_for(lambda: opened(svc))
        LocalForge(repo=approvals.remote, user="bob@example.test").approve(
            int(str(request["number"])), signing_key=Path(keys.alice.key), now=__import__("datetime").datetime.now()
        )
        wait_for(lambda: svc.check("confirm-promotion", NS, NAME, "abc").status_code == 200, timeout=5)
        # A signed commit pushed straight to main, with no request behind it, is refused.
        approvals.git("pull", "-q", "--ff-only", "origin", "main")
        approvals.approve(NS, NAME, "confirm-rollout", "abc")
        sneaky = approvals.land("straight to main", keys.alice)
        refusal = wait_for(lambda: svc.status()["refused"])[0]
        assert refusal["commit"] == sneaky and "bypassing review" in refusal["reason"]
        assert svc.check("confirm-rollout", NS, NAME, "abc").status_code == 403
        assert svc.check("confirm-promotion", NS, NAME, "abc").status_code == 200
    finally:
        svc.stop()


@pytest.mark.parametrize(
    ("approvals_", "approvers", "ok", "says"),
    [
        ([Approver("bob", "h")], None, True, "1 approval(s) on the final head by bob"),
        ([Approver("alice", "h")], None, False, "the author alice cannot approve their own request"),
        ([Approver("bob", "old")], None, False, "approvals given before a later push do not count (bob)"),
        ([Approver("bob", "h"), Approver("bob", "h")], None, True, "by bob"),
        ([Approver("bob", "h"), Approver("carol", "h")], frozenset({"carol"}), True, "by carol"),
        ([Approver("bob", "h")], frozenset({"carol"}), False, "only --approvers count"),
    ],
)
def test_what_counts_as_an_approval(
    approvals_: list[Approver], approvers: frozenset[str] | None, ok: bool, says: str
) -> None:
    review = Review(7, "https://example.test/pull/7", "alice", "h", tuple(approvals_), frozenset(), ())
    got, why = approved_by_others(review, required=1, approvers=approvers)
    assert got is ok
    assert says in why


def test_an_approval_whose_head_the_forge_does_not_know_does_not_count() -> None:
    review = Review(7, "https://example.test/pull/7", "alice", "h", (Approver("bob", ""),), frozenset(), ())
    ok, why = approved_by_others(review, required=1, approvers=None)
    assert not ok
    assert "does not say which head was approved (bob)" in why


def test_approvals_by_anyone_who_added_commits_or_while_a_commit_is_unattributed_do_not_count() -> None:
    url = "https://example.test/pull/7"
    approvals_ = (Approver("Erin", "h"), Approver("bob", "h"))
    review = Review(7, url, "gitgate-bot", "h", approvals_, frozenset({"gitgate-bot", "erin"}), ())
    ok, why = approved_by_others(review, required=2, approvers=None)
    assert not ok
    assert "1 of 2 required" in why and "people who added commits to the request do not count (Erin)" in why
    assert approved_by_others(review, required=1, approvers=None) == (True, "1 approval(s) on the final head by bob")
    unattributed = Review(7, url, "gitgate-bot", "h", approvals_, frozenset({"gitgate-bot"}), ("1a2b3c by X <x@y>",))
    ok, why = approved_by_others(unattributed, required=1, approvers=None)
    assert not ok
    assert "0 of 1 required" in why and "ties a commit of the request to no account (1a2b3c by X <x@y>)" in why


def test_approve_notifies_the_service_so_the_merge_opens_at_once(
    approvals: Approvals, keys: Keys, tmp_path: Path
) -> None:
    import subprocess
    import sys

    svc = serve(approvals, keys, tmp_path, "--interval", "300s")  # polling alone would take 5 minutes
    try:
        assert svc.check("confirm-promotion", NS, NAME, "abc").status_code == 403
        [request] = wait_for(lambda: opened(svc))
        started = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "gitgate",
                "approve",
                str(request["number"]),
                "--repo",
                approvals.url,
                "--signing-key",
                keys.alice.key,
                "--notify",
                svc.url,
            ],
            env={**__import__("os").environ, "GITGATE_USER": "bob@example.test"},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert f"told {svc.url}: it reconciles now" in proc.stdout
        wait_for(lambda: svc.check("confirm-promotion", NS, NAME, "abc").status_code == 200, timeout=5)
        assert time.monotonic() - started < 1.0 + MARGIN
    finally:
        svc.stop()

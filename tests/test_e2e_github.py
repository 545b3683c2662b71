"""GitHub end to end: Flagger is denied, the real service opens a pull request on (a stateful fake
of) GitHub by itself, a reviewer approves and merges it, GitHub's signed push webhook arrives, and
the gate opens; a self-approved or unreviewed commit is refused; --request-via dispatch sends
repository_dispatch instead. Every answer of the fake is checked against GitHub's OpenAPI description."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fakes.github import FakeGitHub, GitHubOpenAPI
from flagger import Canary, Phase, gitgate_webhooks
from helpers import Keys, Service, forge_args, wait_for
from test_forge_github import BOT, approve, merge

NS, NAME = "test", "podinfo"
SECRET = "It's a Secret to Everybody"


@pytest.fixture
def fake(tmp_path: Path, keys: Keys, openapi: GitHubOpenAPI) -> Iterator[FakeGitHub]:
    gh = FakeGitHub(tmp_path / "github", web_flow_key=keys.carol.key, gnupg_home=keys.carol.gnupg_home, openapi=openapi)
    for login in (BOT, "bob", "erin"):
        gh.add_user(login, permission="write")
    with gh:
        # The repo's first commit, as GitHub makes it when a repo is created in its UI: web-flow signed.
        tip = gh.head()
        who = ("GitHub", "noreply@github.com", f"{int(time.time())} +0000")
        tree = gh.git.read_commit(tip)["tree"]
        first = gh.git.commit(
            tree,
            [tip],
            "Initial commit\n",
            author=who,
            committer=who,
            signing_key=keys.carol.key,
            gnupg_home=keys.carol.gnupg_home,
        )
        assert gh.git.update_ref("refs/heads/main", first, tip)
        yield gh
    assert not gh.problems, gh.problems


def push_hook(svc: Service, fake: FakeGitHub, secret: str = SECRET) -> requests.Response:
    body = json.dumps({"ref": "refs/heads/main", "after": fake.head()}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return requests.post(
        svc.url + "/hooks/github",
        data=body,
        timeout=5,
        headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": signature},
    )


def serve(fake: FakeGitHub, keys: Keys, tmp_path: Path, *extra: str) -> Service:
    args = forge_args("github", fake.git.path, fake.full_name, fake.url, trust_gpg=keys.carol_asc)
    args += ["--state-dir", str(tmp_path / "st"), "--github-webhook-secret", SECRET, "--interval", "300s", *extra]
    return Service(args, tmp_path, env={"GITHUB_TOKEN": fake.token(BOT)}).start()


def test_pull_request_review_merge_webhook_open(fake: FakeGitHub, keys: Keys, tmp_path: Path) -> None:
    svc = serve(fake, keys, tmp_path, "--require-approvals", "1")
    try:
        canary = Canary(NAME, NS, gitgate_webhooks(svc.url, rollout=False, traffic=False, rollback=False))
        canary.deploy("v2")
        canary.step_until(lambda c: c.phase is Phase.WAITING_PROMOTION, timeout=10)
        [request] = wait_for(lambda: [r for r in svc.status()["requests"] if r["state"] == "opened"], timeout=30)
        assert request["checksum"] == canary.checksum
        canary.step()
        assert f"to approve, merge {request['url']}" in canary.calls[-1].body

        approve(fake, request["number"], "bob")
        merge(fake, request["number"], "bob")
        merged = time.monotonic()
        forged = push_hook(svc, fake, secret="guess")
        assert forged.status_code == 401
        assert push_hook(svc, fake).status_code == 202
        canary.step_until(lambda c: c.phase in (Phase.PROMOTING, Phase.FINALISING, Phase.SUCCEEDED), timeout=5)
        assert time.monotonic() - merged < 4.0
    finally:
        svc.stop()


def test_a_self_approved_merge_is_refused(fake: FakeGitHub, keys: Keys, tmp_path: Path) -> None:
    svc = serve(fake, keys, tmp_path, "--require-approvals", "1", "--approvers", "bob")
    try:
        svc.check("confirm-rollout", NS, NAME, "abc")
        [request] = wait_for(lambda: [r for r in svc.status()["requests"] if r["state"] == "opened"], timeout=30)
        approve(fake, request["number"], "erin")  # erin's approval does not count: only bob's does
        merge(fake, request["number"], "erin")
        push_hook(svc, fake)
        refusal = wait_for(lambda: svc.status()["refused"])[0]
        assert "0 of 1 required approval(s)" in refusal["reason"] and "only --approvers count" in refusal["reason"]
        assert svc.check("confirm-rollout", NS, NAME, "abc").status_code == 403
    finally:
        svc.stop()


def test_request_via_dispatch_sends_repository_dispatch(fake: FakeGitHub, keys: Keys, tmp_path: Path) -> None:
    svc = serve(fake, keys, tmp_path, "--request-via", "dispatch")
    try:
        svc.check("confirm-promotion", NS, NAME, "85d557f47b", phase="Progressing")
        [dispatch] = wait_for(lambda: fake.dispatches, timeout=15)
        assert dispatch["event_type"] == "gitgate-request"
        payload = dispatch["client_payload"]
        assert (payload["namespace"], payload["name"], payload["hook"], payload["checksum"]) == (
            NS,
            NAME,
            "confirm-promotion",
            "85d557f47b",
        )
        # The dispatch reaches the fake before the requester records it: wait for the record.
        assert wait_for(lambda: [r["state"] for r in svc.status()["requests"]] == ["dispatched"], timeout=10)
        svc.check("confirm-promotion", NS, NAME, "85d557f47b")
        time.sleep(0.5)
        assert len(fake.dispatches) == 1  # asked once, however often Flagger polls
    finally:
        svc.stop()

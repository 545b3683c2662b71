"""GitLab end to end: Flagger is denied, the real service opens a merge request on (a stateful fake
of) GitLab by itself, a reviewer approves and merges it, GitLab's push webhook arrives, and the gate
opens; a commit pushed past review is refused. The service runs as a real process."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import gitlab
import pytest
import requests
from fakes.gitlab import FakeGitLab, running
from flagger import Canary, Phase, gitgate_webhooks
from helpers import Keys, Service, forge_args, wait_for

PROJECT = "acme/approvals"
NS, NAME = "test", "podinfo"
PUSH = json.dumps({"object_kind": "push", "ref": "refs/heads/main"}).encode()


@pytest.fixture
def fake(tmp_path: Path, keys: Keys) -> Iterator[FakeGitLab]:
    with running(tmp_path / "gitlab", signing_key=keys.carol.key, gnupg_home=str(keys.gnupg_signers)) as fake:
        yield fake


def test_merge_request_review_merge_webhook_open(fake: FakeGitLab, keys: Keys, tmp_path: Path) -> None:
    args = forge_args("gitlab", fake.git_dir, PROJECT, fake.url, trust_gpg=keys.carol_asc, token="alice-token")
    args += ["--state-dir", str(tmp_path / "st"), "--require-approvals", "1"]
    args += ["--gitlab-webhook-token", "hook-secret", "--interval", "300s"]
    svc = Service(args, tmp_path).start()
    bob = gitlab.Gitlab(fake.url, private_token="bob-token", timeout=5)
    try:
        canary = Canary(NAME, NS, gitgate_webhooks(svc.url, rollout=False, traffic=False, rollback=False))
        canary.deploy("v2")
        canary.step_until(lambda c: c.phase is Phase.WAITING_PROMOTION, timeout=10)
        [request] = wait_for(lambda: [r for r in svc.status()["requests"] if r["state"] == "opened"])
        assert request["url"].startswith(fake.web_url)
        assert request["checksum"] == canary.checksum
        canary.step()
        assert f"to approve, merge {request['url']}" in canary.calls[-1].body

        mr = bob.projects.get(PROJECT).mergerequests.get(request["number"])
        assert mr.title == f"Approve confirm-promotion of test/podinfo ({canary.checksum})"
        mr.approve(sha=mr.sha)
        mr = bob.projects.get(PROJECT).mergerequests.get(request["number"])  # approve() replaced its attributes
        mr.merge(sha=mr.sha, should_remove_source_branch=True)
        merged = time.monotonic()
        hook = requests.post(svc.url + "/hooks/gitlab", data=PUSH, headers={"X-Gitlab-Token": "hook-secret"}, timeout=5)
        assert hook.status_code == 202
        canary.step_until(lambda c: c.phase in (Phase.PROMOTING, Phase.FINALISING, Phase.SUCCEEDED), timeout=5)
        assert time.monotonic() - merged < 4.0

        # carol (a Maintainer) pushes straight to main: signed by a trusted key, but no review.
        project = gitlab.Gitlab(fake.url, private_token="carol-token", timeout=5).projects.get(PROJECT)
        action = {
            "action": "create",
            "file_path": "gates/test/other.yaml",
            "content": "apiVersion: gitgate/v1\nkind: Gate\nmetadata: {name: other, namespace: test}\n"
            "spec: {default: open}\n",
        }
        sneaky = project.commits.create({"branch": "main", "commit_message": "no review", "actions": [action]}).id
        requests.post(svc.url + "/hooks/gitlab", data=PUSH, headers={"X-Gitlab-Token": "hook-secret"}, timeout=5)
        refusal = wait_for(lambda: svc.status()["refused"])[0]
        assert refusal["commit"] == sneaky and "bypassing review" in refusal["reason"]
        assert svc.check("confirm-rollout", NS, "other", "x").status_code == 403
        assert svc.check("confirm-promotion", NS, NAME, canary.checksum).status_code == 200
    finally:
        bob.session.close()
        svc.stop()

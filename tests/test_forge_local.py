"""The local forge: the forge contract on plain git, plus approve/reject and the CLI around them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from forge_contract import *  # noqa: F403 - the shared contract runs against this forge
from forge_contract import GATES, NOW, spec
from helpers import Approvals, Keys, sh

from gitgate.forges.base import ForgeError, approved_by_others
from gitgate.forges.local import LocalForge
from gitgate.request import RequestRef


class LocalHarness:
    def __init__(self, approvals: Approvals, keys: Keys) -> None:
        self.approvals = approvals
        self.keys = keys
        self.forge = LocalForge(repo=approvals.remote, user="gitgate-service")

    def file_on(self, ref: str, path: str) -> bytes | None:
        out = sh("git", "--git-dir", self.approvals.remote, "show", f"refs/heads/{ref}:{path}", check=False)
        return out.encode() if out else None

    def changed_files(self, branch: str) -> list[str]:
        out = sh("git", "--git-dir", self.approvals.remote, "diff", "--name-only", f"main...{branch}")
        return out.split()

    def approve_and_merge(self, request: RequestRef, *, reviewer: str) -> str:
        LocalForge(repo=self.approvals.remote, user=reviewer).approve(
            request.number, signing_key=Path(self.keys.alice.key), now=NOW
        )
        return sh("git", "--git-dir", self.approvals.remote, "rev-parse", "main").strip()

    def push_to_base(self, path: str, text: str) -> str:
        self.approvals.git("pull", "-q", "--ff-only", "origin", "main")
        self.approvals.write(path, text)
        return self.approvals.land(f"direct: {path}", self.keys.alice)


@pytest.fixture
def harness(approvals: Approvals, keys: Keys) -> LocalHarness:
    return LocalHarness(approvals, keys)


def test_the_requester_cannot_approve_their_own_request(harness: LocalHarness, keys: Keys) -> None:
    ref = harness.forge.open_request(spec(), gates_path=GATES, now=NOW)
    with pytest.raises(ForgeError, match="opened request #1 and cannot approve it"):
        harness.forge.approve(ref.number, signing_key=Path(keys.alice.key), now=NOW)
    assert [r.number for r in harness.forge.open_requests()] == [ref.number]


def test_the_merge_commit_is_signed_by_the_reviewer(harness: LocalHarness, keys: Keys) -> None:
    ref = harness.forge.open_request(spec(), gates_path=GATES, now=NOW)
    head = harness.approve_and_merge(ref, reviewer="bob@example.test")
    signers = f"gpg.ssh.allowedSignersFile={keys.allowed_signers}"
    verdict = sh("git", "--git-dir", harness.approvals.remote, "-c", signers, "log", "-1", "--format=%G? %GS %P", head)
    status, signer, *parents = verdict.split()
    assert (status, signer, len(parents)) == ("G", "alice@example.test", 2)
    assert "Approved-by: bob@example.test" in sh(
        "git", "--git-dir", harness.approvals.remote, "log", "-1", "--format=%B", head
    )


def test_reject_closes_with_the_reason_and_approving_a_closed_request_fails(harness: LocalHarness, keys: Keys) -> None:
    ref = harness.forge.open_request(spec(), gates_path=GATES, now=NOW)
    reviewer = LocalForge(repo=harness.approvals.remote, user="bob")
    reviewer.reject(ref.number, reason="not load-tested")
    record = reviewer.get(ref.number)
    assert record.state == "closed" and record.comments[-1]["text"] == "not load-tested"
    with pytest.raises(ForgeError, match="is closed, not open"):
        reviewer.approve(ref.number, signing_key=Path(keys.alice.key), now=NOW)


def test_approving_in_a_checkout_fast_forwards_the_working_tree(tmp_path: Path, keys: Keys) -> None:
    """The embedded default: ./approvals is a checkout of main that people also edit."""
    work = tmp_path / "repo"
    sh("git", "init", "-q", "-b", "main", work)
    (work / "README.md").write_text("x\n")
    sh("git", "add", "-A", cwd=work)
    sh("git", *keys.alice.git_args(), "commit", "-qm", "init", cwd=work)
    ref = LocalForge(repo=work, user="service").open_request(spec(), gates_path=GATES, now=NOW)
    LocalForge(repo=work, user="bob").approve(ref.number, signing_key=Path(keys.alice.key), now=NOW)
    assert sh("git", "status", "--porcelain", cwd=work) == ""
    assert "85d557f47b" in (work / "gates/test/podinfo.yaml").read_text()


def test_records_are_kept_in_git_as_an_audit_trail(harness: LocalHarness) -> None:
    ref = harness.forge.open_request(spec(), gates_path=GATES, now=datetime(2026, 11, 23, tzinfo=UTC))
    harness.approve_and_merge(ref, reviewer="bob")
    log = sh("git", "--git-dir", harness.approvals.remote, "log", "--format=%s", f"refs/gitgate/requests/{ref.number}")
    assert log.splitlines() == [f"request #{ref.number}: merged", f"request #{ref.number}: open"]


def push_onto(harness: LocalHarness, ref: RequestRef, name: str, email: str) -> str:
    """Someone pushes a commit of their own onto the request's branch, from their clone."""
    work = harness.approvals
    work.git("fetch", "-q", "origin", ref.branch)
    work.git("checkout", "-q", "-B", "onto", "FETCH_HEAD")
    work.write("gates/prod/backend.yaml", "spec: {default: open}\n")
    work.git("add", "-A")
    ident = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
    sh("git", "-c", "commit.gpgsign=false", "commit", "-qm", "on top", cwd=work.work, env=ident)
    work.git("push", "-q", "origin", f"HEAD:refs/heads/{ref.branch}")
    return work.head()


@pytest.mark.parametrize(
    ("reviewer", "name", "email"),
    [
        ("bob", "Robert", "bob@gitgate.local"),
        ("bob@example.test", "Bob", "bob@example.test"),
        ("Bob", "Bob", "b@x.test"),
    ],
)
def test_whoever_added_commits_to_a_request_cannot_approve_it(
    harness: LocalHarness, reviewer: str, name: str, email: str
) -> None:
    ref = harness.forge.open_request(spec(), gates_path=GATES, now=NOW)
    pushed = push_onto(harness, ref, name, email)
    with pytest.raises(
        ForgeError, match=f"{reviewer} added commits to request #1 \\({pushed[:12]}\\) and cannot approve"
    ):
        harness.approve_and_merge(ref, reviewer=reviewer)
    assert [r.number for r in harness.forge.open_requests()] == [ref.number]
    review = harness.forge.review(harness.approve_and_merge(ref, reviewer="carol"))
    assert review is not None and {name, email, "gitgate-service"} <= review.committers
    assert approved_by_others(review, required=1, approvers=None) == (True, "1 approval(s) on the final head by carol")

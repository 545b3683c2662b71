"""The GitLab adapter against a stateful fake GitLab: the forge contract, then what GitLab adds.

The fake (tests/fakes/gitlab.py) is a real HTTP server on loopback with a real bare git repo behind
it; the adapter talks to it through unmodified python-gitlab. Reviewers approve and merge through
the real endpoints with their own tokens. Failures come from the fake's fault injection.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import gitlab
import pytest
import yaml
from fakes.gitlab import DEVELOPER, MAINTAINER, SHAPES, FakeGitLab, check_shape, running
from forge_contract import *  # noqa: F403 - the contract suite runs here
from forge_contract import GATES, NOW, spec
from helpers import Keys, sh

from gitgate.errors import UsageError
from gitgate.forges.base import (
    ForgeAuthError,
    ForgeError,
    ForgeNotFound,
    ForgePermissionError,
    ForgeRateLimited,
    ForgeUnavailable,
    approved_by_others,
)
from gitgate.forges.gitlab import GitLabForge
from gitgate.model import Hook
from gitgate.request import RequestRef

PROJECT = "acme/approvals"
BRANCH = "gitgate/test/podinfo/confirm-promotion/85d557f47b"


class GitLabHarness:
    """The contract's harness on the fake: the adapter as alice (gitgate's bot, Developer), reviewers
    as themselves through python-gitlab, and the bare git repo behind the fake."""

    def __init__(self, fake: FakeGitLab, **forge: Any) -> None:
        self.fake = fake
        self.forge = GitLabForge(project=PROJECT, token="alice-token", api_url=fake.url, timeout=5, **forge)
        self._clients: dict[str, gitlab.Gitlab] = {}

    def close(self) -> None:
        self.forge.close()
        for client in self._clients.values():
            client.session.close()

    def project(self, user: str) -> Any:
        if user not in self._clients:
            self._clients[user] = gitlab.Gitlab(self.fake.url, private_token=f"{user}-token", timeout=5)
        return self._clients[user].projects.get(PROJECT)

    def file_on(self, ref: str, path: str) -> bytes | None:
        return self.fake.show(ref, path)

    def changed_files(self, branch: str) -> list[str]:
        return self.fake.git("diff", "--name-only", f"main...refs/heads/{branch}").splitlines()

    def approve(self, request: RequestRef, *, reviewer: str) -> None:
        mr = self.project(reviewer).mergerequests.get(request.number)
        mr.approve(sha=mr.sha)

    def merge(self, request: RequestRef, *, by: str = "carol", remove_branch: bool = True) -> str:
        mr = self.project(by).mergerequests.get(request.number)
        merged = mr.merge(should_remove_source_branch=remove_branch, sha=mr.sha)
        head: str = merged["merge_commit_sha"]
        assert head == self.fake.rev("main")
        return head

    def approve_and_merge(self, request: RequestRef, *, reviewer: str) -> str:
        self.approve(request, reviewer=reviewer)
        return self.merge(request, by=reviewer)

    def push(self, branch: str, path: str, text: str, *, by: str) -> str:
        exists = self.fake.show(branch, path) is not None
        action = {"action": "update" if exists else "create", "file_path": path, "content": text}
        commit = self.project(by).commits.create(
            {"branch": branch, "commit_message": f"Edit {path}", "actions": [action]}
        )
        sha: str = commit.id
        return sha

    def push_to_base(self, path: str, text: str) -> str:
        return self.push("main", path, text, by="carol")


@pytest.fixture
def fake(tmp_path: Path, keys: Keys) -> Iterator[FakeGitLab]:
    with running(tmp_path / "gitlab", signing_key=keys.carol.key, gnupg_home=str(keys.gnupg_signers)) as fake:
        yield fake


@pytest.fixture
def harness(fake: FakeGitLab) -> Iterator[GitLabHarness]:
    h = GitLabHarness(fake)
    yield h
    h.close()


@pytest.fixture
def make_forge(fake: FakeGitLab) -> Iterator[Callable[..., GitLabForge]]:
    made: list[GitLabForge] = []

    def make(**kwargs: Any) -> GitLabForge:
        options: dict[str, Any] = {"project": PROJECT, "token": "alice-token", "api_url": fake.url, "timeout": 5}
        forge = GitLabForge(**{**options, **kwargs})
        made.append(forge)
        return forge

    yield make
    for forge in made:
        forge.close()


def gitgate_branches(fake: FakeGitLab) -> list[str]:
    return fake.git("for-each-ref", "--format=%(refname:short)", "refs/heads/gitgate/").split()


# --- what the merge request looks like -------------------------------------------------------------


def test_the_merge_request_says_what_merging_does_and_asks_the_reviewers(harness: GitLabHarness) -> None:
    ref = harness.forge.open_request(
        spec(reviewers=("bob", "@dave"), labels=("gitgate", "approval")), gates_path=GATES, now=NOW
    )
    mr = harness.project("bob").mergerequests.get(ref.number)
    assert ref.url == mr.web_url == f"{harness.fake.web_url}/-/merge_requests/{ref.number}"
    assert mr.title == "Approve confirm-promotion of test/podinfo (85d557f47b)"
    assert "Merging this opens the `confirm-promotion` gate" in mr.description
    assert "To revoke after merging" in mr.description
    assert (mr.source_branch, mr.target_branch) == (BRANCH, "main")
    assert sorted(u["username"] for u in mr.reviewers) == ["bob", "dave"]
    assert mr.labels == ["gitgate", "approval"]
    assert mr.author["username"] == "alice"
    assert mr.force_remove_source_branch  # the branch goes away when the request is merged
    # One commit on the base branch's head.
    log = harness.fake.git("log", "--format=%H %P", f"main..refs/heads/{BRANCH}").splitlines()
    assert len(log) == 1 and log[0].split()[1] == harness.fake.rev("main")


def test_an_unknown_reviewer_is_named_and_nothing_is_made(harness: GitLabHarness) -> None:
    with pytest.raises(ForgeNotFound, match=r"--reviewers: .* has no user 'nobody-here'"):
        harness.forge.open_request(spec(reviewers=("bob", "nobody-here")), gates_path=GATES, now=NOW)
    assert gitgate_branches(harness.fake) == []
    assert harness.forge.open_requests() == []


def test_merges_are_real_commits_signed_by_the_forge_key(harness: GitLabHarness, keys: Keys) -> None:
    ref = harness.forge.open_request(spec(), gates_path=GATES, now=NOW)
    head = harness.approve_and_merge(ref, reviewer="bob")
    shown = sh(
        "git", "--git-dir", harness.fake.git_dir, "log", "-1", "--format=%G? %GF %P", head, env=keys.carol.env()
    ).split()
    assert shown[:2] == ["G", keys.carol.key]
    assert shown[2] != shown[3]  # a merge: two parents
    assert BRANCH not in gitgate_branches(harness.fake)  # removed on merge


def test_closing_comments_closes_and_deletes_the_branch(harness: GitLabHarness) -> None:
    ref = harness.forge.open_request(spec(), gates_path=GATES, now=NOW)
    assert harness.forge.close_request(ref.branch, "Canary test/podinfo succeeded with another revision.")
    mr = harness.project("bob").mergerequests.get(ref.number)
    assert mr.state == "closed"
    notes = [n.body for n in mr.notes.list(get_all=True) if not n.system]
    assert notes == ["Canary test/podinfo succeeded with another revision."]
    assert gitgate_branches(harness.fake) == []


def test_open_requests_reads_every_page(tmp_path: Path) -> None:
    with running(tmp_path / "gitlab", max_per_page=2) as fake:
        h = GitLabHarness(fake)
        try:
            for checksum in ("aaa", "bbb", "ccc"):
                h.forge.open_request(spec(checksum=checksum), gates_path=GATES, now=NOW)
            listed = h.forge.open_requests()
        finally:
            h.close()
    assert sorted(r.branch.rsplit("/", 1)[1] for r in listed) == ["aaa", "bbb", "ccc"]
    assert {r.author for r in listed} == {"alice"}


def test_a_self_managed_gitlab_under_a_path_prefix(tmp_path: Path) -> None:
    with running(tmp_path / "gitlab", prefix="/gitlab") as fake:
        assert fake.url.endswith("/gitlab")
        for api_url in (fake.url, fake.url + "/api/v4/"):
            forge = GitLabForge(project=PROJECT, token="alice-token", api_url=api_url, timeout=5)
            try:
                ref = forge.open_request(spec(), gates_path=GATES, now=NOW)
                assert ref.url.startswith(f"{fake.url}/acme/approvals/-/merge_requests/")
                assert [r.number for r in forge.open_requests()] == [ref.number]
            finally:
                forge.close()


# --- races and leftovers -------------------------------------------------------------------------


def test_a_branch_without_a_request_is_taken_over_with_exactly_this_change(harness: GitLabHarness) -> None:
    """400 'branch exists': a crashed caller's or someone else's branch is rewritten, not trusted."""
    harness.fake.git("update-ref", f"refs/heads/{BRANCH}", harness.fake.rev("main") or "")
    harness.push(BRANCH, "gates/test/podinfo.yaml", "spec: {default: open}\n", by="dave")
    harness.push(BRANCH, "other.txt", "unrelated\n", by="dave")
    ref = harness.forge.open_request(spec(), gates_path=GATES, now=NOW)
    assert ref.created
    assert harness.changed_files(BRANCH) == ["gates/test/podinfo.yaml"]
    doc = yaml.safe_load(harness.file_on(BRANCH, "gates/test/podinfo.yaml") or b"")
    assert doc["spec"] == {"approvals": [{"hook": "confirm-promotion", "checksum": "85d557f47b"}]}
    assert harness.fake.requests_to("POST", r"/repository/commits$")[-2:] == [400, 201]  # refused, then forced


def test_losing_the_race_for_the_merge_request_returns_the_winners(harness: GitLabHarness) -> None:
    """409 'Another open merge request already exists': the caller returns the existing one."""
    first = harness.forge.open_request(spec(), gates_path=GATES, now=NOW)
    # This caller does not see the winner's request when it looks (twice), as in a race.
    harness.fake.fail("GET", r"/merge_requests$", 200, [], times=2)
    again = harness.forge.open_request(spec(), gates_path=GATES, now=NOW)
    assert (again.number, again.created) == (first.number, False)
    assert harness.fake.requests_to("POST", r"/merge_requests$") == [201, 409]
    assert len(harness.forge.open_requests()) == 1


def test_a_branch_left_by_a_merged_request_is_rebuilt_on_the_current_base(harness: GitLabHarness) -> None:
    first = harness.forge.open_request(spec(expires_in=timedelta(hours=1)), gates_path=GATES, now=NOW)
    harness.approve(first, reviewer="bob")
    harness.merge(first, remove_branch=False)
    harness.push_to_base("gates/test/other.yaml", "kind: Gate\n")
    # The approval expired; the canary still waits on the same checksum: the same branch again.
    later = NOW + timedelta(hours=2)
    again = harness.forge.open_request(spec(expires_in=timedelta(hours=1)), gates_path=GATES, now=later)
    assert again.created and again.number != first.number
    assert harness.fake.git("rev-parse", f"refs/heads/{BRANCH}^") == harness.fake.rev("main")
    assert harness.changed_files(BRANCH) == ["gates/test/podinfo.yaml"]
    doc = yaml.safe_load(harness.file_on(BRANCH, "gates/test/podinfo.yaml") or b"")
    assert doc["spec"]["approvals"] == [
        {"hook": "confirm-promotion", "checksum": "85d557f47b", "expires": "2026-11-23T15:00:00Z"}
    ]


# --- review: who approved which head -------------------------------------------------------------


def test_approvals_before_a_later_push_do_not_count(harness: GitLabHarness) -> None:
    ref = harness.forge.open_request(spec(), gates_path=GATES, now=NOW)
    harness.approve(ref, reviewer="bob")
    pushed = harness.push(ref.branch, "gates/test/podinfo.yaml", "spec: {default: open}\n", by="dave")
    harness.approve(ref, reviewer="carol")
    head = harness.merge(ref, by="carol")
    review = harness.forge.review(head)
    assert review is not None
    assert (review.number, review.author, review.head) == (ref.number, "alice", pushed)
    by_login = {a.login: a.commit for a in review.approvals}
    assert by_login["carol"] == pushed and by_login["bob"] != pushed
    mr = harness.fake.mrs[ref.number]
    assert by_login == {a.user.username: a.head for a in mr.approvals}  # what the fake recorded
    ok, why = approved_by_others(review, required=2, approvers=None)
    assert not ok
    assert "1 of 2 required approval(s)" in why and "before a later push do not count (bob)" in why
    assert approved_by_others(review, required=1, approvers=None)[0]


def test_approvals_by_whoever_added_commits_do_not_count(harness: GitLabHarness) -> None:
    """dave pushes onto gitgate's request and approves it; GitLab (by default) lets him."""
    ref = harness.forge.open_request(spec(), gates_path=GATES, now=NOW)
    harness.push(ref.branch, "gates/prod/backend.yaml", "spec: {default: open}\n", by="dave")
    harness.approve(ref, reviewer="dave")
    harness.approve(ref, reviewer="bob")
    review = harness.forge.review(harness.merge(ref, by="carol"))
    assert review is not None
    assert (review.author, review.committers, review.unattributed) == ("alice", {"alice", "dave"}, ())
    ok, why = approved_by_others(review, required=2, approvers=None)
    assert not ok
    assert "approvals by people who added commits to the request do not count (dave)" in why
    assert approved_by_others(review, required=1, approvers=None) == (True, "1 approval(s) on the final head by bob")


@pytest.mark.parametrize("prevented", [False, True], ids=["committers-may-approve", "committers-prevented"])
def test_a_commit_email_tied_to_nobody_lets_no_approval_count_unless_gitlab_prevents_committers(
    tmp_path: Path, prevented: bool
) -> None:
    """A private email gitgate cannot tie to a user: any approver may have pushed that commit. With
    "Prevent approvals by users who add commits" on, GitLab (which knows every confirmed email) has
    already refused the committers' approvals."""
    with running(tmp_path / "gitlab", committers_approval=not prevented) as fake:
        h = GitLabHarness(fake)
        try:
            ref = h.forge.open_request(spec(), gates_path=GATES, now=NOW)
            laptop = fake.push_as(
                ref.branch, "gates/prod/backend.yaml", "spec: {}\n", name="D", email="d@laptop.invalid"
            )
            if prevented:
                h.push(ref.branch, "gates/test/frontend.yaml", "spec: {}\n", by="dave")
                with pytest.raises(gitlab.exceptions.GitlabAuthenticationError):
                    h.approve(ref, reviewer="dave")
            h.approve(ref, reviewer="bob")
            review = h.forge.review(h.merge(ref))
        finally:
            h.close()
    assert review is not None
    ok, why = approved_by_others(review, required=1, approvers=None)
    if prevented:
        assert (ok, review.unattributed) == (True, ())
    else:
        assert review.unattributed == (f"{laptop[:12]} by D <d@laptop.invalid>",)
        assert not ok and f"to no account ({laptop[:12]} by D <d@laptop.invalid>)" in why


def test_without_approval_times_a_project_that_resets_approvals_on_push_counts_them(tmp_path: Path) -> None:
    with running(tmp_path / "gitlab", approved_at=False, reset_approvals_on_push=True) as fake:
        h = GitLabHarness(fake)
        try:
            ref = h.forge.open_request(spec(), gates_path=GATES, now=NOW)
            h.approve(ref, reviewer="bob")
            h.push(ref.branch, "gates/test/podinfo.yaml", "spec: {}\n", by="dave")  # drops bob's approval
            h.approve(ref, reviewer="dave")
            review = h.forge.review(h.merge(ref))
        finally:
            h.close()
    assert review is not None
    assert [(a.login, a.commit) for a in review.approvals] == [("dave", review.head)]


def test_without_approval_times_or_reset_on_push_approvals_do_not_count(tmp_path: Path) -> None:
    with running(tmp_path / "gitlab", approved_at=False) as fake:
        h = GitLabHarness(fake)
        try:
            ref = h.forge.open_request(spec(), gates_path=GATES, now=NOW)
            review = h.forge.review(h.approve_and_merge(ref, reviewer="bob"))
        finally:
            h.close()
    assert review is not None and [a.login for a in review.approvals] == ["bob"]
    assert not approved_by_others(review, required=1, approvers=None)[0]  # fail closed: head unknown


def test_a_commit_gitlab_does_not_know_has_no_review(harness: GitLabHarness) -> None:
    assert harness.forge.review("0123456789abcdef0123456789abcdef01234567") is None


# --- dispatch: the request pipeline ----------------------------------------------------------------


def pipeline_variables(harness: GitLabHarness) -> tuple[Any, dict[str, str]]:
    [pipeline] = harness.project("carol").pipelines.list(get_all=True)
    variables = {v.key: v.value for v in pipeline.variables.list(get_all=True)}
    return pipeline, variables


def test_dispatch_runs_a_pipeline_on_the_base_branch_with_the_request(harness: GitLabHarness) -> None:
    harness.forge.dispatch(
        spec(expires_in=timedelta(hours=24), reviewers=("bob", "dave"), labels=("gitgate",), hook=Hook.ANY)
    )
    pipeline, variables = pipeline_variables(harness)
    assert (pipeline.ref, pipeline.source, pipeline.sha) == ("main", "api", harness.fake.rev("main"))
    assert variables == {
        "GITGATE_NAMESPACE": "test",
        "GITGATE_NAME": "podinfo",
        "GITGATE_HOOK": "*",
        "GITGATE_CHECKSUM": "85d557f47b",
        "GITGATE_PHASE": "Progressing",
        "GITGATE_MESSAGE": "Halt podinfo.test advancement waiting for approval approve-promotion",
        "GITGATE_EXPIRES_IN": "1d",
        "GITGATE_REVIEWERS": "bob,dave",
        "GITGATE_LABELS": "gitgate",
    }
    assert harness.forge.open_requests() == []  # the job opens the request, not the dispatcher


def test_dispatch_with_a_trigger_token(tmp_path: Path) -> None:
    with running(tmp_path / "gitlab", trigger_tokens=("glptt-secret",)) as fake:
        h = GitLabHarness(fake, trigger_token="glptt-secret")
        try:
            h.forge.dispatch(spec())
            pipeline, variables = pipeline_variables(h)
        finally:
            h.close()
    assert pipeline.source == "trigger"
    assert variables["GITGATE_CHECKSUM"] == "85d557f47b" and variables["GITGATE_EXPIRES_IN"] == ""


def test_dispatch_where_pipeline_variables_are_restricted(tmp_path: Path) -> None:
    with running(tmp_path / "gitlab", pipeline_variables_role=MAINTAINER) as fake:
        h = GitLabHarness(fake)
        try:
            with pytest.raises(ForgePermissionError, match=r"Minimum role to use pipeline variables: Developer"):
                h.forge.dispatch(spec())
        finally:
            h.close()


def test_a_revocation_is_not_dispatched(harness: GitLabHarness) -> None:
    with pytest.raises(ForgeError, match=r"--request-via open"):
        harness.forge.dispatch(spec(revoke=True))
    assert harness.fake.pipelines == {}


# --- failures: each says what to do ----------------------------------------------------------------


def test_a_missing_project(make_forge: Callable[..., GitLabForge]) -> None:
    forge = make_forge(project="acme/missing")
    with pytest.raises(ForgeNotFound) as e:
        forge.open_request(spec(), gates_path=GATES, now=NOW)
    assert "acme/missing" in str(e.value) and "--forge-repo" in str(e.value) and "member" in str(e.value)


def test_a_non_member_sees_no_project(make_forge: Callable[..., GitLabForge]) -> None:
    with pytest.raises(ForgeNotFound, match=r"acme/approvals .* not found"):
        make_forge(token="eve-token").open_requests()


def test_a_bad_token(make_forge: Callable[..., GitLabForge]) -> None:
    with pytest.raises(ForgeAuthError) as e:
        make_forge(token="glpat-expired").open_requests()
    message = str(e.value)
    assert "rejected the token" in message and "`api` scope" in message and "GITLAB_TOKEN" in message


def test_a_reporter_cannot_open_requests(make_forge: Callable[..., GitLabForge], fake: FakeGitLab) -> None:
    with pytest.raises(ForgePermissionError) as e:
        make_forge(token="rita-token").open_request(spec(), gates_path=GATES, now=NOW)
    assert "creating branch gitgate/test/podinfo" in str(e.value) and "Developer role" in str(e.value)
    assert gitgate_branches(fake) == [] and fake.mrs == {}
    assert (fake.users["rita"].role or 0) < DEVELOPER


def test_a_read_only_token(make_forge: Callable[..., GitLabForge]) -> None:
    forge = make_forge(token="alice-readonly")
    assert forge.open_requests() == []  # reading works
    with pytest.raises(ForgePermissionError, match=r"give it the `api` scope"):
        forge.open_request(spec(), gates_path=GATES, now=NOW)


@pytest.mark.parametrize(("header", "wait"), [("Retry-After", 7.0), ("RateLimit-Reset", 30.0)])
def test_rate_limited(make_forge: Callable[..., GitLabForge], fake: FakeGitLab, header: str, wait: float) -> None:
    """GitLab sends Retry-After (seconds) and RateLimit-Reset (a Unix time) with a 429."""
    forge = make_forge()
    headers = {header: str(int(wait if header == "Retry-After" else time.time() + wait))}
    fake.fail("GET", r"/merge_requests$", 429, {"message": "429 Too Many Requests"}, headers=headers)
    started = time.monotonic()
    with pytest.raises(ForgeRateLimited) as e:
        forge.open_requests()
    assert time.monotonic() - started < 2  # not slept on: the caller decides
    assert e.value.retry_after == pytest.approx(wait, abs=2)
    assert f"retry in {e.value.retry_after:.0f}s" in str(e.value)


def test_a_5xx_is_retried_a_few_times(make_forge: Callable[..., GitLabForge], fake: FakeGitLab) -> None:
    forge = make_forge(retries=2)
    fake.fail("GET", r"/merge_requests$", 502)
    assert forge.open_requests() == []  # one bad answer: retried
    fake.fail("GET", r"/merge_requests$", 503, times=10)
    with pytest.raises(ForgeUnavailable) as e:
        forge.open_requests()
    assert "answered 503" in str(e.value) and "try again later" in str(e.value)
    assert fake.requests_to("GET", r"/merge_requests$") == [502, 200, 503, 503, 503]


def test_a_timeout(make_forge: Callable[..., GitLabForge], fake: FakeGitLab) -> None:
    forge = make_forge(timeout=0.3, retries=1)
    fake.fail("GET", r"^/projects/acme%2Fapprovals$", None, delay=1.5, times=5)
    started = time.monotonic()
    with pytest.raises(ForgeUnavailable) as e:
        forge.open_requests()
    assert time.monotonic() - started < 3
    assert "did not answer within 0.3s" in str(e.value) and "try again later" in str(e.value)


def test_nothing_listens(tmp_path: Path) -> None:
    from helpers import free_port

    forge = GitLabForge(project=PROJECT, token="t", api_url=f"http://127.0.0.1:{free_port()}", retries=0)
    try:
        with pytest.raises(ForgeUnavailable, match=r"cannot reach GitLab at http://127\.0\.0\.1:\d+"):
            forge.open_requests()
    finally:
        forge.close()


def test_errors_keep_their_cause(make_forge: Callable[..., GitLabForge]) -> None:
    with pytest.raises(ForgeAuthError) as e:
        make_forge(token="nope").open_requests()
    assert isinstance(e.value.__cause__, gitlab.exceptions.GitlabError)


# --- the fake's shape check --------------------------------------------------------------------------


def test_the_shape_check_takes_gitlabs_documented_example_and_catches_a_bad_answer() -> None:
    # GitLab's docs, "Merge request approvals API": the answer of GET .../merge_requests/:iid/approvals.
    documented = {
        "id": 5,
        "iid": 5,
        "project_id": 1,
        "title": "Approvals API",
        "description": "Test",
        "state": "opened",
        "created_at": "2016-06-08T00:19:52.638Z",
        "updated_at": "2016-06-09T21:32:14.105Z",
        "merge_status": "can_be_merged",
        "approved": True,
        "approvals_required": 2,
        "approvals_left": 0,
        "approved_by": [
            {
                "user": {
                    "name": "Administrator",
                    "username": "root",
                    "id": 1,
                    "state": "active",
                    "avatar_url": "http://www.gravatar.com/avatar/e64c7d89f26bd1972efa854d13d7dd61?s=80&d=identicon",
                    "web_url": "http://localhost:3000/root",
                }
            }
        ],
    }
    assert check_shape(documented, SHAPES["approvals"]) == []
    broken = {**documented, "approved_by": [{"user": {"username": "root"}, "approved_at": "yesterday"}]}
    problems = check_shape(broken, SHAPES["approvals"])
    assert "$.approved_by[0].user: missing 'id'" in problems
    assert "$.approved_by[0].approved_at: expected a timestamp, got 'yesterday'" in problems


def test_the_gate_file_is_read_from_the_base_branch(harness: GitLabHarness) -> None:
    """The change starts from the file as the base branch has it (the files API), not from scratch."""
    harness.push_to_base(
        "gates/test/podinfo.yaml",
        "apiVersion: gitgate/v1\nkind: Gate\nmetadata: {name: podinfo, namespace: test}\n"
        "spec:\n  default: open\n  freeze: [{start: '0 18 * * FRI', duration: 63h}]\n",
    )
    ref = harness.forge.open_request(spec(hook=Hook.ROLLBACK), gates_path=GATES, now=NOW)
    doc = yaml.safe_load(harness.file_on(ref.branch, "gates/test/podinfo.yaml") or b"")
    assert doc["spec"]["default"] == "open" and doc["spec"]["freeze"][0]["duration"] == "63h"
    assert doc["spec"]["approvals"] == [{"hook": "rollback", "checksum": "85d557f47b"}]
    raw = harness.project("bob").files.get(file_path="gates/test/podinfo.yaml", ref=ref.branch).content
    assert yaml.safe_load(base64.b64decode(raw)) == doc


def test_another_refusal_is_reported_and_asking_again_finishes_the_request(
    make_forge: Callable[..., GitLabForge], fake: FakeGitLab
) -> None:
    forge = make_forge()
    fake.fail("POST", r"/merge_requests$", 422, {"message": ["Validate branches Cannot Create: temporary"]})
    with pytest.raises(ForgeError, match=r"refused opening the merge request of gitgate/.*: 422 Validate branches"):
        forge.open_request(spec(), gates_path=GATES, now=NOW)
    ref = forge.open_request(spec(), gates_path=GATES, now=NOW)  # the branch is there: taken over
    assert ref.created and [r.number for r in forge.open_requests()] == [ref.number]


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"project": "approvals"}, r"--forge-repo 'approvals': give the GitLab project as group/project"),
        ({"api_url": "gitlab.example.com"}, r"--api-url 'gitlab.example.com': give the GitLab address"),
    ],
)
def test_bad_settings_are_usage_errors(options: dict[str, str], complaint: str) -> None:
    with pytest.raises(UsageError, match=complaint):
        GitLabForge(**{"project": PROJECT, "token": "t", **options})

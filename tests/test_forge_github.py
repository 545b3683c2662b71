"""The GitHub adapter against a fake GitHub: the forge contract, then what users see when GitHub fails.

The fake (tests/fakes/github.py) is real HTTP on loopback over a real bare git repo, reached through
unmodified PyGithub, and every answer it gives is checked against GitHub's OpenAPI description.
Failures are the fake's injected faults: the adapter must turn each into the right ForgeError with
a message that says what to do.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import yaml
from fakes.github import Call, FakeGitHub, GitHubOpenAPI
from forge_contract import *  # noqa: F403  (pytest collects the contract's tests from here)
from forge_contract import GATES, NOW, spec
from github import Auth, Github
from helpers import Keys, free_port

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
from gitgate.forges.github import GitHubForge, retry_after
from gitgate.model import Hook
from gitgate.request import RequestRef, branch_name

BOT = "gitgate-bot"


@pytest.fixture
def fake(tmp_path: Path, keys: Keys, openapi: GitHubOpenAPI) -> Iterator[FakeGitHub]:
    """acme/approvals, private; merges signed with carol's key as GitHub's web-flow key."""
    gh = FakeGitHub(tmp_path / "github", web_flow_key=keys.carol.key, gnupg_home=keys.carol.gnupg_home, openapi=openapi)
    for login, permission in [(BOT, "write"), ("bob", "write"), ("erin", "write"), ("reader", "read")]:
        gh.add_user(login, permission=permission)
    gh.add_user("stranger", permission="none")
    gh.add_team("approvers")
    with gh:
        yield gh
    assert not gh.problems, "the fake GitHub saw requests or sent answers GitHub's OpenAPI description refuses:\n" + (
        "\n".join(gh.problems)
    )


Connect = Callable[..., GitHubForge]


@pytest.fixture
def connect(fake: FakeGitHub) -> Iterator[Connect]:
    made: list[GitHubForge] = []

    def make(login: str = BOT, **kw: object) -> GitHubForge:
        options: dict[str, object] = {
            "repo": fake.full_name,
            "token": fake.token(login),
            "api_url": fake.url,
            "seconds_between_requests": 0,
            "seconds_between_writes": 0,
            "timeout": 5,
            "retries": 1,
            **kw,
        }
        forge = GitHubForge(**options)  # type: ignore[arg-type]
        made.append(forge)
        return forge

    yield make
    for forge in made:
        forge.close()


def as_user(fake: FakeGitHub, login: str, api_url: str | None = None) -> Github:
    """Someone else on the fake GitHub, through PyGithub as anyone would use it."""
    return Github(
        auth=Auth.Token(fake.token(login)),
        base_url=api_url or fake.url,
        seconds_between_requests=0,
        seconds_between_writes=0,
        retry=None,
    )


class GitHubHarness:
    def __init__(self, fake: FakeGitHub, forge: GitHubForge, api_url: str | None = None) -> None:
        self.fake = fake
        self.forge = forge
        self.api_url = api_url

    def file_on(self, ref: str, path: str) -> bytes | None:
        return self.fake.file_on(ref, path)

    def changed_files(self, branch: str) -> list[str]:
        return self.fake.changed_files(branch)

    def approve_and_merge(self, request: RequestRef, *, reviewer: str) -> str:
        with as_user(self.fake, reviewer, self.api_url) as gh:
            pull = gh.get_repo(self.fake.full_name).get_pull(request.number)
            pull.create_review(event="APPROVE", body="Looks right.")
            merged = pull.merge(merge_method="merge", sha=pull.head.sha)
        assert merged.merged
        return self.fake.head()

    def push_to_base(self, path: str, text: str) -> str:
        return self.fake.push_to_base(path, text)


@pytest.fixture
def harness(fake: FakeGitHub, connect: Connect) -> GitHubHarness:
    return GitHubHarness(fake, connect())


def approve(fake: FakeGitHub, number: int, login: str, event: str = "APPROVE") -> None:
    with as_user(fake, login) as gh:
        gh.get_repo(fake.full_name).get_pull(number).create_review(event=event, body=f"{login}: {event}")


def merge(fake: FakeGitHub, number: int, login: str = "bob") -> str:
    with as_user(fake, login) as gh:
        assert gh.get_repo(fake.full_name).get_pull(number).merge(merge_method="merge").merged
    return fake.head()


def push_to_branch(fake: FakeGitHub, branch: str, path: str, text: str) -> str:
    """Someone pushes another commit onto a request's branch."""
    git = fake.git
    tip = fake.head(branch)
    tree = git.tree(git.read_commit(tip)["tree"], [(path, "100644", git.blob(text.encode()))])
    who = ("erin", "erin@example.test", f"{int(time.time())} +0000")
    sha = git.commit(tree, [tip], "push on top\n", author=who, committer=who)
    assert git.update_ref(f"refs/heads/{branch}", sha, tip)
    return sha


# --- what a request looks like on GitHub ------------------------------------------------------------


def test_the_pull_request_carries_title_body_labels_and_reviewers(fake: FakeGitHub, connect: Connect) -> None:
    forge = connect()
    ref = forge.open_request(
        spec(labels=("gitgate", "canary"), reviewers=("bob", "acme/approvers"), expires_in=timedelta(hours=24)),
        gates_path=GATES,
        now=NOW,
    )
    with as_user(fake, "bob") as gh:
        pull = gh.get_repo(fake.full_name).get_pull(ref.number)
        assert pull.html_url == ref.url == f"{fake.url}/acme/approvals/pull/{ref.number}"
        assert pull.title == "Approve confirm-promotion of test/podinfo (85d557f47b)"
        assert "Merging this opens the `confirm-promotion` gate" in pull.body
        assert "until 2026-11-24T12:00:00Z" in pull.body
        assert pull.user.login == BOT
        assert pull.head.ref == "gitgate/test/podinfo/confirm-promotion/85d557f47b"
        assert pull.base.ref == "main"
        assert [label.name for label in pull.labels] == ["gitgate", "canary"]
        assert [u.login for u in pull.requested_reviewers] == ["bob"]
        assert [t.slug for t in pull.requested_teams] == ["approvers"]
    # One commit on top of the base branch, touching only the gate file.
    assert fake.git.commits_between(fake.head(), fake.head(ref.branch)) == [fake.head(ref.branch)]
    assert fake.changed_files(ref.branch) == ["gates/test/podinfo.yaml"]


def test_reviewers_github_refuses_are_logged_and_the_request_still_opens(
    fake: FakeGitHub, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gitgate.forges.github"):
        ref = connect().open_request(spec(reviewers=("nobody-here",)), gates_path=GATES, now=NOW)
    assert ref.created
    [warning] = [r.getMessage() for r in caplog.records if r.name == "gitgate.forges.github"]
    assert f"opened {ref.url} but could not request reviewers" in warning
    assert "Reviews may only be requested from collaborators" in warning


def test_only_gitgate_branches_are_listed(fake: FakeGitHub, connect: Connect) -> None:
    forge = connect()
    ref = forge.open_request(spec(), gates_path=GATES, now=NOW)
    sha = fake.head()
    fake.git.update_ref("refs/heads/docs", push_to_branch_base(fake, sha), None)
    with as_user(fake, "erin") as gh:
        gh.get_repo(fake.full_name).create_pull(base="main", head="docs", title="Docs", body="words")
    assert [(r.number, r.branch, r.author) for r in forge.open_requests()] == [(ref.number, ref.branch, BOT)]


def push_to_branch_base(fake: FakeGitHub, parent: str) -> str:
    git = fake.git
    tree = git.tree(git.read_commit(parent)["tree"], [("docs/README.md", "100644", git.blob(b"docs\n"))])
    who = ("erin", "erin@example.test", f"{int(time.time())} +0000")
    return git.commit(tree, [parent], "docs\n", author=who, committer=who)


def test_closing_comments_closes_and_deletes_the_branch(fake: FakeGitHub, connect: Connect) -> None:
    forge = connect()
    ref = forge.open_request(spec(), gates_path=GATES, now=NOW)
    assert forge.close_request(ref.branch, "Canary test/podinfo succeeded with revision 0000000aaa.")
    with as_user(fake, "bob") as gh:
        pull = gh.get_repo(fake.full_name).get_pull(ref.number)
        assert pull.state == "closed" and not pull.merged
        assert [c.body for c in pull.get_issue_comments()] == [
            "Canary test/podinfo succeeded with revision 0000000aaa."
        ]
    assert fake.git.branch(ref.branch) is None


def test_the_merge_commit_is_signed_by_githubs_web_flow_key(fake: FakeGitHub, connect: Connect, keys: Keys) -> None:
    ref = connect().open_request(spec(), gates_path=GATES, now=NOW)
    approve(fake, ref.number, "bob")
    head = merge(fake, ref.number)
    out = subprocess.run(
        ["git", "--git-dir", str(fake.git.path), "log", "-1", "--format=%G?|%GF|%cn|%P", head],
        env={**os.environ, "GNUPGHOME": str(keys.gnupg_signers)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    status, fingerprint, committer, parents = out.split("|")
    assert (status, fingerprint, committer) == ("G", keys.carol.key, "GitHub")
    assert parents.split()[1] == fake.head(ref.branch)


def test_asking_for_an_approval_already_on_the_base_branch_says_so(fake: FakeGitHub, connect: Connect) -> None:
    forge = connect()
    ref = forge.open_request(spec(), gates_path=GATES, now=NOW)
    approve(fake, ref.number, "bob")
    merge(fake, ref.number)
    with pytest.raises(ForgeError, match=r"already says what .* would: nothing to request"):
        forge.open_request(spec(), gates_path=GATES, now=NOW)


# --- review(): what --require-approvals reads -------------------------------------------------------------


def test_the_latest_review_of_each_reviewer_counts(fake: FakeGitHub, connect: Connect) -> None:
    forge = connect()
    ref = forge.open_request(spec(), gates_path=GATES, now=NOW)
    approve(fake, ref.number, "bob")
    approve(fake, ref.number, "erin")
    approve(fake, ref.number, "erin", "REQUEST_CHANGES")
    approve(fake, ref.number, "bob", "COMMENT")  # a later comment does not take bob's approval back
    head = merge(fake, ref.number, "erin")
    review = forge.review(head)
    assert review is not None
    assert (review.number, review.url, review.author) == (ref.number, ref.url, BOT)
    assert review.head == fake.head(ref.branch)
    assert [(a.login, a.commit) for a in review.approvals] == [("bob", review.head)]
    assert approved_by_others(review, required=1, approvers=None) == (True, "1 approval(s) on the final head by bob")


def test_an_approval_given_before_a_later_push_is_stale(fake: FakeGitHub, connect: Connect) -> None:
    forge = connect()
    ref = forge.open_request(spec(), gates_path=GATES, now=NOW)
    approve(fake, ref.number, "bob")
    first = fake.head(ref.branch)
    last = push_to_branch(fake, ref.branch, "gates/test/podinfo.yaml", "tampered: true\n")
    approve(fake, ref.number, "erin")
    review = forge.review(merge(fake, ref.number, "erin"))
    assert review is not None and review.head == last
    assert {(a.login, a.commit) for a in review.approvals} == {("bob", first), ("erin", last)}
    ok, why = approved_by_others(review, required=2, approvers=None)
    assert not ok
    assert "approvals given before a later push do not count (bob)" in why


def commit_onto(fake: FakeGitHub, branch: str, author: tuple[str, str], committer: tuple[str, str]) -> str:
    """A commit pushed onto `branch` with the author and committer (name, email) its git gave it."""
    git = fake.git
    tip = fake.head(branch)
    tree = git.tree(git.read_commit(tip)["tree"], [("gates/prod/backend.yaml", "100644", git.blob(b"spec: {}\n"))])
    when = f"{int(time.time())} +0000"
    sha = git.commit(tree, [tip], "on top\n", author=(*author, when), committer=(*committer, when))
    assert git.update_ref(f"refs/heads/{branch}", sha, tip)
    return sha


def test_approvals_by_whoever_added_commits_do_not_count(fake: FakeGitHub, connect: Connect) -> None:
    """erin edits the request in GitHub's web UI (committer: GitHub itself), then approves it."""
    forge = connect()
    ref = forge.open_request(spec(), gates_path=GATES, now=NOW)
    commit_onto(fake, ref.branch, ("Erin", "erin@example.test"), ("GitHub", "noreply@github.com"))
    approve(fake, ref.number, "erin")
    approve(fake, ref.number, "bob")
    review = forge.review(merge(fake, ref.number, "bob"))
    assert review is not None
    assert (review.author, review.committers, review.unattributed) == (BOT, {BOT, "erin", "web-flow"}, ())
    assert approved_by_others(review, required=1, approvers=None) == (True, "1 approval(s) on the final head by bob")
    ok, why = approved_by_others(review, required=2, approvers=None)
    assert not ok
    assert "approvals by people who added commits to the request do not count (erin)" in why


def test_a_commit_github_ties_to_no_account_lets_no_approval_count(fake: FakeGitHub, connect: Connect) -> None:
    """An email no account has verified: anyone may have pushed that commit, the approver included."""
    forge = connect()
    ref = forge.open_request(spec(), gates_path=GATES, now=NOW)
    laptop = ("Laptop", "someone@laptop.invalid")
    pushed = commit_onto(fake, ref.branch, laptop, laptop)
    approve(fake, ref.number, "bob")
    review = forge.review(merge(fake, ref.number, "bob"))
    assert review is not None and review.unattributed == (f"{pushed[:12]} by Laptop <someone@laptop.invalid>",)
    ok, why = approved_by_others(review, required=1, approvers=None)
    assert not ok
    assert f"ties a commit of the request to no account ({pushed[:12]} by Laptop <someone@laptop.invalid>)" in why


def test_a_request_longer_than_github_lists_lets_no_approval_count(fake: FakeGitHub, connect: Connect) -> None:
    """GitHub lists 250 commits of a pull request at most: who wrote the rest cannot be told."""
    forge = connect()
    ref = forge.open_request(spec(), gates_path=GATES, now=NOW)
    who = f"bob <bob@example.test> {int(time.time())} +0000"
    stream = "".join(
        f"commit refs/heads/{ref.branch}\nauthor {who}\ncommitter {who}\ndata 4\nn{n:03d}\n"
        + (f"from {fake.head(ref.branch)}\n" if n == 0 else "")
        + "\n"
        for n in range(250)
    )
    fake.git.run("fast-import", "--quiet", stdin=stream.encode())
    approve(fake, ref.number, "erin")
    review = forge.review(merge(fake, ref.number, "erin"))
    assert review is not None and review.committers == {BOT, "bob"}
    assert review.unattributed == ("any commit after the first 250, which GitHub does not list",)
    assert not approved_by_others(review, required=1, approvers=None)[0]


def test_a_commit_github_does_not_know_is_not_found(fake: FakeGitHub, connect: Connect) -> None:
    with pytest.raises(ForgeNotFound, match=r"GitHub has no commit 0{40} in acme/approvals.*is --forge-repo the repo"):
        connect().review("0" * 40)


# --- dispatch ----------------------------------------------------------------------------------------


def test_dispatch_sends_the_request_fields_as_client_payload(fake: FakeGitHub, connect: Connect) -> None:
    connect().dispatch(
        spec(expires_in=timedelta(hours=1, minutes=30), reviewers=("bob", "acme/approvers"), labels=("gitgate",))
    )
    assert fake.dispatches == [
        {
            "event_type": "gitgate-request",
            "sender": BOT,
            "client_payload": {
                "namespace": "test",
                "name": "podinfo",
                "hook": "confirm-promotion",
                "checksum": "85d557f47b",
                "phase": "Progressing",
                "message": "Halt podinfo.test advancement waiting for approval approve-promotion",
                "expires_in": "1h30m",
                "reviewers": "bob,acme/approvers",
                "labels": "gitgate",
            },
        }
    ]


def test_dispatch_refuses_a_revocation(connect: Connect) -> None:
    with pytest.raises(ForgeError, match="--request-via open"):
        connect().dispatch(spec(revoke=True))


# --- failures, as the user sees them ------------------------------------------------------------------------


def test_an_unknown_repo_is_not_found(fake: FakeGitHub, connect: Connect) -> None:
    forge = connect(repo="acme/nope")
    message = r"repo acme/nope not found or the token cannot see it .*check --forge-repo and --api-url"
    with pytest.raises(ForgeNotFound, match=message) as caught:
        forge.open_request(spec(), gates_path=GATES, now=NOW)
    assert caught.value.__cause__ is not None
    for call in (forge.open_requests, lambda: forge.review(fake.head()), lambda: forge.close_request("gitgate/x", "")):
        with pytest.raises(ForgeNotFound, match=message):
            call()


def test_a_token_that_cannot_see_the_private_repo_is_told_so(connect: Connect) -> None:
    with pytest.raises(ForgeNotFound, match="repo acme/approvals not found or the token cannot see it"):
        connect("stranger").open_request(spec(), gates_path=GATES, now=NOW)


def test_a_missing_base_branch_names_the_default_branch(connect: Connect) -> None:
    forge = connect(base_branch="production")
    with pytest.raises(
        ForgeNotFound,
        match=r"branch production not found in acme/approvals \(its default branch is main\): set --branch",
    ):
        forge.open_request(spec(), gates_path=GATES, now=NOW)


def test_a_bad_token_is_rejected(fake: FakeGitHub) -> None:
    forge = GitHubForge(
        repo=fake.full_name, token="ghp_wrong", api_url=fake.url, seconds_between_requests=0, seconds_between_writes=0
    )
    try:
        with pytest.raises(
            ForgeAuthError, match=r"^token rejected: GitHub answered 401 \(Bad credentials\).*GITHUB_TOKEN"
        ) as caught:
            forge.open_requests()
        assert caught.value.__cause__ is not None
    finally:
        forge.close()


def test_a_read_only_token_is_told_which_permission_to_add(fake: FakeGitHub, connect: Connect) -> None:
    forge = connect("reader")
    assert forge.open_requests() == []  # reading is allowed
    with pytest.raises(ForgePermissionError) as caught:
        forge.open_request(spec(), gates_path=GATES, now=NOW)
    message = str(caught.value)
    assert message.startswith("the token may not create a tree in acme/approvals: GitHub answered 403")
    assert "give it contents: write (GitHub accepts: contents=write)" in message
    assert not [b for b in fake.git.out("for-each-ref", "--format=%(refname)").split() if "gitgate/" in b]

    ref = connect().open_request(spec(), gates_path=GATES, now=NOW)
    with pytest.raises(ForgePermissionError, match="give it pull-requests: write"):
        forge.close_request(ref.branch, "done")
    with pytest.raises(ForgePermissionError, match="give it contents: write"):
        forge.dispatch(spec())


def test_bad_construction_is_explained(fake: FakeGitHub) -> None:
    with pytest.raises(UsageError, match="--forge-repo 'approvals': use owner/name"):
        GitHubForge(repo="approvals", token="t")
    with pytest.raises(ForgeAuthError, match="no GitHub token for acme/approvals: set --token or GITHUB_TOKEN"):
        GitHubForge(repo="acme/approvals", token="")


# --- races ----------------------------------------------------------------------------------------------


def test_losing_the_race_for_the_branch_returns_the_winners_request(fake: FakeGitHub, connect: Connect) -> None:
    winner = connect().open_request(spec(), gates_path=GATES, now=NOW)
    # The loser looked before the winner's pull request existed...
    fake.fail(200, method="GET", path=r"/pulls$", json=[], times=1)
    loser = connect().open_request(spec(), gates_path=GATES, now=NOW)
    # ...so it made its commit, was refused the branch (422), and found the winner's pull request.
    assert ("POST", "/repos/acme/approvals/git/refs", 422) in fake.calls
    assert (loser.number, loser.url, loser.created) == (winner.number, winner.url, False)
    assert len(fake.pulls) == 1


def test_losing_the_race_for_the_pull_request_returns_the_winners(fake: FakeGitHub, connect: Connect) -> None:
    winner = connect().open_request(spec(), gates_path=GATES, now=NOW)
    tip = fake.head(winner.branch)
    fake.fail(200, method="GET", path=r"/pulls$", json=[], times=2)
    loser = connect().open_request(spec(), gates_path=GATES, now=NOW)
    assert ("POST", "/repos/acme/approvals/pulls", 422) in fake.calls
    assert (loser.number, loser.created) == (winner.number, False)
    assert fake.head(winner.branch) == tip  # same change on the same base: the winner's commit stays


def test_a_branch_left_from_an_old_request_is_pointed_at_the_new_change(fake: FakeGitHub, connect: Connect) -> None:
    branch = branch_name(spec())
    fake.git.update_ref(f"refs/heads/{branch}", push_to_branch_base(fake, fake.head()), None)
    ref = connect().open_request(spec(), gates_path=GATES, now=NOW)
    assert ref.created
    assert fake.changed_files(branch) == ["gates/test/podinfo.yaml"]


def test_a_conflict_creating_the_branch_is_retried_by_the_next_call(fake: FakeGitHub, connect: Connect) -> None:
    fake.fail(409, method="POST", path=r"/git/refs$", json={"message": "Reference update failed"}, times=1)
    ref = connect().open_request(spec(), gates_path=GATES, now=NOW)
    assert ref.created and fake.changed_files(ref.branch) == ["gates/test/podinfo.yaml"]


def test_a_pull_request_github_refuses_for_another_reason_says_why(fake: FakeGitHub, connect: Connect) -> None:
    error = {
        "message": "Validation Failed",
        "errors": [{"resource": "PullRequest", "code": "custom", "message": "Draft pull requests are not supported"}],
        "documentation_url": "https://docs.github.com/rest",
    }
    fake.fail(422, method="POST", path=r"/pulls$", json=error)
    with pytest.raises(
        ForgeError, match=r"GitHub refused to open a pull request from gitgate/.*: 422 Validation Failed: Draft"
    ):
        connect().open_request(spec(), gates_path=GATES, now=NOW)


# --- rate limits, outages, timeouts -------------------------------------------------------------------------


def test_429_with_retry_after(fake: FakeGitHub, connect: Connect) -> None:
    fake.fail(429, path=r"/pulls$", headers={"Retry-After": "17"}, json={"message": "Too many requests"})
    with pytest.raises(ForgeRateLimited, match=r"GitHub rate limit hit .*: retry after 17s") as caught:
        connect().open_requests()
    assert caught.value.retry_after == 17


def test_403_primary_rate_limit_waits_for_the_reset(fake: FakeGitHub, connect: Connect) -> None:
    reset = int(time.time()) + 120
    fake.fail(
        403,
        path=r"/git/trees$",
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
        json={"message": "API rate limit exceeded for user ID 1001.", "documentation_url": "https://docs.github.com"},
    )
    with pytest.raises(ForgeRateLimited, match=r"API rate limit exceeded for user ID 1001\.\): retry after") as caught:
        connect().open_request(spec(), gates_path=GATES, now=NOW)
    assert 100 < caught.value.retry_after <= 121


def test_403_secondary_rate_limit_with_retry_after(fake: FakeGitHub, connect: Connect) -> None:
    fake.fail(
        403,
        method="POST",
        path=r"/pulls$",
        headers={"Retry-After": "30"},
        json={"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."},
    )
    with pytest.raises(ForgeRateLimited, match="secondary rate limit") as caught:
        connect().open_request(spec(), gates_path=GATES, now=NOW)
    assert caught.value.retry_after == 30


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    header = {"retry-after": format_datetime(now + timedelta(seconds=45), usegmt=True)}
    assert retry_after(header, now=now.timestamp()) == 45
    assert retry_after({}, now=0) == 60


def test_a_5xx_on_a_read_is_retried_once_then_reported(fake: FakeGitHub, connect: Connect) -> None:
    fake.fail(502, method="GET", path=r"/pulls$", times=1)
    assert connect().open_requests() == []  # the bounded retry covered one bad gateway
    fake.fail(503, method="GET", path=r"/pulls$", times=-1, json={"message": "Service unavailable"})
    with pytest.raises(ForgeUnavailable, match=r"GitHub answered 503 \(Service unavailable\) .*: retry later"):
        connect().open_requests()
    assert [c for c in fake.calls if c[0] == "GET"] == [
        ("GET", "/repos/acme/approvals/pulls", s) for s in (502, 200, 503, 503)
    ]


def test_a_5xx_on_a_write_is_not_repeated_and_the_next_call_recovers(fake: FakeGitHub, connect: Connect) -> None:
    forge = connect()
    fake.fail(500, method="POST", path=r"/pulls$", times=1)
    with pytest.raises(ForgeUnavailable, match=r"GitHub answered 500 .* open a pull request .*: retry later"):
        forge.open_request(spec(), gates_path=GATES, now=NOW)
    assert [c for c in fake.calls if c[:2] == ("POST", "/repos/acme/approvals/pulls")] == [
        ("POST", "/repos/acme/approvals/pulls", 500)
    ]
    ref = forge.open_request(spec(), gates_path=GATES, now=NOW)  # the branch is there; the pull request is made
    assert ref.created and fake.changed_files(ref.branch) == ["gates/test/podinfo.yaml"]


def test_a_proxy_error_page_is_unavailable(fake: FakeGitHub, connect: Connect) -> None:
    fake.fail(502, path=r"/pulls$", times=-1, body="<html><body>502 Bad Gateway</body></html>")
    with pytest.raises(ForgeUnavailable, match=r"GitHub answered 502 \(502 Bad Gateway\) .*: retry later"):
        connect(retries=0).open_requests()


def test_a_timeout_is_unavailable(fake: FakeGitHub, connect: Connect) -> None:
    fake.fail(200, path=r"/pulls$", delay=3, json=[])
    started = time.monotonic()
    with pytest.raises(ForgeUnavailable, match=r"did not answer within 1s when asked to list open pull requests"):
        connect(timeout=1, retries=0).open_requests()
    assert time.monotonic() - started < 2.5


def test_an_unreachable_api_url_is_unavailable(fake: FakeGitHub) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    forge = GitHubForge(repo=fake.full_name, token="t", api_url=url, seconds_between_requests=0, retries=0)
    try:
        with pytest.raises(ForgeUnavailable, match=f"cannot reach GitHub at {url} .*check --api-url"):
            forge.open_requests()
    finally:
        forge.close()


# --- GitHub Enterprise Server ----------------------------------------------------------------------------


def test_github_enterprise_api_url(fake: FakeGitHub, connect: Connect) -> None:
    forge = connect(api_url=fake.ghe_url)
    harness = GitHubHarness(fake, forge, api_url=fake.ghe_url)
    ref = forge.open_request(spec(), gates_path=GATES, now=NOW)
    assert ref.url == f"{fake.url}/acme/approvals/pull/{ref.number}"  # pages live on the host, not under /api/v3
    assert [r.number for r in forge.open_requests()] == [ref.number]
    head = harness.approve_and_merge(ref, reviewer="bob")
    review = forge.review(head)
    assert review is not None and [a.login for a in review.approvals] == ["bob"]
    doc = yaml.safe_load(fake.file_on("main", "gates/test/podinfo.yaml") or b"")
    assert doc["spec"]["approvals"] == [{"hook": "confirm-promotion", "checksum": "85d557f47b"}]
    assert {path.split("/repos/")[0] for _, path, _ in fake.calls} == {"/api/v3"}


def test_the_any_hook_request(fake: FakeGitHub, connect: Connect) -> None:
    ref = connect().open_request(spec(hook=Hook.ANY), gates_path=GATES, now=NOW)
    assert ref.branch == "gitgate/test/podinfo/any/85d557f47b"
    doc = yaml.safe_load(fake.file_on(ref.branch, "gates/test/podinfo.yaml") or b"")
    assert doc["spec"]["approvals"] == [{"hook": "*", "checksum": "85d557f47b"}]


# --- the fake's own check -----------------------------------------------------------------------------------


def test_the_openapi_check_catches_an_answer_github_would_not_give(openapi: GitHubOpenAPI) -> None:
    call = Call(
        "get",
        "/repos/{owner}/{repo}/pulls/{pull_number}",
        "/repos/acme/approvals/pulls/1",
        {},
        {"owner": "acme", "repo": "approvals", "pull_number": 1},
        {},
        b"",
        "application/json",
    )
    problems = openapi.check_response(call, 200, json.dumps({"number": 1, "state": "open"}).encode(), {})
    assert problems and "'url' is a required property" in problems[0]
    assert openapi.check_response(call, 418, b'{"message": "I am a teapot"}', {}) == []  # GitHub's error shape
    assert openapi.check_response(call, 418, b'{"message": 1}', {}) != []

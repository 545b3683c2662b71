"""One approval request per (canary, hook, revision), whatever happens: several replicas of the real
`gitgate serve` on one approvals repo and one forge, each hammered with concurrent denied checks
for the same canary and revision; and a service killed with SIGKILL while it is opening a request,
then started again on the same state dir. Exactly one request must exist afterwards, every replica
must name it in its 403, and the answer stays closed until the request is merged.

The forges are the stateful fakes (tests/fakes/) on loopback, over real bare git repos, and the
local forge on a real bare repo; every replica is a real process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import gitlab
import pytest
import requests
from fakes.github import FakeGitHub, GitHubOpenAPI
from fakes.gitlab import running
from github import Auth, Github
from helpers import Approvals, Keys, Service, forge_args, wait_for

from gitgate.forges.local import LocalForge

NS, NAME, HOOK, SUM = "test", "podinfo", "confirm-promotion", "85d557f47b"
BRANCH = f"gitgate/{NS}/{NAME}/{HOOK}/{SUM}"
BOT = "gitgate-bot"
SECRET = "It's a Secret to Everybody"
REPLICAS = 3
CHECKS = 10  # concurrent denied checks per replica


@dataclass
class Site:
    """A forge as the replicas share it: how to start a replica on it, and what the forge holds."""

    kind: str
    args: list[str]
    env: dict[str, str]
    requests_for_branch: Callable[[], list[tuple[int, str]]]  # every request ever made for BRANCH: (number, state)
    url_of: Callable[[int], str]
    hang_create: Callable[..., None] = lambda **kw: None
    heal: Callable[[], None] = lambda: None
    held: Callable[[], int] = lambda: 0
    branch_exists: Callable[[], bool] = lambda: False
    approve_and_merge: Callable[[int], None] = lambda number: None
    notify: Callable[[Service], None] = lambda svc: None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def serve(self, tmp_path: Path, state: str) -> Service:
        return Service([*self.args, "--state-dir", str(tmp_path / state)], tmp_path, env=self.env)


def _github_site(tmp_path: Path, keys: Keys, openapi: GitHubOpenAPI) -> Iterator[Site]:
    gh = FakeGitHub(tmp_path / "github", web_flow_key=keys.carol.key, gnupg_home=keys.carol.gnupg_home, openapi=openapi)
    for login in (BOT, "bob"):
        gh.add_user(login)
    with gh:
        # The repo's first commit as GitHub's web UI makes it: signed with the web-flow key (carol's here).
        tip = gh.head()
        who = ("GitHub", "noreply@github.com", f"{int(time.time())} +0000")
        first = gh.git.commit(
            gh.git.read_commit(tip)["tree"],
            [tip],
            "Initial commit\n",
            author=who,
            committer=who,
            signing_key=keys.carol.key,
            gnupg_home=keys.carol.gnupg_home,
        )
        assert gh.git.update_ref("refs/heads/main", first, tip)

        def approve_and_merge(number: int) -> None:
            with Github(
                auth=Auth.Token(gh.token("bob")), base_url=gh.url, seconds_between_requests=0, seconds_between_writes=0
            ) as bob:
                pull = bob.get_repo(gh.full_name).get_pull(number)
                pull.create_review(event="APPROVE", body="ship it")
                assert pull.merge(merge_method="merge").merged

        def notify(svc: Service) -> None:
            body = json.dumps({"ref": "refs/heads/main", "after": gh.head()}).encode()
            signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": signature}
            assert requests.post(svc.url + "/hooks/github", data=body, headers=headers, timeout=5).status_code == 202

        yield Site(
            kind="github",
            args=[
                *forge_args("github", gh.git.path, gh.full_name, gh.url, trust_gpg=keys.carol_asc),
                *["--github-webhook-secret", SECRET, "--interval", "300s"],
            ],
            env={"GITHUB_TOKEN": gh.token(BOT)},
            requests_for_branch=lambda: [(p.number, p.state) for p in gh.pulls.values() if p.head == BRANCH],
            url_of=lambda number: f"{gh.url}/{gh.full_name}/pull/{number}",
            hang_create=lambda then=None: gh.hang("POST", r"/pulls$", then=then),
            heal=gh.heal,
            held=lambda: gh.held,
            branch_exists=lambda: gh.git.branch(BRANCH) is not None,
            approve_and_merge=approve_and_merge,
            notify=notify,
        )
        gh.heal()
    assert not gh.problems, gh.problems


def _gitlab_site(tmp_path: Path, keys: Keys) -> Iterator[Site]:
    with running(tmp_path / "gitlab", signing_key=keys.carol.key, gnupg_home=str(keys.gnupg_signers)) as gl:
        project = "acme/approvals"

        def approve_and_merge(number: int) -> None:
            bob = gitlab.Gitlab(gl.url, private_token="bob-token", timeout=5)
            try:
                mr = bob.projects.get(project).mergerequests.get(number)
                mr.approve(sha=mr.sha)
                mr = bob.projects.get(project).mergerequests.get(number)
                mr.merge(sha=mr.sha, should_remove_source_branch=True)
            finally:
                bob.session.close()

        def notify(svc: Service) -> None:
            body = json.dumps({"object_kind": "push", "ref": "refs/heads/main"}).encode()
            headers = {"X-Gitlab-Token": "hook-secret"}
            assert requests.post(svc.url + "/hooks/gitlab", data=body, headers=headers, timeout=5).status_code == 202

        def branch_exists() -> bool:
            return (
                subprocess.run(
                    ["git", "--git-dir", str(gl.git_dir), "rev-parse", "--verify", "-q", f"refs/heads/{BRANCH}"],
                    capture_output=True,
                    check=False,
                ).returncode
                == 0
            )

        yield Site(
            kind="gitlab",
            args=[
                *forge_args("gitlab", gl.git_dir, project, gl.url, trust_gpg=keys.carol_asc, token="alice-token"),
                *["--gitlab-webhook-token", "hook-secret", "--interval", "300s"],
            ],
            env={},
            requests_for_branch=lambda: [(m.iid, m.state) for m in gl.mrs.values() if m.source_branch == BRANCH],
            url_of=lambda number: f"{gl.web_url}/-/merge_requests/{number}",
            hang_create=lambda then=None: gl.hang("POST", r"/merge_requests$", then=then),
            heal=gl.heal,
            held=lambda: gl.held,
            branch_exists=branch_exists,
            approve_and_merge=approve_and_merge,
            notify=notify,
        )
        gl.heal()


def _local_site(approvals: Approvals, keys: Keys) -> Iterator[Site]:
    forge = LocalForge(repo=approvals.remote, user="gitgate")

    def requests_for_branch() -> list[tuple[int, str]]:
        listed = subprocess.run(
            [
                "git",
                "--git-dir",
                str(approvals.remote),
                "for-each-ref",
                "--format=%(refname)",
                "refs/gitgate/requests/",
            ],
            capture_output=True,
            check=True,
        ).stdout.decode()
        found = [forge.get(int(ref.rsplit("/", 1)[1])) for ref in listed.split()]
        return [(r.number, r.state) for r in found if r.branch == BRANCH]

    yield Site(
        kind="local",
        args=["--repo", approvals.url, "--trust-ssh", str(keys.allowed_signers), "--forge", "local"],
        env={},
        requests_for_branch=requests_for_branch,
        url_of=forge.url,
    )


def _site(request: pytest.FixtureRequest, tmp_path: Path, keys: Keys) -> Iterator[Site]:
    if request.param == "github":
        yield from _github_site(tmp_path, keys, request.getfixturevalue("openapi"))
    elif request.param == "gitlab":
        yield from _gitlab_site(tmp_path, keys)
    else:
        yield from _local_site(request.getfixturevalue("approvals"), keys)


@pytest.fixture(params=["github", "gitlab", "local"])
def site(request: pytest.FixtureRequest, tmp_path: Path, keys: Keys) -> Iterator[Site]:
    yield from _site(request, tmp_path, keys)


@pytest.fixture
def remote_site(request: pytest.FixtureRequest, tmp_path: Path, keys: Keys) -> Iterator[Site]:
    """A forge reached over HTTP, where a call can be in flight when the caller dies. (The local forge
    makes a request in one process under a file lock: a process killed in the middle leaves at most a
    branch, which the next request overwrites.)"""
    yield from _site(request, tmp_path, keys)


def check(svc: Service) -> requests.Response:
    return svc.check(HOOK, NS, NAME, SUM)


def named_url(answer: requests.Response) -> str | None:
    """The request URL a 403 names ("to approve, merge <URL>"), if any."""
    assert answer.status_code == 403, answer.text
    marker = "to approve, merge "
    return answer.text.split(marker, 1)[1].split()[0] if marker in answer.text else None


def start_all(services: list[Service]) -> None:
    with ThreadPoolExecutor(len(services)) as pool:
        list(pool.map(lambda s: s.start(), services))


# --- N replicas x M concurrent denied checks ----------------------------------------------------------


def test_replicas_hammered_with_denied_checks_open_exactly_one_request(site: Site, tmp_path: Path) -> None:
    replicas = [site.serve(tmp_path, f"replica-{i}") for i in range(REPLICAS)]
    try:
        start_all(replicas)
        go = threading.Barrier(REPLICAS * CHECKS)

        def hammer(svc: Service) -> int:
            go.wait(timeout=30)
            return check(svc).status_code

        with ThreadPoolExecutor(REPLICAS * CHECKS) as pool:
            statuses = list(pool.map(hammer, [svc for svc in replicas for _ in range(CHECKS)]))
        assert statuses == [403] * (REPLICAS * CHECKS)

        urls = [wait_for(lambda svc=svc: named_url(check(svc)), timeout=30) for svc in replicas]
        [(number, state)] = site.requests_for_branch()  # one request, ever: no duplicate, none closed
        assert state in ("open", "opened")
        assert urls == [site.url_of(number)] * REPLICAS
        for svc in replicas:
            [item] = svc.status()["requests"]
            assert (item["state"], item["number"]) == ("opened", number)
    finally:
        for svc in replicas:
            svc.stop()


# --- kill -9 while opening a request ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote_site", "forge_made_it"),
    # GitHub: killed between the branch and the pull request, which the forge never made (the restart
    # must reuse the branch). GitLab: the forge made the merge request but the answer never arrived
    # (the restart must find it). Each pair costs the suite seconds (GitHub's client is throttled).
    [("github", False), ("gitlab", True)],
    ids=["github-create-call-lost", "gitlab-create-call-done"],
    indirect=["remote_site"],
)
def test_a_service_killed_while_opening_a_request_leaves_exactly_one(
    remote_site: Site, tmp_path: Path, forge_made_it: bool
) -> None:
    site = remote_site
    # The forge holds the call that creates the pull/merge request: the branch is made, the request not yet.
    site.hang_create(then=None if forge_made_it else 502)
    svc = site.serve(tmp_path, "st").start()
    try:
        assert named_url(check(svc)) is None
        wait_for(lambda: site.held() == 1, timeout=20)
        assert site.branch_exists()
        svc.stop(kill=True)  # SIGKILL, mid-request
        site.heal()  # the forge now finishes (or drops) the call of a process that is gone
        if forge_made_it:
            wait_for(site.requests_for_branch, timeout=10)
        else:
            wait_for(lambda: site.held() == 0, timeout=10)
            assert site.requests_for_branch() == []

        svc = site.serve(tmp_path, "st").start()  # the same state dir: a restarted pod
        assert named_url(check(svc)) in (None, *[site.url_of(n) for n, _ in site.requests_for_branch()])
        url = wait_for(lambda: named_url(check(svc)), timeout=30)
        [(number, state)] = site.requests_for_branch()
        assert state in ("open", "opened") and url == site.url_of(number)
        assert check(svc).status_code == 403  # unchanged: closed until the request is merged

        site.approve_and_merge(number)
        site.notify(svc)
        wait_for(lambda: check_status(svc) == 200, timeout=10)
        [(_, state)] = site.requests_for_branch()
        assert state in {"merged", "closed"}
    finally:
        svc.stop()


def check_status(svc: Service) -> int:
    return check(svc).status_code

"""Attacks on gitgate, end to end: a real `gitgate serve`, real git, real SSH and GPG keys, and
stateful fakes of GitHub and GitLab where a forge is needed. docs/security.md maps every threat of its
threat model to a test; the ones not shown elsewhere are here.

Each test asks the service what Flagger would get for every probe (three canaries x every hook
endpoint x two checksums) before an attack, tries the attack, and asserts that every answer --
status, body and X-Gitgate-Commit -- is exactly what it was. Where a test ends with a legitimate
change, that change is shown to move the answers, so the probes can see what an attack would do.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gitlab
import pytest
import requests
from fakes.github import FakeGitHub, GitHubOpenAPI
from fakes.gitlab import running
from github import GithubException
from helpers import Approvals, Keys, Service, Signer, forge_args, free_port, gate_yaml, sh, wait_for
from test_forge_github import BOT, approve, as_user, merge, push_to_branch
from test_webhooks import VECTOR

from gitgate.forges.base import ForgeError
from gitgate.forges.github import GitHubForge
from gitgate.forges.gitlab import GitLabForge
from gitgate.forges.local import LocalForge
from gitgate.model import CanaryRef, Hook
from gitgate.request import RequestRef, RequestSpec

pytestmark = pytest.mark.slow

CANARIES = [("test", "podinfo"), ("test", "frontend"), ("prod", "backend")]
ENDPOINTS = {
    "gate": "/gate/check",
    "confirm-rollout": "/gate/check/confirm-rollout",
    "confirm-traffic-increase": "/gate/check/confirm-traffic-increase",
    "confirm-promotion": "/gate/check/confirm-promotion",
    "rollback": "/rollback/check",
}
CHECKSUMS = ("c1", "c2")
GITHUB_SECRET = "s3cret-of-the-attack-tests"
SLOW = 20.0  # upper bound for the service to react on a busy 2-core machine; never asserted as a speed

Answers = dict[str, tuple[int, str, str]]


# --- the repo every attack starts from ------------------------------------------------------------


def baseline_files() -> dict[str, str]:
    """podinfo: promotion of c1 approved. frontend: default open, rollback of c1 approved.
    backend: every confirm-* hook of c2 approved. Everything else is closed."""
    return {
        "gates/test/podinfo.yaml": gate_yaml(
            "test", "podinfo", approvals=[{"hook": "confirm-promotion", "checksum": "c1"}]
        ),
        "gates/test/frontend.yaml": gate_yaml(
            "test", "frontend", default="open", approvals=[{"hook": "rollback", "checksum": "c1"}]
        ),
        "gates/prod/backend.yaml": gate_yaml("prod", "backend", approvals=[{"hook": "*", "checksum": "c2"}]),
    }


def open_everything_files() -> dict[str, str]:
    """What an attacker wants: every hook of every canary open, rollback included."""
    return {
        f"gates/{ns}/{name}.yaml": gate_yaml(
            ns, name, default="open", approvals=[{"hook": "*", "checksum": "*"}, {"hook": "rollback", "checksum": "*"}]
        )
        for ns, name in CANARIES
    }


def write_files(approvals: Approvals, files: dict[str, str]) -> None:
    for path, text in files.items():
        approvals.write(path, text)


# --- what Flagger would get -------------------------------------------------------------------------


def answers(svc: Service) -> Answers:
    """Every probe's answer: status, body and the commit answered from."""
    out: Answers = {}
    with requests.Session() as session:
        for ns, name in CANARIES:
            for hook, path in ENDPOINTS.items():
                for checksum in CHECKSUMS:
                    body = {"name": name, "namespace": ns, "checksum": checksum, "phase": "Progressing"}
                    resp = session.post(svc.url + path, json=body, timeout=5)
                    out[f"{ns}/{name} {hook} {checksum}"] = (
                        resp.status_code,
                        resp.text.strip(),
                        resp.headers.get("X-Gitgate-Commit", ""),
                    )
    return out


def opened(ans: Answers) -> set[str]:
    return {probe for probe, (status, _, _) in ans.items() if status == 200}


BASELINE_OPEN = {
    "test/podinfo confirm-promotion c1",
    *(f"test/frontend {hook} {c}" for hook in ENDPOINTS if hook != "rollback" for c in CHECKSUMS),
    "test/frontend rollback c1",
    *(f"prod/backend {hook} c2" for hook in ENDPOINTS if hook != "rollback"),
}
EVERYTHING = {f"{ns}/{name} {hook} {c}" for ns, name in CANARIES for hook in ENDPOINTS for c in CHECKSUMS}


def nudge(svc: Service) -> None:
    """Reconcile now (what `gitgate approve --notify` does); the service still verifies what it fetches."""
    assert requests.post(svc.url + "/hooks/local", timeout=5).status_code == 202


def outcome(svc: Service, commit: str) -> dict[str, Any]:
    """Reconcile now and wait until `commit` is served ({"kind": "served"}) or refused (its refusal)."""
    nudge(svc)

    def seen() -> dict[str, Any] | None:
        status = svc.status()
        if status["serving"] == commit:
            return {"kind": "served", "reason": f"{commit[:12]} is served", "commit": commit}
        return next((r for r in status["refused"] if r["commit"] == commit), None)

    found: dict[str, Any] = wait_for(seen, timeout=SLOW)
    return found


def serving(svc: Service, commit: str) -> None:
    found = outcome(svc, commit)
    assert found["kind"] == "served", found


def refused_and_unchanged(svc: Service, commit: str, before: Answers, what: str, kind: str, *words: str) -> None:
    """The one assertion of this file: the attack's commit is refused for the expected reason, and
    every answer is exactly what it was."""
    refusal = outcome(svc, commit)
    assert refusal["kind"] == kind, (what, refusal)
    for word in words:
        assert word in refusal["reason"], (what, word, refusal)
    assert answers(svc) == before, what


Serve = Callable[..., Service]


@pytest.fixture
def serve(approvals: Approvals, keys: Keys, tmp_path: Path) -> Iterator[Serve]:
    """`gitgate serve` on the approvals remote, trusting alice (SSH); it fetches only when nudged."""
    started: list[Service] = []

    def start(*extra: str, env: dict[str, str] | None = None) -> Service:
        args = [
            "--repo",
            approvals.url,
            "--trust-ssh",
            str(keys.allowed_signers),
            "--state-dir",
            str(tmp_path / f"state-{len(started)}"),
            "--interval",
            "300s",
            *extra,
        ]
        svc = Service(args, tmp_path / "run", env=env)
        started.append(svc)
        return svc.start()

    yield start
    for svc in started:
        svc.stop()


@pytest.fixture
def base(approvals: Approvals, keys: Keys) -> str:
    write_files(approvals, baseline_files())
    return approvals.land("three canaries and their gates", keys.alice)


def reset_to(approvals: Approvals, commit: str) -> None:
    approvals.git("reset", "-q", "--hard", commit)


def commit_as(approvals: Approvals, signer: Signer, message: str, **ident: str) -> str:
    """A commit whose author and committer say whatever `ident` says (GIT_AUTHOR_NAME=...)."""
    approvals.git("add", "-A")
    sh(
        "git",
        *signer.git_args(),
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        message,
        cwd=approvals.work,
        env={**signer.env(), **ident},
    )
    return approvals.head()


def write_commit_object(approvals: Approvals, raw: str) -> str:
    sha = sh("git", "hash-object", "-t", "commit", "-w", "--stdin", cwd=approvals.work, stdin=raw.encode()).strip()
    approvals.git("update-ref", "refs/heads/main", sha)
    reset_to(approvals, sha)
    return sha


# --- signatures -----------------------------------------------------------------------------------


def test_commits_without_a_trusted_signature_change_no_answer(
    approvals: Approvals, keys: Keys, base: str, serve: Serve
) -> None:
    # The service's own GNUPGHOME holds (and ultimately trusts) dave's key: it must not count.
    svc = serve("--trust-gpg", str(keys.carol_asc), env={"GNUPGHOME": str(keys.gnupg_signers)})
    before = answers(svc)
    assert opened(before) == BASELINE_OPEN

    def open_everything(signer: Signer) -> str:
        reset_to(approvals, base)
        write_files(approvals, open_everything_files())
        return approvals.commit("open every gate", signer)

    def alices_signature_over_another_tree() -> str:
        """alice signs a harmless commit; the attacker swaps in the tree that opens everything."""
        reset_to(approvals, base)
        approvals.write("README.md", "typo fixed\n")
        harmless = approvals.commit("fix a typo", keys.alice)
        write_files(approvals, open_everything_files())
        approvals.git("add", "-A")
        evil_tree = approvals.git("write-tree").strip()
        raw = approvals.git("cat-file", "commit", harmless)
        assert "gpgsig" in raw
        return write_commit_object(approvals, raw.replace(raw.split("\n", 1)[0], f"tree {evil_tree}", 1))

    def alices_key_signing_for_another_namespace() -> str:
        """A signature alice's key made for another purpose (ssh-keygen -Y sign -n file)."""
        unsigned = open_everything(keys.nobody)
        raw = approvals.git("cat-file", "commit", unsigned)
        signature = sh("ssh-keygen", "-q", "-Y", "sign", "-f", keys.alice.key, "-n", "file", stdin=raw.encode())
        header, _, message = raw.partition("\n\n")
        folded = "\n ".join(signature.strip().splitlines())
        return write_commit_object(approvals, f"{header}\ngpgsig {folded}\n\n{message}")

    def unsigned_under_a_signed_head() -> str:
        open_everything(keys.nobody)
        approvals.write("README.md", "signed on top\n")
        return approvals.commit("a signed commit on top", keys.alice)

    cases: list[tuple[str, Callable[[], str], list[str]]] = [
        ("unsigned", lambda: open_everything(keys.nobody), ["not signed"]),
        ("SSH key not in allowed_signers", lambda: open_everything(keys.mallory), ["not in the trust roots"]),
        ("GPG key trusted in the service's GNUPGHOME", lambda: open_everything(keys.dave), ["trust roots"]),
        ("alice's signature over another tree", alices_signature_over_another_tree, ["bad signature"]),
        ("alice's key, signature for namespace 'file'", alices_key_signing_for_another_namespace, []),
        ("unsigned commit under a signed head", unsigned_under_a_signed_head, ["not signed", "on the way to"]),
    ]
    for what, make, words in cases:
        bad = make()
        approvals.push(force=True)
        refused_and_unchanged(svc, bad, before, what, "signature", *words)
    assert svc.status()["verified"]["commit"] == base

    # The same change signed by a trust root is taken: the probes see what the attacks would have done.
    good = open_everything(keys.carol)
    approvals.push(force=True)
    serving(svc, good)
    assert opened(answers(svc)) == EVERYTHING


def test_author_and_committer_do_not_matter_the_status_shows_the_real_signer(
    approvals: Approvals, keys: Keys, base: str, serve: Serve
) -> None:
    svc = serve()
    before = answers(svc)
    alice = {
        "GIT_AUTHOR_NAME": "Alice",
        "GIT_AUTHOR_EMAIL": "alice@example.test",
        "GIT_COMMITTER_NAME": "Alice",
        "GIT_COMMITTER_EMAIL": "alice@example.test",
    }
    # mallory's key, alice's name on author and committer: refused.
    write_files(approvals, open_everything_files())
    posing = commit_as(approvals, keys.mallory, "approved by alice", **alice)
    assert approvals.git("log", "-1", "--format=%an <%ae> / %cn <%ce>", posing).strip() == (
        "Alice <alice@example.test> / Alice <alice@example.test>"
    )
    approvals.push()
    refused_and_unchanged(svc, posing, before, "mallory posing as alice", "signature", "not in the trust roots")

    # alice's key with someone else's name: taken, and credited to alice's key, not to the name.
    reset_to(approvals, base)
    approvals.approve("test", "podinfo", "confirm-promotion", "c2")
    disguised = commit_as(
        approvals,
        keys.alice,
        "approved by carol",
        GIT_AUTHOR_NAME="Carol",
        GIT_AUTHOR_EMAIL="carol@example.test",
        GIT_COMMITTER_NAME="GitHub",
        GIT_COMMITTER_EMAIL="noreply@github.com",
    )
    approvals.push(force=True)
    serving(svc, disguised)
    signer = svc.status()["verified"]["signer"]
    fingerprint = sh("ssh-keygen", "-lf", f"{keys.alice.key}.pub").split()[1]
    assert signer == f"alice@example.test ({fingerprint})"
    assert "arol" not in signer and "GitHub" not in signer
    page = requests.get(svc.url + "/", timeout=5).text
    assert "alice@example.test" in page
    assert opened(answers(svc)) == BASELINE_OPEN | {"test/podinfo confirm-promotion c2"}


# --- rewrites ---------------------------------------------------------------------------------------


def test_force_push_reset_and_rewritten_history_change_no_answer(
    approvals: Approvals, keys: Keys, base: str, serve: Serve
) -> None:
    approvals.write("README.md", "notes\n")
    verified = approvals.land("notes", keys.alice)
    svc = serve()
    before = answers(svc)
    assert before["test/podinfo gate c1"][2] == verified

    def reset_to_an_older_verified_commit() -> str:
        reset_to(approvals, base)
        return base

    def amended_by_a_trusted_signer() -> str:
        reset_to(approvals, base)
        write_files(approvals, open_everything_files())
        return approvals.commit("notes, amended", keys.alice)

    def a_new_root_signed_by_a_trusted_signer() -> str:
        approvals.git("checkout", "-q", "--orphan", "rewritten")
        approvals.git("rm", "-rq", "--cached", ".")
        write_files(approvals, open_everything_files())
        sha = approvals.commit("history, started over", keys.alice)
        approvals.git("checkout", "-q", "-B", "main", sha)
        return sha

    def a_merge_keeping_the_verified_commit_as_second_parent() -> str:
        """The verified commit is still an ancestor, but the first-parent history is new and unsigned."""
        approvals.git("checkout", "-q", "--orphan", "side")
        approvals.git("rm", "-rq", "--cached", ".")
        write_files(approvals, open_everything_files())
        unsigned = approvals.commit("new history", keys.nobody)
        approvals.git("checkout", "-q", "-B", "main", unsigned)
        approvals.git("merge", "-q", "--allow-unrelated-histories", "-s", "ours", "-m", "keep it", verified)
        approvals.git("commit", "-q", "--amend", "--no-edit", signer=keys.alice)
        return approvals.head()

    cases: list[tuple[str, Callable[[], str], str, list[str]]] = [
        ("reset to an older verified commit", reset_to_an_older_verified_commit, "rewrite", ["rewritten"]),
        ("amended by a trusted signer", amended_by_a_trusted_signer, "rewrite", ["rewritten", verified[:12]]),
        ("a new root signed by a trusted signer", a_new_root_signed_by_a_trusted_signer, "rewrite", ["rewritten"]),
        ("merge over new unsigned history", a_merge_keeping_the_verified_commit_as_second_parent, "signature", []),
    ]
    for what, make, kind, words in cases:
        bad = make()
        approvals.push(force=True)
        refused_and_unchanged(svc, bad, before, what, kind, *words)

    # The branch deleted: a fetch failure, not an answer.
    sh("git", "--git-dir", approvals.remote, "update-ref", "-d", "refs/heads/main")
    nudge(svc)
    wait_for(lambda: svc.status()["last_fetch"]["error"], timeout=SLOW)
    assert answers(svc) == before
    # ... and created again from a history that does not hold the verified commit.
    reset_to(approvals, base)
    approvals.write("README.md", "recreated\n")
    recreated = approvals.commit("recreated", keys.alice)
    approvals.push()
    refused_and_unchanged(svc, recreated, before, "branch deleted and recreated", "rewrite", "rewritten")
    assert svc.status()["verified"]["commit"] == verified


# --- approvals that do not fit ---------------------------------------------------------------------


def test_approvals_open_only_their_own_canary_hook_and_checksum_until_they_expire(
    approvals: Approvals, keys: Keys, base: str, serve: Serve
) -> None:
    svc = serve()
    now = answers(svc)
    assert opened(now) == BASELINE_OPEN

    def land(what: str, change: Callable[[], None]) -> set[str]:
        """Land a signed change; return the probes it opened (it closes none here)."""
        nonlocal now
        change()
        sha = approvals.land(what, keys.alice)
        serving(svc, sha)
        after = answers(svc)
        assert opened(now) <= opened(after), what
        newly = opened(after) - opened(now)
        now = after
        return newly

    podinfo = "test/podinfo"
    assert land("another checksum", lambda: approvals.approve("test", "podinfo", "confirm-promotion", "c9")) == set()
    assert (
        land("checksum in capitals", lambda: approvals.approve("test", "podinfo", "confirm-promotion", "C2")) == set()
    )
    assert land("same name, other namespace", lambda: approvals.approve("prod", "podinfo", "*", "*")) == set()
    assert land("another hook", lambda: approvals.approve("test", "podinfo", "confirm-rollout", "c2")) == {
        f"{podinfo} confirm-rollout c2"
    }
    # "*" stands for every confirm-* hook (and the load tester's one gate), never for rollback.
    assert land("any hook", lambda: approvals.approve("test", "podinfo", "*", "c2")) == {
        f"{podinfo} gate c2",
        f"{podinfo} confirm-traffic-increase c2",
        f"{podinfo} confirm-promotion c2",
    }
    expired = {"expires": "2020-01-01T00:00:00Z"}
    assert land("expired", lambda: approvals.approve("test", "podinfo", "rollback", "c2", **expired)) == set()
    assert "its approval expired" in now[f"{podinfo} rollback c2"][1]

    # An approval in podinfo's file that claims another canary: the whole commit is refused.
    before = now
    text = (approvals.work / "gates/test/podinfo.yaml").read_text().replace("namespace: test", "namespace: prod")
    approvals.write("gates/test/podinfo.yaml", text)
    claims = approvals.land("podinfo's file claims prod/podinfo", keys.alice)
    refused_and_unchanged(svc, claims, before, "file claims another canary", "invalid", "gates/test/podinfo.yaml")

    # An approval that expires while the service runs stops counting by itself, with no new commit.
    reset_to(approvals, before["test/podinfo gate c1"][2])
    soon = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    approvals.approve("prod", "backend", "rollback", "c2", expires=soon)
    sha = approvals.commit("roll back backend for a moment", keys.alice)
    approvals.push(force=True)
    serving(svc, sha)
    probe = {"name": "backend", "namespace": "prod", "checksum": "c2"}

    def expired_now() -> tuple[str, str] | None:
        resp = requests.post(svc.url + "/rollback/check", json=probe, timeout=5)
        expired = resp.status_code == 403 and "its approval expired" in resp.text
        return (resp.text, resp.headers["X-Gitgate-Commit"]) if expired else None

    _, commit = wait_for(expired_now, timeout=SLOW)
    assert commit == sha  # closed by the clock alone, at the very commit that approved it


# --- replaying a revoked approval -------------------------------------------------------------------


def test_a_revoked_approval_cannot_be_replayed(approvals: Approvals, keys: Keys, base: str, serve: Serve) -> None:
    svc = serve("--forge", "local", "--require-approvals", "1", "--no-request-on-deny")
    bot = LocalForge(repo=approvals.remote, user="gitgate")
    bob = LocalForge(repo=approvals.remote, user="bob@example.test")
    podinfo_c2 = RequestSpec(CanaryRef("test", "podinfo"), Hook.CONFIRM_PROMOTION, "c2")

    def merged_request(spec: RequestSpec) -> tuple[int, str]:
        ref = bot.open_request(spec, gates_path="gates", now=datetime.now(UTC))
        merge = bob.approve(ref.number, signing_key=Path(keys.alice.key), now=datetime.now(UTC))
        serving(svc, merge)
        return ref.number, merge

    number, approving = merged_request(podinfo_c2)
    # A request's change drops the hook's approvals bound to other checksums: c1's goes.
    approved = BASELINE_OPEN - {"test/podinfo confirm-promotion c1"}
    assert opened(answers(svc)) == approved | {"test/podinfo confirm-promotion c2"}
    _, revoking = merged_request(RequestSpec(podinfo_c2.canary, podinfo_c2.hook, "c2", revoke=True))
    before = answers(svc)
    assert opened(before) == approved

    # 1. Point the branch back at the approving merge: a rewrite of what was verified after it.
    approvals.git("fetch", "-q", "origin")
    approvals.git("push", "-q", "--force", "origin", f"{approving}:refs/heads/main")
    refused_and_unchanged(svc, approving, before, "force-push to the approving commit", "rewrite", "rewritten")

    # 2. A new signed commit that reverts the revocation: a new change, so it needs its own review.
    approvals.git("push", "-q", "--force", "origin", f"{revoking}:refs/heads/main")
    reset_to(approvals, revoking)
    approvals.git("revert", "--no-edit", "-m", "1", revoking, signer=keys.alice)
    revert = approvals.head()
    assert approvals.git("show", f"{revert}:gates/test/podinfo.yaml") == approvals.git(
        "show", f"{approving}:gates/test/podinfo.yaml"
    )
    approvals.push()
    refused_and_unchanged(svc, revert, before, "revert of the revocation", "review", "bypassing review")

    # 3. The approving merge's tree committed again on top.
    approved_tree = approvals.git("rev-parse", f"{approving}^{{tree}}").strip()
    replayed = sh(
        "git",
        *keys.alice.git_args(),
        "commit-tree",
        "-S",
        approved_tree,
        "-p",
        revert,
        "-m",
        "replay",
        cwd=approvals.work,
    ).strip()
    approvals.git("push", "-q", "origin", f"{replayed}:refs/heads/main")
    refused_and_unchanged(svc, replayed, before, "the approving tree again", "review", "bypassing review")

    # 4. The merged request approved a second time.
    with pytest.raises(ForgeError, match="is merged, not open"):
        bob.approve(number, signing_key=Path(keys.alice.key), now=datetime.now(UTC))
    assert answers(svc) == before


# --- review ------------------------------------------------------------------------------------------


@pytest.fixture
def fake_github(tmp_path: Path, keys: Keys, openapi: GitHubOpenAPI) -> Iterator[FakeGitHub]:
    """acme/approvals on a fake GitHub whose web-flow key is carol's; the baseline gates pushed."""
    gh = FakeGitHub(tmp_path / "github", web_flow_key=keys.carol.key, gnupg_home=keys.carol.gnupg_home, openapi=openapi)
    for login in (BOT, "bob", "erin"):
        gh.add_user(login, permission="write")
    with gh:
        for path, text in baseline_files().items():
            gh.push_to_base(path, text, signed=True)
        yield gh
    assert not gh.problems, gh.problems


def serve_github(fake: FakeGitHub, keys: Keys, tmp_path: Path) -> Service:
    args = forge_args("github", fake.git.path, fake.full_name, fake.url, trust_gpg=keys.carol_asc)
    args += [
        "--state-dir",
        str(tmp_path / "st"),
        "--require-approvals",
        "1",
        "--no-request-on-deny",
        "--interval",
        "300s",
    ]
    return Service(args, tmp_path, env={"GITHUB_TOKEN": fake.token(BOT)}).start()


def bot_request(
    fake: FakeGitHub, canary: tuple[str, str], checksum: str, hook: Hook = Hook.CONFIRM_PROMOTION
) -> RequestRef:
    """A request as gitgate opens it (the service is told not to, so the probes open none)."""
    forge = GitHubForge(
        repo=fake.full_name,
        token=fake.token(BOT),
        api_url=fake.url,
        seconds_between_requests=0,
        seconds_between_writes=0,
        timeout=5,
        retries=1,
    )
    try:
        spec = RequestSpec(CanaryRef(*canary), hook, checksum)
        return forge.open_request(spec, gates_path="gates", now=datetime.now(UTC))
    finally:
        forge.close()


def test_merges_that_bypassed_review_change_no_answer(fake_github: FakeGitHub, keys: Keys, tmp_path: Path) -> None:
    fake = fake_github
    svc = serve_github(fake, keys, tmp_path)
    try:
        before = answers(svc)
        assert opened(before) == BASELINE_OPEN
        verified = fake.head()
        backend_open = gate_yaml("prod", "backend", default="open", approvals=[{"hook": "rollback", "checksum": "*"}])

        def drop(bad: str) -> None:
            """Recover as an admin would: drop the refused commit (it was never verified)."""
            assert fake.git.update_ref("refs/heads/main", verified, bad)

        # An admin's push straight to main, signed by GitHub's web-flow key: the policy made open.
        policy = "apiVersion: gitgate/v1\nkind: Policy\nspec:\n  default: open\n"
        pushed = fake.push_to_base("gitgate.yaml", policy, signed=True)
        refused_and_unchanged(svc, pushed, before, "admin push of gitgate.yaml", "review", "bypassing review")
        drop(pushed)

        # Approved by bob, then another canary's gate pushed onto the request, then merged.
        request = bot_request(fake, ("test", "podinfo"), "c2")
        approve(fake, request.number, "bob")
        push_to_branch(fake, request.branch, "gates/prod/backend.yaml", backend_open)
        stale = merge(fake, request.number, "bob")
        refused_and_unchanged(
            svc, stale, before, "approval before a later push", "review", "given before a later push do not count (bob)"
        )
        drop(stale)

        # erin's own pull request: GitHub refuses her approval, and she merges it anyway.
        tip = fake.head()
        tree = fake.git.tree(
            fake.git.read_commit(tip)["tree"],
            [("gates/prod/backend.yaml", "100644", fake.git.blob(backend_open.encode()))],
        )
        erin = ("erin", "erin@example.test", f"{int(time.time())} +0000")
        fake.git.update_ref(
            "refs/heads/erin-backend", fake.git.commit(tree, [tip], "open backend\n", author=erin, committer=erin), None
        )
        with as_user(fake, "erin") as gh:
            pull = gh.get_repo(fake.full_name).create_pull(
                base="main", head="erin-backend", title="open backend", body=""
            )
            with pytest.raises(GithubException, match="Can not approve your own pull request"):
                pull.create_review(event="APPROVE")
        unreviewed = merge(fake, pull.number, "erin")
        refused_and_unchanged(svc, unreviewed, before, "merged without approval", "review", "0 of 1 required")
        drop(unreviewed)

        # A request approved by someone else on its final head is taken.
        good = bot_request(fake, ("test", "podinfo"), "c2", Hook.CONFIRM_ROLLOUT)
        approve(fake, good.number, "bob")
        serving(svc, merge(fake, good.number, "bob"))
        assert opened(answers(svc)) == BASELINE_OPEN | {"test/podinfo confirm-rollout c2"}
    finally:
        svc.stop()


def test_a_reviewer_cannot_approve_commits_they_pushed_onto_a_request(
    fake_github: FakeGitHub, keys: Keys, tmp_path: Path
) -> None:
    """gitgate's requests are authored by its bot: a writer pushes another canary's gate onto one,
    approves the final head and merges. Approvals by whoever added commits do not count."""
    fake = fake_github
    svc = serve_github(fake, keys, tmp_path)
    try:
        before = answers(svc)
        verified = fake.head()
        request = bot_request(fake, ("test", "podinfo"), "c2")
        backend_open = gate_yaml("prod", "backend", default="open", approvals=[{"hook": "rollback", "checksum": "*"}])
        push_to_branch(fake, request.branch, "gates/prod/backend.yaml", backend_open)  # erin's commit
        approve(fake, request.number, "erin")  # on the final head, which erin wrote
        merged = merge(fake, request.number, "erin")
        refused_and_unchanged(
            svc,
            merged,
            before,
            "erin approves her own push",
            "review",
            "0 of 1 required",
            "approvals by people who added commits to the request do not count (erin)",
        )
        assert fake.git.update_ref("refs/heads/main", verified, merged)  # an admin drops the refused merge

        # The same push approved by someone who added nothing is taken, and opens what it says (the
        # request moves podinfo's promotion approval from c1 to c2).
        again = bot_request(fake, ("test", "podinfo"), "c2")
        push_to_branch(fake, again.branch, "gates/prod/backend.yaml", backend_open)
        approve(fake, again.number, "bob")
        serving(svc, merge(fake, again.number, "bob"))
        assert opened(answers(svc)) == (BASELINE_OPEN - {"test/podinfo confirm-promotion c1"}) | {
            "test/podinfo confirm-promotion c2",
            *(f"prod/backend {hook} {c}" for hook in ENDPOINTS for c in CHECKSUMS),
        }
    finally:
        svc.stop()


def test_a_reviewer_cannot_approve_commits_they_pushed_onto_a_merge_request(tmp_path: Path, keys: Keys) -> None:
    """The same on GitLab, whose default lets committers approve: dave pushes onto the bot's request,
    approves it, bob merges."""
    with running(tmp_path / "gitlab", signing_key=keys.carol.key, gnupg_home=str(keys.gnupg_signers)) as fake:
        project = "acme/approvals"
        clients = {u: gitlab.Gitlab(fake.url, private_token=f"{u}-token", timeout=5) for u in ("carol", "dave", "bob")}
        actions = [{"action": "create", "file_path": p, "content": t} for p, t in baseline_files().items()]
        clients["carol"].projects.get(project).commits.create(
            {"branch": "main", "commit_message": "gates", "actions": actions}
        )
        forge = GitLabForge(project=project, token="alice-token", api_url=fake.url, timeout=5)
        args = forge_args("gitlab", fake.git_dir, project, fake.url, trust_gpg=keys.carol_asc, token="alice-token")
        args += ["--state-dir", str(tmp_path / "st")]
        svc = Service([*args, "--require-approvals", "1", "--no-request-on-deny", "--interval", "300s"], tmp_path)
        svc.start()
        try:
            before = answers(svc)
            spec = RequestSpec(CanaryRef("test", "podinfo"), Hook.CONFIRM_PROMOTION, "c2")
            request = forge.open_request(spec, gates_path="gates", now=datetime.now(UTC))
            change = {
                "action": "update",
                "file_path": "gates/prod/backend.yaml",
                "content": open_everything_files()["gates/prod/backend.yaml"],
            }
            dave = clients["dave"].projects.get(project)
            dave.commits.create({"branch": request.branch, "commit_message": "open backend", "actions": [change]})
            mr = dave.mergerequests.get(request.number)
            mr.approve(sha=mr.sha)  # dave approves the head he pushed; this GitLab allows it
            mr = clients["bob"].projects.get(project).mergerequests.get(request.number)
            mr.merge(sha=mr.sha)
            merged = fake.rev("main")
            assert merged is not None
            refused_and_unchanged(
                svc,
                merged,
                before,
                "dave approves his own push on GitLab",
                "review",
                "approvals by people who added commits to the request do not count (dave)",
            )
        finally:
            svc.stop()
            forge.close()
            for client in clients.values():
                client.session.close()


def test_a_self_approval_the_forge_allows_is_refused(tmp_path: Path, keys: Keys) -> None:
    """GitLab lets authors approve their own merge requests unless told not to; gitgate never counts it."""
    with running(
        tmp_path / "gitlab", signing_key=keys.carol.key, gnupg_home=str(keys.gnupg_signers), author_approval=True
    ) as fake:
        as_carol = gitlab.Gitlab(fake.url, private_token="carol-token", timeout=5)
        as_dave = gitlab.Gitlab(fake.url, private_token="dave-token", timeout=5)
        as_bob = gitlab.Gitlab(fake.url, private_token="bob-token", timeout=5)
        project = "acme/approvals"
        actions = [{"action": "create", "file_path": p, "content": t} for p, t in baseline_files().items()]
        as_carol.projects.get(project).commits.create({"branch": "main", "commit_message": "gates", "actions": actions})
        args = forge_args("gitlab", fake.git_dir, project, fake.url, trust_gpg=keys.carol_asc, token="alice-token")
        args += ["--state-dir", str(tmp_path / "st"), "--require-approvals", "1", "--no-request-on-deny"]
        svc = Service([*args, "--interval", "300s"], tmp_path).start()
        try:
            before = answers(svc)
            change = {
                "action": "update",
                "file_path": "gates/prod/backend.yaml",
                "content": open_everything_files()["gates/prod/backend.yaml"],
            }
            dave_project = as_dave.projects.get(project)
            dave_project.commits.create(
                {
                    "branch": "dave-backend",
                    "start_branch": "main",
                    "commit_message": "open backend",
                    "actions": [change],
                }
            )
            mr = dave_project.mergerequests.create(
                {"source_branch": "dave-backend", "target_branch": "main", "title": "open backend"}
            )
            mr.approve(sha=mr.sha)  # dave approves his own merge request; this GitLab allows it
            mr = as_bob.projects.get(project).mergerequests.get(mr.iid)
            mr.merge(sha=mr.sha)
            merged = fake.rev("main")
            assert merged is not None
            refused_and_unchanged(
                svc,
                merged,
                before,
                "self-approved on GitLab",
                "review",
                "the author dave cannot approve their own request",
            )
        finally:
            svc.stop()
            for client in (as_carol, as_dave, as_bob):
                client.session.close()


# --- policy and trust through the repo --------------------------------------------------------------


def test_the_repo_cannot_add_signers_or_move_where_gates_are_read(
    approvals: Approvals, keys: Keys, base: str, serve: Serve, tmp_path: Path
) -> None:
    svc = serve()
    mallory_pub = Path(f"{keys.mallory.key}.pub").read_text().split()
    signer_line = f'mallory@example.test namespaces="git" {mallory_pub[0]} {mallory_pub[1]}\n'
    # alice (trusted) commits mallory's key wherever a trust file might be looked for: files outside
    # the gates folder are never read, so the commit is taken and changes nothing.
    for path in ("allowed_signers", ".gitgate/trust/allowed_signers", ".ssh/allowed_signers", "trust/mallory.asc"):
        approvals.write(path, signer_line)
    approvals.write(".gitconfig", '[gpg "ssh"]\n\tallowedSignersFile = allowed_signers\n')
    approvals.write(".mailmap", "Alice <alice@example.test> <mallory@example.test>\n")
    planted = approvals.land("trust mallory too", keys.alice)
    serving(svc, planted)
    before = answers(svc)
    assert opened(before) == BASELINE_OPEN

    write_files(approvals, open_everything_files())
    mallory = approvals.commit("open every gate", keys.mallory)
    approvals.push()
    refused_and_unchanged(svc, mallory, before, "mallory after planting her key", "signature", "not in the trust roots")

    # Inside the gates folder, a stray file refuses the commit.
    reset_to(approvals, planted)
    approvals.write("gates/allowed_signers", signer_line)
    stray = approvals.commit("a signer file among the gates", keys.alice)
    approvals.push(force=True)
    refused_and_unchanged(svc, stray, before, "signer file under gates/", "invalid", "gates/allowed_signers")

    # The gates folder made a link to a folder of open gates (or to anything outside the repo).
    reset_to(approvals, planted)
    write_files(approvals, {p.replace("gates/", "elsewhere/", 1): t for p, t in open_everything_files().items()})
    approvals.git("rm", "-rq", "gates")
    (approvals.work / "gates").symlink_to("elsewhere")
    linked = approvals.commit("gates -> elsewhere", keys.alice)
    approvals.push(force=True)
    refused_and_unchanged(svc, linked, before, "gates folder as a symlink", "invalid", "not a folder")

    # --path cannot leave the repo.
    for path in ("..", "gates/../../etc"):  # and "../etc" in test_cli.py
        proc = subprocess.run(
            [sys.executable, "-m", "gitgate", "serve", "--repo", approvals.url, "--path", path, "--verify", "off"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 2, (path, proc.stderr)
        assert "name a folder inside the repo" in proc.stderr, (path, proc.stderr)
    assert answers(svc) == before


def test_a_retired_ssh_key_cannot_sign_backdated_commits(approvals: Approvals, keys: Keys, tmp_path: Path) -> None:
    """allowed_signers may retire a key with valid-before, but git checks that against the commit's
    own date, which the signer writes: a backdated commit by the retired key verifies as good."""
    mallory_pub = Path(f"{keys.mallory.key}.pub").read_text().split()
    signers = tmp_path / "allowed_signers"
    signers.write_text(
        keys.allowed_signers.read_text()
        + f'mallory@example.test namespaces="git",valid-before="20200101" {mallory_pub[0]} {mallory_pub[1]}\n'
    )
    write_files(approvals, open_everything_files())
    approvals.git("add", "-A")
    old = "2019-06-01T00:00:00Z"
    backdated = commit_as(approvals, keys.mallory, "from the past", GIT_AUTHOR_DATE=old, GIT_COMMITTER_DATE=old)
    approvals.push()
    # git itself calls the retired key's signature good: this is the trap.
    verdict = approvals.git("-c", f"gpg.ssh.allowedSignersFile={signers}", "log", "-1", "--format=%G? %GS", backdated)
    assert verdict.strip() == "G mallory@example.test"
    port = free_port()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gitgate",
            "serve",
            "--repo",
            approvals.url,
            "--trust-ssh",
            str(signers),
            "--state-dir",
            str(tmp_path / "st"),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,  # before the fix, the service started and served the retired key's commit
        check=False,
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert f"{signers}:2: valid-before" in proc.stderr
    assert "delete its line" in proc.stderr


# --- what reaches the service over the network -------------------------------------------------------


def test_forged_or_replayed_push_webhooks_change_no_answer(
    approvals: Approvals, keys: Keys, base: str, serve: Serve
) -> None:
    svc = serve("--github-webhook-secret", GITHUB_SECRET, "--gitlab-webhook-token", "gl-secret")

    def github(body: bytes, signature: str | None) -> int:
        headers = {"X-GitHub-Event": "push", "Content-Type": "application/json"}
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        return requests.post(svc.url + "/hooks/github", data=body, headers=headers, timeout=5).status_code

    def gitlab_hook(body: bytes, token: str) -> int:
        return requests.post(
            svc.url + "/hooks/gitlab", data=body, headers={"X-Gitlab-Token": token}, timeout=5
        ).status_code

    # A genuine push and its genuine webhook, which an attacker records.
    approvals.write("README.md", "notes\n")
    genuine_commit = approvals.land("notes", keys.alice)
    recorded = json.dumps({"ref": "refs/heads/main", "after": genuine_commit}).encode()
    recorded_sig = "sha256=" + hmac.new(GITHUB_SECRET.encode(), recorded, hashlib.sha256).hexdigest()
    assert github(recorded, recorded_sig) == 202
    wait_for(lambda: svc.status()["serving"] == genuine_commit, timeout=SLOW)
    before = answers(svc)

    # mallory pushes a commit that would open everything, then tries to get it served.
    write_files(approvals, open_everything_files())
    evil = approvals.land("open every gate", keys.mallory)
    evil_body = json.dumps({"ref": "refs/heads/main", "after": evil}).encode()
    fetches = svc.status()["last_fetch"]["at"]
    forged = {
        "no signature": github(evil_body, None),
        "signed with a guessed secret": github(
            evil_body, "sha256=" + hmac.new(b"guess", evil_body, hashlib.sha256).hexdigest()
        ),
        "GitHub's published test vector": github(b"Hello, World!", VECTOR),
        "recorded signature on another body": github(evil_body, recorded_sig),
        "sha1 signature": github(
            evil_body, "sha1=" + hmac.new(GITHUB_SECRET.encode(), evil_body, hashlib.sha1).hexdigest()
        ),
        "GitLab without the token": gitlab_hook(evil_body, ""),
        "GitLab with a wrong token": gitlab_hook(evil_body, "gl-secreT"),
    }
    assert forged == dict.fromkeys(forged, 401)
    time.sleep(0.3)
    status = svc.status()
    assert (status["remote_head"], status["last_fetch"]["at"]) == (genuine_commit, fetches)  # not even fetched
    assert answers(svc) == before

    # Replayed genuine webhooks (and the secret-less local one) only make the service fetch: the
    # commit it finds is verified as always and refused.
    for _ in range(20):
        assert github(recorded, recorded_sig) == 202
    assert gitlab_hook(evil_body, "gl-secret") == 202
    refused_and_unchanged(svc, evil, before, "replayed webhooks", "signature", "not in the trust roots")
    for _ in range(20):
        nudge(svc)
    assert requests.get(svc.url + "/readyz", timeout=5).status_code == 200
    assert answers(svc) == before


def test_write_endpoints_without_the_admin_token_change_nothing(
    approvals: Approvals, keys: Keys, base: str, serve: Serve
) -> None:
    token = "k7Qe9xV2mZ4pL8sR1tW6yB3nH5cJ0dFa"
    svc = serve("--forge", "local", "--admin-token", token, "--no-request-on-deny")
    before = answers(svc)
    forge = LocalForge(repo=approvals.remote, user="auditor")
    body = {"name": "podinfo", "namespace": "test", "checksum": "c2"}
    wrong = {
        "none": {},
        "empty bearer": {"Authorization": "Bearer "},
        "another token": {"Authorization": "Bearer " + token[::-1]},
        "a prefix of it": {"Authorization": "Bearer " + token[:-1]},
        "it, plus more": {"Authorization": "Bearer " + token + "x"},
        "in capitals": {"Authorization": "Bearer " + token.upper()},
        "without a scheme": {"Authorization": token},
        "as Basic": {"Authorization": "Basic " + token},
        "in another header": {"X-Admin-Token": token, "X-Gitgate-Token": token},
    }
    for path in ("/gate/open", "/gate/close", "/rollback/open", "/rollback/close"):
        for what, headers in wrong.items():
            resp = requests.post(svc.url + path, json=body, headers=headers, timeout=5)
            assert resp.status_code == 401, (path, what, resp.text)
        in_query = requests.post(f"{svc.url}{path}?token={token}&access_token={token}", json=body, timeout=5)
        in_body = requests.post(svc.url + path, json={**body, "token": token}, timeout=5)
        assert (in_query.status_code, in_body.status_code) == (401, 401), path
    assert forge.open_requests() == []
    assert answers(svc) == before

    # Flagger's event webhook has no secret: a forged "Succeeded" is kept for the status page, and
    # changes no answer.
    event = {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Succeeded",
        "checksum": "c2",
        "metadata": {"eventMessage": "Promotion completed!", "eventType": "Normal", "timestamp": "1795000000000"},
    }
    assert requests.post(svc.url + "/events", json=event, timeout=5).status_code == 202
    assert answers(svc) == before

    # With the token: a request people must still merge; no answer changes.
    right = requests.post(svc.url + "/gate/open", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert right.status_code == 202
    [request] = forge.open_requests()
    assert right.text.strip() == request.url
    assert answers(svc) == before

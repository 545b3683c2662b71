"""Which commit is trusted (SPEC §3), with real git, real keys and the state dir on disk."""

from __future__ import annotations

import json
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import Approvals, Keys

from gitgate.decide import decide
from gitgate.errors import GitgateError
from gitgate.git import Mirror
from gitgate.metrics import Metrics
from gitgate.model import CanaryRef, CheckRequest, Hook
from gitgate.parse_store import ParseStore
from gitgate.reconcile import Reconciler
from gitgate.snapshot import SnapshotBuilder
from gitgate.state import StateDir
from gitgate.trust import TrustRoots, VerifyMode, load_gpg_roots

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def reconciler(
    approvals: Approvals,
    keys: Keys,
    state_dir: Path,
    *,
    mode: VerifyMode = VerifyMode.ALL,
    trust_from: str | None = None,
    path: str = "gates",
    repo: str | None = None,
    store: bool = False,
) -> Reconciler:
    state = StateDir(state_dir)
    state.ensure()
    mirror = Mirror(state.mirror_dir)
    fprs = load_gpg_roots(keys.carol_asc, state.gnupg_dir)
    roots = TrustRoots(mode, keys.allowed_signers, fprs, state.gnupg_dir)
    rec = Reconciler(
        repo=repo or approvals.url,
        branch="main",
        mirror=mirror,
        state=state,
        trust=roots,
        builder=SnapshotBuilder(mirror, path, store=ParseStore(state.parsed_file, path) if store else None),
        metrics=Metrics(),
        trust_from=trust_from,
    )
    rec.resume()
    return rec


def answer(rec: Reconciler, hook: str = "confirm-promotion", checksum: str = "abc", name: str = "podinfo") -> bool:
    req = CheckRequest(CanaryRef("test", name), Hook(hook), checksum)
    return decide(rec.snapshot, req, NOW).open


def served(rec: Reconciler) -> str:
    assert rec.snapshot is not None
    return rec.snapshot.commit


@pytest.fixture
def approved(approvals: Approvals, keys: Keys) -> Approvals:
    """A repo whose head (signed by alice) approves confirm-promotion of test/podinfo @ abc."""
    approvals.approve("test", "podinfo", "confirm-promotion", "abc")
    approvals.land("approve podinfo", keys.alice)
    return approvals


def test_a_signed_head_is_served_and_persisted(approved: Approvals, keys: Keys, tmp_path: Path) -> None:
    rec = reconciler(approved, keys, tmp_path / "state")
    assert rec.snapshot is None and not answer(rec)
    outcome = rec.reconcile()
    assert outcome.result == "advanced"
    assert served(rec) == approved.head()
    assert answer(rec)
    saved = json.loads((tmp_path / "state" / "state.json").read_text())
    assert saved["commit"] == approved.head()
    assert "alice@example.test" in saved["signer"]


def test_each_commit_served_is_in_the_parse_store_at_once(approved: Approvals, keys: Keys, tmp_path: Path) -> None:
    """The store is written before the commit is served, not left for later: a restart right
    after (a rolling update, a crash) parses nothing again."""
    rec = reconciler(approved, keys, tmp_path / "state", store=True)
    assert rec.reconcile().result == "advanced"
    store = ParseStore(rec.state.parsed_file, "gates")
    assert {path for path, _ in store.load()} == {"gates/test/podinfo.yaml"}
    approved.approve("test", "frontend", "confirm-rollout", "def")
    approved.land("approve frontend", keys.alice)
    assert rec.reconcile().result == "advanced"
    assert {path for path, _ in store.load()} == {"gates/test/podinfo.yaml", "gates/test/frontend.yaml"}


@pytest.mark.parametrize("who", ["nobody", "mallory", "dave"])
def test_untrusted_commits_change_nothing(approved: Approvals, keys: Keys, tmp_path: Path, who: str) -> None:
    rec = reconciler(approved, keys, tmp_path / "state")
    rec.reconcile()
    good = served(rec)
    approved.remove("gates/test/podinfo.yaml")
    approved.approve("test", "podinfo", "confirm-promotion", "evil")
    bad = approved.land(f"{who} edits", getattr(keys, who))
    outcome = rec.reconcile()
    assert outcome.result == "refused"
    assert served(rec) == good
    assert answer(rec, checksum="abc") and not answer(rec, checksum="evil")
    [refusal] = rec.status()["refused"]
    assert refusal["commit"] == bad and refusal["kind"] == "signature"
    assert bad[:12] in refusal["reason"]
    assert json.loads((tmp_path / "state" / "state.json").read_text())["commit"] == good


def test_tampered_head_is_refused(approved: Approvals, keys: Keys, tmp_path: Path) -> None:
    rec = reconciler(approved, keys, tmp_path / "state")
    rec.reconcile()
    good = served(rec)
    approved.approve("test", "podinfo", "confirm-rollout", "abc")
    approved.commit("alice signs", keys.alice)
    approved.tamper_head()
    approved.push()
    assert rec.reconcile().result == "refused"
    assert served(rec) == good and not answer(rec, hook="confirm-rollout")
    assert "bad signature" in rec.status()["refused"][0]["reason"]


def test_verify_all_checks_every_commit_on_the_way(approved: Approvals, keys: Keys, tmp_path: Path) -> None:
    rec_all = reconciler(approved, keys, tmp_path / "all")
    rec_head = reconciler(approved, keys, tmp_path / "head", mode=VerifyMode.HEAD)
    rec_all.reconcile()
    rec_head.reconcile()
    sneaky = approved.commit("unsigned in the middle", keys.nobody)
    approved.approve("test", "podinfo", "confirm-rollout", "abc")
    head = approved.land("signed on top", keys.alice)
    out = rec_all.reconcile()
    assert out.result == "refused"
    assert f"commit {sneaky[:12]} (on the way to {head[:12]}): not signed" in out.reason
    assert rec_head.reconcile().result == "advanced" and served(rec_head) == head


def test_verify_off_serves_any_head_marked_unverified(approved: Approvals, keys: Keys, tmp_path: Path) -> None:
    rec = reconciler(approved, keys, tmp_path / "state", mode=VerifyMode.OFF)
    approved.land("unsigned", keys.nobody)
    assert rec.reconcile().result == "advanced"
    assert rec.snapshot is not None and rec.snapshot.verified is False
    req = CheckRequest(CanaryRef("test", "podinfo"), Hook.CONFIRM_ROLLOUT, "abc")
    assert "UNVERIFIED" in decide(rec.snapshot, req, NOW).reason


def test_a_rewritten_branch_is_refused_even_when_signed(approved: Approvals, keys: Keys, tmp_path: Path) -> None:
    rec = reconciler(approved, keys, tmp_path / "state")
    rec.reconcile()
    good = served(rec)
    approved.git("reset", "-q", "--hard", "HEAD~1")
    approved.approve("test", "podinfo", "confirm-promotion", "evil")
    rewritten = approved.commit("rewrite", keys.alice)
    approved.push(force=True)
    out = rec.reconcile()
    assert out.result == "refused"
    assert f"{rewritten[:12]} does not descend from the last verified commit {good[:12]}" in out.reason
    assert served(rec) == good and answer(rec) and not answer(rec, checksum="evil")


def test_unverified_commits_can_be_dropped_to_recover(approved: Approvals, keys: Keys, tmp_path: Path) -> None:
    """A refused commit blocks the branch until it is removed; removing it is not a rewrite of
    anything verified, so the branch moves on."""
    rec = reconciler(approved, keys, tmp_path / "state")
    rec.reconcile()
    approved.land("unsigned", keys.nobody)
    assert rec.reconcile().result == "refused"
    approved.git("reset", "-q", "--hard", "HEAD~1")
    approved.approve("test", "podinfo", "confirm-rollout", "abc")
    fixed = approved.commit("signed again", keys.carol)
    approved.push(force=True)
    assert rec.reconcile().result == "advanced"
    assert served(rec) == fixed and answer(rec, hook="confirm-rollout")


def test_an_invalid_file_refuses_the_whole_commit(approved: Approvals, keys: Keys, tmp_path: Path) -> None:
    rec = reconciler(approved, keys, tmp_path / "state")
    rec.reconcile()
    good = served(rec)
    approved.approve("test", "podinfo", "confirm-rollout", "abc")  # valid, but in the same commit as:
    approved.write(
        "gates/test/broken.yaml",
        "apiVersion: gitgate/v1\nkind: Gate\nmetadata:\n  name: broken\n  namespace: test\nspec:\n  default: maybe\n",
    )
    bad = approved.land("one good change, one bad file", keys.alice)
    out = rec.reconcile()
    assert out.result == "refused"
    assert "gates/test/broken.yaml:7: spec.default: must be open or closed" in out.reason
    assert served(rec) == good and not answer(rec, hook="confirm-rollout")
    assert rec.status()["refused"][0]["commit"] == bad
    # Refused once; later intervals do not pile up the same refusal.
    rec.reconcile()
    rec.reconcile()
    assert len(rec.status()["refused"]) == 1


def test_odd_tree_entries_are_refused(approved: Approvals, keys: Keys, tmp_path: Path) -> None:
    rec = reconciler(approved, keys, tmp_path / "state")
    rec.reconcile()
    (approved.work / "gates" / "test" / "link.yaml").symlink_to("podinfo.yaml")
    approved.land("symlink", keys.alice)
    assert "gates/test/link.yaml: is a symbolic link" in rec.reconcile().reason
    approved.git("rm", "-q", "gates/test/link.yaml")
    approved.write("gates/test/notes.txt", "hello\n")
    approved.land("stray file", keys.alice)
    assert "gates/test/notes.txt: not a gate file path" in rec.reconcile().reason


def test_restart_resumes_from_the_state_dir_without_the_remote(approved: Approvals, keys: Keys, tmp_path: Path) -> None:
    first = reconciler(approved, keys, tmp_path / "state")
    first.reconcile()
    good = served(first)
    shutil.move(approved.remote, approved.root / "gone.git")  # the remote is unreachable now
    again = reconciler(approved, keys, tmp_path / "state")
    assert again.snapshot is not None and served(again) == good  # ready before any fetch
    assert answer(again)
    out = again.reconcile()
    assert out.result == "fetch-failed"
    assert again.status()["last_fetch"]["error"]
    assert served(again) == good and answer(again)
    shutil.move(approved.root / "gone.git", approved.remote)
    approved.approve("test", "podinfo", "confirm-rollout", "abc")
    approved.land("after the outage", keys.alice)
    assert again.reconcile().result == "advanced"
    assert again.status()["last_fetch"]["error"] is None


def test_restart_is_not_fooled_by_a_remote_rewritten_while_down(
    approved: Approvals, keys: Keys, tmp_path: Path
) -> None:
    first = reconciler(approved, keys, tmp_path / "state")
    first.reconcile()
    good = served(first)
    approved.git("reset", "-q", "--hard", "HEAD~1")
    approved.approve("test", "podinfo", "confirm-promotion", "evil")
    approved.commit("rewrite while gitgate was down", keys.alice)
    approved.push(force=True)
    again = reconciler(approved, keys, tmp_path / "state")
    assert again.reconcile().result == "refused"
    assert served(again) == good and not answer(again, checksum="evil")


def test_a_lost_clone_is_rebuilt_and_the_verified_commit_found_again(
    approved: Approvals, keys: Keys, tmp_path: Path
) -> None:
    first = reconciler(approved, keys, tmp_path / "state")
    first.reconcile()
    good = served(first)
    shutil.rmtree(tmp_path / "state" / "repo.git")
    again = reconciler(approved, keys, tmp_path / "state")
    assert again.snapshot is None  # nothing to answer from until the clone is back: closed
    assert again.reconcile().result == "unchanged"
    assert served(again) == good and answer(again)


def test_the_state_dir_belongs_to_one_repo(approved: Approvals, keys: Keys, tmp_path: Path) -> None:
    reconciler(approved, keys, tmp_path / "state").reconcile()
    with pytest.raises(GitgateError, match=r"belongs to .* use another --state-dir"):
        reconciler(approved, keys, tmp_path / "state", repo=str(tmp_path / "elsewhere.git"))


def test_trust_from_verifies_everything_after_it(approvals: Approvals, keys: Keys, tmp_path: Path) -> None:
    anchor = approvals.head()
    approvals.land("unsigned", keys.nobody)
    approvals.approve("test", "podinfo", "confirm-promotion", "abc")
    approvals.land("signed", keys.alice)
    rec = reconciler(approvals, keys, tmp_path / "a", trust_from=anchor)
    assert rec.reconcile().result == "refused"
    assert rec.snapshot is None
    plain = reconciler(approvals, keys, tmp_path / "b")  # no state, no --trust-from: the head only
    assert plain.reconcile().result == "advanced"
    bogus = reconciler(approvals, keys, tmp_path / "c", trust_from="0" * 40)
    assert "--trust-from" in bogus.reconcile().reason


def test_a_path_for_one_cluster_with_its_policy(approvals: Approvals, keys: Keys, tmp_path: Path) -> None:
    approvals.write(
        "clusters/prod/gates/test/podinfo.yaml",
        "apiVersion: gitgate/v1\nkind: Gate\nmetadata: {name: podinfo, namespace: test}\nspec: {}\n",
    )
    approvals.write("clusters/prod/gitgate.yaml", "apiVersion: gitgate/v1\nkind: Policy\nspec: {default: open}\n")
    approvals.write("gates/test/podinfo.yaml", "not: [valid")  # another layout's files are not read
    approvals.land("prod gates", keys.alice)
    rec = reconciler(approvals, keys, tmp_path / "state", path="clusters/prod/gates")
    assert rec.reconcile().result == "advanced"
    assert answer(rec, hook="confirm-rollout")  # the policy beside the folder says open
    assert not answer(rec, hook="rollback")


def test_checks_always_see_one_whole_commit(approvals: Approvals, keys: Keys, tmp_path: Path) -> None:
    """Each commit approves either both canaries or neither; a reader must never see one of two."""
    rec = reconciler(approvals, keys, tmp_path / "state")
    for i in range(6):
        for name in ("one", "two"):
            approvals.gate("test", name, default="open" if i % 2 else "closed")
        approvals.land(f"flip {i}", keys.alice)
    seen: set[tuple[bool, bool]] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            snap = rec.snapshot
            if snap is not None:
                pair = tuple(
                    decide(snap, CheckRequest(CanaryRef("test", n), Hook.CONFIRM_ROLLOUT, "x"), NOW).open
                    for n in ("one", "two")
                )
                seen.add(pair)  # type: ignore[arg-type]

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(6):
            for name in ("one", "two"):
                approvals.gate("test", name, default="closed" if i % 2 else "open")
            approvals.land(f"flip again {i}", keys.alice)
            rec.reconcile()
    finally:
        stop.set()
        thread.join()
    assert seen <= {(True, True), (False, False)}
    assert seen == {(True, True), (False, False)}

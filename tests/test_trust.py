"""Signature verification with real keys: only the configured trust roots count."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from helpers import Approvals, Keys, sh

from gitgate.errors import TrustError
from gitgate.git import Mirror
from gitgate.trust import TrustRoots, VerifyMode, check_allowed_signers, load_gpg_roots


def _mirror(approvals: Approvals) -> Mirror:
    return Mirror(approvals.work / ".git")


def _roots(tmp_path: Path, keys: Keys, *, ssh: bool = True, gpg: bool = True) -> TrustRoots:
    home = tmp_path / "gnupg-roots"
    fprs = load_gpg_roots(keys.carol_asc, home) if gpg else frozenset()
    if not gpg:
        home.mkdir(parents=True, mode=0o700)
    return TrustRoots(VerifyMode.ALL, keys.allowed_signers if ssh else None, fprs, home)


def test_each_signature_kind_gets_the_right_verdict(approvals: Approvals, keys: Keys, tmp_path: Path) -> None:
    commits = {
        who: approvals.commit(who, getattr(keys, who)) for who in ("alice", "carol", "mallory", "dave", "nobody")
    }
    roots = _roots(tmp_path, keys)
    verdicts = {v.commit: v for v in roots.verify(_mirror(approvals), commits.values())}
    got = {who: (verdicts[sha].trusted, verdicts[sha].reason) for who, sha in commits.items()}
    assert got["alice"][0] and "SSH" in got["alice"][1]
    assert got["carol"][0] and "GPG" in got["carol"][1]
    assert got["mallory"] == (False, "signed by a key that is not in the trust roots")
    assert got["dave"][0] is False and "not in the trust roots" in got["dave"][1]
    assert got["nobody"] == (False, "not signed")
    assert "alice@example.test" in verdicts[commits["alice"]].signer
    assert "Carol" in verdicts[commits["carol"]].signer


def test_a_key_in_the_users_keyring_is_not_trusted(
    approvals: Approvals, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Trap 1: git reports G for dave in a keyring that holds (and ultimately trusts) his key.
    sha = approvals.commit("dave signs", keys.dave)
    assert (
        sh("git", "log", "-1", "--format=%G?", cwd=approvals.work, env={"GNUPGHOME": str(keys.gnupg_signers)}) == "G\n"
    )
    monkeypatch.setenv("GNUPGHOME", str(keys.gnupg_signers))
    [verdict] = _roots(tmp_path, keys).verify(_mirror(approvals), [sha])
    assert not verdict.trusted


def test_tampered_signed_commit_is_refused(approvals: Approvals, keys: Keys, tmp_path: Path) -> None:
    approvals.commit("alice signs", keys.alice)
    forged = approvals.tamper_head()
    approvals.commit("carol signs", keys.carol)
    forged_gpg = approvals.tamper_head()
    verdicts = _roots(tmp_path, keys).verify(_mirror(approvals), [forged, forged_gpg])
    assert [v.trusted for v in verdicts] == [False, False]
    assert all("tampered" in v.reason or "bad signature" in v.reason for v in verdicts), verdicts


def test_a_commit_with_a_damaged_committer_line_is_refused_not_a_crash(
    approvals: Approvals, keys: Keys, tmp_path: Path
) -> None:
    signed = approvals.commit("alice signs", keys.alice)
    raw = sh("git", "cat-file", "commit", signed, cwd=approvals.work)
    committer = next(line for line in raw.splitlines() if line.startswith("committer "))
    broken = raw.replace(committer, committer[: committer.index(">") + 1])  # no time, no zone
    sha = sh(
        "git", "hash-object", "-t", "commit", "-w", "--literally", "--stdin", cwd=approvals.work, stdin=broken.encode()
    )
    [verdict] = _roots(tmp_path, keys).verify(_mirror(approvals), [sha.strip()])
    assert not verdict.trusted


def test_a_signature_git_dies_on_is_refused_and_the_others_judged(
    approvals: Approvals, keys: Keys, tmp_path: Path
) -> None:
    # git 2.39 dies of SIGPIPE checking this signature (armor lines ending in CR, a payload over
    # 64 KiB): it writes the payload to an ssh-keygen that already gave up. That is a refusal of
    # the commit, not a broken clone, and the commits around it keep their own verdicts.
    good = approvals.commit("alice signs", keys.alice)
    signed = approvals.commit("alice signs a long message\n\n" + "x" * 100_000, keys.alice)
    raw = sh("git", "cat-file", "commit", signed, cwd=approvals.work)
    head, _, message = raw.partition("\n\n")
    crlf = "\n".join(ln + "\r" if ln.startswith((" ", "gpgsig ")) else ln for ln in head.split("\n"))
    damaged = sh(
        "git", "hash-object", "-t", "commit", "-w", "--literally", "--stdin", cwd=approvals.work,
        stdin=f"{crlf}\n\n{message}".encode(),
    ).strip()  # fmt: skip
    stranger = approvals.commit("mallory signs", keys.mallory)
    for in_process in (True, False):
        roots = dataclasses.replace(_roots(tmp_path / str(in_process), keys), ssh_in_process=in_process)
        verdicts = roots.verify(_mirror(approvals), [good, damaged, stranger])
        assert [(v.trusted, v.reason) for v in verdicts] == [
            (True, "good SSH signature, trusted signer"),
            (False, "git fails on its signature (a damaged signature)"),
            (False, "signed by a key that is not in the trust roots"),
        ]
        assert verdicts[1].subject == "alice signs a long message"


def test_ssh_signature_without_ssh_roots_and_gpg_without_gpg_roots(
    approvals: Approvals, keys: Keys, tmp_path: Path
) -> None:
    alice = approvals.commit("alice", keys.alice)
    carol = approvals.commit("carol", keys.carol)
    only_gpg = _roots(tmp_path / "a", keys, ssh=False)
    only_ssh = _roots(tmp_path / "b", keys, gpg=False)
    assert [v.trusted for v in only_gpg.verify(_mirror(approvals), [alice, carol])] == [False, True]
    assert [v.trusted for v in only_ssh.verify(_mirror(approvals), [alice, carol])] == [True, False]


def test_many_commits_get_their_own_verdicts_in_order(approvals: Approvals, keys: Keys, tmp_path: Path) -> None:
    # 20 commits: enough to be split over several git processes; one untrusted one among them.
    signers = [keys.alice if i % 2 else keys.carol for i in range(20)]
    signers[13] = keys.mallory
    shas = [approvals.commit(f"c{i}", signer) for i, signer in enumerate(signers)]
    verdicts = _roots(tmp_path, keys).verify(_mirror(approvals), shas)
    assert [v.commit for v in verdicts] == shas
    assert [i for i, v in enumerate(verdicts) if not v.trusted] == [13]


def test_gpg_roots_hold_only_the_configured_keys(keys: Keys, tmp_path: Path) -> None:
    fprs = load_gpg_roots(keys.carol_asc, tmp_path / "home")
    assert keys.carol.key in fprs
    assert keys.dave.key not in fprs
    listed = sh("gpg", "--batch", "--homedir", tmp_path / "home", "--with-colons", "--list-keys")
    assert keys.carol.key in listed and keys.dave.key not in listed
    # a folder of keys trusts each of them
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "carol.asc").write_text(keys.carol_asc.read_text())
    (folder / "dave.asc").write_text(keys.dave_asc.read_text())
    assert {keys.carol.key, keys.dave.key} <= load_gpg_roots(folder, tmp_path / "home2")


def test_bad_trust_files_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("# nobody\n")
    with pytest.raises(TrustError, match="no signers"):
        check_allowed_signers(empty)
    junk = tmp_path / "junk"
    junk.write_text("alice@example.test not-a-key\n")
    with pytest.raises(TrustError, match=r"junk:1: not an allowed_signers line"):
        check_allowed_signers(junk)
    with pytest.raises(TrustError, match="cannot read"):
        check_allowed_signers(tmp_path / "missing")
    text = tmp_path / "text.asc"
    text.write_text("hello\n")
    with pytest.raises(TrustError, match="no OpenPGP public key"):
        load_gpg_roots(text, tmp_path / "h")
    with pytest.raises(TrustError, match="no such file"):
        load_gpg_roots(tmp_path / "nope", tmp_path / "h2")

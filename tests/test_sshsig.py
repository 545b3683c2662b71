"""In-process SSH signature checks (gitgate.sshsig) against git's own, with real keys and real commits.

The fast path may only ever save verifier runs: for every commit, `TrustRoots.verify` must give the
very verdict it gives with git alone, and whenever the fast path says "good", git's %G? says G.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from helpers import Keys, Signer, sh
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitgate import sshsig
from gitgate.errors import GitgateError
from gitgate.git import Mirror
from gitgate.trust import TrustRoots, Verdict, VerifyMode, load_gpg_roots

KEY_KINDS = {
    "ed25519": ["-t", "ed25519"],
    "ecdsa256": ["-t", "ecdsa", "-b", "256"],
    "ecdsa384": ["-t", "ecdsa", "-b", "384"],
    "ecdsa521": ["-t", "ecdsa", "-b", "521"],
    "rsa": ["-t", "rsa", "-b", "3072"],
    "stranger": ["-t", "ed25519"],  # never listed
}
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


@dataclass(frozen=True)
class Lab:
    """A repo holding commits of every kind, and the keys that made them."""

    repo: Path
    keys: dict[str, Path]  # kind -> private key
    public: dict[str, str]  # kind -> "TYPE BASE64"
    commits: dict[str, str]  # case -> commit id
    gnupg_home: Path  # trusts carol (GPG)
    gpg_fingerprints: frozenset[str]

    def git(self, *args: str, stdin: bytes | None = None) -> str:
        return sh("git", *args, cwd=self.repo, stdin=stdin)

    def raw(self, commit: str) -> bytes:
        return self.git("cat-file", "commit", commit).encode()

    def store(self, raw: bytes) -> str:
        return self.git("hash-object", "-t", "commit", "-w", "--literally", "--stdin", stdin=raw).strip()

    def signers(self, tmp: Path, text: str) -> Path:
        path = tmp / "allowed_signers"
        path.write_text(text)
        return path

    def roots(self, signers: Path, *, in_process: bool) -> TrustRoots:
        return TrustRoots(VerifyMode.ALL, signers, self.gpg_fingerprints, self.gnupg_home, ssh_in_process=in_process)

    def git_says(self, signers: Path, commit: str) -> tuple[str, str, str]:
        """git's own %G?, %GF and %GS for one commit, with the config gitgate gives it."""
        config = [arg for item in self.roots(signers, in_process=False).git_config() for arg in ("-c", item)]
        out = sh(
            "git",
            *config,
            "log",
            "--no-walk",
            "--format=%G?%x00%GF%x00%GS",
            commit,
            cwd=self.repo,
            env={"GNUPGHOME": str(self.gnupg_home)},
        )
        status, fpr, signer = out.rstrip("\n").split("\x00")
        return status, fpr, signer


def _sign(payload: bytes, key: Path, *options: str) -> bytes:
    """What `ssh-keygen -Y sign` makes of `payload` (namespace git unless options say otherwise)."""
    if "-n" not in options:
        options = ("-n", "git", *options)
    return sh("ssh-keygen", "-q", "-Y", "sign", "-f", key, *options, stdin=payload).encode()


def _with_signature(unsigned: bytes, armored: bytes) -> bytes:
    """A commit object with `armored` in a gpgsig header after the other headers, as git writes it."""
    head, _, message = unsigned.partition(b"\n\n")
    folded = armored.rstrip(b"\n").replace(b"\n", b"\n ")
    return head + b"\ngpgsig " + folded + b"\n\n" + message


def _armor(blob: bytes, width: int = 70) -> bytes:
    text = base64.b64encode(blob)
    lines = [text[i : i + width] for i in range(0, len(text), width)]
    return b"-----BEGIN SSH SIGNATURE-----\n" + b"\n".join(lines) + b"\n-----END SSH SIGNATURE-----\n"


def _string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _fields(blob: bytes) -> list[bytes]:
    """An SSHSIG blob's five strings (key, namespace, reserved, hash, signature)."""
    out, pos = [], 10
    while pos < len(blob):
        size = int.from_bytes(blob[pos : pos + 4], "big")
        out.append(blob[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return out


def _sshsig(fields: list[bytes], version: int = 1) -> bytes:
    return b"SSHSIG" + version.to_bytes(4, "big") + b"".join(_string(f) for f in fields)


def _rsa_signed(payload: bytes, key: Path, sig_type: bytes, digest: hashes.HashAlgorithm) -> bytes:
    """An SSHSIG over `payload` by the RSA key, made here with `sig_type` (ssh-keygen always uses
    rsa-sha2-512): to show rsa-sha2-256 verifies and SHA-1 never does."""
    private = serialization.load_ssh_private_key(key.read_bytes(), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    blob = base64.b64decode(Path(f"{key}.pub").read_text().split()[1])
    data = b"SSHSIG" + b"".join(_string(f) for f in (b"git", b"", b"sha512", hashlib.sha512(payload).digest()))
    raw = private.sign(data, padding.PKCS1v15(), digest)
    return _armor(_sshsig([blob, b"git", b"", b"sha512", _string(sig_type) + _string(raw)]))


def _unsign(signed: bytes) -> tuple[bytes, bytes]:
    """A commit object git signed, split into what was signed and the unfolded signature (git puts
    the gpgsig header last among the headers)."""
    head, _, message = signed.partition(b"\n\n")
    start = head.index(b"\ngpgsig ") + 1
    sig = head[start + len(b"gpgsig ") :].replace(b"\n ", b"\n") + b"\n"
    return head[:start] + b"\n" + message, sig


def _damaged(signed: bytes, damage: Callable[[bytes], bytes]) -> bytes:
    """The commit with its signature text changed by `damage` (which sees the unfolded armor)."""
    payload, sig = _unsign(signed)
    return _with_signature(payload, damage(sig))


def _insert_line(text: bytes, at: int, line: bytes) -> bytes:
    lines = text.split(b"\n")
    lines.insert(at, line)
    return b"\n".join(lines)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Lab:
    root = tmp_path_factory.mktemp("sshsig")
    key_paths: dict[str, Path] = {}
    public: dict[str, str] = {}
    for kind, args in KEY_KINDS.items():
        key_paths[kind] = root / kind
        sh("ssh-keygen", "-q", *args, "-N", "", "-C", f"{kind}@example.test", "-f", key_paths[kind])
        public[kind] = " ".join(Path(f"{key_paths[kind]}.pub").read_text().split()[:2])
    repo = root / "repo"
    sh("git", "init", "-q", "-b", "main", repo)
    home = root / "gnupg-roots"
    fprs = load_gpg_roots(keys.carol_asc, home)
    lab = Lab(repo, key_paths, public, {}, home, fprs)

    def commit(message: str, signer: Signer | None) -> str:
        (repo / "file").write_text(message)
        lab.git("add", "file")
        pre = signer.git_args() if signer else ["-c", "commit.gpgsign=false"]
        sh("git", *pre, "commit", "-q", "-m", message, cwd=repo, env=signer.env() if signer else None)
        return lab.git("rev-parse", "HEAD").strip()

    made = lab.commits
    for kind in KEY_KINDS:
        made[f"good-{kind}"] = commit(f"signed by {kind}", Signer(kind, "ssh", str(key_paths[kind])))
    made["unsigned"] = commit("not signed", None)
    made["gpg"] = commit("signed by carol with GPG", keys.carol)

    good = lab.raw(made["good-ed25519"])
    payload, sig = _unsign(good)
    unsigned = lab.raw(made["unsigned"])
    made["tampered-message"] = lab.store(good.replace(b"signed by ed25519", b"signed by ed25519!"))
    made["tampered-tree"] = lab.store(re.sub(rb"^tree [0-9a-f]{40}", b"tree " + EMPTY_TREE.encode(), good))
    made["signature-of-another-commit"] = lab.store(_with_signature(unsigned, sig))
    made["namespace-file"] = lab.store(_with_signature(unsigned, _sign(unsigned, key_paths["ed25519"], "-n", "file")))
    made["hashalg-sha256"] = lab.store(
        _with_signature(unsigned, _sign(unsigned, key_paths["ecdsa256"], "-O", "hashalg=sha256"))
    )
    made["rsa-sha2-256"] = lab.store(
        _with_signature(unsigned, _rsa_signed(unsigned, key_paths["rsa"], b"rsa-sha2-256", hashes.SHA256()))
    )
    made["rsa-sha1"] = lab.store(
        _with_signature(unsigned, _rsa_signed(unsigned, key_paths["rsa"], b"ssh-rsa", hashes.SHA1()))  # noqa: S303
    )
    blob = base64.b64decode(b"".join(sig.split(b"\n")[1:-2]))
    fields = _fields(blob)
    made["reserved-not-empty"] = lab.store(_with_signature(payload, _armor(_sshsig([*fields[:2], b"x", *fields[3:]]))))
    made["version-2"] = lab.store(_with_signature(payload, _armor(_sshsig(fields, version=2))))
    made["trailing-bytes-in-blob"] = lab.store(_with_signature(payload, _armor(blob + b"\0")))
    made["rewrapped-armor"] = lab.store(_with_signature(payload, _armor(blob, width=64)))
    extra = b"gpgsig-sha256 -----BEGIN SSH SIGNATURE-----\n junk\n -----END SSH SIGNATURE-----\n"
    made["extra-gpgsig-sha256"] = lab.store(good.replace(b"\n\n", b"\n" + extra.rstrip(b"\n") + b"\n\n", 1))
    made["two-gpgsig-headers"] = lab.store(_with_signature(good, _sign(payload, key_paths["ed25519"])))
    damages: dict[str, Callable[[bytes], bytes]] = {
        "no-end-line": lambda s: s.replace(b"-----END SSH SIGNATURE-----\n", b""),
        "garbage-after-end": lambda s: s.replace(b"END SSH SIGNATURE-----", b"END SSH SIGNATURE-----garbage"),
        "text-after-armor": lambda s: s + b"more text\n",
        "flipped-base64": lambda s: s[:100] + (b"A" if s[100:101] != b"A" else b"B") + s[101:],
        "space-in-base64": lambda s: s[:80] + b" " + s[80:],
        "crlf": lambda s: s.replace(b"\n", b"\r\n"),
        "lowercase-begin": lambda s: s.replace(b"BEGIN SSH", b"begin SSH"),
        "empty-line-in-armor": lambda s: _insert_line(s, 2, b""),
        "last-base64-character-removed": lambda s: s[: s.index(b"\n-----END") - 1] + s[s.index(b"\n-----END") :],
        "two-armors": lambda s: s + s,
    }
    for name, damage in damages.items():
        made[f"armor-{name}"] = lab.store(_damaged(good, damage))
    return lab


Shown = tuple[bool, str, str, str] | str  # a verdict as a user sees it, or the error verify raised


def _verdicts(lab: Lab, signers: Path, *, in_process: bool) -> dict[str, Shown]:
    """Every case's verdict from one verify() call; where that call fails (git itself dies on some
    damaged signatures), each case's from a call of its own."""
    roots = lab.roots(signers, in_process=in_process)
    mirror = Mirror(lab.repo / ".git")
    try:
        by_id = {v.commit: _shown(v) for v in roots.verify(mirror, lab.commits.values())}
    except GitgateError:  # some damaged signatures make git itself die
        by_id = {sha: _outcome(roots, mirror, sha) for sha in lab.commits.values()}
    return {case: by_id[sha] for case, sha in lab.commits.items()}


def _outcome(roots: TrustRoots, mirror: Mirror, sha: str) -> Shown:
    """One commit's verdict, or the error verify raised three times running. (git 2.39 can die of
    SIGPIPE on a signature ssh-keygen cannot parse: it does not ignore SIGPIPE while feeding the
    payload to `ssh-keygen -Y check-novalidate`, which may exit before reading it. A race, so tried
    again; it happens with or without the in-process check.)"""
    error = ""
    for _ in range(3):
        try:
            [verdict] = roots.verify(mirror, [sha])
        except Exception as e:  # git errors, and a ValueError for a commit git gives no date for
            error = type(e).__name__
            continue
        return _shown(verdict)
    return error


def _shown(v: Verdict) -> tuple[bool, str, str, str]:
    return (v.trusted, v.reason, v.signer, v.subject)


def _fast_good(lab: Lab, signers: Path) -> dict[str, sshsig.Good]:
    """The cases the fast path itself calls good."""
    parsed = sshsig.load_allowed_signers(signers)
    if parsed is None:
        return {}
    out = {}
    for case, sha in lab.commits.items():
        good = parsed.verify_commit(lab.raw(sha))
        if good is not None:
            out[case] = good
    return out


def _base_signers(lab: Lab, **override: str) -> str:
    lines = {
        "ed25519": f"ed25519@example.test,second@example.test {lab.public['ed25519']}",
        "ecdsa256": f"ecdsa256@example.test {lab.public['ecdsa256']}",
        "ecdsa384": f'ecdsa384@example.test namespaces="git" {lab.public["ecdsa384"]}',
        "ecdsa521": f'ecdsa521@example.test namespaces="file,git" {lab.public["ecdsa521"]}',
        "rsa": f"rsa@example.test {lab.public['rsa']} the RSA key",
    }
    lines.update(override)
    return "# trusted signers\n\n" + "\n".join(lines.values()) + "\n   \n\t# indented comment\n"


GOOD_IN_PROCESS = {
    *(f"good-{kind}" for kind in KEY_KINDS if kind != "stranger"),
    "hashalg-sha256",
    "rsa-sha2-256",
    "rewrapped-armor",
    "extra-gpgsig-sha256",
}


def _same_as_git(lab: Lab, signers: Path) -> dict[str, Shown]:
    """Assert the verdicts with and without the fast path are identical, and that git says G (with
    the same signer and fingerprint) for whatever the fast path calls good; return the verdicts."""
    fast = _verdicts(lab, signers, in_process=True)
    slow = _verdicts(lab, signers, in_process=False)
    assert fast == slow
    for case, good in _fast_good(lab, signers).items():
        assert lab.git_says(signers, lab.commits[case]) == ("G", good.fingerprint, good.principal), case
    return fast


def test_every_kind_of_commit_gets_gits_verdict(lab: Lab, tmp_path: Path) -> None:
    signers = lab.signers(tmp_path, _base_signers(lab))
    verdicts = _same_as_git(lab, signers)
    assert set(_fast_good(lab, signers)) == GOOD_IN_PROCESS
    trusted = {case for case, v in verdicts.items() if isinstance(v, tuple) and v[0]}
    # Left to git, which trusts these too: GPG, and SSH signatures in forms sshsig is not certain of
    # (ssh-keygen skips whitespace in base64, reads the first armor only, ignores the reserved field).
    assert trusted - GOOD_IN_PROCESS == {
        "gpg",
        "reserved-not-empty",
        "two-gpgsig-headers",
        "armor-garbage-after-end",
        "armor-text-after-armor",
        "armor-space-in-base64",
        "armor-empty-line-in-armor",
        "armor-two-armors",
    }
    assert trusted >= GOOD_IN_PROCESS
    assert verdicts["good-ed25519"][2].startswith("ed25519@example.test (SHA256:")
    assert verdicts["good-rsa"][1] == "good SSH signature, trusted signer"
    assert verdicts["good-stranger"][:2] == (False, "signed by a key that is not in the trust roots")
    assert verdicts["unsigned"][:2] == (False, "not signed")
    assert verdicts["tampered-message"][:2] == (False, "bad signature (the commit or signature was tampered with)")
    for case in ("tampered-tree", "signature-of-another-commit", "namespace-file", "rsa-sha1", "armor-flipped-base64"):
        assert not verdicts[case][0], case


@pytest.mark.parametrize(
    "variant",
    [
        "namespace-file-only",
        "namespaces-file-and-git",
        "cert-authority-line",
        "another-option",
        "principal-pattern",
        "quoted-principal",
        "same-key-twice",
        "same-key-twice-other-namespace",
        "unreadable-line-first",
        "crlf-line-ends",
        "no-signers",
    ],
)
def test_allowed_signers_variants_get_gits_verdicts(lab: Lab, tmp_path: Path, variant: str) -> None:
    ed = lab.public["ed25519"]
    stranger = lab.public["stranger"]
    texts = {
        "namespace-file-only": _base_signers(lab, ed25519=f'ed25519@example.test namespaces="file" {ed}'),
        "namespaces-file-and-git": _base_signers(lab, ed25519=f'ed25519@example.test namespaces="file,git" {ed}'),
        "cert-authority-line": _base_signers(lab) + f"ca@example.test cert-authority {stranger}\n",
        "another-option": _base_signers(
            lab, ecdsa256=f'ecdsa256@example.test valid-after="20200101" {lab.public["ecdsa256"]}'
        ),
        "principal-pattern": _base_signers(lab) + f"*@example.test {stranger}\n",
        "quoted-principal": _base_signers(lab, rsa=f'"rsa@example.test" {lab.public["rsa"]}'),
        "same-key-twice": _base_signers(lab) + f"other@example.test {ed}\n",
        "same-key-twice-other-namespace": _base_signers(
            lab, ed25519=f'ed25519@example.test namespaces="file" {ed}\nother@example.test {ed}'
        ),
        "unreadable-line-first": "this is not a signer\n" + _base_signers(lab),
        "crlf-line-ends": _base_signers(lab).replace("\n", "\r\n"),
        "no-signers": "# nobody yet\n",
    }
    signers = lab.signers(tmp_path, texts[variant])
    verdicts = _same_as_git(lab, signers)
    fast = set(_fast_good(lab, signers))
    if variant in ("namespace-file-only", "same-key-twice", "same-key-twice-other-namespace"):
        assert fast == GOOD_IN_PROCESS - {"good-ed25519", "rewrapped-armor", "extra-gpgsig-sha256"}
    elif variant == "namespaces-file-and-git":
        assert fast == GOOD_IN_PROCESS
        assert verdicts["good-ed25519"][0]
    elif variant == "no-signers":
        parsed = sshsig.load_allowed_signers(signers)
        assert parsed is not None and not parsed.trusted
    else:  # a line sshsig does not read with certainty: the whole file is left to git
        assert sshsig.load_allowed_signers(signers) is None
    if variant == "namespace-file-only":
        assert verdicts["good-ed25519"][:2] == (False, "bad signature (the commit or signature was tampered with)")


def test_fingerprints_are_those_ssh_keygen_prints(lab: Lab) -> None:
    for kind, key in lab.keys.items():
        printed = sh("ssh-keygen", "-l", "-E", "sha256", "-f", f"{key}.pub").split()[1]
        assert sshsig.fingerprint(base64.b64decode(lab.public[kind].split()[1])) == printed


def test_an_edited_allowed_signers_file_is_read_again(lab: Lab, tmp_path: Path) -> None:
    signers = tmp_path / "allowed_signers"
    mirror = Mirror(lab.repo / ".git")
    sha = lab.commits["good-ed25519"]
    signers.write_text(f"aa@example.test {lab.public['ed25519']}\n")
    roots = lab.roots(signers, in_process=True)
    [first] = roots.verify(mirror, [sha])
    assert first.trusted and first.signer.startswith("aa@example.test ")
    # the same size, written at once: a cache keyed by size and time could miss it
    signers.write_text(f"bb@example.test {lab.public['ed25519']}\n")
    [renamed] = roots.verify(mirror, [sha])
    assert renamed.trusted and renamed.signer.startswith("bb@example.test ")
    signers.write_text(f"bb@example.test {lab.public['ecdsa256']}\n")  # the key removed
    [removed] = roots.verify(mirror, [sha])
    assert _shown(removed) == _shown(lab.roots(signers, in_process=False).verify(mirror, [sha])[0])
    assert removed.trusted is False and removed.reason == "signed by a key that is not in the trust roots"


def test_a_sha256_repo_is_left_to_git(tmp_path: Path, lab: Lab) -> None:
    repo = tmp_path / "repo256"
    sh("git", "init", "-q", "--object-format=sha256", repo)
    signer = Signer("ed25519", "ssh", str(lab.keys["ed25519"]))
    sh("git", *signer.git_args(), "commit", "-q", "--allow-empty", "-m", "sha256", cwd=repo)
    sha = sh("git", "rev-parse", "HEAD", cwd=repo).strip()
    signers = lab.signers(tmp_path, _base_signers(lab))
    mirror = Mirror(repo / ".git")
    fast = [_shown(v) for v in lab.roots(signers, in_process=True).verify(mirror, [sha])]
    slow = [_shown(v) for v in lab.roots(signers, in_process=False).verify(mirror, [sha])]
    assert fast == slow
    assert fast[0][0], fast


# --- verifier runs --------------------------------------------------------------------------------


def test_fifty_good_commits_start_no_verifier_and_refusals_keep_gits_messages(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "fifty"
    sh("git", "init", "-q", "-b", "main", repo)
    alice = Signer("ed25519", "ssh", str(lab.keys["ed25519"]))
    shas = []
    for n in range(50):
        sh("git", *alice.git_args(), "commit", "-q", "--allow-empty", "-m", f"change {n}", cwd=repo)
        shas.append(sh("git", "rev-parse", "HEAD", cwd=repo).strip())
    signers = lab.signers(tmp_path, _base_signers(lab))
    mirror = Mirror(repo / ".git")
    # gitgate runs gpg.ssh.program=ssh-keygen from PATH: a logging ssh-keygen first on PATH sees every run
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    runs = tmp_path / "ssh-keygen.log"
    real = shutil.which("ssh-keygen")
    assert real is not None
    wrapper = bin_dir / "ssh-keygen"
    wrapper.write_text(f'#!/bin/sh\necho "$2" >> "{runs}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def verifier_runs() -> list[str]:
        text = runs.read_text() if runs.exists() else ""
        runs.unlink(missing_ok=True)
        return text.split()

    fast = lab.roots(signers, in_process=True).verify(mirror, shas)
    assert all(v.trusted for v in fast)
    assert verifier_runs() == []
    slow = lab.roots(signers, in_process=False).verify(mirror, shas)
    assert [_shown(v) for v in slow] == [_shown(v) for v in fast]
    assert sorted(verifier_runs()) == ["find-principals"] * 50 + ["verify"] * 50  # the wrapper does see git's runs

    stranger = Signer("stranger", "ssh", str(lab.keys["stranger"]))
    sh("git", *stranger.git_args(), "commit", "-q", "--allow-empty", "-m", "by a stranger", cwd=repo)
    untrusted = sh("git", "rev-parse", "HEAD", cwd=repo).strip()
    raw = sh("git", "cat-file", "commit", shas[10], cwd=repo).encode()
    tampered = sh(
        "git", "hash-object", "-t", "commit", "-w", "--stdin", cwd=repo, stdin=raw.replace(b"change 10", b"change 11")
    ).strip()
    verdicts = lab.roots(signers, in_process=True).verify(mirror, [*shas, untrusted, tampered])
    assert [(v.trusted, v.reason) for v in verdicts[-2:]] == [
        (False, "signed by a key that is not in the trust roots"),
        (False, "bad signature (the commit or signature was tampered with)"),
    ]
    assert all(v.trusted for v in verdicts[:-2])
    assert verifier_runs().count("find-principals") == 2  # git checked the two refused commits, only those


def test_git_still_raises_when_it_cannot_check_and_good_ssh_signatures_need_no_temporary_file(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # git writes each signature to a temporary file for its verifier; with TMPDIR gone it calls a
    # good signature "not signed", which gitgate must not take as a verdict (test_faults.py).
    signers = lab.signers(tmp_path, _base_signers(lab))
    mirror = Mirror(lab.repo / ".git")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "gone"))
    good, stranger = lab.commits["good-ed25519"], lab.commits["good-stranger"]
    [verdict] = lab.roots(signers, in_process=True).verify(mirror, [good])
    assert verdict.trusted
    for in_process in (True, False):
        with pytest.raises(GitgateError, match=r"cannot check signatures: .*could not create temporary file"):
            lab.roots(signers, in_process=in_process).verify(mirror, [good, stranger])


# --- random damage ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    kind: str  # flip | insert | delete
    at: int
    byte: int


def _mutate(raw: bytes, mutations: list[Mutation]) -> bytes:
    data = bytearray(raw)
    for m in mutations:
        at = m.at % (len(data) + 1)
        if m.kind == "insert":
            data[at:at] = bytes([m.byte])
        elif at < len(data):
            if m.kind == "delete":
                del data[at]
            else:
                data[at] ^= m.byte or 1
    return bytes(data)


mutations = st.lists(
    st.builds(Mutation, st.sampled_from(["flip", "insert", "delete"]), st.integers(0, 4000), st.integers(0, 255)),
    min_size=1,
    max_size=3,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=mutations, case=st.sampled_from(["good-ed25519", "good-ecdsa256", "good-rsa", "hashalg-sha256"]))
def test_random_damage_to_a_signed_commit_gets_gits_verdict(
    lab: Lab, tmp_path: Path, changes: list[Mutation], case: str
) -> None:
    signers = tmp_path / "allowed_signers"
    if not signers.exists():
        signers.write_text(_base_signers(lab))
    raw = _mutate(lab.raw(lab.commits[case]), changes)
    sha = lab.store(raw)
    mirror = Mirror(lab.repo / ".git")

    fast = _outcome(lab.roots(signers, in_process=True), mirror, sha)
    assert fast == _outcome(lab.roots(signers, in_process=False), mirror, sha)
    parsed = sshsig.load_allowed_signers(signers)
    assert parsed is not None
    good = parsed.verify_commit(raw)
    if good is not None or (isinstance(fast, tuple) and fast[0]):
        assert lab.git_says(signers, sha)[0] == "G"

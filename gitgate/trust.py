"""Trust roots and commit signature verification.

Trust comes from the service's configuration only, never from the repo it guards. A commit is
trusted when git reports a good signature (%G? = G) *and* the signing key is one the operator
configured: an SSH key in the operator's allowed_signers file, or a GPG key whose fingerprint is in
the operator's armored key files. A key that merely sits in some keyring is not trusted.

SSH signatures are first checked in process (gitgate.sshsig), which answers only "good by a trusted
key" or "don't know"; every commit it does not positively verify is left to git as before.
"""

from __future__ import annotations

import enum
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gitgate import sshsig
from gitgate.errors import TrustError
from gitgate.git import CommitSignature, Mirror

_STATUS_WORDS = {
    "G": "good signature",
    "B": "bad signature (the commit or signature was tampered with)",
    "U": "signed by a key that is not in the trust roots",
    "X": "good signature, but the signature has expired",
    "Y": "good signature by an expired key",
    "R": "good signature by a revoked key",
    "E": "signed by an unknown key (not in the trust roots)",
    "N": "not signed",
    "?": "git fails on its signature (a damaged signature)",  # gitgate's own status: see Mirror._signatures
}
_SHA1 = re.compile(r"[0-9a-f]{40}")  # in-process checks read SHA-1 commit objects only
# Commits read into memory at a time for the in-process check, and the largest one it reads (a
# signed commit is about 1 KB; larger ones are left to git, which streams them).
_IN_PROCESS_BATCH = 500
_IN_PROCESS_MAX_BYTES = 64 * 1024


class VerifyMode(enum.StrEnum):
    ALL = "all"
    HEAD = "head"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class Verdict:
    commit: str
    trusted: bool
    reason: str
    signer: str = ""
    subject: str = ""


@dataclass(frozen=True)
class TrustRoots:
    mode: VerifyMode
    ssh_allowed_signers: Path | None = None
    gpg_fingerprints: frozenset[str] = frozenset()
    gnupg_home: Path | None = None
    # Check SSH signatures in process where certain (gitgate.sshsig), git otherwise. False: git
    # alone, as the tests and bench/verify.py compare.
    ssh_in_process: bool = True

    @property
    def configured(self) -> bool:
        return self.ssh_allowed_signers is not None or bool(self.gpg_fingerprints)

    def describe(self) -> str:
        if self.mode is VerifyMode.OFF:
            return "UNVERIFIED (--verify off)"
        parts = []
        if self.ssh_allowed_signers:
            parts.append(f"SSH signers in {self.ssh_allowed_signers}")
        if self.gpg_fingerprints:
            parts.append(f"{len(self.gpg_fingerprints)} GPG key fingerprint(s)")
        return f"verify {self.mode.value}: " + (", ".join(parts) or "no trust roots")

    def git_config(self) -> list[str]:
        # The in-process check (sshsig) knows no revocation list: it relies on this one being empty.
        signers = str(self.ssh_allowed_signers) if self.ssh_allowed_signers else "/dev/null"
        return [
            f"gpg.ssh.allowedSignersFile={signers}",
            "gpg.program=gpg",
            "gpg.ssh.program=ssh-keygen",
            "gpg.ssh.revocationFile=/dev/null",
        ]

    def git_env(self) -> dict[str, str]:
        # An empty private GNUPGHOME when no GPG keys are configured: the user's keyring is never read.
        return {"GNUPGHOME": str(self.gnupg_home)} if self.gnupg_home else {}

    def judge(self, sig: CommitSignature) -> Verdict:
        if sig.status != "G":
            words = _STATUS_WORDS.get(sig.status, f"signature status {sig.status!r}")
            return Verdict(sig.commit, False, words, sig.signer, sig.subject)
        if sig.fingerprint.startswith("SHA256:"):
            # git answered G only because the key is in *our* allowed_signers file.
            if self.ssh_allowed_signers is None:
                return Verdict(
                    sig.commit, False, "SSH signature, but no SSH trust roots are configured", "", sig.subject
                )
            return Verdict(
                sig.commit,
                True,
                "good SSH signature, trusted signer",
                f"{sig.signer} ({sig.fingerprint})",
                sig.subject,
            )
        fprs = {sig.fingerprint.upper(), sig.primary.upper()} - {""}
        if fprs & self.gpg_fingerprints:
            return Verdict(
                sig.commit,
                True,
                "good GPG signature, trusted key",
                f"{sig.signer} ({sig.primary or sig.fingerprint})",
                sig.subject,
            )
        return Verdict(
            sig.commit,
            False,
            f"GPG key {sig.fingerprint} is not one of the configured trust roots",
            sig.signer,
            sig.subject,
        )

    def verify(self, mirror: Mirror, commits: Iterable[str]) -> list[Verdict]:
        """A verdict per commit, in order. SSH signatures that verify in process need no verifier
        run; git checks the rest (one git process per CPU, see Mirror.signatures)."""
        ids = list(commits)
        sigs = self._verified_in_process(mirror, ids)
        rest = [commit for commit in dict.fromkeys(ids) if commit not in sigs]
        sigs.update(mirror.signatures(rest, env=self.git_env(), config=self.git_config()))
        out = []
        for commit in ids:
            sig = sigs.get(commit)
            out.append(self.judge(sig) if sig else Verdict(commit, False, "commit not found"))
        return out

    def _verified_in_process(self, mirror: Mirror, ids: list[str]) -> dict[str, CommitSignature]:
        """The commits whose SSH signature sshsig verifies with certainty, as git would report
        them (G, the key's SHA256 fingerprint, the principal); the raw objects are read by one
        `git cat-file --batch` per 500 commits, the rest of what a verdict shows by one `git log`
        without %G."""
        if not self.ssh_in_process or self.ssh_allowed_signers is None or self.mode is VerifyMode.OFF:
            return {}
        signers = sshsig.load_allowed_signers(self.ssh_allowed_signers)
        if signers is None or not signers.trusted:
            return {}
        wanted = [commit for commit in dict.fromkeys(ids) if _SHA1.fullmatch(commit)]
        good: dict[str, sshsig.Good] = {}
        for start in range(0, len(wanted), _IN_PROCESS_BATCH):
            objects = mirror.commit_objects(wanted[start : start + _IN_PROCESS_BATCH], limit=_IN_PROCESS_MAX_BYTES)
            good.update((commit, found) for commit, raw in objects.items() if (found := signers.verify_commit(raw)))
        info = mirror.commit_info(good) if good else {}
        out = {}
        for commit, found in good.items():
            meta = info.get(commit)
            if meta is not None:
                out[commit] = CommitSignature(
                    commit, "G", found.fingerprint, "", found.principal, meta.author, meta.committed_at, meta.subject
                )
        return out


_SSH_KEY = re.compile(
    r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)\s+[A-Za-z0-9+/=]+"
)


_VALIDITY = re.compile(r"(?:^|[\s,])(valid-(?:before|after))=", re.IGNORECASE)


def check_allowed_signers(path: Path) -> None:
    """Refuse an allowed_signers file that is missing, has no usable line, or limits a key's
    validity in time (valid-before/valid-after), which git cannot enforce against a signer."""
    try:
        text = path.read_text()
    except OSError as e:
        raise TrustError(f"--trust-ssh {path}: cannot read it ({e.strerror})") from e
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise TrustError(
            f"--trust-ssh {path}: no signers in it; each line is 'EMAIL namespaces=\"git\" ssh-ed25519 AAAA...'"
        )
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key = _SSH_KEY.search(line)
        if key is None:
            raise TrustError(f"--trust-ssh {path}:{n}: not an allowed_signers line (principal, options, key type, key)")
        limit = _VALIDITY.search(line[: key.start()])
        if limit is not None:
            # git checks these against the commit's own committer date, which whoever signs writes:
            # a retired key would still sign a backdated commit that git calls good.
            raise TrustError(
                f"--trust-ssh {path}:{n}: {limit.group(1).lower()} cannot be enforced: git checks it against the "
                "commit's own date, which the signer writes; to retire a key, delete its line"
            )


def _gpg(home: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["gpg", "--batch", "--no-tty", "--no-autostart", "--homedir", str(home), *args],
            input=stdin,
            capture_output=True,
            check=False,
            timeout=60,
        )
    except FileNotFoundError as e:
        raise TrustError("--trust-gpg needs gpg (GnuPG 2) installed") from e


def load_gpg_roots(source: Path, home: Path) -> frozenset[str]:
    """Import the armored keys at `source` (a file or a folder of them) into a fresh private
    keyring at `home`, mark exactly those keys trusted, and return their fingerprints."""
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    elif source.is_file():
        files = [source]
    else:
        raise TrustError(f"--trust-gpg {source}: no such file or folder")
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True, mode=0o700)
    primaries: set[str] = set()
    every: set[str] = set()
    for file in files:
        data = file.read_bytes()
        shown = _gpg(home, "--with-colons", "--import-options", "show-only", "--import", stdin=data)
        keys = _fingerprints(shown.stdout.decode("utf-8", "replace"))
        if not keys:
            raise TrustError(f"--trust-gpg {file}: no OpenPGP public key in it (expected an armored key)")
        for primary, subs in keys:
            primaries.add(primary)
            every.add(primary)
            every.update(subs)
        imported = _gpg(home, "--import", stdin=data)
        if imported.returncode != 0:
            raise TrustError(f"--trust-gpg {file}: gpg could not import it: {imported.stderr.decode().strip()[-200:]}")
    trust = "".join(f"{fpr}:6:\n" for fpr in sorted(primaries)).encode()
    _gpg(home, "--import-ownertrust", stdin=trust)
    _gpg(home, "--check-trustdb")
    return frozenset(every)


def _fingerprints(colons: str) -> list[tuple[str, list[str]]]:
    keys: list[tuple[str, list[str]]] = []
    expect: str | None = None
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] in ("pub", "sub"):
            expect = fields[0]
        elif fields[0] == "fpr" and expect:
            fpr = fields[9].upper()
            if expect == "pub":
                keys.append((fpr, []))
            elif keys:
                keys[-1][1].append(fpr)
            expect = None
    return keys

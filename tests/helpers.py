"""Real git repos, real keys and a real service process for the tests. No mocks of our own code."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml


def sh(
    *cmd: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    check: bool = True,
) -> str:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env={**os.environ, **(env or {})}, input=stdin, capture_output=True, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}): {proc.stderr.decode()}")
    return proc.stdout.decode()


@dataclass(frozen=True)
class Signer:
    """Someone who signs commits: with an SSH key, a GPG key, or not at all."""

    name: str
    kind: str  # ssh | gpg | none
    key: str = ""  # SSH private key path, or GPG fingerprint
    gnupg_home: str = ""

    def git_args(self) -> list[str]:
        if self.kind == "ssh":
            return ["-c", "gpg.format=ssh", "-c", f"user.signingkey={self.key}", "-c", "commit.gpgsign=true"]
        if self.kind == "gpg":
            return ["-c", "gpg.format=openpgp", "-c", f"user.signingkey={self.key}", "-c", "commit.gpgsign=true"]
        return ["-c", "commit.gpgsign=false"]

    def env(self) -> dict[str, str]:
        return {"GNUPGHOME": self.gnupg_home} if self.gnupg_home else {}


@dataclass(frozen=True)
class Keys:
    alice: Signer  # SSH, in allowed_signers
    mallory: Signer  # SSH, not in allowed_signers
    carol: Signer  # GPG, in the trusted armored key file
    dave: Signer  # GPG, in the signing keyring (ultimately trusted there) but not a trust root
    nobody: Signer  # does not sign
    allowed_signers: Path  # trusts alice
    carol_asc: Path  # carol's armored public key
    dave_asc: Path
    gnupg_signers: Path  # a keyring holding carol's and dave's secret keys


def _ssh_key(folder: Path, name: str) -> tuple[Path, str]:
    key = folder / name
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@example.test", "-f", key)
    return key, key.with_suffix(".pub").read_text().split()[1]


def _gpg_key(home: Path, name: str) -> str:
    uid = f"{name.title()} <{name}@example.test>"
    sh("gpg", "--batch", "--homedir", home, "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
    out = sh("gpg", "--batch", "--homedir", home, "--with-colons", "--list-keys", uid)
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr"))


def make_keys(folder: Path) -> Keys:
    alice, alice_pub = _ssh_key(folder, "alice")
    mallory, _ = _ssh_key(folder, "mallory")
    signers = folder / "allowed_signers"
    signers.write_text(f'alice@example.test namespaces="git" ssh-ed25519 {alice_pub}\n')
    home = folder / "gnupg-signers"
    home.mkdir(mode=0o700)
    carol_fpr = _gpg_key(home, "carol")
    dave_fpr = _gpg_key(home, "dave")
    carol_asc = folder / "carol.asc"
    carol_asc.write_text(sh("gpg", "--batch", "--homedir", home, "--armor", "--export", carol_fpr))
    dave_asc = folder / "dave.asc"
    dave_asc.write_text(sh("gpg", "--batch", "--homedir", home, "--armor", "--export", dave_fpr))
    return Keys(
        alice=Signer("alice", "ssh", str(alice)),
        mallory=Signer("mallory", "ssh", str(mallory)),
        carol=Signer("carol", "gpg", carol_fpr, str(home)),
        dave=Signer("dave", "gpg", dave_fpr, str(home)),
        nobody=Signer("nobody", "none"),
        allowed_signers=signers,
        carol_asc=carol_asc,
        dave_asc=dave_asc,
        gnupg_signers=home,
    )


def gate_yaml(
    namespace: str,
    name: str,
    *,
    approvals: Sequence[dict[str, Any]] = (),
    default: str | None = None,
    freeze: Sequence[dict[str, Any]] = (),
) -> str:
    spec: dict[str, Any] = {"approvals": list(approvals)}
    if default:
        spec["default"] = default
    if freeze:
        spec["freeze"] = list(freeze)
    doc = {"apiVersion": "gitgate/v1", "kind": "Gate", "metadata": {"name": name, "namespace": namespace}, "spec": spec}
    return yaml.safe_dump(doc, sort_keys=False)


class Approvals:
    """An approvals repo as a team has it: a bare remote, and a working clone people commit in."""

    def __init__(self, root: Path, keys: Keys) -> None:
        self.root = root
        self.remote = root / "remote.git"
        self.work = root / "work"
        self.keys = keys

    @classmethod
    def create(cls, root: Path, keys: Keys, branch: str = "main") -> Approvals:
        repo = cls(root, keys)
        root.mkdir(parents=True, exist_ok=True)
        sh("git", "init", "-q", "--bare", "-b", branch, repo.remote)
        sh("git", "init", "-q", "-b", branch, repo.work)
        sh("git", "remote", "add", "origin", repo.remote, cwd=repo.work)
        repo.write("README.md", "approvals\n")
        repo.commit("initial", keys.alice)
        repo.push()
        return repo

    @property
    def url(self) -> str:
        return str(self.remote)

    def git(self, *args: str, signer: Signer | None = None, check: bool = True) -> str:
        pre = signer.git_args() if signer else []
        return sh("git", *pre, *args, cwd=self.work, env=signer.env() if signer else None, check=check)

    def write(self, path: str, text: str | bytes) -> None:
        file = self.work / path
        file.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            file.write_bytes(text)
        else:
            file.write_text(text)

    def remove(self, path: str) -> None:
        self.git("rm", "-q", path)

    def gate(self, namespace: str, name: str, **kwargs: Any) -> None:
        self.write(f"gates/{namespace}/{name}.yaml", gate_yaml(namespace, name, **kwargs))

    def approve(self, namespace: str, name: str, hook: str, checksum: str, **extra: Any) -> None:
        """Add an approval to the gate file (creating it), as a reviewer's change would."""
        file = self.work / "gates" / namespace / f"{name}.yaml"
        doc = yaml.safe_load(file.read_text()) if file.exists() else yaml.safe_load(gate_yaml(namespace, name))
        doc["spec"].setdefault("approvals", [])
        doc["spec"]["approvals"] = (doc["spec"]["approvals"] or []) + [{"hook": hook, "checksum": checksum, **extra}]
        self.write(f"gates/{namespace}/{name}.yaml", yaml.safe_dump(doc, sort_keys=False))

    def commit(self, message: str, signer: Signer) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message, signer=signer)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def push(self, *, force: bool = False) -> None:
        self.git("push", "-q", *(["--force"] if force else []), "origin", "HEAD:refs/heads/main")

    def land(self, message: str, signer: Signer) -> str:
        sha = self.commit(message, signer)
        self.push()
        return sha

    def tamper_head(self) -> str:
        """Rewrite the head commit's message but keep its signature: a tampered commit (%G? = B)."""
        raw = sh("git", "cat-file", "commit", "HEAD", cwd=self.work)
        forged = raw.replace("\n\n", "\n\nforged: ", 1) if raw.count("\n\n") else raw + "forged"
        sha = sh("git", "hash-object", "-t", "commit", "-w", "--stdin", cwd=self.work, stdin=forged.encode()).strip()
        self.git("update-ref", "refs/heads/main", sha)
        self.git("reset", "-q", "--hard", sha)
        return sha


def forge_args(
    forge: str, repo: Path | str, forge_repo: str, api_url: str, *, trust_gpg: Path, token: str | None = None
) -> list[str]:
    """`gitgate serve` flags for an approvals repo hosted by a (fake) forge, its merges signed by
    the GPG key in `trust_gpg`. Callers add the state dir and what else they need."""
    args = ["--repo", str(repo), "--trust-gpg", str(trust_gpg), "--forge", forge, "--forge-repo", forge_repo]
    args += ["--api-url", api_url]
    return args + (["--token", token] if token else [])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """`gitgate serve` as a real process on a loopback port."""

    def __init__(self, args: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = list(args)
        self.cwd = cwd
        self.env = env or {}
        self.log = cwd / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, ready: bool = True, timeout: float = 20) -> Service:
        cwd = self.cwd
        cwd.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gitgate", "serve", "--listen", f"127.0.0.1:{self.port}", *self.args],
                cwd=cwd,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        path = "/readyz" if ready else "/healthz"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gitgate serve exited {self.proc.returncode}:\n{self.log.read_text()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + path, timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        raise AssertionError(f"gitgate serve not {'ready' if ready else 'up'} in {timeout}s:\n{self.log.read_text()}")

    def stop(self, *, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = requests.get(self.url + "/api/v1/status", timeout=5).json()
        return result

    def check(
        self, hook: str, namespace: str, name: str, checksum: str, phase: str = "Progressing"
    ) -> requests.Response:
        path = "/rollback/check" if hook == "rollback" else f"/gate/check/{hook}"
        body = {"name": name, "namespace": namespace, "checksum": checksum, "phase": phase}
        return requests.post(self.url + path, json=body, timeout=5)


@contextlib.contextmanager
def service(args: Sequence[str], cwd: Path, **kwargs: Any) -> Iterator[Service]:
    svc = Service(args, cwd, **kwargs)
    try:
        yield svc.start()
    finally:
        svc.stop()


def wait_for(predicate: Any, timeout: float = 10, interval: float = 0.05) -> Any:
    """Poll until predicate() is truthy; return it, or fail saying what was last seen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s (last: {last!r})")

"""Synthetic approvals repos for the benchmarks: N gate files, a long history, real SSH signatures.

    python bench/repos.py --gates 100000 --history 20000 bench/out/repo-100k

builds `<dir>/remote.git` (a bare repo: what `gitgate serve --repo` fetches), `<dir>/key` (an
ed25519 signing key) and `<dir>/allowed_signers` (its trust root). The gate files are spread over
100 namespaces, each with two approvals (one bound to a checksum, with an expiry, a request link
and a note) as real ones have; the repo-wide policy holds a freeze window that is not in force.
History: the first commit adds every gate file, each later one changes one approval, as merged
requests do. Bulk commits are written with `git fast-import` (seconds for 100,000 files); the head
is signed with the key, so `gitgate serve` trusts it on start. `Repo.land()` adds signed commits
afterwards, each changing the files given, the way a merged request lands.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

NAMESPACES = 100
EMAIL = "bench@example.test"
POLICY = """apiVersion: gitgate/v1
kind: Policy
spec:
  default: closed
  freeze:
    - start: "0 0 1 1 *"
      duration: 1h
      reason: New year
"""


def gate_text(i: int, revision: int = 0) -> str:
    ns, name = canary(i)
    return f"""apiVersion: gitgate/v1
kind: Gate
metadata:
  name: {name}
  namespace: {ns}
spec:
  approvals:
    - hook: confirm-rollout
      checksum: "*"
      note: rollouts are routine
    - hook: confirm-promotion
      checksum: "{i:08x}{revision:04x}"
      expires: "2099-01-01T00:00:00Z"
      request: https://github.com/acme/approvals/pull/{i + 1}
      note: load-tested
"""


def canary(i: int) -> tuple[str, str]:
    return f"team-{i % NAMESPACES:02d}", f"app-{i:06d}"


def gate_path(i: int) -> str:
    ns, name = canary(i)
    return f"gates/{ns}/{name}.yaml"


def git(*args: str, cwd: Path, stdin: bytes | None = None, env: dict[str, str] | None = None) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    base.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, LC_ALL="C")
    proc = subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, env={**base, **(env or {})}, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args[:3])} failed: {proc.stderr.decode().strip()}")
    return proc.stdout.decode()


class Repo:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.remote = root / "remote.git"
        self.key = root / "key"
        self.allowed_signers = root / "allowed_signers"
        self._ticks = 0

    def _sign_args(self) -> list[str]:
        return ["-c", "gpg.format=ssh", "-c", f"user.signingkey={self.key}"]

    def _env(self) -> dict[str, str]:
        self._ticks += 1
        stamp = f"{1_800_000_000 + self._ticks} +0000"
        who = {"NAME": "Bench", "EMAIL": EMAIL, "DATE": stamp}
        return {f"GIT_{role}_{k}": v for role in ("AUTHOR", "COMMITTER") for k, v in who.items()}

    def head(self) -> str:
        return git("rev-parse", "refs/heads/main", cwd=self.remote).strip()

    def _fast_import(self, commits: list[dict[str, str | None]], parent: str | None) -> str:
        """Unsigned commits through fast-import on a scratch ref; returns the last one."""
        out: list[bytes] = []
        for n, files in enumerate(commits):
            out.append(b"commit refs/bench/scratch\n")
            out.append(f"committer Bench <{EMAIL}> {1_700_000_000 + n} +0000\n".encode())
            msg = b"bench change\n"
            out.append(b"data %d\n%s" % (len(msg), msg))
            if n == 0 and parent:
                out.append(f"from {parent}\n".encode())
            for path, text in files.items():
                if text is None:
                    out.append(f"D {path}\n".encode())
                else:
                    data = text.encode()
                    out.append(f"M 100644 inline {path}\n".encode())
                    out.append(b"data %d\n%s\n" % (len(data), data))
            out.append(b"\n")
        git("fast-import", "--quiet", "--force", cwd=self.remote, stdin=b"".join(out))
        return git("rev-parse", "refs/bench/scratch", cwd=self.remote).strip()

    def _signed(self, tree_of: str, parent: str | None, message: str) -> str:
        tree = git("rev-parse", f"{tree_of}^{{tree}}", cwd=self.remote).strip()
        parents = ["-p", parent] if parent else []
        return git(
            *self._sign_args(), "commit-tree", tree, *parents, "-S", "-m", message, cwd=self.remote, env=self._env()
        ).strip()

    def create(self, gates: int, history: int) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        git("init", "-q", "--bare", "-b", "main", str(self.remote), cwd=self.root)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", EMAIL, "-f", str(self.key)], check=True)
        public = Path(f"{self.key}.pub").read_text().split()
        self.allowed_signers.write_text(f'{EMAIL} namespaces="git" {public[0]} {public[1]}\n')
        first: dict[str, str | None] = {gate_path(i): gate_text(i) for i in range(gates)}
        first["gitgate.yaml"] = POLICY
        first["README.md"] = "Synthetic approvals repo for gitgate's benchmarks.\n"
        changes: list[dict[str, str | None]] = [first]
        for n in range(1, history):
            i = (n * 7919) % gates
            changes.append({gate_path(i): gate_text(i, n % 4096)})
        last = self._fast_import(changes, None)
        head = self._signed(last, last, "bench: signed head")  # one signed commit on top of the bulk
        git("update-ref", "refs/heads/main", head, cwd=self.remote)
        git("update-ref", "-d", "refs/bench/scratch", cwd=self.remote)

    def land(self, files: dict[str, str | None], commits: int = 1) -> list[str]:
        """`commits` signed commits on main, the first changing `files` (the rest empty, as the
        merge commits of a busy repo), like requests merged one after another."""
        parent = self.head()
        made = []
        for n in range(commits):
            source = self._fast_import([files], parent) if n == 0 and files else parent
            parent = self._signed(source, parent, f"bench: landed change {n}")
            made.append(parent)
        git("update-ref", "refs/heads/main", parent, cwd=self.remote)
        return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--gates", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=1_000, help="commits, the first adding every gate")
    args = parser.parse_args(argv)
    if args.dir.exists():
        print(f"{args.dir} exists; remove it first", file=sys.stderr)
        return 2
    started = time.perf_counter()
    Repo(args.dir).create(args.gates, args.history)
    print(f"{args.dir}: {args.gates} gates, {args.history + 1} commits in {time.perf_counter() - started:.1f} s")
    print(f"command: python {' '.join(sys.argv)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

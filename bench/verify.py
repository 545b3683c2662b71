"""Verifying N new SSH-signed commits: in process (gitgate.sshsig), git alone, and N `git verify-commit`.

    python bench/verify.py                 # 50 commits, best of 5 runs each way
    python bench/verify.py --commits 200 --runs 3

Builds a scratch repo of N commits signed by an ed25519 key with real git (`commit-tree -S`,
gpg.format=ssh) and an allowed_signers file trusting it, then times, on the same commits:
- fast path: `TrustRoots.verify` as gitgate runs it (SSH signatures checked in process; one
  `git cat-file --batch` and one `git log` without %G);
- git only: `TrustRoots.verify` with the fast path off (git starts ssh-keygen twice per commit, one
  `git log` per CPU);
- N runs of `git verify-commit`, one per commit.
Each figure is the median of --runs runs (the first fast-path run, which also imports and parses,
is shown as well). Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gitgate.git import Mirror
from gitgate.trust import TrustRoots, VerifyMode

EMAIL = "bench@example.test"


def git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    base.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, LC_ALL="C")
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, env={**base, **(env or {})}, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args[:3])} failed: {proc.stderr.decode().strip()}")
    return proc.stdout.decode()


def build(root: Path, commits: int) -> tuple[Path, Path, list[str]]:
    """A bare repo with `commits` signed commits; its allowed_signers file; the commit ids."""
    repo = root / "repo.git"
    key = root / "key"
    git("init", "-q", "--bare", "-b", "main", str(repo), cwd=root)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", EMAIL, "-f", str(key)], check=True)
    kind, blob = Path(f"{key}.pub").read_text().split()[:2]
    signers = root / "allowed_signers"
    signers.write_text(f'{EMAIL} namespaces="git" {kind} {blob}\n')
    tree = git("hash-object", "-t", "tree", "-w", "--stdin", cwd=repo).strip()  # the empty tree
    made: list[str] = []
    for n in range(commits):
        who = {"NAME": "Bench", "EMAIL": EMAIL, "DATE": f"{1_800_000_000 + n} +0000"}
        env = {f"GIT_{role}_{k}": v for role in ("AUTHOR", "COMMITTER") for k, v in who.items()}
        parents = ["-p", made[-1]] if made else []
        sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}"]
        made.append(git(*sign, "commit-tree", tree, *parents, "-S", "-m", f"change {n}", cwd=repo, env=env).strip())
    git("update-ref", "refs/heads/main", made[-1], cwd=repo)
    return repo, signers, made


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gitgate-bench-verify-") as tmp:
        root = Path(tmp)
        repo, signers, commits = build(root, args.commits)
        home = root / "gnupg"
        home.mkdir(mode=0o700)
        mirror = Mirror(repo)
        fast = TrustRoots(VerifyMode.ALL, signers, frozenset(), home)
        slow = TrustRoots(VerifyMode.ALL, signers, frozenset(), home, ssh_in_process=False)

        def check(roots: TrustRoots) -> None:
            verdicts = roots.verify(mirror, commits)
            if not all(v.trusted for v in verdicts):
                raise SystemExit(f"not trusted: {next(v for v in verdicts if not v.trusted)}")

        fast_ms = timed(lambda: check(fast), args.runs + 1)
        slow_ms = timed(lambda: check(slow), args.runs)
        config = ["-c", f"gpg.ssh.allowedSignersFile={signers}"]
        separate_ms = timed(lambda: [git(*config, "verify-commit", c, cwd=repo) for c in commits], args.runs)
    n = args.commits
    print(f"verifying {n} SSH-signed commits (median of {args.runs} runs; {os.cpu_count()} CPUs)")
    print(f"  fast path (in process):      {statistics.median(fast_ms[1:]):8.1f} ms  (first run {fast_ms[0]:.1f} ms)")
    print(f"  git only (fast path off):    {statistics.median(slow_ms):8.1f} ms")
    print(f"  {n} x git verify-commit:     {statistics.median(separate_ms):8.1f} ms")
    print(f"command: python {' '.join(sys.argv)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

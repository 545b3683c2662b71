"""Verifying N new SSH-signed commits: in process (gitgate.sshsig), git alone, and N `git verify-commit`.

    python bench/verify.py                 # 50 commits, best of 5 runs each way
    python bench/verify.py --commits 200 --runs 3

Builds a small repo with bench/repos.py and lands N commits on it, each signed by an ed25519 key
with real git (`commit-tree -S`, gpg.format=ssh), trusted by an allowed_signers file; then times,
on the same commits:
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
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from repos import Repo, git

from gitgate.git import Mirror
from gitgate.trust import TrustRoots, VerifyMode


def build(root: Path, commits: int) -> tuple[Path, Path, list[str]]:
    """bench/repos.py's synthetic repo (10 gate files) with `commits` signed commits landed on it:
    the repo, its allowed_signers file, the commit ids."""
    repo = Repo(root / "repo")
    repo.create(10, 1)
    return repo.remote, repo.allowed_signers, repo.land({}, commits=commits)


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

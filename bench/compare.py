"""Two versions of gitgate, measured in turn on the same repos: which one is faster, on this VM now.

    git worktree add /tmp/gitgate-old <commit>
    python bench/compare.py /tmp/gitgate-old .                  # cold starts at 100,000, p99 at 10,000
    python bench/compare.py /tmp/gitgate-old . --rounds 5 --what cold

A shared VM's speed moves by tens of percent within minutes (docs/performance.md), so figures
taken an hour apart do not compare two versions. This script alternates them: each round runs the
old tree's `gitgate serve`, then the new one's, on the same repo and load (bench/scale.py's
service, repos and paced load), and prints every figure and the medians.

- cold: an empty --state-dir to the first 200 from /readyz, at --size gates (default 100,000);
- p99: about 1,000 checks/s for --seconds (after 3 s of warm-up) at 10,000 gates, p99 latency.

Each service runs from a scratch folder with PYTHONPATH set to the tree, so `python -m gitgate`
imports that tree's package and not the one in the current folder.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import scale


def cold_start(repo: scale.Repo, work: Path, label: str) -> float:
    state = work / f"cold-{label}"
    with scale.serving(repo, state, work / f"{label}.log") as (_, seconds):
        pass
    shutil.rmtree(state, ignore_errors=True)
    return seconds


def paced_p99(repo: scale.Repo, work: Path, label: str, seconds: float) -> float:
    lua = scale.scripts(work, 10_000)
    with scale.serving(repo, work / f"paced-{label}", work / f"{label}.log") as (service, _):
        scale.paced(service, lua, 3)  # warm-up
        return scale.paced(service, lua, seconds).p99_ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=Path, help="a source tree of gitgate (e.g. a git worktree)")
    parser.add_argument("new", type=Path)
    parser.add_argument("--what", choices=["cold", "p99", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=100_000, help="gates for the cold starts")
    parser.add_argument("--seconds", type=float, default=6.0, help="per paced run")
    args = parser.parse_args(argv)
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    for tree in trees.values():
        if not (tree / "gitgate" / "__init__.py").is_file():
            print(f"{tree}: no gitgate package here", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="gitgate-compare-"))
    os.chdir(work)  # so that `python -m gitgate` finds no package in the current folder
    results: dict[str, dict[str, list[float]]] = {"cold": {"old": [], "new": []}, "p99": {"old": [], "new": []}}
    kinds = ["cold", "p99"] if args.what == "both" else [args.what]
    repos = {
        kind: scale.repo_of(*({"cold": (args.size, max(args.size // 5, 1_000)), "p99": (10_000, 2_000)}[kind]))
        for kind in kinds
    }
    for n in range(args.rounds):
        for kind in kinds:
            for label, tree in trees.items():
                os.environ["PYTHONPATH"] = str(tree)
                if kind == "cold":
                    figure = cold_start(repos[kind], work, label)
                    scale.say(f"round {n + 1}: {label} cold start at {args.size} gates: {figure:.2f} s")
                else:
                    figure = paced_p99(repos[kind], work, label, args.seconds)
                    scale.say(f"round {n + 1}: {label} p99 at ~1,000 checks/s: {figure:.1f} ms")
                results[kind][label].append(figure)
    for kind in kinds:
        unit = "s" if kind == "cold" else "ms"
        for label, tree in trees.items():
            figures = results[kind][label]
            shown = ", ".join(f"{f:.2f}" for f in figures)
            print(f"{kind} {label} ({tree}): median {statistics.median(figures):.2f} {unit} of {shown}")
    print(f"command: python {shlex.join(sys.argv)}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

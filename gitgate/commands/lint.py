"""`gitgate lint [PATH...]`: check gate and policy files in a tree or one by one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gitgate.errors import Problem
from gitgate.schema import POLICY_FILE, canary_for_path, parse_gate, parse_policy
from gitgate.snapshot import policy_paths


def lint_tree(root: Path, gates_path: str) -> tuple[int, list[Problem]]:
    """Lint a checkout the way the reconciler reads a commit: every file under the gates folder."""
    problems: list[Problem] = []
    count = 0
    folder = root / gates_path
    for rel in policy_paths(gates_path):
        if (root / rel).is_file():
            count += 1
            problems += parse_policy(rel, (root / rel).read_bytes())[1]
    if folder.is_dir():
        for file in sorted(folder.rglob("*")):
            rel = file.relative_to(root).as_posix()
            if file.is_symlink():
                problems.append(Problem(rel, None, "", "is a symbolic link; only plain gate files are allowed here"))
                continue
            if file.is_dir():
                continue
            count += 1
            canary, why = canary_for_path(rel, gates_path)
            if canary is None:
                problems.append(Problem(rel, None, "", why))
                continue
            problems += parse_gate(rel, file.read_bytes(), canary)[1]
    elif folder.exists():
        problems.append(Problem(gates_path, None, "", "is not a folder of gate files"))
    if count == 0 and not problems:  # nothing linted passes nothing: a wrong --path must not go green in CI
        problems.append(Problem(str(root), None, "", f"no {gates_path}/ folder and no {POLICY_FILE}; is --path right?"))
    return count, problems


def lint_file(file: Path) -> list[Problem]:
    shown = str(file)
    if file.name == POLICY_FILE:
        return parse_policy(shown, file.read_bytes())[1]
    canary, why = canary_for_path(f"{file.absolute().parent.name}/{file.name}", "")  # "x.yaml" too
    if canary is None:
        return [Problem(shown, None, "", why)]
    return parse_gate(shown, file.read_bytes(), canary)[1]


def run(args: argparse.Namespace) -> int:
    problems: list[Problem] = []
    count = 0
    for name in args.paths or ["."]:
        path = Path(name)
        if path.is_dir():
            n, found = lint_tree(path, args.path.strip("/"))
            count += n
            problems += [
                Problem(str(path / p.file) if name != "." else p.file, p.line, p.key, p.message) for p in found
            ]
        elif path.is_file():
            count += 1
            problems += lint_file(path)
        else:
            problems.append(Problem(name, None, "", "no such file or folder"))
    problems.sort(key=lambda p: (p.file, p.line or 0))
    for problem in problems:
        print(problem.render())
    noun = "file" if count == 1 else "files"
    if problems:
        print(f"{count} {noun} checked, {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{count} {noun} checked, no problems", file=sys.stderr)
    return 0

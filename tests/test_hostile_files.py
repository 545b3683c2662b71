"""Hostile gate files and hostile trees (issue 6, hostile input).

The parser (`parse_gate`, `parse_policy`, `gitgate lint`) gets a corpus of named attacks and
Hypothesis-mutated gates: each must give a Gate, or problems that name the file, a line in it and a
reason; never an exception, and in bounded memory. Accepted documents survive a round trip.

Then odd tree entries, end to end: a signed commit to a real approvals repo served by a real
`gitgate serve`. Each must be refused with a reason in /api/v1/status that names the entry, and
leave every answer as it was.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import Approvals, Keys, Service, sh, wait_for
from hostile import (
    CANARY,
    FILE,
    POLICY_FILE,
    VALID_GATE,
    Case,
    comparable,
    gate_corpus,
    mutated_gate,
    violations,
    write_gate,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gitgate.model import GATE_HOOKS, Approval, Default, FreezeWindow, Gate
from gitgate.schema import parse_gate, parse_policy

CORPUS = gate_corpus()
MEMORY_BOUND = 32 << 20  # bytes allocated while parsing one file; the largest case needs about 14 MB


def parse_both(data: bytes) -> list[str]:
    """Parse as a gate and as a policy; every broken rule of the contract, or []."""
    gate, problems = parse_gate(FILE, data, CANARY)
    out = violations(FILE, data, gate, problems)
    policy, policy_problems = parse_policy(POLICY_FILE, data)
    return out + violations(POLICY_FILE, data, policy, policy_problems)


# --- the parser: a corpus of attacks -----------------------------------------------------------------


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_a_hostile_gate_file_gives_located_problems_never_an_exception(case: Case) -> None:
    tracemalloc.start()
    try:
        gate, problems = parse_gate(FILE, case.data, CANARY)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert violations(FILE, case.data, gate, problems) == []
    rendered = "\n".join(p.render() for p in problems)
    if case.says is None:
        assert gate is not None, rendered
    else:
        assert gate is None
        assert case.says in rendered, rendered
    assert peak < MEMORY_BOUND, f"{peak} bytes allocated"
    policy, policy_problems = parse_policy(POLICY_FILE, case.data)
    assert violations(POLICY_FILE, case.data, policy, policy_problems) == []


def test_the_corpus_covers_every_category_the_issue_names() -> None:
    assert {c.category for c in CORPUS} == {
        "bomb", "nesting", "size", "encoding", "duplicate", "types", "tags", "documents", "merge",
    }  # fmt: skip
    assert len({c.id for c in CORPUS}) == len(CORPUS)


def test_problems_found_while_reading_yaml_name_the_key_path() -> None:
    """A duplicate key, a tag or an alias deep in a file: the problem names where, as key path."""
    dup = VALID_GATE.replace(b'      checksum: "*"\n', b'      checksum: "*"\n      checksum: "a"\n')
    tag = VALID_GATE.replace(b"note: load-tested", b"note: !!binary bG9hZA==")
    for data, key in ((dup, "spec.approvals[1].checksum"), (tag, "spec.approvals[0].note")):
        problems = parse_gate(FILE, data, CANARY)[1]
        assert [p.key for p in problems] == [key], [p.render() for p in problems]


def test_keys_with_control_characters_are_shown_escaped_on_one_line() -> None:
    """What a problem quotes from the file is printed by `gitgate lint`, logs and the status page:
    a line break or a terminal escape sequence in a key must not reach them raw."""
    data = VALID_GATE.replace(b"spec:\n", b'spec:\n  "a\\nb\\e[2J": 1\n')
    problems = parse_gate(FILE, data, CANARY)[1]
    assert problems
    for p in problems:
        assert p.render().isprintable(), repr(p.render())


# --- the parser: generated documents ---------------------------------------------------------------


def round_trip(gate: Gate) -> None:
    """Written back out and read again, an accepted gate is the same gate (and is written alike)."""
    text = write_gate(gate)
    again, problems = parse_gate(FILE, text, CANARY)
    assert problems == [], (text, problems)
    assert again is not None and comparable(again) == comparable(gate)
    assert write_gate(again) == text


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rnd=st.randoms(use_true_random=False))
@example(rnd=random.Random(6))  # noqa: S311 - a replayable example, not a secret
def test_mutated_gates_give_a_gate_or_located_problems(rnd: random.Random) -> None:
    data = mutated_gate(rnd)
    assert parse_both(data) == []
    gate, _ = parse_gate(FILE, data, CANARY)
    if gate is not None:
        round_trip(gate)


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
_INSTANT = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)  # fmt: skip
_APPROVAL = st.builds(
    Approval,
    hook=st.sampled_from(GATE_HOOKS),
    checksum=st.just("*") | st.from_regex(r"[A-Za-z0-9._-]{1,128}", fullmatch=True),
    expires=st.none() | _INSTANT,
    request=st.none() | _TEXT,
    note=st.none() | _TEXT,
)
_WINDOW = st.builds(
    FreezeWindow,
    start=st.sampled_from(["0 18 * * FRI", "*/15 * * * *", "0 0 1 1 *", "30 9 * * 1-5", "0 0 L * *"]),
    duration=st.integers(1, 3650 * 86400).map(lambda s: timedelta(seconds=s)),
    timezone=st.sampled_from(["UTC", "Europe/Berlin", "America/St_Johns", "Asia/Kathmandu", "Etc/GMT+12"]),
    reason=st.none() | _TEXT,
)
_GATE = st.builds(
    Gate,
    canary=st.just(CANARY),
    path=st.just(FILE),
    default=st.none() | st.sampled_from(Default),
    approvals=st.lists(_APPROVAL, max_size=4).map(tuple),
    freeze=st.lists(_WINDOW, max_size=3).map(tuple),
)


@settings(max_examples=150, deadline=None)
@given(gate=_GATE)
def test_any_gate_written_out_and_parsed_again_is_the_same_gate(gate: Gate) -> None:
    parsed, problems = parse_gate(FILE, write_gate(gate), CANARY)
    assert problems == []
    assert parsed is not None and comparable(parsed) == comparable(gate)
    round_trip(parsed)


# --- gitgate lint, as a command --------------------------------------------------------------------


def test_lint_reports_every_hostile_file_in_one_line_each_without_a_traceback(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    names = {}
    for i, case in enumerate(CORPUS):
        rel = f"gates/test/case-{i:03d}.yaml"
        (root / "gates/test").mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(case.data)
        names[rel] = case
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitgate", "lint", "."],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    try:
        out, err = proc.communicate(timeout=120)  # a hang guard, not a speed check
    finally:
        proc.kill()
    assert "Traceback" not in err.decode("utf-8", "replace"), err.decode("utf-8", "replace")[-3000:]
    assert proc.returncode == 1
    text = out.decode("utf-8")
    lines = text.splitlines()
    # Each refused corpus file appears, each line is "file[:line]: message"; names differ from the
    # folder's canary (case-NNN), so every file is refused at least for metadata.name.
    seen = {line.split(":", 1)[0] for line in lines}
    assert seen == set(names), sorted(set(names) - seen)
    location = re.compile(r"^gates/test/case-\d{3}\.yaml(:\d+)?: \S")
    assert [line for line in lines if not location.match(line)] == []


# --- odd entries in a pushed tree, end to end --------------------------------------------------------

NS, NAME, SUM = "test", "podinfo", "85d557f47b"
PROBES = [("confirm-promotion", SUM), ("rollback", "c0ffee"), ("confirm-rollout", SUM)]


@dataclass
class Tree:
    repo: Approvals
    svc: Service
    keys: Keys

    def answers(self) -> list[tuple[int, str]]:
        out = []
        for hook, checksum in PROBES:
            resp = self.svc.check(hook, NS, NAME, checksum)
            out.append((resp.status_code, resp.headers.get("X-Gitgate-Commit", "")))
        return out

    def serving(self) -> str:
        commit: str = self.svc.status()["verified"]["commit"]
        return commit

    def push(
        self, entries: list[tuple[str, bytes, bytes]], *, drop: list[str] | None = None, open_rollback: bool
    ) -> str:
        """A signed commit on top of what is served: (mode, path, content) entries put straight into
        git's index (so any name and mode git can hold), optionally with a valid change that would
        open rollback of test/podinfo if the commit were taken. Force-pushed over refused heads."""
        repo = self.repo
        repo.git("reset", "-q", "--hard", self.serving())
        if open_rollback:
            repo.approve(NS, NAME, "rollback", "c0ffee")
            repo.git("add", "-A")
        for path in drop or []:
            repo.git("rm", "-r", "-q", "--cached", path)
        index = b""
        for mode, path, content in entries:
            oid = (
                content
                if mode == "160000"
                else sh("git", "hash-object", "-w", "--stdin", cwd=repo.work, stdin=content).strip().encode()
            )
            index += mode.encode() + b" " + oid + b"\t" + path + b"\0"
        if index:
            sh("git", "update-index", "--add", "-z", "--index-info", cwd=repo.work, stdin=index)
        repo.git("commit", "-q", "--allow-empty", "-m", "odd entries", signer=self.keys.alice)
        sha = repo.head()
        tree = subprocess.run(
            ["git", "ls-tree", "-r", "-z", sha], cwd=repo.work, capture_output=True, check=True
        ).stdout
        for mode, path, _ in entries:  # git skips, with a warning only, names it cannot hold
            assert mode.encode() + b" " in tree and b"\t" + path + b"\0" in tree, path
        repo.push(force=True)
        requests.post(self.svc.url + "/hooks/local", timeout=5)
        return sha

    def refusal(self, commit: str) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((r for r in self.svc.status()["refused"] if r["commit"] == commit), None)

        refusal: dict[str, Any] = wait_for(found, timeout=15)
        return refusal


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Iterator[Tree]:
    """One service for the module: an approvals repo whose head opens confirm-promotion of
    test/podinfo at SUM. Every case starts from whatever commit is served."""
    root = tmp_path_factory.mktemp("tree")
    repo = Approvals.create(root / "approvals", keys)
    repo.approve(NS, NAME, "confirm-promotion", SUM)
    repo.land("approve podinfo", keys.alice)
    args = ["--repo", repo.url, "--interval", "60s", "--state-dir", str(root / "state")]
    svc = Service([*args, "--trust-ssh", str(keys.allowed_signers)], root / "run").start()
    try:
        yield Tree(repo, svc, keys)
    finally:
        svc.stop()


GATE_TEXT = VALID_GATE
LINK = "120000"
GITLINK = "160000"
FILE_MODE = "100644"
SUBMODULE_TARGET = b"1" * 40

ODD_ENTRIES: list[tuple[str, list[tuple[str, bytes, bytes]], list[str], list[str]]] = [
    # id, entries, paths dropped first, words the reason must hold
    ("symlink-gate", [(LINK, b"gates/test/link.yaml", b"podinfo.yaml")], [], ["gates/test/link.yaml", "symbolic link"]),
    (
        "symlink-out-of-repo",
        [(LINK, b"gates/test/etc.yaml", b"/etc/passwd")],
        [],
        ["gates/test/etc.yaml", "symbolic link"],
    ),
    ("symlink-folder", [(LINK, b"gates/staging", b"test")], [], ["gates/staging", "symbolic link"]),
    ("submodule", [(GITLINK, b"gates/test/vendor", SUBMODULE_TARGET)], [], ["gates/test/vendor", "submodule"]),
    (
        "submodule-named-yaml",
        [(GITLINK, b"gates/test/canary.yaml", SUBMODULE_TARGET)],
        [],
        ["gates/test/canary.yaml", "submodule"],
    ),
    ("space", [(FILE_MODE, b"gates/test/pod info.yaml", GATE_TEXT)], [], ["pod info", "not a Kubernetes object name"]),
    (
        "unicode",
        [(FILE_MODE, "gates/test/pödinfo.yaml".encode(), GATE_TEXT)],
        [],
        ["pödinfo", "not a Kubernetes object name"],
    ),
    (
        "leading-dot-file",
        [(FILE_MODE, b"gates/test/.podinfo.yaml", GATE_TEXT)],
        [],
        ["'.podinfo'", "not a Kubernetes object name"],
    ),
    (
        "leading-dot-folder",
        [(FILE_MODE, b"gates/.test/podinfo.yaml", GATE_TEXT)],
        [],
        ["'.test'", "not a Kubernetes namespace"],
    ),
    (
        "dot-dot",
        [(FILE_MODE, b"gates/test/...yaml", GATE_TEXT)],
        [],
        ["gates/test/...yaml", "not a Kubernetes object name"],
    ),
    (
        "yaml-folder",
        [(FILE_MODE, b"gates/test/podinfo.yaml/x.yaml", GATE_TEXT)],
        ["gates/test/podinfo.yaml"],
        ["gates/test/podinfo.yaml/x.yaml", "not a gate file path"],
    ),
    (
        "upper-case-folder",
        [(FILE_MODE, b"gates/Test/podinfo.yaml", GATE_TEXT)],
        [],
        ["'Test'", "not a Kubernetes namespace"],
    ),
    (
        "upper-case-name",
        [(FILE_MODE, b"gates/test/PodInfo.yaml", GATE_TEXT)],
        [],
        ["'PodInfo'", "not a Kubernetes object name"],
    ),
    (
        "upper-case-suffix",
        [(FILE_MODE, b"gates/test/podinfo.YAML", GATE_TEXT)],
        [],
        ["gates/test/podinfo.YAML", "not a gate file path"],
    ),
    (
        "yml-suffix",
        [(FILE_MODE, b"gates/test/canary.yml", GATE_TEXT)],
        [],
        ["gates/test/canary.yml", "not a gate file path"],
    ),
    ("no-folder", [(FILE_MODE, b"gates/podinfo.yaml", GATE_TEXT)], [], ["gates/podinfo.yaml", "not a gate file path"]),
    (
        "too-deep",
        [(FILE_MODE, b"gates/test/sub/podinfo.yaml", GATE_TEXT)],
        [],
        ["gates/test/sub/podinfo.yaml", "not a gate file path"],
    ),
    ("stray-readme", [(FILE_MODE, b"gates/README.md", b"# gates\n")], [], ["gates/README.md", "not a gate file path"]),
    (
        "name-too-long",
        [(FILE_MODE, b"gates/test/" + b"a" * 254 + b".yaml", GATE_TEXT)],
        [],
        ["not a Kubernetes object name"],
    ),
    ("gates-is-a-symlink", [(LINK, b"gates", b"elsewhere")], ["gates"], ["gates", "not a folder"]),
    ("gates-is-a-submodule", [(GITLINK, b"gates", SUBMODULE_TARGET)], ["gates"], ["gates", "not a folder"]),
    ("gates-is-a-file", [(FILE_MODE, b"gates", GATE_TEXT)], ["gates"], ["gates", "not a folder"]),
    ("policy-symlink", [(LINK, b"gitgate.yaml", b"gates/test/podinfo.yaml")], [], ["gitgate.yaml", "plain file"]),
    ("policy-submodule", [(GITLINK, b"gitgate.yaml", SUBMODULE_TARGET)], [], ["gitgate.yaml", "plain file"]),
    ("policy-folder", [(FILE_MODE, b"gitgate.yaml/x", b"x\n")], [], ["gitgate.yaml/x"]),
    (
        "policy-executable",
        [("100755", b"gitgate.yaml", b"apiVersion: gitgate/v1\nkind: Policy\n")],
        [],
        ["gitgate.yaml", "executable"],
    ),
    (
        "newline",
        [(FILE_MODE, b"gates/test/pod\ninfo.yaml", GATE_TEXT)],
        [],
        ["gates/test/pod", "not a Kubernetes object name"],
    ),
    (
        "escape-sequence",
        [(FILE_MODE, b"gates/test/\x1b[2Jpod.yaml", GATE_TEXT)],
        [],
        ["gates/test/", "not a Kubernetes object name"],
    ),
]


@pytest.mark.parametrize(("entries", "drop", "words"), [c[1:] for c in ODD_ENTRIES], ids=[c[0] for c in ODD_ENTRIES])
def test_an_odd_entry_refuses_the_commit_and_says_which_and_why(
    tree: Tree, entries: list[tuple[str, bytes, bytes]], drop: list[str], words: list[str]
) -> None:
    before = tree.answers()
    assert [status for status, _ in before] == [200, 403, 403]
    sha = tree.push(entries, drop=drop, open_rollback=not drop)
    refusal = tree.refusal(sha)
    assert refusal["kind"] == "invalid", refusal
    for word in words:
        assert word in refusal["reason"], (word, refusal["reason"])
    assert tree.answers() == before
    status = tree.svc.status()
    assert (status["verified"]["commit"], status["remote_head"]) == (before[0][1], sha)


def test_every_refusal_reads_as_one_line_on_the_page_and_in_gitgate_status(tree: Tree) -> None:
    """After the odd entries above: the reasons people read are one printable line each (a file
    name may hold a line break or a terminal escape sequence; shown raw, it would forge lines in
    logs and `gitgate status`, or clear the operator's terminal), and the page and CLI still work."""
    refused = tree.svc.status()["refused"]
    assert len(refused) >= 15
    assert [r["reason"] for r in refused if not r["reason"].isprintable()] == []
    assert requests.get(tree.svc.url + "/", timeout=5).status_code == 200
    cli = subprocess.run(
        [sys.executable, "-m", "gitgate", "status", "--url", tree.svc.url], capture_output=True, timeout=30, check=False
    )
    assert cli.returncode == 0, cli.stderr.decode("utf-8", "replace")
    assert refused[0]["commit"][:12].encode() in cli.stdout


OUTSIDE: list[tuple[str, list[tuple[str, bytes, bytes]]]] = [
    ("gate-at-the-root", [(FILE_MODE, b"test/podinfo.yaml", b"")]),
    ("upper-case-gates-folder", [(FILE_MODE, b"Gates/test/podinfo.yaml", b"")]),
    ("gates-yaml-beside-the-folder", [(FILE_MODE, b"gates.yaml", b"")]),
    ("hidden-folder", [(FILE_MODE, b".github/gates/test/podinfo.yaml", b"")]),
    ("symlink-at-the-root", [(LINK, b"podinfo.yaml", b"gates/test/podinfo.yaml")]),
    ("submodule-at-the-root", [(GITLINK, b"vendor", SUBMODULE_TARGET)]),
]


@pytest.mark.parametrize("entries", [c[1] for c in OUTSIDE], ids=[c[0] for c in OUTSIDE])
def test_files_outside_the_gates_folder_are_not_read_and_open_nothing(
    tree: Tree, entries: list[tuple[str, bytes, bytes]]
) -> None:
    """A repo holds more than gates (README, CODEOWNERS, CI workflows, other clusters' --path), so a
    file elsewhere is not refused; it is not read either: an approval in it opens nothing."""
    opening = tree.repo.work / "gates" / NS / f"{NAME}.yaml"
    before = tree.answers()
    tree.repo.git("reset", "-q", "--hard", tree.serving())
    tree.repo.approve(NS, NAME, "rollback", "c0ffee")
    gate_with_rollback = opening.read_bytes()
    filled = [(m, p, c or gate_with_rollback) for m, p, c in entries]
    sha = tree.push(filled, open_rollback=False)
    wait_for(lambda: tree.serving() == sha, timeout=15)
    assert [(s, c) for s, c in tree.answers()] == [(s, sha) for s, _ in before]


def test_an_executable_gate_file_is_refused_as_executable(tree: Tree) -> None:
    """Gate files are data: a file with the executable bit is a mistake or a trick (lead's decision)."""
    before = tree.answers()
    tree.repo.git("reset", "-q", "--hard", tree.serving())
    tree.repo.approve(NS, NAME, "rollback", "c0ffee")
    text = (tree.repo.work / "gates" / NS / f"{NAME}.yaml").read_bytes()
    sha = tree.push([("100755", f"gates/{NS}/{NAME}.yaml".encode(), text)], open_rollback=False)
    refusal = tree.refusal(sha)
    assert refusal["kind"] == "invalid"
    assert f"gates/{NS}/{NAME}.yaml" in refusal["reason"] and "executable" in refusal["reason"], refusal
    assert tree.answers() == before


def test_a_file_name_that_is_not_utf8_is_refused_and_the_page_still_renders(
    approvals: Approvals, keys: Keys, tmp_path: Path
) -> None:
    """git stores names as bytes; one that is not UTF-8 must be refused like any bad name, and the
    refusal must not break what shows it (the page at /, `gitgate status`)."""
    approvals.approve(NS, NAME, "confirm-promotion", SUM)
    approvals.land("approve podinfo", keys.alice)
    args = ["--repo", approvals.url, "--interval", "60s", "--state-dir", str(tmp_path / "state")]
    svc = Service([*args, "--trust-ssh", str(keys.allowed_signers)], tmp_path / "run").start()
    try:
        tree = Tree(approvals, svc, keys)
        before = tree.answers()
        sha = tree.push([(FILE_MODE, b"gates/test/pod\xffinfo.yaml", GATE_TEXT)], open_rollback=True)
        refusal = tree.refusal(sha)
        assert refusal["kind"] == "invalid"
        assert "gates/test/pod" in refusal["reason"] and "not a Kubernetes object name" in refusal["reason"]
        assert tree.answers() == before
        assert refusal["reason"].isprintable(), repr(refusal["reason"])
        assert requests.get(svc.url + "/", timeout=5).status_code == 200
        cli = subprocess.run(
            [sys.executable, "-m", "gitgate", "status", "--url", svc.url], capture_output=True, timeout=30, check=False
        )
        assert cli.returncode == 0, cli.stderr.decode("utf-8", "replace")
    finally:
        svc.stop()
    assert "Traceback" not in svc.log.read_text(errors="replace")

"""Incremental snapshots equal full rebuilds; the parse store only ever saves work.

Real git in a temp repo. Hypothesis writes sequences of commits (valid and invalid gate files,
policy changes, deletions, symlinks, executables, stray files, the gates folder replaced by a
file) and every commit is built twice: by one builder that goes from commit to commit through
`git diff-tree`, and from scratch. Both must agree on the snapshot, or on the problems.
"""

from __future__ import annotations

import os
import shutil
import zlib
from pathlib import Path

import pytest
from helpers import gate_yaml, sh
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitgate import snapshot
from gitgate.errors import InvalidFiles
from gitgate.git import Mirror
from gitgate.model import CanaryRef, Snapshot
from gitgate.parse_store import ParseStore, StoredGates, StoredGateUnreadable
from gitgate.snapshot import SnapshotBuilder

NAMES = [("team-a", "app-1"), ("team-a", "app-2"), ("team-b", "app-1"), ("team-c", "web")]
POLICY = "apiVersion: gitgate/v1\nkind: Policy\nspec:\n  default: {default}\n"


class Repo:
    def __init__(self, root: Path) -> None:
        self.root = root
        sh("git", "init", "-q", "-b", "main", root)
        self.mirror = Mirror(root / ".git")

    def write(self, path: str, data: str | bytes, *, mode: int = 0o644) -> None:
        file = self.root / path
        if file.is_dir() and not file.is_symlink():
            shutil.rmtree(file)
        for parent in reversed(file.relative_to(self.root).parents):  # a file where a folder goes
            if (self.root / parent).is_file() or (self.root / parent).is_symlink():
                (self.root / parent).unlink()
        file.parent.mkdir(parents=True, exist_ok=True)
        if file.is_symlink() or file.exists():
            file.unlink()
        file.write_bytes(data.encode() if isinstance(data, str) else data)
        file.chmod(mode)

    def remove(self, path: str) -> None:
        file = self.root / path
        if file.is_symlink() or file.is_file():
            file.unlink()
        elif file.is_dir():
            shutil.rmtree(file)

    def symlink(self, path: str, target: str) -> None:
        self.write(path, "")
        (self.root / path).unlink()
        os.symlink(target, self.root / path)

    def commit(self) -> str:
        sh("git", "add", "-A", cwd=self.root)
        sh(
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.test",
            "commit",
            "-q",
            "--allow-empty",
            "--no-verify",
            "-m",
            "change",
            cwd=self.root,
        )
        return sh("git", "rev-parse", "HEAD", cwd=self.root).strip()


def outcome(builder: SnapshotBuilder, commit: str, *, full: bool = False) -> Snapshot | list[str]:
    try:
        return builder.rebuild(commit) if full else builder.build(commit)
    except InvalidFiles as e:
        return [p.render() for p in e.problems]


def gate_path(i: int) -> str:
    ns, name = NAMES[i]
    return f"gates/{ns}/{name}.yaml"


def apply(repo: Repo, op: tuple[str, int, int]) -> None:
    kind, i, n = op
    ns, name = NAMES[i]
    path = gate_path(i)
    if kind == "gate":
        repo.write(path, gate_yaml(ns, name, approvals=[{"hook": "confirm-promotion", "checksum": f"sum{n}"}]))
    elif kind == "gate-open":
        repo.write(path, gate_yaml(ns, name, default="open"))
    elif kind == "invalid":
        repo.write(path, gate_yaml(ns, "someone-else") if n % 2 else "spec: [\n")
    elif kind == "delete":
        repo.remove(path)
    elif kind == "policy":
        repo.write("gitgate.yaml", POLICY.format(default="open" if n % 2 else "closed"))
    elif kind == "policy-bad":
        repo.write("gitgate.yaml", POLICY.format(default="ajar"))
    elif kind == "policy-delete":
        repo.remove("gitgate.yaml")
    elif kind == "symlink":
        repo.symlink(path, "../../README.md")
    elif kind == "executable":
        repo.write(path, gate_yaml(ns, name), mode=0o755)
    elif kind == "stray":
        repo.write(f"gates/{ns}/notes-{n}.md", "notes\n")
    elif kind == "gates-file":
        repo.remove("gates")
        repo.write("gates", "not a folder\n")
    elif kind == "gates-delete":
        repo.remove("gates")
    elif kind == "elsewhere":
        repo.write(f"docs/{n}.yaml", "anything: [\n")


OPS = st.tuples(
    st.sampled_from(
        [
            *["gate"] * 6,
            "gate-open",
            "invalid",
            *["delete"] * 2,
            "policy",
            "policy-bad",
            "policy-delete",
            "symlink",
            "executable",
            "stray",
            "gates-file",
            "gates-delete",
            "elsewhere",
        ]
    ),
    st.integers(0, len(NAMES) - 1),
    st.integers(0, 3),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(st.lists(OPS, min_size=1, max_size=3), min_size=1, max_size=7))
def test_incremental_builds_equal_full_rebuilds(tmp_path_factory: pytest.TempPathFactory, history: list) -> None:
    repo = Repo(tmp_path_factory.mktemp("repo"))
    repo.write("README.md", "approvals\n")
    incremental = SnapshotBuilder(repo.mirror, "gates")
    scratch = SnapshotBuilder(repo.mirror, "gates")
    for ops in [[("gate", 0, 0)], *history]:
        for op in ops:
            apply(repo, op)
        commit = repo.commit()
        assert outcome(incremental, commit) == outcome(scratch, commit, full=True), ops


def test_a_refused_commit_leaves_the_builder_on_the_last_good_one(tmp_path: Path) -> None:
    repo = Repo(tmp_path)
    apply(repo, ("gate", 0, 1))
    good = repo.commit()
    builder = SnapshotBuilder(repo.mirror, "gates")
    first = builder.build(good)
    apply(repo, ("invalid", 1, 0))
    apply(repo, ("gate", 2, 5))
    bad = repo.commit()
    with pytest.raises(InvalidFiles) as refused:
        builder.build(bad)
    assert [p.file for p in refused.value.problems] == [gate_path(1)]
    apply(repo, ("gate", 1, 2))  # the fix lands; the change since `good` now spans two commits
    fixed = repo.commit()
    snap = builder.build(fixed)
    assert set(snap.gates) == {CanaryRef(*NAMES[i]) for i in (0, 1, 2)}
    assert snap == SnapshotBuilder(repo.mirror, "gates").build(fixed)
    assert first.commit == good  # the old snapshot is untouched (checks may still hold it)
    assert set(first.gates) == {CanaryRef(*NAMES[0])}


def test_an_executable_gate_file_refuses_the_commit_and_says_how_to_fix_it(tmp_path: Path) -> None:
    repo = Repo(tmp_path)
    apply(repo, ("executable", 0, 0))
    with pytest.raises(InvalidFiles) as refused:
        SnapshotBuilder(repo.mirror, "gates").build(repo.commit())
    assert [p.render() for p in refused.value.problems] == [
        f"{gate_path(0)}: is executable (mode 100755); only plain gate files are allowed here "
        "(git update-index --chmod=-x FILE)"
    ]


def test_a_clusters_path_reads_only_its_folder_and_its_policy(tmp_path: Path) -> None:
    repo = Repo(tmp_path)
    prod, stage = "clusters/prod", "clusters/stage"
    repo.write(f"{prod}/gates/team-a/app-1.yaml", gate_yaml("team-a", "app-1", default="open"))
    repo.write(f"{prod}/gitgate.yaml", POLICY.format(default="closed"))
    repo.write(f"{stage}/gates/team-a/app-1.yaml", "broken: [\n")  # another cluster's problem
    first = repo.commit()
    builder = SnapshotBuilder(repo.mirror, f"{prod}/gates")
    snap = builder.build(first)
    assert [p.path for p in snap.policies] == [f"{prod}/gitgate.yaml"]
    repo.write("gitgate.yaml", POLICY.format(default="open"))
    repo.write(f"{stage}/gates/team-b/x.yaml", "also: [\n")
    second = repo.commit()
    snap = builder.build(second)
    assert [p.path for p in snap.policies] == [f"{prod}/gitgate.yaml", "gitgate.yaml"]
    assert snap == SnapshotBuilder(repo.mirror, f"{prod}/gates").build(second)


# --- the parse store ------------------------------------------------------------------------------


def many_gates(repo: Repo, count: int) -> str:
    for i in range(count):
        ns = f"team-{i % 3}"
        repo.write(f"gates/{ns}/app-{i}.yaml", gate_yaml(ns, f"app-{i}", approvals=[{"hook": "*", "checksum": "*"}]))
    return repo.commit()


def test_a_restart_takes_parsed_gates_from_the_store_and_gets_the_same_snapshot(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    commit = many_gates(repo, 12)
    store_file = tmp_path / "parsed.jsonl"
    first = SnapshotBuilder(repo.mirror, "gates", store=ParseStore(store_file, "gates")).build(commit)
    lines = store_file.read_text().splitlines()
    assert len(lines) == 1 + 12  # a header, then one line per gate file

    # While gitgate was down: one file changed, one deleted, one added.
    repo.write("gates/team-0/app-0.yaml", gate_yaml("team-0", "app-0", default="open"))
    repo.remove("gates/team-1/app-1.yaml")
    repo.write("gates/team-2/new.yaml", gate_yaml("team-2", "new"))
    later = repo.commit()
    store = ParseStore(store_file, "gates")
    restarted = SnapshotBuilder(repo.mirror, "gates", store=store).build(later)
    assert restarted == SnapshotBuilder(repo.mirror, "gates").build(later)
    assert restarted.gates[CanaryRef("team-0", "app-0")].default is not None
    assert first.gates[CanaryRef("team-0", "app-0")].default is None
    assert store.lines == 12 + 2  # the two new parses were appended; nothing else was parsed


def stored_line(path: str, oid: str, value: str) -> str:
    """A store line as gitgate writes it, CRC included: what a forged state dir would hold."""
    body = "\t".join((path, oid, value))
    return f"{body}\t{zlib.crc32(body.encode()):08x}\n"


def test_a_damaged_or_foreign_store_costs_a_parse_never_a_wrong_gate(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    commit = many_gates(repo, 6)
    store_file = tmp_path / "parsed.jsonl"
    expected = SnapshotBuilder(repo.mirror, "gates", store=ParseStore(store_file, "gates")).build(commit)
    header, *entries = store_file.read_text().splitlines()
    path, oid, value, _crc = entries[1].split("\t")

    flipped = entries[2].replace("confirm", "cOnfirm") if "confirm" in entries[2] else entries[2].replace('"*"', '"x"')
    assert flipped != entries[2]
    damaged = [
        header,
        entries[0][:-7],  # torn
        "[1, 2, 3]",
        f"{path}\t{oid}\t{value}",  # no CRC
        flipped,  # a changed character: the CRC no longer matches
        entries[1],
        *entries[3:],
    ]
    store_file.write_text("\n".join(damaged) + "\n")
    assert len(ParseStore(store_file, "gates").load()) == 4  # only the intact lines are taken
    assert SnapshotBuilder(repo.mirror, "gates", store=ParseStore(store_file, "gates")).build(commit) == expected
    assert len(ParseStore(store_file, "gates").load()) == 6  # the damaged entries were parsed again and stored

    store_file.write_text('{"format": 0}\n' + "\n".join(entries) + "\n")  # another version's file
    assert SnapshotBuilder(repo.mirror, "gates", store=ParseStore(store_file, "gates")).build(commit) == expected
    assert store_file.read_text().splitlines()[0] == header  # rewritten in this version's format


def test_a_torn_last_line_is_never_appended_to(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    commit = many_gates(repo, 3)
    store_file = tmp_path / "parsed.jsonl"
    SnapshotBuilder(repo.mirror, "gates", store=ParseStore(store_file, "gates")).build(commit)
    text = store_file.read_text()
    store_file.write_text(text[:-20])  # killed while appending: no line break at the end
    repo.write("gates/team-0/late.yaml", gate_yaml("team-0", "late"))
    later = repo.commit()
    store = ParseStore(store_file, "gates")
    snap = SnapshotBuilder(repo.mirror, "gates", store=store).build(later)
    assert snap == SnapshotBuilder(repo.mirror, "gates").build(later)
    assert store_file.read_text().endswith("\n")
    assert len(ParseStore(store_file, "gates").load()) == 4  # rewritten whole, every line intact


@pytest.mark.parametrize("value", ['["ajar", [], []]', "[null, [[1]], []]", "{}", "[null, [], [[1, 2]]]", "not json"])
def test_a_stored_gate_that_does_not_decode_is_an_error_never_a_missing_gate(tmp_path: Path, value: str) -> None:
    # Lines pass their CRC check, so this is a bug or a forged state dir; the gate must not read as
    # absent (a default-open policy would open it), and a rebuild reads it from git again.
    repo = Repo(tmp_path / "repo")
    commit = many_gates(repo, 3)
    store_file = tmp_path / "parsed.jsonl"
    expected = SnapshotBuilder(repo.mirror, "gates", store=ParseStore(store_file, "gates")).build(commit)
    header, first, *rest = store_file.read_text().splitlines()
    path, oid, _value, _crc = first.split("\t")
    store_file.write_text(header + "\n" + stored_line(path, oid, value) + "".join(line + "\n" for line in rest))

    builder = SnapshotBuilder(repo.mirror, "gates", store=ParseStore(store_file, "gates"))
    snap = builder.build(commit)  # stored gates are decoded when first asked for
    canary = CanaryRef("team-0", "app-0")
    assert snap.gates.get(CanaryRef("team-1", "app-1")) == expected.gates[CanaryRef("team-1", "app-1")]
    assert isinstance(snap.gates, StoredGates)
    assert snap.gates.damaged is False
    with pytest.raises(StoredGateUnreadable):
        snap.gates.get(canary)
    assert snap.gates.damaged is True
    assert builder.rebuild(commit, forget_store=True) == expected
    assert len(ParseStore(store_file, "gates").load()) == 3


def test_a_store_written_for_another_path_is_not_used(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    commit = many_gates(repo, 3)
    store_file = tmp_path / "parsed.jsonl"
    SnapshotBuilder(repo.mirror, "gates", store=ParseStore(store_file, "gates")).build(commit)
    other = ParseStore(store_file, "clusters/prod/gates")
    assert other.load() == {}
    assert other.lines is None


def test_a_large_first_build_parsed_in_other_processes_equals_one_parsed_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repo(tmp_path / "repo")
    many_gates(repo, 40)
    repo.write("gitgate.yaml", POLICY.format(default="open"))
    commit = repo.commit()
    here = SnapshotBuilder(repo.mirror, "gates").build(commit)
    monkeypatch.setattr(snapshot, "PARALLEL_FROM", 10)  # as a 100,000-gate repo would, at 40 files
    store_file = tmp_path / "parsed.jsonl"
    spread = SnapshotBuilder(repo.mirror, "gates", store=ParseStore(store_file, "gates")).build(commit)
    assert spread == here
    assert len(spread.gates) == 40
    assert [p.path for p in spread.policies] == ["gitgate.yaml"]
    # What the workers sent back is what the store keeps: a restart takes every gate from it.
    assert len(store_file.read_text().splitlines()) == 1 + 40
    restarted = SnapshotBuilder(repo.mirror, "gates", store=ParseStore(store_file, "gates")).build(commit)
    assert restarted == here
    # Gates cross processes (and come from the store) keyed by plain tuples; a snapshot still lists
    # them as canaries, as the status page does.
    listed = sorted((c.namespace, c.name) for c in here.gates)
    assert sorted((c.namespace, c.name) for c in spread.gates) == listed
    assert sorted((c.namespace, c.name) for c in restarted.gates) == listed
    assert [g.canary for _, g in sorted(spread.gates.items())] == [CanaryRef(*c) for c in listed]
    # A restart after 20 files changed: the rest from the store, the 20 parsed in other processes.
    for i in range(20):
        repo.write(f"gates/team-{i % 3}/app-{i}.yaml", gate_yaml(f"team-{i % 3}", f"app-{i}"))
    changed = repo.commit()
    later = SnapshotBuilder(repo.mirror, "gates", store=ParseStore(store_file, "gates")).build(changed)
    monkeypatch.setattr(snapshot, "PARALLEL_FROM", 1_000_000)
    assert later == SnapshotBuilder(repo.mirror, "gates").build(changed)
    monkeypatch.setattr(snapshot, "PARALLEL_FROM", 10)

    # Every kind of problem, found in the workers and here alike, in the same order.
    repo.write("gates/team-0/app-3.yaml", gate_yaml("team-0", "someone-else"))
    repo.write("gates/team-1/app-7.yaml", "spec: [\n")
    repo.write("gates/team-2/app-8.yaml", "# " + "x" * (snapshot.MAX_FILE_BYTES + 1) + "\n")
    repo.write("gates/Team_2/app.yaml", gate_yaml("Team_2", "app"))
    repo.write("gates/team-1/run.yaml", gate_yaml("team-1", "run"), mode=0o755)
    repo.write("gitgate.yaml", "apiVersion: gitgate/v1\nkind: Policy\nspec:\n  defualt: open\n")
    broken = repo.commit()
    monkeypatch.setattr(snapshot, "PARALLEL_FROM", 10)
    with pytest.raises(InvalidFiles) as in_workers:
        SnapshotBuilder(repo.mirror, "gates").build(broken)
    monkeypatch.setattr(snapshot, "PARALLEL_FROM", 1_000_000)
    with pytest.raises(InvalidFiles) as in_process:
        SnapshotBuilder(repo.mirror, "gates").build(broken)
    assert [p.render() for p in in_workers.value.problems] == [p.render() for p in in_process.value.problems]
    assert len(in_workers.value.problems) == 6

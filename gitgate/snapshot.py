"""A commit's gate files -> a Snapshot, or every problem that makes the commit unusable.

Files are read from git objects (never a working tree). Parsed files are cached by (path, blob id),
so a new commit costs what it changed, and the cache holds only what the latest snapshot uses.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from gitgate.errors import InvalidFiles, Problem
from gitgate.git import Mirror, TreeEntry
from gitgate.model import CanaryRef, Gate, Policy, Snapshot
from gitgate.schema import MAX_FILE_BYTES, POLICY_FILE, canary_for_path, parse_gate, parse_policy

_BLOB_MODES = {"100644", "100755"}


def policy_paths(gates_path: str) -> list[str]:
    """The policy file beside the gates folder, then the one at the root (once if the same)."""
    beside = posixpath.join(posixpath.dirname(gates_path), POLICY_FILE)
    return list(dict.fromkeys([beside, POLICY_FILE]))


@dataclass
class _Parsed:
    value: Gate | Policy | None
    problems: list[Problem]


class SnapshotBuilder:
    def __init__(self, mirror: Mirror, gates_path: str) -> None:
        self.mirror = mirror
        self.gates_path = gates_path.strip("/")
        self._cache: dict[tuple[str, str], _Parsed] = {}

    def build(self, commit: str, *, verified: bool = True) -> Snapshot:
        """Raise InvalidFiles listing every problem if any file is invalid."""
        problems: list[Problem] = []
        entries: list[TreeEntry] = []
        kind = self.mirror.tree_kind(commit, self.gates_path)
        if kind == "tree":
            entries = self.mirror.ls_tree(commit, self.gates_path)
        elif kind is not None:
            problems.append(Problem(self.gates_path, None, "", f"is a {kind}, not a folder of gate files"))
        policy_entries = [e for p in policy_paths(self.gates_path) if (e := self.mirror.entry(commit, p))]

        wanted: list[tuple[TreeEntry, CanaryRef | None]] = []
        for entry in entries:
            if entry.mode not in _BLOB_MODES:
                what = {"120000": "a symbolic link", "160000": "a submodule"}.get(entry.mode, f"mode {entry.mode}")
                problems.append(Problem(entry.path, None, "", f"is {what}; only plain gate files are allowed here"))
                continue
            canary, why = canary_for_path(entry.path, self.gates_path)
            if canary is None:
                problems.append(Problem(entry.path, None, "", why))
                continue
            wanted.append((entry, canary))
        for entry in policy_entries:
            if entry.mode not in _BLOB_MODES:
                problems.append(Problem(entry.path, None, "", "must be a plain file"))
                continue
            wanted.append((entry, None))

        cache: dict[tuple[str, str], _Parsed] = {}
        missing = [e.oid for e, _ in wanted if (e.path, e.oid) not in self._cache]
        blobs = self.mirror.read_blobs(missing, limit=MAX_FILE_BYTES) if missing else {}
        gates: dict[CanaryRef, Gate] = {}
        policies: list[Policy] = []
        for entry, canary in wanted:
            key = (entry.path, entry.oid)
            parsed = self._cache.get(key)
            if parsed is None:
                data = blobs[entry.oid]
                if data is None:
                    parsed = _Parsed(None, [Problem(entry.path, None, "", f"larger than {MAX_FILE_BYTES} bytes")])
                elif canary is None:
                    parsed = _Parsed(*parse_policy(entry.path, data))
                else:
                    parsed = _Parsed(*parse_gate(entry.path, data, canary))
            cache[key] = parsed
            problems.extend(parsed.problems)
            if isinstance(parsed.value, Gate):
                gates[parsed.value.canary] = parsed.value
            elif isinstance(parsed.value, Policy):
                policies.append(parsed.value)
        if problems:
            raise InvalidFiles(problems)
        self._cache = cache
        order = policy_paths(self.gates_path)
        policies.sort(key=lambda p: order.index(p.path))
        return Snapshot(
            commit=commit, gates_path=self.gates_path, gates=gates, policies=tuple(policies), verified=verified
        )

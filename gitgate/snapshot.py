"""A commit's gate files -> a Snapshot, or every problem that makes the commit unusable.

Files are read from git objects (never a working tree). The first build lists the whole gates
folder; every later one starts from the last snapshot built and applies only what `git diff-tree`
says changed, so a commit costs what it changed, not what the repo holds. That is sound because a
snapshot is only ever built from a commit with no invalid file, and whether a file is valid depends
on its path and content alone: the problems of a new commit are exactly the problems of the files
it changed. Tests build every commit both ways and compare.

Parsed gates are kept in a ParseStore on disk (keyed by path and blob id) when one is given, so a
restart parses only what changed while it was down; what it takes from the store stays as stored
text until first asked for (StoredGates).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import logging
import multiprocessing
import os
import pickle
import posixpath
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import cast

from gitgate.errors import GitError, InvalidFiles, Problem
from gitgate.git import Mirror, TreeEntry
from gitgate.model import CanaryRef, Policy, Snapshot
from gitgate.parse_store import ParseStore, Stored, StoredGates, encoded_text
from gitgate.schema import MAX_FILE_BYTES, POLICY_FILE, canary_for_path, parse_gate, parse_policy

log = logging.getLogger("gitgate.snapshot")
_BLOB_MODES = {"100644"}
_MODE_NAMES = {"120000": "a symbolic link", "160000": "a submodule", "040000": "a folder"}
_POLICY = CanaryRef("", "")  # marks a policy file among the files to parse


def shown(path: str) -> str:
    """A path as people read it: a name holding a line break, an escape sequence or bytes that are
    not UTF-8 (surrogate-escaped by git.py) is shown escaped, on one printable line."""
    return path if path.isprintable() else repr(path)[1:-1]


def policy_paths(gates_path: str) -> list[str]:
    """The policy file beside the gates folder, then the one at the root (once if the same)."""
    beside = posixpath.join(posixpath.dirname(gates_path), POLICY_FILE)
    return list(dict.fromkeys([beside, POLICY_FILE]))


class SnapshotBuilder:
    def __init__(self, mirror: Mirror, gates_path: str, *, store: ParseStore | None = None) -> None:
        self.mirror = mirror
        self.gates_path = gates_path.strip("/")
        self.store = store
        self._policy_paths = policy_paths(self.gates_path)
        self._pathspecs = [self.gates_path, *self._policy_paths] if self.gates_path else []
        self._last: Snapshot | None = None  # the last snapshot built: where the next build starts

    def build(self, commit: str, *, verified: bool = True) -> Snapshot:
        """Raise InvalidFiles listing every problem if any file is invalid."""
        last = self._last
        if last is None:
            snap = self._full(commit, verified)
        elif last.commit == commit:
            snap = dataclasses.replace(last, verified=verified)
        else:
            try:
                snap = self._incremental(last, commit, verified)
            except GitError as e:  # e.g. the last commit is gone from a clone made again
                log.warning("cannot diff from %s (%s); reading the whole tree of %s", last.commit[:12], e, commit[:12])
                snap = self._full(commit, verified)
        self._last = snap
        return snap

    def rebuild(self, commit: str, *, verified: bool = True, forget_store: bool = False) -> Snapshot:
        """Build from the whole tree, as the first build does; with `forget_store`, parse every
        file again (a stored parse did not decode)."""
        self._last = None
        if forget_store and self.store is not None:
            self.store.discard()
        return self.build(commit, verified=verified)

    # --- the two ways to a snapshot ---------------------------------------------------------

    def _full(self, commit: str, verified: bool) -> Snapshot:
        started = time.perf_counter()
        problems: list[Problem] = []
        wanted: list[tuple[TreeEntry, CanaryRef]] = []
        stored: dict[tuple[str, str], str] = self.store.load() if self.store is not None else {}
        skip = len(self.gates_path) + 1 if self.gates_path else 0
        for entry in self.mirror.tree_entries(commit, self._pathspecs):
            if entry.mode in _BLOB_MODES and (entry.path, entry.oid) in stored:  # its path was checked when stored
                namespace, _, file = entry.path[skip:].partition("/")
                wanted.append((entry, CanaryRef(sys.intern(namespace), file[:-5])))
                continue
            canary = self._classify(entry, problems)
            if canary is not None:
                wanted.append((entry, canary))
        gates: dict[CanaryRef, Stored] = {}
        policies: dict[str, Policy] = {}
        fresh = self._parse(wanted, gates, policies, problems, stored)
        if problems:
            raise InvalidFiles(problems)
        if self.store is not None:
            lines = self.store.lines
            if lines is None or lines + len(fresh) > len(gates) * 3 // 2 + 100:
                # Mostly stale lines (older versions, deleted files, refused commits): start afresh.
                self.store.rewrite((e.path, e.oid, gates[c]) for e, c in wanted if c is not _POLICY)
            else:
                self.store.append(fresh)
        del stored, wanted
        _give_back_memory()  # a first build of a large repo leaves a lot of freed memory behind
        # Everything alive now (the modules, the app, this snapshot's keys) lives as long as the
        # process: keep it out of the collector's full passes, which otherwise walk it all and
        # stopped every thread for 25-50 ms at 10,000 gates (measured with gc.callbacks while
        # reconciles ran back to back: the tail of the check latency). Snapshots are freed by
        # reference counting, as before; only cycles among these objects would stay.
        gc.freeze()
        log.info(
            "read %d gate files of %s in %.1f s (%d parsed, %d from the parse store)",
            len(gates),
            commit[:12],
            time.perf_counter() - started,
            len(fresh),
            len(gates) - len(fresh),
        )
        return self._snapshot(commit, gates, policies.values(), verified)

    def _incremental(self, last: Snapshot, commit: str, verified: bool) -> Snapshot:
        problems: list[Problem] = []
        wanted: list[tuple[TreeEntry, CanaryRef]] = []
        gates = cast(StoredGates, last.gates).raw()  # as every snapshot this builder makes
        policies = {p.path: p for p in last.policies}
        for status, entry in self.mirror.changed_entries(last.commit, commit, self._pathspecs):
            if status == "D":
                if entry.path in policies:
                    del policies[entry.path]
                else:
                    canary, _ = canary_for_path(entry.path, self.gates_path)
                    if canary is not None:
                        gates.pop(canary, None)
                continue
            canary = self._classify(entry, problems)
            if canary is not None:
                wanted.append((entry, canary))
        fresh = self._parse(wanted, gates, policies, problems, {})
        if problems:
            raise InvalidFiles(problems)
        if self.store is not None:
            self.store.append(fresh)
        return self._snapshot(commit, gates, policies.values(), verified)

    # --- shared steps ------------------------------------------------------------------------

    def _classify(self, entry: TreeEntry, problems: list[Problem]) -> CanaryRef | None:
        """The canary a tree entry is the gate file of (_POLICY for a policy file), or None with
        the reason added to `problems`."""
        if entry.path in self._policy_paths:
            if entry.mode not in _BLOB_MODES:
                problems.append(Problem(shown(entry.path), None, "", _not_plain(entry.mode, policy=True)))
                return None
            return _POLICY
        if entry.path == self.gates_path:
            what = _MODE_NAMES.get(entry.mode, "a file")
            problems.append(Problem(shown(entry.path), None, "", f"is {what}, not a folder of gate files"))
            return None
        if entry.mode not in _BLOB_MODES:
            problems.append(Problem(shown(entry.path), None, "", _not_plain(entry.mode, policy=False)))
            return None
        canary, why = canary_for_path(entry.path, self.gates_path)
        if canary is None:
            problems.append(Problem(shown(entry.path), None, "", why))
        return canary

    def _parse(
        self,
        wanted: list[tuple[TreeEntry, CanaryRef]],
        gates: dict[CanaryRef, Stored],
        policies: dict[str, Policy],
        problems: list[Problem],
        stored: dict[tuple[str, str], str],
    ) -> list[tuple[str, str, Stored]]:
        """Parse `wanted` into `gates` and `policies` (updated in place); return the gates parsed
        from git (not taken from `stored`) as (path, blob id, gate)."""
        todo = []
        for entry, canary in wanted:
            value = stored.get((entry.path, entry.oid)) if canary is not _POLICY else None
            if value is not None:
                gates[canary] = value  # decoded when first asked for
                continue
            todo.append((entry, canary))
        blobs = self.mirror.read_blobs([e.oid for e, _ in todo], limit=MAX_FILE_BYTES) if todo else {}
        parsed = _parse_gates(
            [(e.path, c, data) for e, c in todo if c is not _POLICY and (data := blobs[e.oid]) is not None]
        )
        fresh: list[tuple[str, str, Stored]] = []
        for entry, canary in todo:
            data = blobs[entry.oid]
            if data is None:
                problems.append(Problem(shown(entry.path), None, "", f"larger than {MAX_FILE_BYTES} bytes"))
            elif canary is _POLICY:
                policy, found = parse_policy(entry.path, data)
                problems.extend(found)
                if policy is not None:
                    policies[entry.path] = policy
            else:
                gate, found = parsed[entry.path]
                problems.extend(found)
                if gate is not None:
                    gates[canary] = gate
                    fresh.append((entry.path, entry.oid, gate))
        return fresh

    def _snapshot(
        self, commit: str, gates: dict[CanaryRef, Stored], policies: Iterable[Policy], verified: bool
    ) -> Snapshot:
        order = self._policy_paths
        return Snapshot(
            commit=commit,
            gates_path=self.gates_path,
            gates=StoredGates(gates, self.gates_path),
            policies=tuple(sorted(policies, key=lambda p: order.index(p.path))),
            verified=verified,
        )


# --- parsing many files at once ----------------------------------------------------------------

PARALLEL_FROM = 4_000  # gate files to parse before other processes help (a first start, mostly)
_Parsed = tuple[Stored | None, list[Problem]]


def _parse_gates(items: list[tuple[str, CanaryRef, bytes]]) -> dict[str, _Parsed]:
    """parse_gate over many files: in this process, or for many files spread over one process per
    CPU (parsing is CPU-bound Python; a first start of a 100,000-gate repo is mostly this)."""
    workers = min(len(os.sched_getaffinity(0)), 8)
    if len(items) < PARALLEL_FROM or workers < 2:
        return {path: parse_gate(path, data, canary) for path, canary, data in items}
    chunks = [
        [(path, canary.namespace, canary.name, data) for path, canary, data in items[i :: workers * 4]]
        for i in range(workers * 4)
    ]
    try:
        # spawn, not fork: the service has threads, and a forked child would inherit their locks.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_parse_chunk, chunks))
    except (OSError, BrokenProcessPool, pickle.PickleError) as e:
        log.warning("could not parse in other processes (%s); parsing %d files here", e, len(items))
        return {path: parse_gate(path, data, canary) for path, canary, data in items}
    out: dict[str, _Parsed] = {}
    for result in results:
        for path, value, found in result:
            out[path] = (value, [Problem(*p) for p in found])  # the gate as stored text, decoded when asked for
    return out


def _parse_chunk(
    chunk: list[tuple[str, str, str, bytes]],
) -> list[tuple[str, str | None, list[tuple[str, int | None, str, str]]]]:
    """In a worker process: parse, and answer each gate as the parse store's text (cheap to send
    back, written to the store as it is, and decoded by the service only when first asked for)."""
    out = []
    for path, namespace, name, data in chunk:
        gate, found = parse_gate(path, data, CanaryRef(namespace, name))
        problems = [(p.file, p.line, p.key, p.message) for p in found]
        out.append((path, encoded_text(gate) if gate is not None else None, problems))
    return out


def _give_back_memory() -> None:
    """Hand freed heap memory back to the system (glibc keeps it otherwise): about 50 MB after a
    100,000-gate build. Elsewhere (musl, macOS) there is nothing to do."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _not_plain(mode: str, policy: bool) -> str:
    if mode == "100755":
        what = "the policy file must be a plain file" if policy else "only plain gate files are allowed here"
        return f"is executable (mode 100755); {what} (git update-index --chmod=-x FILE)"
    if policy:
        return "must be a plain file"
    return f"is {_MODE_NAMES.get(mode, f'mode {mode}')}; only plain gate files are allowed here"

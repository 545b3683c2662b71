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
import functools
import gc
import logging
import multiprocessing
import os
import pickle
import posixpath
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import NamedTuple, cast

from gitgate.errors import GitError, InvalidFiles, Problem
from gitgate.git import Mirror, PlainEntry, TreeEntry
from gitgate.model import CanaryRef, Policy, Snapshot
from gitgate.parse_store import CanaryKey, ParseStore, Stored, StoredGates, encoded_text, store_line
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
        stored: dict[tuple[str, str], str] = self.store.load() if self.store is not None else {}
        skip = len(self.gates_path) + 1 if self.gates_path else 0
        gates: dict[CanaryKey, Stored] = {}
        kept: list[tuple[str, str, str]] = []  # taken from the store: (path, blob id, gate as text)
        todo: list[PlainEntry] = []  # to read from git
        with self._early_workers(not stored) as pool:
            for entry in self.mirror.tree_entries(commit, self._pathspecs):
                mode, _, oid, path = entry
                text = stored.get((path, oid)) if mode in _BLOB_MODES else None
                if text is not None and path not in self._policy_paths:  # its path was checked when stored
                    namespace, _, file = path[skip:].partition("/")
                    gates[sys.intern(namespace), file[:-5]] = text  # decoded when first asked for
                    kept.append((path, oid, text))
                else:
                    todo.append(entry)
            del stored
            part = self._read(todo, pool)
        if part.refused or part.problems:
            raise InvalidFiles(part.refused + part.problems)
        fresh, policies = part.gates, part.policies
        gates.update(fresh)
        if self.store is not None:
            lines = self.store.lines
            if lines is None or lines + len(fresh) > len(gates) * 3 // 2 + 100:
                # Mostly stale lines (older versions, deleted files, refused commits): start afresh.
                self.store.rewrite([*(store_line(*k) for k in kept), part.store_text])
            else:
                self.store.append([part.store_text])
        del kept, todo, part
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
        return self._snapshot(commit, gates, policies, verified)

    def _incremental(self, last: Snapshot, commit: str, verified: bool) -> Snapshot:
        gates = cast(StoredGates, last.gates).raw()  # as every snapshot this builder makes
        policies = {p.path: p for p in last.policies}
        todo: list[TreeEntry] = []
        for status, entry in self.mirror.changed_entries(last.commit, commit, self._pathspecs):
            if status != "D":
                todo.append(entry)
            elif entry.path in policies:
                del policies[entry.path]
            else:
                canary, _ = canary_for_path(entry.path, self.gates_path)
                if canary is not None:
                    gates.pop(canary, None)
        part = self._read(todo)
        if part.refused or part.problems:
            raise InvalidFiles(part.refused + part.problems)
        gates.update(part.gates)
        policies.update((p.path, p) for p in part.policies)
        if self.store is not None:
            self.store.append([part.store_text])
        return self._snapshot(commit, gates, policies.values(), verified)

    # --- shared steps ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _early_workers(self, nothing_stored: bool) -> Iterator[ProcessPoolExecutor | None]:
        """With nothing in the parse store and many objects in the clone (a first start of a large
        repo), the worker processes `_read` will need, started now: they start (about 0.3 s) while
        the tree is listed (about as long at 100,000 gates)."""
        pool = None
        if nothing_stored and _workers() >= 2 and self.mirror.object_count() >= PARALLEL_FROM:
            try:
                pool = _pool()
                for _ in range(_workers()):
                    pool.submit(int)  # each submit while none is idle starts one more process
            except OSError as e:
                log.warning("could not start processes to parse in (%s)", e)
        try:
            yield pool
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)

    def _read(self, todo: Sequence[PlainEntry], pool: ProcessPoolExecutor | None = None) -> _Part:
        """Check, read and parse tree entries: in this process, or, for many
        (a first start, mostly), spread over one process per CPU (`pool`, or new ones), each
        reading its share of the files from git itself. Parsing is CPU-bound Python; so is
        reading 100,000 blobs."""
        workers = _workers()
        store = self.store is not None
        if len(todo) >= PARALLEL_FROM and workers >= 2:
            size = -(-len(todo) // (workers * 8))  # several parts per worker: none is left long alone at the end
            parts = [todo[i : i + size] for i in range(0, len(todo), size)]  # plain tuples: pickled in C
            try:
                with contextlib.ExitStack() as stack:
                    if pool is None:
                        pool = stack.enter_context(_pool())
                    read = functools.partial(
                        _read_entries, self.mirror, self.gates_path, self._policy_paths, as_text=True, store=store
                    )
                    done = list(pool.map(read, parts))
            except (OSError, BrokenProcessPool, pickle.PickleError) as e:
                log.warning("could not read gate files in other processes (%s); reading %d here", e, len(todo))
            else:
                return _Part(
                    [g for p in done for g in p.gates],
                    "".join(p.store_text for p in done),
                    [p for d in done for p in d.policies],
                    [r for p in done for r in p.refused],
                    [r for p in done for r in p.problems],
                )
        return _read_entries(self.mirror, self.gates_path, self._policy_paths, todo, as_text=False, store=store)

    def _snapshot(
        self, commit: str, gates: dict[CanaryKey, Stored], policies: Iterable[Policy], verified: bool
    ) -> Snapshot:
        order = self._policy_paths
        return Snapshot(
            commit=commit,
            gates_path=self.gates_path,
            gates=StoredGates(gates, self.gates_path),
            policies=tuple(sorted(policies, key=lambda p: order.index(p.path))),
            verified=verified,
        )


PARALLEL_FROM = 4_000  # gate files to read before other processes help (a first start, mostly)


def _workers() -> int:
    return min(len(os.sched_getaffinity(0)), 8)


def _pool() -> ProcessPoolExecutor:
    # spawn, not fork: the service has threads, and a forked child would inherit their locks.
    return ProcessPoolExecutor(_workers(), mp_context=multiprocessing.get_context("spawn"))


class _Part(NamedTuple):
    """What reading some tree entries gave, in their order."""

    gates: list[tuple[CanaryKey, Stored]]
    store_text: str  # the parse store's lines for these gates (if asked for)
    policies: list[Policy]
    refused: list[Problem]  # entries that are no gate file at all (their path or mode)
    problems: list[Problem]  # what is wrong inside the files


def _read_entries(
    mirror: Mirror,
    gates_path: str,
    policy_paths: list[str],
    todo: Sequence[PlainEntry],
    *,
    as_text: bool,
    store: bool,
) -> _Part:
    """SnapshotBuilder._read in one process. `as_text` (in a worker process): each gate as the
    parse store's text, cheap to send back and decoded by the service only when first asked for.
    `store`: with the parse store's lines, made here too (in parallel, in a worker)."""
    gates: list[tuple[CanaryKey, Stored]] = []
    lines: list[str] = []
    policies: list[Policy] = []
    refused: list[Problem] = []
    problems: list[Problem] = []
    wanted: list[tuple[str, str, CanaryRef]] = []
    for mode, _, oid, path in todo:
        canary = _classify(mode, path, gates_path, policy_paths, refused)
        if canary is not None:
            wanted.append((oid, path, canary))
    blobs = mirror.read_blobs([oid for oid, _, _ in wanted], limit=MAX_FILE_BYTES) if wanted else {}
    for oid, path, canary in wanted:
        data = blobs[oid]
        if data is None:
            problems.append(Problem(shown(path), None, "", f"larger than {MAX_FILE_BYTES} bytes"))
        elif canary is _POLICY:
            policy, found = parse_policy(path, data)
            problems.extend(found)
            if policy is not None:
                policies.append(policy)
        else:
            gate, found = parse_gate(path, data, canary)
            problems.extend(found)
            if gate is not None:
                value = encoded_text(gate) if as_text else gate
                gates.append(((canary.namespace, canary.name) if as_text else canary, value))  # plain: pickled in C
                if store:
                    lines.append(store_line(path, oid, value))
    return _Part(gates, "".join(lines), policies, refused, problems)


def _classify(
    mode: str, path: str, gates_path: str, policy_paths: list[str], problems: list[Problem]
) -> CanaryRef | None:
    """The canary a tree entry is the gate file of (_POLICY for a policy file), or None with the
    reason added to `problems`."""
    if path in policy_paths:
        if mode not in _BLOB_MODES:
            problems.append(Problem(shown(path), None, "", _not_plain(mode, policy=True)))
            return None
        return _POLICY
    if path == gates_path:
        what = _MODE_NAMES.get(mode, "a file")
        problems.append(Problem(shown(path), None, "", f"is {what}, not a folder of gate files"))
        return None
    if mode not in _BLOB_MODES:
        problems.append(Problem(shown(path), None, "", _not_plain(mode, policy=False)))
        return None
    canary, why = canary_for_path(path, gates_path)
    if canary is None:
        problems.append(Problem(shown(path), None, "", why))
    return canary


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

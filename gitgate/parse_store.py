"""Parsed gate files kept on disk, keyed by (path, blob id), so a restart does not parse them again.

`<state-dir>/parsed.jsonl` holds a JSON header naming the format, the gitgate version and the
gates folder, then one line per valid gate file parsed: its path, blob id, the parsed gate as JSON
and a CRC-32 of what comes before it, separated by tabs. Lines are appended as files change and
the file is rewritten whole (atomically) when it holds too many stale lines. Anything unexpected (another
version, a torn or damaged line) only costs a parse: the entry, or the whole file, is ignored and
the gate file is read from git again.

A restart does not even decode what it takes from the store: a snapshot's gates stay as the stored
text until a check (or the status) first asks for one (StoredGates). Building 100,000 gate objects
took longer than everything else a warm restart does.
"""

from __future__ import annotations

import json
import logging
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gitgate import __version__
from gitgate.errors import GitgateError
from gitgate.model import Approval, CanaryRef, Default, FreezeWindow, Gate, gate_file_path
from gitgate.state import write_atomic

log = logging.getLogger("gitgate.parse_store")
FORMAT = 2
Key = tuple[str, str]  # (path, blob id)
Stored = Gate | str  # a gate, or its encoded form as JSON text, decoded on first use
# A canary as a plain (namespace, name) pair: equal to, and hashed as, the CanaryRef it stands for.
# A first build keys 100,000 gates and sends them between processes; a plain tuple is made and
# pickled in C, a NamedTuple through a Python call each time.
CanaryKey = tuple[str, str]


def encode_gate(gate: Gate) -> list[Any]:
    return [
        gate.default.value if gate.default is not None else None,
        [
            [a.hook, a.checksum, a.expires.isoformat() if a.expires else None, a.request, a.note, a.line]
            for a in gate.approvals
        ],
        [[w.start, int(w.duration.total_seconds()), w.timezone, w.reason, w.source] for w in gate.freeze],
    ]


def encoded_text(value: Stored) -> str:
    return value if isinstance(value, str) else json.dumps(encode_gate(value))


_SHARED: dict[tuple[Any, ...], Approval] = {}  # approvals for any revision (checksum "*"), by their fields


def _approval(encoded: list[Any]) -> Approval:
    hook, checksum, expires, request, note, line = encoded
    if type(hook) is not str or type(checksum) is not str:
        raise TypeError("not an approval")
    if checksum == "*":  # one object for equal ones (approvals are immutable); few kinds exist
        key = (hook, expires, request, note, line)
        found = _SHARED.get(key)
        if found is None:
            found = Approval(hook, checksum, _when(expires), request, note, line)
            if len(_SHARED) < 10_000:
                _SHARED[key] = found
        return found
    return Approval(sys.intern(hook), checksum, _when(expires), request, note, line)


def _when(expires: str | None) -> datetime | None:
    return None if expires is None else datetime.fromisoformat(expires)


def decode_gate(canary: CanaryRef, path: str, value: list[Any]) -> Gate:
    """Raise (ValueError, TypeError, KeyError) on anything that is not what encode_gate wrote."""
    default, approvals, freeze = value
    return Gate(
        canary=canary,
        path=path,
        default=Default(default) if default is not None else None,
        approvals=tuple(_approval(a) for a in approvals),
        freeze=tuple(
            FreezeWindow(start, timedelta(seconds=seconds), timezone, reason, source)
            for start, seconds, timezone, reason, source in freeze
        ),
    )


class StoredGateUnreadable(GitgateError):
    """A stored gate did not decode. Never a KeyError: "no gate file" is an answer (a policy's
    default could open the gate), this is a failure, answered closed."""


class StoredGates(Mapping[CanaryRef, Gate]):
    """A snapshot's gates, some still as the parse store's text, each decoded the first time it is
    asked for. Store lines are checked (CRC-32) when loaded, so a gate that does not decode means a
    bug or a forged state dir: the lookup raises StoredGateUnreadable (the check answers 500,
    closed), and `damaged` tells the reconciler to read the commit from git again."""

    __slots__ = ("_gates_path", "_items", "damaged")

    def __init__(self, items: dict[CanaryKey, Stored], gates_path: str) -> None:
        self._items = items
        self._gates_path = gates_path
        self.damaged = False

    def __getitem__(self, canary: CanaryRef) -> Gate:
        value = self._items[canary]
        if not isinstance(value, str):
            return value
        path = gate_file_path(self._gates_path, canary)
        try:
            gate = decode_gate(canary, path, json.loads(value))
        except Exception as e:  # anything at all: the gate must not be read as absent or as open
            self.damaged = True
            log.error("%s: its stored parse does not decode (%s); answering closed until it is read again", path, e)
            raise StoredGateUnreadable(f"{path}: stored parse does not decode") from None
        self._items[canary] = gate  # threads that race here store equal gates
        return gate

    def __contains__(self, canary: object) -> bool:
        return canary in self._items

    def __iter__(self) -> Iterator[CanaryRef]:
        return map(CanaryRef._make, self._items)

    def __len__(self) -> int:
        return len(self._items)

    def raw(self) -> dict[CanaryKey, Stored]:
        """A copy of the entries as they are (decoded or not), to build the next snapshot from."""
        return dict(self._items)


def store_line(path: str, oid: str, value: Stored) -> str:
    """The store's line for a parsed gate file; "" for a path it cannot hold (never a valid gate
    path under a usual --path)."""
    if not path.isprintable() or "\t" in path:
        return ""
    body = f"{path}\t{oid}\t{encoded_text(value)}"
    return f"{body}\t{zlib.crc32(body.encode()):08x}\n"


class ParseStore:
    def __init__(self, file: Path, gates_path: str) -> None:
        self.file = file
        self.header = {"format": FORMAT, "gitgate": __version__, "gates_path": gates_path}
        # Entry lines in the file as far as this process knows; None until a load() found a file
        # of this format to append to.
        self.lines: int | None = None

    def load(self) -> dict[Key, str]:
        """Every (path, blob id) -> the stored gate as JSON text; empty if absent or not ours."""
        try:
            data = self.file.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as e:
            log.warning("%s: unreadable (%s); gate files will be parsed again", self.file, e)
            return {}
        lines = data.split(b"\n")
        try:
            header = json.loads(lines[0])
        except ValueError:
            header = None
        if header != self.header:
            log.info("%s: written by another version or for another --path; it will be rewritten", self.file)
            return {}
        entries = lines[1:-1]  # the last is what follows the last line break: empty, or a torn line
        out: dict[Key, str] = {}
        crc32 = zlib.crc32
        for line in entries:
            body, _, crc = line.rpartition(b"\t")
            if crc != b"%08x" % crc32(body):
                continue  # damaged: parsed again
            parts = body.split(b"\t", 2)
            if len(parts) != 3:
                continue
            try:
                out[(parts[0].decode(), parts[1].decode())] = parts[2].decode()
            except UnicodeDecodeError:
                continue
        # A torn last line would have the next append run into it: rewrite instead.
        self.lines = len(entries) if lines[-1] == b"" else None
        return out

    def append(self, lines: list[str]) -> None:
        """Add store_line()s."""
        text = "".join(lines)
        if not text:
            return
        if self.lines is None:
            self.rewrite(lines)
            return
        try:
            with self.file.open("a", encoding="utf-8") as out:
                out.write(text)
        except OSError as e:  # only a cache: the next start parses what is missing
            log.warning("%s: could not append (%s)", self.file, e.strerror)
            return
        self.lines += text.count("\n")

    def rewrite(self, lines: Iterable[str]) -> None:
        """Replace the whole file with store_line()s."""
        data = "".join([json.dumps(self.header) + "\n", *lines]).encode()
        try:
            write_atomic(self.file, data)
        except OSError as e:
            log.warning("%s: could not write (%s)", self.file, e.strerror)
            return
        self.lines = data.count(b"\n") - 1

    def discard(self) -> None:
        """Forget every stored parse (the next build reads every file from git)."""
        try:
            self.file.unlink(missing_ok=True)
        except OSError as e:
            log.warning("%s: could not remove (%s)", self.file, e.strerror)
        self.lines = None

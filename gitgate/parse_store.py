"""Parsed gate files kept on disk, keyed by (path, blob id), so a restart does not parse them again.

One JSON value per line in `<state-dir>/parsed.jsonl`: a header naming the format, the gitgate
version and the gates folder, then `[path, blob id, gate]` for each valid gate file parsed. Lines are
appended as files change and the file is rewritten whole (atomically) when it holds too many stale
lines. Anything unexpected (another version, a torn last line, a value that does not decode) only
costs a parse: the entry, or the whole file, is ignored and the gate file is read from git again.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gitgate import __version__
from gitgate.model import Approval, CanaryRef, Default, FreezeWindow, Gate
from gitgate.state import write_atomic

log = logging.getLogger("gitgate.parse_store")
FORMAT = 1
Key = tuple[str, str]  # (path, blob id)


def encode_gate(gate: Gate) -> list[Any]:
    return [
        gate.default.value if gate.default is not None else None,
        [
            [a.hook, a.checksum, a.expires.isoformat() if a.expires else None, a.request, a.note, a.line]
            for a in gate.approvals
        ],
        [[w.start, int(w.duration.total_seconds()), w.timezone, w.reason, w.source] for w in gate.freeze],
    ]


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


class ParseStore:
    def __init__(self, file: Path, gates_path: str) -> None:
        self.file = file
        self.header = {"format": FORMAT, "gitgate": __version__, "gates_path": gates_path}
        # Entry lines in the file as far as this process knows; None until a load() found a file
        # of this format to append to.
        self.lines: int | None = None

    def load(self) -> dict[Key, list[Any]]:
        """Every (path, blob id) -> encoded gate in the file; empty if it is absent or not ours."""
        try:
            text = self.file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as e:
            log.warning("%s: unreadable (%s); gate files will be parsed again", self.file, e)
            return {}
        lines = text.split("\n")
        try:
            header = json.loads(lines[0])
        except ValueError:
            header = None
        if header != self.header:
            log.info("%s: written by another version or for another --path; it will be rewritten", self.file)
            return {}
        entries = [line for line in lines[1:] if line]
        try:
            records = json.loads(f"[{','.join(entries)}]")  # one call: several times faster than a line at a time
        except ValueError:
            records = []
            for line in entries:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue  # a torn last line after a crash; the entry is parsed again
        out: dict[Key, list[Any]] = {}
        for record in records:
            if isinstance(record, list) and len(record) == 3:
                path, oid, value = record
                if isinstance(path, str) and isinstance(oid, str) and isinstance(value, list):
                    out[(path, oid)] = value
        self.lines = len(entries)
        return out

    def append(self, items: list[tuple[str, str, Gate]]) -> None:
        text = "".join(json.dumps([path, oid, encode_gate(gate)]) + "\n" for path, oid, gate in items)
        if not text:
            return
        if self.lines is None:
            self.rewrite(items)
            return
        try:
            with self.file.open("a", encoding="utf-8") as out:
                out.write(text)
        except OSError as e:  # only a cache: the next start parses what is missing
            log.warning("%s: could not append (%s)", self.file, e.strerror)
            return
        self.lines += text.count("\n")

    def rewrite(self, items: Iterable[tuple[str, str, Gate]]) -> None:
        parts = [json.dumps(self.header) + "\n"]
        parts += [json.dumps([path, oid, encode_gate(gate)]) + "\n" for path, oid, gate in items]
        try:
            write_atomic(self.file, "".join(parts).encode())
        except OSError as e:
            log.warning("%s: could not write (%s)", self.file, e.strerror)
            return
        self.lines = len(parts) - 1

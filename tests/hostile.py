"""Hostile input, shared by tests/test_hostile_files.py, tests/test_hostile_http.py and bench/fuzz.py.

Gate files: a corpus of named attacks on the YAML reader and the gate schema, mutators that turn a
valid gate into odd ones (text-level and value-level, driven by a `random.Random` so Hypothesis can
shrink them and the fuzz script can replay a seed), the rules every parse result must keep, and a
writer that turns a parsed Gate back into YAML (for the round-trip property).

HTTP: raw requests no HTTP client would send (bad Content-Length, huge headers, partial bodies,
non-UTF-8 bytes), and the statuses a real `gitgate serve` may answer them with.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from gitgate.errors import Problem
from gitgate.model import CanaryRef, Gate, Policy, Snapshot
from gitgate.openapi import openapi_document
from gitgate.schema import MAX_FILE_BYTES, parse_gate

FILE = "gates/test/podinfo.yaml"
POLICY_FILE = "gitgate.yaml"
CANARY = CanaryRef("test", "podinfo")

VALID_GATE = b"""\
apiVersion: gitgate/v1
kind: Gate
metadata:
  name: podinfo
  namespace: test
  labels:
    team: web
spec:
  default: closed
  approvals:
    - hook: confirm-promotion
      checksum: "85d557f47b"
      expires: "2030-01-01T00:00:00Z"
      request: https://github.com/acme/approvals/pull/42
      note: load-tested
    - hook: rollback
      checksum: "*"
  freeze:
    - start: "0 18 * * FRI"
      duration: 63h
      timezone: Europe/Berlin
      reason: No deploys over the weekend
"""
VALID_POLICY = b"""\
apiVersion: gitgate/v1
kind: Policy
spec:
  default: closed
  freeze:
    - start: "0 0 24 12 *"
      duration: 2d
"""

# Problems that concern the whole file: they may name no line.
WHOLE_FILE = ("file is ", "not UTF-8", "not valid YAML", "nested too deeply")


# --- the corpus ------------------------------------------------------------------------------------

HEAD = "apiVersion: gitgate/v1\nkind: Gate\nmetadata: {name: podinfo, namespace: test}\n"


def _approval(checksum: str) -> bytes:
    return (HEAD + f"spec:\n  approvals:\n    - hook: confirm-promotion\n      checksum: {checksum}\n").encode()


def _laughs(levels: int = 9, width: int = 9) -> bytes:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return (HEAD + "\n".join(lines) + "\n").encode()


def _block_depth(depth: int, seq: bool = False) -> bytes:
    step = "- " if seq else "k:\n"
    if seq:
        return ("".join("  " * i + "-\n" for i in range(depth)) + "  " * depth + "x\n").encode()
    return (HEAD + "".join("  " * i + step for i in range(depth))).encode()


VALID = None


@dataclass(frozen=True)
class Case:
    id: str
    data: bytes
    says: str | None  # words the problems must contain ("": any refusal); None: the file is valid
    category: str


def gate_corpus() -> list[Case]:
    """Named attacks on gate files. `says` is what the refusal must mention."""
    big_key = "k" * 200_000
    return [
        # YAML bombs: never expanded, refused at the first alias.
        Case("billion-laughs", _laughs(), "anchors and aliases", "bomb"),
        Case("billion-laughs-wide", _laughs(levels=6, width=200), "anchors and aliases", "bomb"),
        Case(
            "quadratic-blowup",
            (HEAD + "a: &a " + "x" * 100_000 + "\nb: [" + "*a," * 2_000 + "]\n").encode(),
            "anchors",
            "bomb",
        ),
        Case("recursive-anchor", (HEAD + "spec: &s {approvals: [*s]}\n").encode(), "anchors and aliases", "bomb"),
        Case("alias-to-key", (HEAD + "spec:\n  &k default: open\n  *k : closed\n").encode(), "", "bomb"),
        Case("undefined-alias", (HEAD + "spec: *nowhere\n").encode(), "not valid YAML", "bomb"),
        # Deep nesting, flow and block, at and far past the limit.
        Case("flow-33", (HEAD + "x: " + "[" * 33 + "]" * 33 + "\n").encode(), "nested deeper", "nesting"),
        Case("flow-10k", ("[" * 10_000 + "]" * 10_000).encode(), "nested deeper", "nesting"),
        Case("flow-120k", ("[" * 120_000 + "]" * 120_000).encode(), "nested deeper", "nesting"),
        Case("flow-maps-40k", ("{a: " * 40_000 + "1" + "}" * 40_000).encode(), "nested deeper", "nesting"),
        Case("flow-unclosed-100k", ("[" * 100_000).encode(), "", "nesting"),
        Case("block-maps-40", _block_depth(40), "nested deeper", "nesting"),
        Case("block-maps-300", _block_depth(300), "nested deeper", "nesting"),
        Case("block-seqs-300", _block_depth(300, seq=True), "nested deeper", "nesting"),
        Case("many-nodes", ("x: [" + ",".join(["1"] * 25_000) + "]\n").encode(), "YAML nodes", "nesting"),
        # Size.
        Case("over-256k", VALID_GATE + b"#" * (MAX_FILE_BYTES - len(VALID_GATE) + 1), "limit is", "size"),
        Case("10-MiB", b"a: " + b"x" * (10 << 20), "limit is", "size"),
        Case("at-256k-valid", VALID_GATE + b"#" * (MAX_FILE_BYTES - len(VALID_GATE)), VALID, "size"),
        Case("200k-implicit-key", (HEAD + f"{big_key}: 1\n").encode(), "not valid YAML", "size"),
        Case("200k-explicit-key", (HEAD + f"? {big_key}\n: 1\n").encode(), "unknown key", "size"),
        Case(
            "200k-line-string", (HEAD + "spec: {default: " + "o" * 200_000 + "}\n").encode(), "open or closed", "size"
        ),
        # Encodings.
        Case("latin-1", VALID_GATE.replace(b"load-tested", b"load-test\xe9"), "not UTF-8", "encoding"),
        Case("utf-16", VALID_GATE.decode().encode("utf-16"), "not UTF-8", "encoding"),
        Case("utf-16-be-no-bom", VALID_GATE.decode().encode("utf-16-be"), "", "encoding"),
        Case("utf-32", VALID_GATE.decode().encode("utf-32"), "not UTF-8", "encoding"),
        Case("cesu-surrogate", VALID_GATE.replace(b"load-tested", b"\xed\xa0\x80"), "not UTF-8", "encoding"),
        Case("overlong-slash", VALID_GATE.replace(b"load-tested", b"\xc0\xaf"), "not UTF-8", "encoding"),
        Case("nul-byte", VALID_GATE.replace(b"load-tested", b"load\x00tested"), "not valid YAML", "encoding"),
        Case("escape-surrogate", VALID_GATE.replace(b"load-tested", b'"\\ud800"'), "not valid YAML", "encoding"),
        Case("bom", b"\xef\xbb\xbf" + VALID_GATE, VALID, "encoding"),
        Case("bom-twice", b"\xef\xbb\xbf\xef\xbb\xbf" + VALID_GATE, "", "encoding"),
        Case("bom-mid-file", VALID_GATE.replace(b"spec:", b"\xef\xbb\xbfspec:"), "", "encoding"),
        Case("crlf", VALID_GATE.replace(b"\n", b"\r\n"), VALID, "encoding"),
        Case("cr-only", VALID_GATE.replace(b"\n", b"\r"), VALID, "encoding"),
        Case("nel-line-breaks", VALID_GATE.replace(b"\n", "\u0085".encode()), VALID, "encoding"),
        Case("tab-indent", VALID_GATE.replace(b"    - hook: rollback", b"\t- hook: rollback"), "", "encoding"),
        Case("ansi-escape-key", (HEAD + 'spec: {"\\e[31mred": 1}\n').encode(), "unknown key", "encoding"),
        # Duplicate keys.
        Case("dup-top", VALID_GATE + b"kind: Gate\n", "duplicate key", "duplicate"),
        Case(
            "dup-metadata-name",
            VALID_GATE.replace(b"  name: podinfo\n", b"  name: podinfo\n  name: other\n"),
            "duplicate key",
            "duplicate",
        ),
        Case(
            "dup-quoted",
            (HEAD + 'spec:\n  default: open\n  "default": closed\n').encode(),
            "duplicate key",
            "duplicate",
        ),
        Case("dup-in-approval", _approval('"a"\n      checksum: "*"'), "duplicate key", "duplicate"),
        Case(
            "dup-complex-key",
            (HEAD + "spec:\n  ? default\n  : open\n  default: closed\n").encode(),
            "duplicate key",
            "duplicate",
        ),
        # Odd types.
        Case("checksum-int", _approval("12"), "must be a string", "types"),
        Case("checksum-float", _approval("1.5e+3"), "must be a string", "types"),
        Case("checksum-float-yaml-1.2", _approval("1.5e3"), VALID, "types"),
        Case("checksum-nan", _approval(".nan"), "must be a string", "types"),
        Case("checksum-inf", _approval("1.0e+400"), "must be a string", "types"),
        Case("checksum-bool", _approval("yes"), "", "types"),
        Case("checksum-null", _approval("~"), "must be a string", "types"),
        Case("checksum-list", _approval("[a, b]"), "must be a string", "types"),
        Case("checksum-map", _approval("{a: b}"), "must be a string", "types"),
        Case("checksum-sexagesimal", _approval("190:20:30"), "", "types"),
        Case("checksum-date", _approval("2026-11-23"), VALID, "types"),
        Case("checksum-5000-digits", _approval("9" * 5000), "", "types"),
        Case("checksum-binary-20000-digits", _approval("0b" + "1" * 20_000), "", "types"),
        Case("checksum-hex-10000-digits", _approval("0x" + "f" * 10_000), "", "types"),
        Case("approvals-map", (HEAD + "spec: {approvals: {hook: rollback}}\n").encode(), "must be a list", "types"),
        Case("spec-string", (HEAD + "spec: open\n").encode(), "must be a mapping", "types"),
        Case("top-list", b"- apiVersion: gitgate/v1\n", "must be a mapping", "types"),
        Case("top-scalar", b"gitgate\n", "must be a mapping", "types"),
        Case("key-int", (HEAD + "spec: {1: open}\n").encode(), "plain strings", "types"),
        Case("key-list", (HEAD + "spec: {? [a, b] : open}\n").encode(), "plain strings", "types"),
        Case("expires-edge-of-time", _approval('a\n      expires: "9999-12-31T23:59:59-23:59"'), "expires", "types"),
        Case("expires-before-time", _approval('a\n      expires: "0001-01-01T00:00:00+23:59"'), "expires", "types"),
        Case("expires-offset-99", _approval('a\n      expires: "2026-01-01T00:00:00+99:00"'), "expires", "types"),
        Case(
            "expires-fullwidth",
            _approval('a\n      expires: "\uff12\uff10\uff12\uff16-01-01T00:00:00Z"'),
            "expires",
            "types",
        ),
        Case(
            "duration-5000-digits",
            (HEAD + f"spec:\n  freeze: [{{start: '0 0 * * *', duration: {'9' * 5000}d}}]\n").encode(),
            "too long",
            "types",
        ),
        Case(
            "duration-arabic-digits",
            (HEAD + "spec:\n  freeze: [{start: '0 0 * * *', duration: ٣h}]\n").encode(),
            "not a duration",
            "types",
        ),
        Case(
            "timezone-5000-chars",
            (HEAD + f"spec:\n  freeze: [{{start: '0 0 * * *', duration: 1h, timezone: {'a' * 5000}}}]\n").encode(),
            "time zone",
            "types",
        ),
        Case(
            "timezone-a-folder",
            (HEAD + "spec:\n  freeze: [{start: '0 0 * * *', duration: 1h, timezone: America}]\n").encode(),
            "time zone",
            "types",
        ),
        Case(
            "timezone-path",
            (HEAD + "spec:\n  freeze: [{start: '0 0 * * *', duration: 1h, timezone: ../../etc/passwd}]\n").encode(),
            "time zone",
            "types",
        ),
        Case(
            "cron-garbage",
            (HEAD + "spec:\n  freeze: [{start: '*/0 99 ? L W', duration: 1h}]\n").encode(),
            "cron",
            "types",
        ),
        # Tags.
        Case(
            "python-object-apply",
            (HEAD + "spec: !!python/object/apply:os.system ['touch /tmp/pwned']\n").encode(),
            "tag",
            "tags",
        ),
        Case("python-object", (HEAD + "spec: !!python/object:gitgate.model.Gate {}\n").encode(), "tag", "tags"),
        Case("python-name", (HEAD + "spec: {default: !!python/name:os.system ''}\n").encode(), "tag", "tags"),
        Case("binary", (HEAD + "spec: {default: !!binary b3Blbg==}\n").encode(), "tag", "tags"),
        Case("custom", (HEAD + "spec: {default: !open x}\n").encode(), "tag", "tags"),
        Case("verbatim-tag", (HEAD + "spec: {default: !<tag:example.com,2000:x> open}\n").encode(), "tag", "tags"),
        Case(
            "tag-directive",
            b"%TAG !e! tag:example.com,2000:\n---\n" + HEAD.encode() + b"spec: !e!x {}\n",
            "tag",
            "tags",
        ),
        Case("tag-on-key", (HEAD + "spec: {!!binary ZGVmYXVsdA==: open}\n").encode(), "", "tags"),
        Case("tag-on-root", b"!!omap\n" + VALID_GATE, "tag", "tags"),
        Case("str-tag-on-map", (HEAD + "spec: !!str {default: open}\n").encode(), "tag", "tags"),
        Case("bad-int-tag", _approval("!!int abc"), "", "tags"),
        Case("bad-float-tag", _approval("!!float abc"), "", "tags"),
        Case("bad-bool-tag", _approval("!!bool maybe"), "", "tags"),
        Case("null-tag-on-text", _approval("!!null text"), "must be a string", "tags"),
        Case("str-tag-on-number", _approval("!!str 12"), VALID, "tags"),
        Case("set", (HEAD + "spec: !!set {default}\n").encode(), "tag", "tags"),
        Case("timestamp-tag", _approval("a\n      expires: !!timestamp 2026-01-01"), "tag", "tags"),
        # Documents and directives.
        Case("two-documents", VALID_GATE + b"---\n" + VALID_GATE, "2 YAML documents", "documents"),
        Case("document-end-then-garbage", VALID_GATE + b"...\n@@@\n", "", "documents"),
        Case("empty", b"", "empty", "documents"),
        Case("only-comments", b"# nothing\n", "empty", "documents"),
        Case("explicit-null", b"--- ~\n", "empty", "documents"),
        Case("yaml-1.1-directive", b"%YAML 1.1\n---\n" + VALID_GATE, VALID, "documents"),
        Case("yaml-2.0-directive", b"%YAML 2.0\n---\n" + VALID_GATE, "not valid YAML", "documents"),
        Case("thousand-documents", b"---\na: 1\n" * 1000, "YAML documents", "documents"),
        # Merge keys.
        Case("merge-alias", (HEAD + "base: &b {default: open}\nspec:\n  <<: *b\n").encode(), "", "merge"),
        Case("merge-inline", (HEAD + "spec:\n  <<: {default: open}\n").encode(), "merge keys", "merge"),
        Case("merge-list", (HEAD + "spec:\n  <<: [{default: open}]\n").encode(), "merge keys", "merge"),
        Case("merge-tagged", (HEAD + "spec:\n  !!merge <<: {default: open}\n").encode(), "", "merge"),
        Case("merge-quoted", (HEAD + 'spec:\n  "<<": {default: open}\n').encode(), "", "merge"),
    ]


# --- mutators --------------------------------------------------------------------------------------

TOKENS: list[bytes] = [
    b"&a ",
    b"*a",
    b"<<: ",
    b"<<: *a\n",
    b"!!python/object/apply:os.system [id] ",
    b"!!binary ",
    b"!custom ",
    b"!!int ",
    b"!!float ",
    b"!!bool ",
    b"!!str ",
    b"!!null ",
    b"!!set ",
    b"!!omap ",
    b"!!timestamp ",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"- ",
    b"? ",
    b": ",
    b":",
    b"---\n",
    b"...\n",
    b"%YAML 1.1\n",
    b"%TAG ! x\n",
    b"#",
    b"|\n",
    b">-\n",
    b'"',
    b"'",
    b"\\",
    b"\t",
    b"\r",
    b"\r\n",
    b"\n",
    b"  ",
    b"\x00",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    "\u2028".encode(),
    "\u0085".encode(),
    "é".encode(),
    b"~",
    b"null",
    b"true",
    b"yes",
    b"on",
    b".nan",
    b"-.inf",
    b"0x1F",
    b"0o17",
    b"0b101",
    b"1e999",
    b"190:20:30",
    b"2026-01-01",
    b"2026-01-01T00:00:00Z",
    b"9" * 60,
    b"-1",
    b"1_000",
    b"hook",
    b"checksum",
    b"expires",
    b"default",
    b"approvals",
    b"freeze",
    b"start",
    b"duration",
    b"timezone",
    b"confirm-promotion",
    b"rollback",
    b'"*"',
    b"*",
    b"open",
    b"closed",
    b"spec",
    b"metadata",
    b"kind",
]


def mutate_text(data: bytes, rnd: random.Random, count: int) -> bytes:
    """`count` byte-level edits: insert a YAML-special token, delete or duplicate a span, re-indent."""
    out = bytearray(data)
    for _ in range(count):
        pos = rnd.randrange(len(out) + 1)
        op = rnd.randrange(6)
        if op <= 1:
            out[pos:pos] = rnd.choice(TOKENS)
        elif op == 2 and out:
            end = min(len(out), pos + rnd.randrange(1, 16))
            del out[pos:end]
        elif op == 3 and out:
            end = min(len(out), pos + rnd.randrange(1, 40))
            out[pos:pos] = out[pos:end]
        elif op == 4:
            lines = bytes(out).split(b"\n")
            i = rnd.randrange(len(lines))
            lines[i] = rnd.choice([b"", b" ", b"  ", b"    ", b"\t"]) + lines[i].lstrip(b" ")
            out = bytearray(b"\n".join(lines))
        elif out:
            out[pos % len(out)] = rnd.randrange(256)
    return bytes(out)


def odd_value(rnd: random.Random, depth: int = 0) -> Any:
    """A value of some type a gate file does not expect there."""
    pick = rnd.randrange(16 if depth < 2 else 12)
    simple: list[Callable[[], Any]] = [
        lambda: None,
        lambda: rnd.choice([True, False]),
        lambda: rnd.choice([0, -1, 12, 10**30, 2**63]),
        lambda: rnd.choice([0.5, float("inf"), float("-inf"), float("nan"), 1e-300]),
        lambda: "",
        lambda: rnd.choice(["open", "closed", "*", "confirm-promotion", "rollback", "85d557f47b"]),
        lambda: rnd.choice(["\x00", "a\nb", "\u2028", "é" * 3, " padded ", "\ufeff", "\x1b[31m"]),
        lambda: rnd.choice(["2026-01-01", "2026-01-01T00:00:00Z", "0 18 * * FRI", "63h", "Europe/Berlin"]),
        lambda: "x" * rnd.choice([1, 100, 5000]),
        lambda: rnd.choice(["<<", "&a", "*a", "!!binary", "%YAML", "---", "..."]),
        lambda: datetime(2026, 1, 1, tzinfo=UTC),
        lambda: [],
    ]
    if pick < len(simple):
        return simple[pick]()
    if pick < 14:
        return [odd_value(rnd, depth + 1) for _ in range(rnd.randrange(4))]
    keys = ["hook", "checksum", "expires", "default", "start", "x", "", "1", "<<"]
    return {rnd.choice(keys): odd_value(rnd, depth + 1) for _ in range(rnd.randrange(4))}


def _places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _places(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _places(v, (*path, i))
    return out


def mutate_values(doc: Any, rnd: random.Random, count: int) -> Any:
    """`count` edits of the parsed document: replace a value, add or drop a key, rename a key."""
    for _ in range(count):
        path = rnd.choice(_places(doc))
        value = odd_value(rnd)
        if not path:
            doc = value if rnd.random() < 0.1 else doc
            continue
        parent = doc
        try:
            for part in path[:-1]:
                parent = parent[part]
        except (KeyError, IndexError, TypeError):
            continue
        last = path[-1]
        op = rnd.randrange(4)
        if op == 0 and isinstance(parent, dict):
            parent.pop(last, None)
        elif op == 1 and isinstance(parent, dict):
            parent[rnd.choice(["bogus", "Hook", "hook ", "note", "expires", str(last) + "s"])] = value
        elif isinstance(parent, dict | list):
            try:
                parent[last] = value
            except (IndexError, TypeError):
                continue
    return doc


def dump(doc: Any, rnd: random.Random) -> bytes:
    """Serialise in one of several styles people and tools write."""
    style = rnd.randrange(4)
    text = yaml.safe_dump(
        doc,
        sort_keys=rnd.random() < 0.5,
        default_flow_style=[False, True, None, False][style],
        allow_unicode=rnd.random() < 0.5,
        default_style=['"', None, None, "'"][style] if rnd.random() < 0.3 else None,
        width=rnd.choice([40, 80, 10_000]),
    )
    return text.encode()


def mutated_gate(rnd: random.Random) -> bytes:
    """A valid gate, mutated at the value level, the text level, or both."""
    kind = rnd.randrange(3)
    if kind == 0:
        return mutate_text(VALID_GATE, rnd, rnd.randrange(1, 6))
    doc = mutate_values(yaml.safe_load(VALID_GATE), rnd, rnd.randrange(1, 4))
    data = dump(doc, rnd)
    if kind == 2:
        data = mutate_text(data, rnd, rnd.randrange(1, 3))
    return data


# --- what every parse result must be ---------------------------------------------------------------


def violations(file: str, data: bytes, value: Gate | Policy | None, problems: list[Problem]) -> list[str]:
    """Every way a parse result breaks the contract: a valid value and no problems, or no value and
    problems that each name this file, a line inside it (or none, for a whole-file problem), a key
    path (text, possibly empty) and a one-line message."""
    out: list[str] = []
    if (value is None) == (not problems):
        out.append(f"value {value!r} with problems {problems!r}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    lines = sum(map(text.count, ("\n", "\r", "\x85", "\u2028", "\u2029"))) + 2  # YAML's line breaks
    for p in problems:
        if p.file != file:
            out.append(f"{p!r} names file {p.file!r}, not {file!r}")
        if p.line is None:
            if not p.message.startswith(WHOLE_FILE):
                out.append(f"{p!r} names no line")
        elif not isinstance(p.line, int) or not 1 <= p.line <= max(lines, 1):
            out.append(f"{p!r} names line {p.line!r} outside the file")
        if not isinstance(p.key, str) or not isinstance(p.message, str) or not p.message.strip():
            out.append(f"{p!r} has no key text or message")
    if isinstance(value, Gate) and (value.canary != CANARY or value.path != file):
        out.append(f"gate {value!r} is not {CANARY} at {file}")
    return out


# --- writing a Gate back out (the round trip) -----------------------------------------------------


def gate_document(gate: Gate) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if gate.default is not None:
        spec["default"] = gate.default.value
    if gate.approvals:
        spec["approvals"] = []
        for a in gate.approvals:
            item: dict[str, Any] = {"hook": a.hook, "checksum": a.checksum}
            if a.expires is not None:
                item["expires"] = a.expires.isoformat()
            if a.request is not None:
                item["request"] = a.request
            if a.note is not None:
                item["note"] = a.note
            spec["approvals"].append(item)
    if gate.freeze:
        spec["freeze"] = []
        for w in gate.freeze:
            window: dict[str, Any] = {"start": w.start, "duration": f"{int(w.duration.total_seconds())}s"}
            window["timezone"] = w.timezone
            if w.reason is not None:
                window["reason"] = w.reason
            spec["freeze"].append(window)
    return {
        "apiVersion": "gitgate/v1",
        "kind": "Gate",
        "metadata": {"name": gate.canary.name, "namespace": gate.canary.namespace},
        "spec": spec,
    }


def write_gate(gate: Gate) -> bytes:
    """A Gate as YAML, every string quoted (so no value is read back as another type)."""
    return yaml.safe_dump(gate_document(gate), sort_keys=False, default_style='"', allow_unicode=True).encode()


def comparable(gate: Gate) -> Gate:
    """A Gate without what depends on layout (the line each approval stands on, each window's line)."""
    from dataclasses import replace

    return replace(
        gate,
        approvals=tuple(replace(a, line=None) for a in gate.approvals),
        freeze=tuple(replace(w, source="") for w in gate.freeze),
    )


# --- HTTP ------------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, 10:00 UTC: prod/api's freeze is in force
COMMIT = "c0" * 20
SUM = "85d557f47b"
HOOKS = ("confirm-rollout", "confirm-traffic-increase", "confirm-promotion", "rollback")

GATE_FILES = {
    ("test", "podinfo"): f"""
spec:
  approvals:
    - {{hook: confirm-promotion, checksum: "{SUM}"}}
    - {{hook: rollback, checksum: "{SUM}"}}
    - {{hook: confirm-rollout, checksum: "*", expires: "2026-11-23T09:59:59Z"}}
""",
    ("test", "legacy"): """
spec:
  approvals:
    - {hook: "*", checksum: "*"}
""",
    ("test", "relaxed"): """
spec:
  default: open
""",
    ("prod", "api"): """
spec:
  approvals:
    - {hook: "*", checksum: "*"}
    - {hook: rollback, checksum: "*"}
  freeze:
    - {start: "0 9 * * MON", duration: 8h, reason: Monday release review}
""",
}


def snapshot() -> Snapshot:
    """The gates above, read by the real parser as the reconciler reads them."""
    gates = {}
    for (namespace, name), spec in GATE_FILES.items():
        head = f"apiVersion: gitgate/v1\nkind: Gate\nmetadata: {{name: {name}, namespace: {namespace}}}\n"
        file = f"gates/{namespace}/{name}.yaml"
        gate, problems = parse_gate(file, (head + spec).encode(), CanaryRef(namespace, name))
        assert gate is not None, problems
        gates[gate.canary] = gate
    return Snapshot(COMMIT, "gates", gates)


def opens(namespace: Any, name: Any, hook: str, checksum: Any) -> bool:
    """Which checks may answer 200, written from the README's rules, not from gitgate's code."""
    confirm = hook != "rollback"
    return {
        ("test", "podinfo"): (hook, checksum) in {("confirm-promotion", SUM), ("rollback", SUM)},
        ("test", "legacy"): confirm,
        ("test", "relaxed"): confirm,
        ("prod", "api"): not confirm,  # frozen for confirm-*; rollback approved for any checksum
    }.get((namespace, name), False)


def hook_of(path: str, body: Any) -> str | None:
    """The hook a check endpoint answers for, as SPEC says (from the path, else metadata.hook)."""
    if path.startswith("/gate/check/"):
        return path.removeprefix("/gate/check/")
    if path == "/rollback/check":
        return "rollback"
    if path == "/gate/check":
        meta = body.get("metadata") if isinstance(body, dict) else None
        named = meta.get("hook") if isinstance(meta, dict) else None
        return named if isinstance(named, str) else "*"
    return None


CHECK = b"/gate/check/confirm-promotion"
APPROVED_BODY = b'{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"85d557f47b"}'
DENIED_BODY = b'{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"0000000000"}'


TOKEN = "hostile-admin-token"
GITHUB_SECRET = "It's a Secret to Everybody"
GITLAB_TOKEN = "gitlab-hook-token"
DOCUMENT = openapi_document("fuzz")
CHECKS = [p for p in DOCUMENT["paths"] if hook_of(p, {}) is not None]
ANY_METHOD = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")
WRITES = ("/gate/open", "/gate/close", "/rollback/open", "/rollback/close")
LOAD_TESTER = {*CHECKS, *WRITES, "/gate/approve", "/gate/halt"}  # any method, as the load tester


def documented(path: str, method: str) -> set[int] | None:
    """The statuses the document lists for this request; None when it describes no such operation."""
    item = DOCUMENT["paths"].get(path)
    if item is None:
        return None
    if path in LOAD_TESTER:
        op = item["post"] if method in ANY_METHOD else None
    else:
        op = item.get("get" if method == "HEAD" else method.lower())
    return None if op is None else {int(code) for code in op["responses"]}


def http_request(
    body: bytes = APPROVED_BODY,
    *,
    path: bytes = CHECK,
    method: bytes = b"POST",
    headers: list[bytes] | None = None,
    length: bytes | None = None,
) -> bytes:
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: gitgate", b"Content-Type: application/json"]
    if length is not None:
        lines.append(b"Content-Length: " + length)
    elif headers is None or not any(h.lower().startswith(b"transfer-encoding") for h in headers):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines += headers or []
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@dataclass(frozen=True)
class RawCase:
    id: str
    data: bytes
    category: str
    may_open: bool = False  # 200 is right (the approved payload arrives whole, or no check is asked)


def raw_http_corpus() -> list[RawCase]:
    """Requests no HTTP client sends. Each is sent on its own connection, then the socket is closed
    for writing; none of them may be answered 200 unless it carries the approved payload whole."""
    big = b"x" * (300 * 1024)
    return [
        # Content-Length lies and oddities.
        RawCase("cl-negative", http_request(length=b"-1"), "content-length"),
        RawCase("cl-not-a-number", http_request(length=b"abc"), "content-length"),
        RawCase("cl-huge", http_request(length=b"99999999999999999999999"), "content-length"),
        RawCase("cl-plus-sign", http_request(length=b"+" + str(len(APPROVED_BODY)).encode()), "content-length"),
        RawCase("cl-shorter", http_request(length=str(len(APPROVED_BODY) - 10).encode()), "content-length"),
        RawCase("cl-two-values", http_request(headers=[b"Content-Length: 3"]), "content-length"),
        RawCase("cl-list", http_request(length=b"10, 10"), "content-length"),
        RawCase(
            "cl-with-chunked", http_request(headers=[b"Transfer-Encoding: chunked"], length=b"5"), "content-length"
        ),
        RawCase(
            "chunked-bad-size",
            http_request(b"zz\r\nxx\r\n0\r\n\r\n", headers=[b"Transfer-Encoding: chunked"]),
            "content-length",
        ),
        RawCase(
            "chunked-huge-size",
            http_request(b"ffffffffffffffff\r\nxx\r\n0\r\n\r\n", headers=[b"Transfer-Encoding: chunked"]),
            "content-length",
        ),
        RawCase("te-gzip", http_request(headers=[b"Transfer-Encoding: gzip"]), "content-length"),
        RawCase("te-unknown", http_request(headers=[b"Transfer-Encoding: bogus, chunked"]), "content-length"),
        RawCase("body-over-64k", http_request(b" " * (64 * 1024) + APPROVED_BODY), "content-length"),
        RawCase("body-over-1m", http_request(b" " * (1 << 20) + APPROVED_BODY), "content-length"),
        # Headers.
        RawCase("header-300k", http_request(headers=[b"X-Big: " + big]), "headers", may_open=True),
        RawCase("header-600k", http_request(headers=[b"X-Big: " + big + big]), "headers"),
        RawCase("headers-5000", http_request(headers=[b"X-H%d: v" % i for i in range(5000)]), "headers", may_open=True),
        RawCase("header-no-colon", http_request(headers=[b"NoColonHere"]), "headers"),
        RawCase("header-space-before-colon", http_request(headers=[b"Content-Length : 5"]), "headers"),
        RawCase("header-folded", http_request(headers=[b"X-A: a", b" continued"]), "headers", may_open=True),
        RawCase("header-nul", http_request(headers=[b"X-A: a\x00b"]), "headers", may_open=True),
        RawCase("header-bare-lf", http_request().replace(b"\r\n", b"\n"), "headers", may_open=True),
        RawCase("request-line-100k", http_request(path=CHECK + b"?" + b"q" * (100 * 1024)), "headers", may_open=True),
        RawCase("spoofed-commit-header", http_request(DENIED_BODY, headers=[b"X-Gitgate-Commit: x"]), "headers"),
        RawCase("expect-100", http_request(DENIED_BODY, headers=[b"Expect: 100-continue"]), "headers"),
        # Non-UTF-8 bytes.
        RawCase("path-latin-1", http_request(path=b"/gate/check/confirm-promoti\xf6n"), "bytes"),
        RawCase("path-invalid-utf8", http_request(path=CHECK + b"\xff\xfe"), "bytes"),
        RawCase("path-percent-invalid", http_request(path=CHECK + b"%ff%fe%00"), "bytes"),
        RawCase("query-invalid-utf8", http_request(path=CHECK + b"?name=\xff&checksum=%ff"), "bytes", may_open=True),
        RawCase("header-value-latin-1", http_request(headers=[b"X-Name: p\xf6dinfo"]), "bytes", may_open=True),
        RawCase("method-bytes", http_request(method=b"P\xd6ST"), "bytes"),
        RawCase("body-invalid-utf8", http_request(APPROVED_BODY.replace(b"Progressing", b"Progr\xffssing")), "bytes"),
        RawCase("body-utf16", http_request(APPROVED_BODY.decode().encode("utf-16")), "bytes", may_open=True),
        RawCase("body-nul", http_request(b"\x00" * 200), "bytes"),
        # Not HTTP at all.
        RawCase("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)), "not-http"),
        RawCase("http-0.9", b"GET /healthz\r\n\r\n", "not-http", may_open=True),
        RawCase("http-2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "not-http"),
        RawCase("version-9.9", http_request().replace(b"HTTP/1.1", b"HTTP/9.9", 1), "not-http", may_open=True),
        RawCase("absolute-uri", http_request(path=b"http://evil.example" + CHECK), "not-http", may_open=True),
        RawCase("empty-lines", b"\r\n" * 1000, "not-http"),
    ]


def smuggled() -> bytes:
    """A denied check whose body hides an approved request (pipelining / smuggling attempt)."""
    inner = http_request(APPROVED_BODY)
    outer = [
        b"POST " + CHECK + b" HTTP/1.1",
        b"Host: gitgate",
        b"Content-Type: application/json",
        b"Content-Length: " + str(len(DENIED_BODY)).encode(),
        b"Transfer-Encoding: chunked",
    ]
    return b"\r\n".join(outer) + b"\r\n\r\n" + DENIED_BODY + inner


STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3}) ", re.M)


def statuses(data: bytes) -> list[int]:
    """Every status line in a raw response stream."""
    return [int(m.group(1)) for m in STATUS_LINE.finditer(data)]

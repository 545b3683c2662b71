"""The fast path for simple gate files (gitgate/fastyaml.py), held to libyaml's answers.

`fastyaml.load` may say "don't know" (None) about anything; what it must never do is answer
differently from the path it stands in for: libyaml composing with `schema._Loader` and
`schema._Doc.build` turning the nodes into values and the line of each key path. Every test here
runs both on the same text and compares: documents from the tests and the docs, files written by
`gitgate request`, the benchmark's gate file, generated documents (in the subset and around it) and
character-level mutations of them. A few tests also check that the fast path does take the files
gitgate meets most, so that the speed-up is real.
"""

from __future__ import annotations

import ast
import importlib.util
import random
import re
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hostile import CANARY, FILE, POLICY_FILE, VALID_GATE, VALID_POLICY, gate_corpus, mutated_gate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitgate import fastyaml, schema
from gitgate.commands.init import EXAMPLE_GATE, EXAMPLE_POLICY
from gitgate.errors import Problem
from gitgate.model import CanaryRef, Hook
from gitgate.request import RequestSpec, change
from gitgate.schema import parse_gate, parse_policy

ROOT = Path(__file__).resolve().parent.parent
HEADER = "apiVersion: gitgate/v1\nkind: Gate\nmetadata:\n  name: podinfo\n  namespace: test\n"


def _bench_repos() -> Any:
    spec = importlib.util.spec_from_file_location("bench_repos", ROOT / "bench" / "repos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _bench_repos()
BENCH_GATE: str = BENCH.gate_text(0)


# --- the oracle --------------------------------------------------------------------------------------


def libyaml(text: str) -> tuple[Any, dict[schema.Path, int], list[Problem]]:
    """What `schema._load` gives with the fast path switched off: libyaml's nodes through `_Doc.build`."""
    with mock.patch.object(fastyaml, "load", return_value=None):
        value, doc = schema._load(FILE, text.encode())
    return value, doc.lines, doc.problems


def agree(text: str) -> bool:
    """Whether the fast path took `text`; fails when it answered otherwise than libyaml's path."""
    fast = fastyaml.load(text)
    try:
        size = len(text.encode())
    except UnicodeEncodeError:  # a lone surrogate: no file holds it, and the fast path must not take it
        assert fast is None
        return False
    if size > schema.MAX_FILE_BYTES:  # refused before anything reads it
        return False
    value, lines, problems = libyaml(text)
    if fast is None:
        return False
    shown = repr(text)[:2000]
    assert problems == [], f"the fast path took a file libyaml's path refuses: {shown}\n{problems}"
    assert isinstance(value, dict), (shown, value)
    assert repr(fast[0]) == repr(value), (shown, fast[0], value)  # same values, types and key order
    assert fast[0] == value
    assert fast[1] == lines, (shown, fast[1], lines)
    again, doc = schema._load(FILE, text.encode())  # and `_load` passes it on as it is
    assert (again, doc.lines, doc.problems) == (fast[0], fast[1], [])
    return True


# --- the corpus: every gate-like text in the tests and docs, request files, the benchmark --------------


def _test_strings() -> Iterator[str]:
    """Every multi-line string constant in tests/*.py, dedented (gate snippets, and much else)."""
    for file in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
                value = node.value if isinstance(node.value, str) else node.value.decode("utf-8", "replace")
                if "\n" in value:
                    yield textwrap.dedent(value)
                    if value.lstrip().startswith("spec:"):  # what test_schema.py puts after its HEADER
                        yield HEADER + textwrap.dedent(value)


def _doc_blocks() -> Iterator[str]:
    """The YAML code blocks of README.md and docs/*.md, one document each."""
    for file in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"^```ya?ml\n(.*?)^```", file.read_text(), re.S | re.M):
            yield from (part.lstrip("\n") for part in re.split(r"^---\n", block, flags=re.M))


def request_files() -> list[str]:
    """Gate files as `gitgate request` writes them (yaml.safe_dump) for various approvals."""
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    out = []
    current: bytes | None = None
    for i, hook in enumerate([*Hook, Hook.CONFIRM_PROMOTION, Hook.ROLLBACK]):
        spec = RequestSpec(
            CanaryRef("test", "podinfo"),
            hook,
            ["85d557f47b", "*", "0123456789", "a" * 90, "x.y_z-1"][i % 5],
            expires_in=timedelta(hours=[1, 24, 24 * 365 * 80][i % 3]) if i % 2 else None,
        )
        url = f"https://github.com/acme/approvals/pull/{i}" if i % 3 else None
        current = change(current, spec, now, request_url=url)
        out.append(current.decode())
        out.append(change(None, spec, now, request_url=url).decode())
    return out


def odd_request_files() -> list[str]:
    """What `gitgate request` writes that the fast path leaves to libyaml: a revocation leaves
    `approvals: []` (a flow sequence), and a long note is wrapped over two lines."""
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    one = change(None, RequestSpec(CanaryRef("test", "podinfo"), Hook.ROLLBACK, "*"), now)
    noted = (BENCH_GATE.replace("note: rollouts are routine", "note: " + "rollouts are routine " * 5)).encode()
    return [
        change(one, RequestSpec(CanaryRef("test", "podinfo"), Hook.ROLLBACK, "*", revoke=True), now).decode(),
        change(noted, RequestSpec(CanaryRef("team-00", "app-000000"), Hook.ROLLBACK, "*"), now).decode(),
    ]


def corpus() -> list[str]:
    texts = [
        BENCH_GATE,
        BENCH.gate_text(123_456, revision=7),
        BENCH.POLICY,
        VALID_GATE.decode(),
        VALID_POLICY.decode(),
        EXAMPLE_GATE,
        EXAMPLE_POLICY,
        *request_files(),
        *odd_request_files(),
        *_doc_blocks(),
        *_test_strings(),
    ]
    for case in gate_corpus():
        try:
            texts.append(case.data.decode())
        except UnicodeDecodeError:
            continue
    return list(dict.fromkeys(texts))


CORPUS = corpus()


def test_the_fast_path_agrees_with_libyaml_on_every_text_of_the_corpus() -> None:
    taken = [text for text in CORPUS if agree(text)]
    assert len(CORPUS) > 500
    assert len(taken) > 100, len(taken)


def test_gate_and_policy_files_parse_the_same_with_and_without_the_fast_path() -> None:
    """The whole parser, field checks included: the same Gate or Policy and the same problems,
    with the same lines (for gate files with unknown keys, wrong names, bad values...)."""
    for text in CORPUS:
        data = text.encode()
        fast = parse_gate(FILE, data, CANARY), parse_policy(POLICY_FILE, data)
        with mock.patch.object(fastyaml, "load", return_value=None):
            slow = parse_gate(FILE, data, CANARY), parse_policy(POLICY_FILE, data)
        assert fast == slow, text


def test_the_fast_path_takes_the_files_gitgate_meets_most() -> None:
    assert fastyaml.load(BENCH_GATE) is not None
    assert fastyaml.load(BENCH.POLICY) is not None
    assert all(agree(text) for text in request_files())  # written by `gitgate request`
    assert not any(agree(text) for text in odd_request_files())
    docs = [text for text in _doc_blocks() if "apiVersion: gitgate/v1" in text]
    assert len(docs) >= 4
    for text in docs:  # the docs' gate and policy files, except those written with flow mappings
        assert agree(text) == (re.search(r": [{\[]", text) is None), text


def test_the_fast_path_resolves_plain_scalars_with_the_loaders_table() -> None:
    """`schema._Loader` decides which plain scalars are text; the fast path must use the same table."""
    loader = {first: resolvers for first, resolvers in schema._Loader.yaml_implicit_resolvers.items() if first}
    assert loader == fastyaml._RESOLVERS
    assert fastyaml._ENABLED
    assert "" in schema._Loader.yaml_implicit_resolvers  # an empty value is null: `key:` gives None
    assert None not in schema._Loader.yaml_implicit_resolvers


@pytest.mark.parametrize(
    "text",
    [
        "a: b\n",
        "a: b",
        "---\na: b\n",
        "# head\n\na: b\n",
        "  a: b\n  c: d\n",
        "a:\n",
        "a:\nb: c\n",
        "a: ~\nb: null\nc: Null\nd: NULL\n",
        "a:   # nothing\nb: c # x # y\n",
        "a: b   \n",
        "a: x:y\nb: x#y\nc: x :y\nd: 'x # y'\ne: \"x: y\"\n",
        "a: it's\nb: 'it''s'\nc: ''''\nd: ''\ne: \"\"\nf: \"'\"\n",
        'a: é 中文 😀\nb: "\u00e9"\n',
        "a:\n- x\n- y\nb:\n  - x\n  -   y\n",
        "a:\n  - b: 1x\n    c: d\n  - e\n",
        "a:\n- b:\n  - c\n  d: e\n- f\n",
        "a:\n  b:\n    c:\n      d: e\nf: g\n",
        "a.b/c-d_e: f\n1a: b\n_: c\n",
        "a: x\n# c\n  # c\n\nb: y\n",
        "a:\n   \n  b: c\n",
    ],
)
def test_simple_documents_take_the_fast_path_and_agree(text: str) -> None:
    assert agree(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: b\n  c: d\n",  # a more-indented line after a value
        "a:\n  b\n",  # the value on the next line
        "a: b\n\n  c\n",  # a continued plain scalar
        "a:\n    b: 1x\n  c: 2x\n",  # between two levels
        "a: b\n- c\n",
        "a:\n  - b\n  c: d\n",
        "- a: b\n  - c\n",
        "a:\n-\n",  # an empty item
        "a:\n- # nothing\n",
        "a:\n- - b\n",
        "a: 1\n",
        "a: true\n",
        "a: yes\n",
        "a: 1.5\n",
        "a: .inf\n",
        "a: 0x1F\n",
        "a: =\n",
        "a: <<\n",
        "yes: a\n",
        "null: a\n",
        "~: a\n",
        "1: a\n",
        "a: b\na: c\n",
        "a: &x b\n",
        "a: *x\n",
        "a: !!str b\n",
        "a: [b]\n",
        "a: {}\n",
        "a: |\n  b\n",
        "a: >-\n  b\n",
        'a: "b\\n"\n',
        'a: "b\n  c"\n',
        "a: 'b\n  c'\n",
        'a: "b"#c\n',
        "? a\n: b\n",
        '"a": b\n',
        "a :b\n",
        "a:b\n",
        "a: b\n...\n",
        "a: b\n---\nc: d\n",
        "%YAML 1.1\n---\na: b\n",
        "--- \na: b\n",
        "--- a\n",
        "a: b\tc\n",
        "a:\tb\n",
        "a: b\r\nc: d\r\n",
        "a: b\x85c: d\n",
        "a: b\u2028c: d\n",
        "\ufeffa: b\n",
        "a: \ufeffb\n",
        "a: b\x00\n",
        "a: b\x7f\n",
        "a: \xa0b\n",  # libyaml takes it; the fast path leaves non-printable-to-Python text to it
        "a: -b\n",
        "a: ?b\n",
        "a: :b\n",
        "a: @b\n",
        "a: `b\n",
        "a: %b\n",
        "",
        "# only a comment\n",
        "a\n",
        "- a\n",
        "  a: b\nc: d\n",
        "k" * 201 + ": v\n",
        "".join("  " * i + f"k{i}:\n" for i in range(12)) + "  " * 12 + "k: v\n",
        "".join(f"k{i}: v\n" for i in range(2_001)),  # more lines than a gate file has
    ],
)
def test_documents_outside_the_subset_are_left_to_libyaml(text: str) -> None:
    assert fastyaml.load(text) is None
    agree(text)


# --- generated documents -------------------------------------------------------------------------------

PLAIN_WORDS = [
    "x",
    "podinfo",
    "confirm-promotion",
    "rollouts are routine",
    "https://github.com/acme/approvals/pull/42",
    "0 18 * * FRI",
    "Europe/Berlin",
    "63h",
    "a#b",
    "a:b",
    "a  b",
    "a, b [c] {d}",
    "it's",
    'say "hi"',
    "é",
    "中文",
    "😀",
    "a\\b",
    "2026-11-23T12:00:00Z",
    "2026-11-23",
    ".hidden",
    "x" * 300,
]
TRICKY = [
    "",
    " ",
    " lead",
    "trail ",
    "*",
    "#",
    "# x",
    "a #b",
    "a: b",
    "a:",
    ":a",
    "-a",
    "- a",
    "-",
    "?a",
    "? a",
    "'",
    '"',
    "''",
    "yes",
    "no",
    "on",
    "Off",
    "~",
    "null",
    "NULL",
    "true",
    "False",
    "0",
    "12",
    "-1",
    "+1",
    "0x1F",
    "0o17",
    "0b101",
    "1_000",
    "1.5",
    ".5",
    "1e3",
    "1.5e+3",
    ".nan",
    "-.inf",
    "190:20:30",
    "=",
    "<<",
    "\xa0",
    "[x]",
    "{x}",
    "@x",
    "`x",
    "%x",
    "!x",
    "&x",
    "*x",
    "|",
    ">",
    "\\",
    "\t",
    "a\tb",
    "\n",
    "a\nb",
    "\r",
    "\x85",
    "\u2028",
    "\ufeff",
    "\x00",
    "\x7f",
    "---",
    "...",
    "a -",
]
KEYS = ["a", "b", "hook", "checksum", "name", "note", "x1", "1a", "2026-01-01", "a.b", "a/b", "a-b", "_", "A_B", "nope"]
TRICKY_KEYS = [
    "yes",
    "no",
    "on",
    "null",
    "~",
    "true",
    "123",
    "1.5",
    "0x1F",
    "<<",
    "=",
    "é",
    "a b",
    "a:b",
    "-a",
    "",
    "k" * 201,
]

SEEDS = st.integers(0, 2**32 - 1)  # layout and mutations: uniform choices, replayable by seed


def rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - layout choices, not secrets


SLOW = [HealthCheck.too_slow, HealthCheck.large_base_example, HealthCheck.data_too_large]
# Mostly ordinary words, so that a document is often valid but for one odd scalar or key.
WORD = st.sampled_from(PLAIN_WORDS)
SCALAR = st.one_of(WORD, WORD, WORD, st.none(), st.sampled_from(TRICKY))
SAFE_SCALAR = st.one_of(WORD, WORD, st.none(), st.sampled_from(TRICKY).filter(str.isprintable))
LOOSE_KEYS = st.one_of(
    st.sampled_from(KEYS), st.sampled_from(KEYS), st.sampled_from(KEYS), st.sampled_from(TRICKY_KEYS)
)


def trees(scalar: st.SearchStrategy[Any], keys: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    value = st.recursive(
        scalar,
        lambda inner: st.lists(inner, min_size=1, max_size=3) | st.dictionaries(keys, inner, min_size=1, max_size=3),
        max_leaves=12,
    )
    return st.dictionaries(keys, value, min_size=1, max_size=5)


RESOLVER = schema._Loader("")


def _is_text(plain: str) -> bool:
    return bool(RESOLVER.resolve(yaml.ScalarNode, plain, (True, False)) == schema._STR)


PLAIN_OK = re.compile(r"[^-?:,\[\]{}#&*!|>'\"%@` ](?:(?!: |:$| #)[^\n])*(?<![ :])")


class Writer:
    """Writes a tree as block YAML, its layout chosen by `rnd`. With `strict`, only in the subset
    the fast path takes (every scalar written so that it reads back as itself); without, anything
    goes, including what no YAML reader takes."""

    def __init__(self, rnd: random.Random, *, strict: bool) -> None:
        self.rnd = rnd
        self.strict = strict
        self.out: list[str] = []

    def document(self, root: dict[str, Any]) -> str:
        rnd = self.rnd
        if rnd.random() < 0.1:
            self.out.append("---")
        if rnd.random() < 0.2:
            self.out.append("# a gate file")
        self.mapping(root, rnd.choice([0, 0, 0, 1, 2]) if not self.strict or rnd.random() < 0.2 else 0, None)
        return "\n".join(self.out) + rnd.choice(["\n", "\n", "\n", "", "\n\n", "\n# end\n", "\n  \n"])

    def noise(self, column: int) -> None:
        rnd = self.rnd
        while rnd.random() < 0.1:
            self.out.append(rnd.choice(["", "  ", " " * rnd.randrange(8) + "# note", "#", "# a: b"]))
        if not self.strict and rnd.random() < 0.02:
            self.out.append(" " * column + rnd.choice(["- x", "x", "? x", "...", "---", "\t# x", "x: y"]))

    def comment(self) -> str:
        if not self.strict and self.rnd.random() < 0.05:
            return self.rnd.choice(["#c", "\t# c", " #\x85", " # \ufeff"])
        return self.rnd.choice(["", "", "", "", " # c", "  #c: d", " #", "   "])

    def key(self, key: str) -> str:
        if not self.strict and self.rnd.random() < 0.05:
            return self.rnd.choice([f'"{key}"', f"'{key}'", f"{key} "])
        return key

    def scalar(self, value: str | None) -> str:
        rnd = self.rnd
        if value is None:
            return rnd.choice(["", "~", "null", "Null", "NULL"])
        styles = ["plain", "double", "single"]
        if self.strict:
            if '"' in value or "\\" in value:
                styles.remove("double")
            if not (PLAIN_OK.fullmatch(value) and _is_text(value)):
                styles.remove("plain")
        style = rnd.choice(styles)
        if style == "double":
            return f'"{value}"' if self.strict or rnd.random() < 0.5 else yaml.safe_dump(value, default_style='"')[:-1]
        if style == "single":
            return "'" + value.replace("'", "''") + "'"
        return value

    def value(self, prefix: str, column: int, value: Any) -> None:
        """`prefix` (up to and including "key:" or "- ") then `value`, which starts there or below."""
        rnd = self.rnd
        step = rnd.randint(1, 4)
        if isinstance(value, dict):
            self.out.append(prefix.rstrip(" ") + self.comment())
            self.mapping(value, column + step, None)
        elif isinstance(value, list):
            self.out.append(prefix.rstrip(" ") + self.comment())
            self.sequence(value, column + (0 if prefix.endswith(":") and rnd.random() < 0.5 else step), None)
        else:
            written = self.scalar(value)
            separator = "" if not written or not prefix.endswith(":") else rnd.choice([" ", " ", "  "])
            self.out.append((prefix + separator + written + self.comment()).rstrip(" ") + rnd.choice(["", "", " "]))

    def mapping(self, mapping: dict[str, Any], column: int, first: str | None) -> None:
        for key, value in mapping.items():
            self.noise(column)
            prefix = first if first is not None else " " * column
            first = None
            self.value(prefix + self.key(key) + ":", column, value)

    def sequence(self, items: list[Any], column: int, first: str | None) -> None:
        rnd = self.rnd
        for item in items:
            self.noise(column)
            prefix = first if first is not None else " " * column
            first = None
            dash = "-" + " " * rnd.choice([1, 1, 1, 2, 3])
            if isinstance(item, dict) and (self.strict or rnd.random() < 0.9):
                self.mapping(item, column + len(dash), prefix + dash)  # "- key: value"
            elif isinstance(item, list) and not self.strict and rnd.random() < 0.5:
                self.sequence(item, column + len(dash), prefix + dash)  # "- - x"
            elif item is None and self.strict:
                self.out.append(prefix + dash + rnd.choice(["~", "null"]))
            elif isinstance(item, list) and self.strict:
                self.out.append(prefix + dash + self.scalar("x"))  # no nested sequences on one line
            else:
                self.value(prefix + dash, column, item)


@settings(max_examples=400, deadline=None, suppress_health_check=SLOW)
@given(tree=trees(SAFE_SCALAR, st.sampled_from(KEYS)), seed=SEEDS)
def test_documents_in_the_subset_take_the_fast_path_and_agree(tree: dict[str, Any], seed: int) -> None:
    text = Writer(rng(seed), strict=True).document(tree)
    assert agree(text), text


@settings(max_examples=800, deadline=None, suppress_health_check=SLOW)
@given(
    tree=trees(SCALAR, LOOSE_KEYS),
    seed=SEEDS,
)
def test_documents_around_the_subset_agree_when_taken(tree: dict[str, Any], seed: int) -> None:
    agree(Writer(rng(seed), strict=False).document(tree))


MUTANTS = " :#-'\"\t\n!&*|>{}[],?%@~" + "abyn01" + "\r\x85\u2028\ufeff\xa0\x00é"


def mutate(text: str, rnd: random.Random) -> str:
    chars = list(text)
    for _ in range(rnd.randint(1, 4)):
        at = rnd.randrange(len(chars) + 1)
        op = rnd.randrange(3)
        if op == 0:
            chars.insert(at, rnd.choice(MUTANTS))
        elif chars and op == 1:
            del chars[min(at, len(chars) - 1)]
        elif chars:
            chars[min(at, len(chars) - 1)] = rnd.choice(MUTANTS)
    return "".join(chars)


BASES = [text for text in CORPUS if fastyaml.load(text) is not None]


@settings(max_examples=600, deadline=None, suppress_health_check=SLOW)
@given(base=st.sampled_from(BASES), seed=SEEDS)
def test_mutated_files_agree_when_taken(base: str, seed: int) -> None:
    agree(mutate(base, rng(seed)))


@settings(max_examples=300, deadline=None, suppress_health_check=SLOW)
@given(tree=trees(SAFE_SCALAR, st.sampled_from(KEYS)), seed=SEEDS)
def test_mutated_generated_documents_agree_when_taken(tree: dict[str, Any], seed: int) -> None:
    rnd = rng(seed)
    agree(mutate(Writer(rnd, strict=True).document(tree), rnd))


@settings(max_examples=200, deadline=None, suppress_health_check=SLOW)
@given(seed=SEEDS)
def test_hostile_mutations_of_a_gate_agree_when_taken(seed: int) -> None:
    data = mutated_gate(rng(seed))  # tests/hostile.py: value- and byte-level mutations, many safe_dump styles
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return
    agree(text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.sampled_from(" :#-'\"\n!&*|>{}[],?%@~abyn01é\t\r\x85\ufeff\xa0"), max_size=60))
def test_any_short_text_agrees_when_taken(text: str) -> None:
    agree(text)


def _tree(rnd: random.Random, depth: int = 0) -> Any:
    if depth > 0 and rnd.random() < 0.6:
        return rnd.choice([*PLAIN_WORDS, None, rnd.choice(TRICKY)])
    if depth > 0 and rnd.random() < 0.4:
        return [_tree(rnd, depth + 1) for _ in range(rnd.randint(1, 3))]
    return {rnd.choice(KEYS): _tree(rnd, depth + 1) for _ in range(rnd.randint(1, 4))}


def test_the_loose_writer_often_stays_in_the_subset() -> None:
    """So that the test of documents around the subset compares values, not only refusals."""
    rnd = rng(2026)
    taken = sum(agree(Writer(rnd, strict=False).document(_tree(rnd))) for _ in range(300))
    assert taken > 30, taken


# --- the plan cache: a layout read once, its values read in every file --------------------------------


def uncached(text: str) -> tuple[dict[str, Any], dict[schema.Path, int]] | None:
    """`fastyaml.load` with no plan kept: the layout read afresh (the plans kept are left as they were)."""
    with mock.patch.dict(fastyaml._PLANS, clear=True):
        return fastyaml.load(text)


def from_cache(text: str) -> tuple[dict[str, Any], dict[schema.Path, int]] | None:
    """`fastyaml.load` that must not read the layout: it answers from a kept plan (or refuses before)."""
    with mock.patch.object(fastyaml, "_plan", side_effect=AssertionError("the layout was read again")):
        return fastyaml.load(text)


def same(a: Any, b: Any) -> bool:
    return repr(a) == repr(b) and a == b  # the same values, types and key order


GATE_LAYOUT = """\
apiVersion: gitgate/v1
kind: Gate
metadata:
  name: {0}
  namespace: {1}
spec:
  approvals:
  - hook: {2}
    checksum: {3}
    note: x
  - {4}
"""
# One token each, so that the layout stays that of GATE_LAYOUT: text, null, or what libyaml reads
# as something else (the fast path must then refuse), plain and quoted.
VALUE_TOKENS = [
    "x",
    "podinfo",
    "a b",
    "a:b",
    "x#y",
    "2026-01-01",
    "12",
    "-1",
    "1.5",
    ".inf",
    "0x1F",
    "true",
    "False",
    "yes",
    "off",
    "=",
    "<<",
    "~",
    "null",
    "Null",
    "NULL",
    "'12'",
    '"true"',
    "'~'",
    '"null"',
    "''",
    '""',
    "'it''s'",
    "'a # b'",
    '"a: b"',
]
NOT_TEXT_TOKENS = {"12", "-1", "1.5", ".inf", "0x1F", "true", "False", "yes", "off", "=", "<<"}
NULL_TOKENS = {"~", "null", "Null", "NULL"}


def test_one_layout_with_any_values_answers_from_the_kept_plan_as_afresh() -> None:
    fastyaml._PLANS.clear()
    assert agree(GATE_LAYOUT.format("a", "b", "c", "d", "e"))  # keeps the plan
    for slot in range(5):
        for token in VALUE_TOKENS:
            text = GATE_LAYOUT.format(*["v"] * slot, token, *["v"] * (4 - slot))
            got = from_cache(text)
            assert same(got, uncached(text)), text
            if token in NOT_TEXT_TOKENS:
                assert got is None, text
                continue
            assert got is not None, text
            assert agree(text)
            assert same(got, libyaml(text)[:2]), text  # e.g. '12' stays text, ~ is None
            path = [("metadata", "name"), ("metadata", "namespace"), ("spec", "approvals", 0, "hook")]
            path += [("spec", "approvals", 0, "checksum"), ("spec", "approvals", 1)]
            assert (token in NULL_TOKENS) == (_at(got[0], path[slot]) is None)


def _at(value: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def test_documents_after_a_refused_one_of_the_same_layout() -> None:
    refused, taken = GATE_LAYOUT.format("a", "b", "c", "d", "12"), GATE_LAYOUT.format("a", "b", "c", "d", "'12'")
    fastyaml._PLANS.clear()
    assert fastyaml.load(refused) is None  # the layout is fine: its plan is kept
    assert len(fastyaml._PLANS) == 1
    assert same(from_cache(taken), libyaml(taken)[:2])
    assert from_cache(refused) is None
    assert same(from_cache(taken), libyaml(taken)[:2])
    # and a layout outside the subset stays refused, whatever came before
    duplicate = "a: x\na: y\n"
    fastyaml._PLANS.clear()
    for _ in range(2):
        assert fastyaml.load(duplicate) is None
        assert fastyaml._PLANS == {}


def test_what_load_hands_out_is_the_callers_own() -> None:
    """Changing a value or its lines (schema._Doc may, one day) must not change a later answer."""
    text = GATE_LAYOUT.format("a", "b", "c", "d", "e")
    want = libyaml(text)[:2]
    fastyaml._PLANS.clear()
    for _ in range(3):
        got = fastyaml.load(text)
        assert got is not None
        assert same(got, want)
        value, lines = got
        value["kind"] = "changed"
        value["metadata"]["name"] = "changed"
        value["metadata"]["extra"] = "added"
        value["spec"]["approvals"][0]["hook"] = "changed"
        value["spec"]["approvals"].append("added")
        del value["apiVersion"]
        lines[("spec",)] = 99
        lines.setdefault(("extra",), 1)
        del lines[()]
    other = GATE_LAYOUT.format("f", "g", "h", "i", "j")
    got = from_cache(other)
    assert got is not None
    assert same(got, libyaml(other)[:2])
    assert got[1] is not fastyaml.load(other)[1]  # a new dict each time


@pytest.mark.parametrize(
    "texts",
    [
        # the same layouts, but which lines have a value differs
        ["a: # c\nb: x\n", "a: x\nb: # c\n", "a: x\nb: x\n", "a:\nb:\n", "a: \nb: x\n"],
        ["a:\n- x\n", "a:\n- # c\n", "a:\n-  \n"],
        ["  # c\na: x\n", "  x\na: x\n"],
        # the same layouts after a "---" line or not: other line numbers
        ["a: x\nb:\n  c: y\n", "---\na: x\nb:\n  c: y\n"],
        # layouts that differ only in spaces
        ["a: x\nb:\n  - c\n", "a:  x\nb:\n  -  c\n", "a: x\nb:\n  - c  \n", "a: x\nb:\n   - c\n", "a: x\nb:\n- c\n"],
    ],
)
def test_layouts_that_look_alike_have_their_own_plans(texts: list[str]) -> None:
    fastyaml._PLANS.clear()
    for _ in range(2):
        for text in texts:
            got = fastyaml.load(text)
            assert same(got, uncached(text)), text
            agree(text)


def test_the_kept_plans_are_bounded() -> None:
    fastyaml._PLANS.clear()
    for i in range(fastyaml.MAX_PLANS * 2 + 7):
        text = "a:\n" + "  b:\n" * (i % 7) + f"  k{i}: x\n"  # a new layout each time
        fastyaml.load(text)
        assert 0 < len(fastyaml._PLANS) <= fastyaml.MAX_PLANS
    fastyaml._PLANS.clear()
    long = "".join(f"k{i}: v\n" for i in range(fastyaml.MAX_PLAN_LINES))  # one line more, with the last ""
    wide = "".join(f"k{i}{'x' * 150}: v\n" for i in range(fastyaml.MAX_PLAN_CHARS // 150))
    short = "".join(f"k{i}: v\n" for i in range(fastyaml.MAX_PLAN_LINES - 1))
    for text in (long, wide):
        assert agree(text)
        assert fastyaml._PLANS == {}
    assert agree(short)
    assert len(fastyaml._PLANS) == 1


def _with_values(text: str, rnd: random.Random) -> str:
    """`text` with some of its one-line values replaced by other tokens: its layout kept."""
    parts = fastyaml._LINE.split(text)  # comments go, as does the "---" line: `load` strips it first
    for i in range(2, len(parts), 3):
        if parts[i] is not None and rnd.random() < 0.5:
            parts[i] = rnd.choice(VALUE_TOKENS)
    return "".join(part or "" for part in parts)


@settings(max_examples=300, deadline=None, suppress_health_check=SLOW)
@given(base=st.sampled_from(BASES), seed=SEEDS)
def test_files_of_a_kept_layout_with_other_values_agree(base: str, seed: int) -> None:
    base = base.removeprefix("---\n")
    fastyaml.load(base)  # keeps its plan, if it is not too long
    text = _with_values(base, rng(seed))
    assert same(fastyaml.load(text), uncached(text)), text
    agree(text)


def test_every_text_of_the_corpus_answers_the_same_from_a_kept_plan() -> None:
    fastyaml._PLANS.clear()
    kept = 0
    for text in CORPUS:
        first = fastyaml.load(text)
        if len(fastyaml._PLANS) == fastyaml.MAX_PLANS:
            fastyaml._PLANS.clear()
            first = fastyaml.load(text)
        with mock.patch.object(fastyaml, "_plan", wraps=fastyaml._plan) as plan:
            again = fastyaml.load(text)
        kept += first is not None and not plan.called
        assert same(again, first), text
        assert same(first, uncached(text)), text
    assert kept > 100, kept

"""A fast reader for the common, simple shape of gate files, or None: "not sure, ask libyaml".

`load(text)` gives what composing `text` with `schema._Loader` and `schema._Doc.build` gives, the
plain value and the line of every key path, for a strict subset of YAML: block mappings and block
sequences (indented or indentless), plain keys that resolve to strings, and one-line values that
are plain strings, nulls, or quoted strings without escapes. It answers None on the first thing
outside that subset (tabs, flow collections, anchors, tags, block or multi-line scalars, numbers,
booleans, duplicate keys, odd indentation, ...), and the caller composes the text with libyaml as
before, which also finds and explains every error. So this module never has to say what is wrong,
only to be sure of what is right; when in doubt it answers None.

tests/test_fastyaml.py holds it to that: on every document it accepts, generated or mutated, its
answer must equal libyaml's, and it must accept nothing libyaml refuses.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

Path = tuple[str | int, ...]
Lines = dict[Path, int]

MAX_LINES = 2_000  # each line adds at most three nodes: far below schema.MAX_NODES
MAX_DEPTH = 10  # open collections; schema.MAX_DEPTH is 32


def _resolvers() -> dict[str, list[tuple[str, re.Pattern[str]]]]:
    """The implicit resolvers of `schema._Loader` (SafeLoader's, without timestamps), by first
    character, as `BaseResolver.resolve` looks them up. (A test checks the two tables agree.)"""
    return {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
        if first  # not '' (the empty scalar: never plain text here) nor None (wildcards: none)
    }


def _any_of(resolvers: list[tuple[str, re.Pattern[str]]]) -> re.Pattern[str]:
    """One pattern that matches where any of `resolvers` does (each keeps its own flags)."""
    parts = []
    for _, rx in resolvers:
        flags = "".join(c for f, c in ((re.I, "i"), (re.M, "m"), (re.S, "s"), (re.X, "x")) if rx.flags & f)
        parts.append(f"(?{flags}:{rx.pattern})" if flags else f"(?:{rx.pattern})")
    return re.compile("|".join(parts))


_RESOLVERS = _resolvers()
_NOT_TEXT = {first: _any_of(resolvers) for first, resolvers in _RESOLVERS.items() if resolvers}
_NULL = "tag:yaml.org,2002:null"
# Off (every file to libyaml) should SafeLoader's resolvers ever take a shape this module does not
# expect: resolvers for any first character, or regex flags `_any_of` does not carry over.
_ENABLED = None not in yaml.SafeLoader.yaml_implicit_resolvers and not any(
    rx.flags & ~(re.I | re.M | re.S | re.X | re.U) for resolvers in _RESOLVERS.values() for _, rx in resolvers
)


def _is_null(plain: str) -> bool:
    """Whether a plain scalar that some resolver claims resolves to null (the first to match wins)."""
    return next(tag for tag, rx in _RESOLVERS[plain[0]] if rx.match(plain)) == _NULL


# The keys of gate and policy files, known to be text once here rather than in every file.
_TEXT_KEYS = frozenset(
    key
    for key in (
        "apiVersion", "kind", "metadata", "name", "namespace", "labels", "annotations", "spec", "default",
        "approvals", "hook", "checksum", "expires", "request", "note", "freeze", "start", "duration",
        "timezone", "reason",
    )
    if not (key[0] in _NOT_TEXT and _NOT_TEXT[key[0]].match(key))
)  # fmt: skip

# One line of the subset: indentation, "- ", a plain key and ":", a one-line value, a comment; each
# optional. A line that does not match gives no row, so there are fewer rows than lines. No class
# takes a control character (tab, CR, NUL, DEL, ...); `load` checks the rest of Unicode.
_LINE = re.compile(
    r"""
    ^(\ *+)                                                     # 1 indentation
    (-\ ++)?                                                    # 2 "- " of a sequence item
    (?:([A-Za-z0-9_][A-Za-z0-9_./-]{0,199}+):(?=\ |$)\ *+)?      # 3 a plain key, then ": "
    (                                                           # 4 a value:
        "[^"\\\x00-\x1f\x7f]*+"                                  #   double-quoted, no escapes
      | '(?:[^'\x00-\x1f\x7f]++|'')*+'                           #   single-quoted
      | [^-?:,\[\]{}\#&*!|>'"%@`\ \x00-\x1f\x7f]                   #   plain: no indicator first,
        (?:[^\ :\x00-\x1f\x7f]++|:(?=[^\ \x00-\x1f\x7f])|\ ++(?=[^\ \#\x00-\x1f\x7f]))*+
    )?                                                          #   no ": " or " #" inside
    (?:$|\ *+(?:(?<![^\ \n])\#[^\x00-\x1f\x7f]*+)?$)             # spaces, a comment
    """,
    re.MULTILINE | re.VERBOSE,
)

_MAP, _SEQ, _INDENTLESS = 0, 1, 2  # kinds of open collections
_REFUSED = object()


def _scalar(raw: str) -> Any:
    """The value of a one-line scalar as `_LINE` found it; _REFUSED for anything but text or null."""
    first = raw[0]
    if first == '"':
        return raw[1:-1]
    if first == "'":
        return raw[1:-1].replace("''", "'")
    if first in _NOT_TEXT and _NOT_TEXT[first].match(raw):
        return None if _is_null(raw) else _REFUSED  # a number, a boolean, ...: libyaml knows best
    return raw


def load(text: str) -> tuple[dict[str, Any], Lines] | None:
    """The document's value and the line of each path (as `schema._Doc.build` records them), or
    None when `text` is not in the subset this reader is sure of."""
    if not _ENABLED or not (text.isascii() or text.replace("\n", "").isprintable()):
        return None  # a character libyaml reads otherwise (NEL, LS, BOM, ...) or refuses
    number = 0  # line number of the row being read
    if text.startswith("---"):
        if not text.startswith("---\n"):
            return None
        text = text[4:]
        number = 1
    breaks = text.count("\n")
    if breaks > MAX_LINES:
        return None
    rows = _LINE.findall(text)
    if len(rows) != breaks + 1:
        return None  # some line is not in the subset
    not_text, text_keys = _NOT_TEXT, _TEXT_KEYS
    root: dict[str, Any] | None = None
    lines: Lines = {}
    # Open collections, innermost last: (column, container, path, kind). A mapping's column is its
    # keys', a sequence's its dashes'; an indentless sequence has its mapping's column. The
    # innermost one is also kept in locals (at, node, path, kind).
    stack: list[tuple[int, Any, Path, int]] = []
    at: int = -1
    node: Any = None
    path: Path = ()
    kind: int = _MAP
    pending: str | None = None  # a key of the innermost mapping whose value is not read yet
    child: Any
    # Tuples are built with `+` below, not `(*path, key)`: it is twice as fast, and this is the loop.
    for indent, dash, key, raw in rows:
        number += 1
        column = len(indent)
        if not dash:
            if not key:
                if raw:
                    return None  # a scalar on a line of its own: a root or a continued value
                continue  # blank or comment
            if column != at or pending is not None or kind != _MAP:  # else: the next key of a mapping
                if pending is not None:
                    if column > at:  # the pending key's value is a mapping that starts here
                        child = {}
                        node[pending] = child
                        stack.append((column, child, path + (pending,), _MAP))  # noqa: RUF005
                        if len(stack) > MAX_DEPTH:
                            return None
                        at, node, path, kind = stack[-1]
                    pending = None  # else its value is null
                elif root is None:
                    root = {}
                    lines[()] = number
                    stack.append((column, root, (), _MAP))
                    at, node, path, kind = stack[-1]
                while at > column:
                    stack.pop()
                    if not stack:
                        return None  # less indented than the root
                    at, node, path, kind = stack[-1]
                if at != column or kind == _SEQ:
                    return None  # lines up with no open mapping (or continues a scalar)
                if kind == _INDENTLESS:  # a key of the mapping the sequence is a value of
                    stack.pop()
                    at, node, path, kind = stack[-1]
        else:
            if pending is not None:
                if column >= at:  # the pending key's value is a sequence that starts here
                    child = []
                    node[pending] = child
                    sequence = _SEQ if column > at else _INDENTLESS
                    stack.append((column, child, path + (pending,), sequence))  # noqa: RUF005
                    if len(stack) > MAX_DEPTH:
                        return None
                    at, node, path, kind = stack[-1]
                pending = None  # else its value is null
            elif root is None:
                return None  # the root is a sequence
            while at > column:
                stack.pop()
                if not stack:
                    return None
                at, node, path, kind = stack[-1]
            if at != column or kind == _MAP:
                return None  # lines up with no open sequence
            item = path + (len(node),)  # noqa: RUF005
            lines[item] = number
            if not key:
                if not raw:
                    return None  # an empty item, or one whose content is on the next lines
                child = _scalar(raw)
                if child is _REFUSED:
                    return None
                node.append(child)
                continue
            child = {}  # "- key: ...": a mapping
            node.append(child)
            stack.append((column + len(dash), child, item, _MAP))
            if len(stack) > MAX_DEPTH:
                return None
            at, node, path, kind = stack[-1]
        # `key` of the mapping `node` at `path`; its value is `raw` (what `_scalar` does, inline)
        if key in node:
            return None  # a duplicate: libyaml's path says which
        if key not in text_keys and key[0] in not_text and not_text[key[0]].match(key):
            return None  # null, true, 12, ...: not a text key
        lines[path + (key,)] = number  # noqa: RUF005
        if not raw:
            node[key] = None  # null, unless a collection starts on the next line
            pending = key
            continue
        first = raw[0]
        if first == '"':
            node[key] = raw[1:-1]
        elif first == "'":
            node[key] = raw[1:-1].replace("''", "'")
        elif first in not_text and not_text[first].match(raw):
            if not _is_null(raw):
                return None  # a number, a boolean, ...: libyaml knows best
            node[key] = None
        else:
            node[key] = raw
    return None if root is None else (root, lines)

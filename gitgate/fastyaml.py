"""A fast reader for the common, simple shape of gate files, or None: "not sure, ask libyaml".

`load(text)` gives what composing `text` with `schema._Loader` and `schema._Doc.build` gives, the
plain value and the line of every key path, for a strict subset of YAML: block mappings and block
sequences (indented or indentless), plain keys that resolve to strings, and one-line values that
are plain strings, nulls, or quoted strings without escapes. It answers None on the first thing
outside that subset (tabs, flow collections, anchors, tags, block or multi-line scalars, numbers,
booleans, duplicate keys, odd indentation, ...), and the caller composes the text with libyaml as
before, which also finds and explains every error. So this module never has to say what is wrong,
only to be sure of what is right; when in doubt it answers None.

Most of a gate file is its layout: which lines are keys, items or values, and how they nest.
Files written by `gitgate request` share a few layouts and differ in values only, so `load` reads a
layout once into a plan (`_plan`: the containers, where each value goes, the line of each path, or
None if the layout alone is outside the subset) and keeps it; for each file it then only resolves
the values and puts them in place. A plan depends on nothing but its layout, so a kept one gives
what making it afresh would.

tests/test_fastyaml.py holds it to that: on every document it accepts, generated or mutated, its
answer must equal libyaml's, and it must accept nothing libyaml refuses.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

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

# One line of the subset: its layout (indentation, "- ", a plain key and ":", each optional), a
# one-line value, a comment; each optional. A line that does not match leaves fewer matches than
# lines. No class takes a control character (tab, CR, NUL, DEL, ...); `load` checks the rest of
# Unicode. Two groups only, as each costs a string per line.
_LINE = re.compile(
    r"""
    ^(                                                          # 1 the layout:
        \ *+                                                    #   indentation
        (?:-\ ++)?                                              #   "- " of a sequence item
        (?:[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}+:(?=\ |$)\ *+)?    #   a plain key, then ": "
    )
    (                                                           # 2 a value:
        "[^"\\\x00-\x1f\x7f]*+"                                  #   double-quoted, no escapes
      | '(?:[^'\x00-\x1f\x7f]++|'')*+'                           #   single-quoted
      | [^-?:,\[\]{}\#&*!|>'"%@`\ \x00-\x1f\x7f]                   #   plain: no indicator first,
        [^\ :\x00-\x1f\x7f]*+                                    #   then runs of neither " " nor ":"
        (?:(?::(?=[^\ \x00-\x1f\x7f])|\ ++(?=[^\ \#\x00-\x1f\x7f]))[^\ :\x00-\x1f\x7f]*+)*+
    )?                                                          #   joined by a ":" or spaces, never ": " or " #"
    (?:$|\ *+(?:(?<![^\ \n])\#[^\x00-\x1f\x7f]*+)?$)             # spaces, a comment
    """,
    re.MULTILINE | re.VERBOSE,
)
# The parts of a layout (group 1 of `_LINE`): indentation, "- ", key. A layout splits only one way:
# every leading space is indentation (no other part starts with one), a "-" after it can only be
# the dash (no key starts with one), and the key ends at the first ":".
_PARTS = re.compile(r"(\ *+)(-\ ++)?(?:([A-Za-z0-9_][A-Za-z0-9_./-]{0,199}+):\ *+)?", re.VERBOSE)

_MAP, _SEQ, _INDENTLESS = 0, 1, 2  # kinds of open collections


class _Plan(NamedTuple):
    """What a document's layout alone decides (see `_plan`); `load` fills in the values. Containers
    are numbered as they open, the root 0. Never handed out, never changed once made."""

    templates: tuple[dict[str, None] | list[None], ...]  # each container with its keys (in order) or items, all None
    nests: tuple[tuple[int, str | int, int], ...]  # (container, key or index, the container that is its value)
    places: tuple[tuple[int, str | int], ...]  # (container, key or index) of each value, in order of lines
    lines: Lines  # the line of every path; each caller gets a copy


# Plans by layout: (the number of the line before the first, each line's layout (`_LINE` group 1),
# which lines have a value). Gate files written by `gitgate request` share a few layouts, so most
# files find theirs here and only their values are read. Bounded in number and in size (a plan
# holds a path or two per line), so that no input makes it grow without end. When full it starts
# afresh: `clear` is one step, should two threads load at once.
_PLANS: dict[tuple[int, tuple[str, ...], tuple[bool, ...]], _Plan] = {}
MAX_PLANS = 256
MAX_PLAN_LINES = 64  # gate files have tens; a plan of 64 lines takes 40 kB at most (10 MB in all)
MAX_PLAN_CHARS = 4_096  # of layout, keys included


def _plan(number: int, layouts: tuple[str, ...], valued: tuple[bool, ...]) -> _Plan | None:
    """The plan of a document whose lines after line `number` have `layouts`, those marked in
    `valued` followed by a value; None when the layout alone puts it outside the subset (a line that
    fits in no collection, a duplicate key, a key that is not text, nesting too deep, no mapping)."""
    not_text, text_keys = _NOT_TEXT, _TEXT_KEYS
    templates: list[Any] = []
    nests: list[tuple[int, str | int, int]] = []
    places: list[tuple[int, str | int]] = []
    lines: Lines = {}
    # Open collections, innermost last: (column, container, path, kind). A mapping's column is its
    # keys', a sequence's its dashes'; an indentless sequence has its mapping's column. The
    # innermost one is also kept in locals (at, node, path, kind).
    stack: list[tuple[int, int, Path, int]] = []
    at: int = -1
    node: int = -1
    path: Path = ()
    kind: int = _MAP
    pending: str | None = None  # a key of the innermost mapping whose value is not read yet
    # Tuples are built with `+` below, not `(*path, key)`: it is twice as fast.
    for layout, has_value in zip(layouts, valued, strict=True):
        number += 1
        parts = _PARTS.fullmatch(layout)
        if parts is None:
            return None  # never: `_LINE` finds no other layouts
        indent, dash, key = parts.groups("")
        column = len(indent)
        if not dash:
            if not key:
                if has_value:
                    return None  # a scalar on a line of its own: a root or a continued value
                continue  # blank or comment
            if column != at or pending is not None or kind != _MAP:  # else: the next key of a mapping
                if pending is not None:
                    if column > at:  # the pending key's value is a mapping that starts here
                        nests.append((node, pending, len(templates)))
                        stack.append((column, len(templates), path + (pending,), _MAP))  # noqa: RUF005
                        templates.append({})
                        if len(stack) > MAX_DEPTH:
                            return None
                        at, node, path, kind = stack[-1]
                    pending = None  # else its value is null
                elif not templates:  # the root mapping starts here
                    lines[()] = number
                    stack.append((column, 0, (), _MAP))
                    templates.append({})
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
                    nests.append((node, pending, len(templates)))
                    sequence = _SEQ if column > at else _INDENTLESS
                    stack.append((column, len(templates), path + (pending,), sequence))  # noqa: RUF005
                    templates.append([])
                    if len(stack) > MAX_DEPTH:
                        return None
                    at, node, path, kind = stack[-1]
                pending = None  # else its value is null
            elif not templates:
                return None  # the root is a sequence
            while at > column:
                stack.pop()
                if not stack:
                    return None
                at, node, path, kind = stack[-1]
            if at != column or kind == _MAP:
                return None  # lines up with no open sequence
            items = templates[node]
            index = len(items)
            items.append(None)
            item = path + (index,)  # noqa: RUF005
            lines[item] = number
            if not key:
                if not has_value:
                    return None  # an empty item, or one whose content is on the next lines
                places.append((node, index))
                continue
            nests.append((node, index, len(templates)))  # "- key: ...": a mapping
            stack.append((column + len(dash), len(templates), item, _MAP))
            templates.append({})
            if len(stack) > MAX_DEPTH:
                return None
            at, node, path, kind = stack[-1]
        # `key` of the mapping `node` at `path`, with a value on this line or not
        keys = templates[node]
        if key in keys:
            return None  # a duplicate: libyaml's path says which
        if key not in text_keys and key[0] in not_text and not_text[key[0]].match(key):
            return None  # null, true, 12, ...: not a text key
        lines[path + (key,)] = number  # noqa: RUF005
        keys[key] = None  # null, unless a value or a collection follows
        if has_value:
            places.append((node, key))
        else:
            pending = key
    if not templates:
        return None  # blank lines and comments only
    return _Plan(tuple(templates), tuple(nests), tuple(places), lines)


def load(text: str) -> tuple[dict[str, Any], Lines] | None:
    """The document's value and the line of each path (as `schema._Doc.build` records them), or
    None when `text` is not in the subset this reader is sure of."""
    if not _ENABLED or not (text.isascii() or text.replace("\n", "").isprintable()):
        return None  # a character libyaml reads otherwise (NEL, LS, BOM, ...) or refuses
    number = 0  # the number of the line before the first one read
    if text.startswith("---"):
        if not text.startswith("---\n"):
            return None
        text = text[4:]
        number = 1
    breaks = text.count("\n")
    if breaks > MAX_LINES:
        return None
    # "", then for each line matched its layout, its value (or None) and what follows ("\n" or "")
    parts = _LINE.split(text)
    if len(parts) != 3 * breaks + 4:
        return None  # some line is not in the subset
    raws = parts[2::3]  # None or a value: `_LINE` takes no empty one
    layout = (number, tuple(parts[1::3]), tuple(map(bool, raws)))
    plan = _PLANS.get(layout)
    if plan is None:
        plan = _plan(*layout)
        if plan is None:
            return None  # (not kept: such layouts are rare, and libyaml's path costs far more)
        if breaks < MAX_PLAN_LINES and sum(map(len, layout[1])) <= MAX_PLAN_CHARS:
            if len(_PLANS) >= MAX_PLANS:
                _PLANS.clear()
            _PLANS[layout] = plan
    containers: list[Any] = [template.copy() for template in plan.templates]
    for node, key, child in plan.nests:
        containers[node][key] = containers[child]
    not_text = _NOT_TEXT
    # Each value as libyaml resolves it: a quoted one is text, a plain one text unless a resolver
    # claims it (then null, or a number, a boolean, ... that libyaml knows best).
    values = [raw for raw in raws if raw]
    if len(values) != len(plan.places):
        return None  # never (the layout says which lines have values); if it did, libyaml decides
    for raw, (node, key) in zip(values, plan.places, strict=True):
        first = raw[0]
        if first == '"':
            containers[node][key] = raw[1:-1]
        elif first == "'":
            containers[node][key] = raw[1:-1].replace("''", "'")
        elif first not in not_text or not not_text[first].match(raw):
            containers[node][key] = raw
        elif not _is_null(raw):
            return None
        # else null: the template's None
    return containers[0], plan.lines.copy()  # a copy: the caller may change it, the plan must not

"""Gate and Policy files: YAML text -> model, with every error naming file, line and key path.

YAML is composed into nodes (never constructed into arbitrary objects), so every value keeps its
line. Anchors/aliases, duplicate keys, non-string keys and implicit timestamps are refused; the
size and depth of a document are bounded before anything is built.
"""

from __future__ import annotations

import functools
import re
import sys
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from gitgate import fastyaml
from gitgate.errors import Problem
from gitgate.freeze import validate_cron
from gitgate.model import ANY, GATE_HOOKS, Approval, CanaryRef, Default, FreezeWindow, Gate, Policy
from gitgate.timeutil import parse_duration, parse_timestamp

API_VERSION = "gitgate/v1"
MAX_FILE_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_NODES = 20_000
POLICY_FILE = "gitgate.yaml"

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_CHECKSUM = re.compile(r"[A-Za-z0-9._-]{1,128}")

try:  # libyaml's parser where present: same results, much faster
    _BaseLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _BaseLoader = yaml.SafeLoader


class _Loader(_BaseLoader):  # type: ignore[misc]
    """SafeLoader without implicit timestamps: `expires` stays text and is parsed strictly."""

    # Path resolvers are never registered here, so the composer's per-node bookkeeping for them
    # is skipped (a third of the time it takes to compose a gate file).
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

Path = tuple[str | int, ...]


def render_key(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.isprintable() or "." in part or "[" in part:  # quoted, escaped: one printable line
            out += f"[{part!r}]"
        else:
            out += f".{part}" if out else part
    return out


class _Doc:
    """Plain values plus the line each key path stands on."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[Path, int] = {}
        self.problems: list[Problem] = []
        self._seen: set[int] = set()

    def problem(self, path: Path, message: str) -> None:
        line = None
        probe = path
        while line is None:
            line = self.lines.get(probe)
            if not probe:
                break
            probe = probe[:-1]
        self.problems.append(Problem(self.file, line, render_key(path), message))

    @functools.cached_property  # made only for a document libyaml composed
    def _constructor(self) -> yaml.constructor.SafeConstructor:
        return yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        if id(node) in self._seen:
            raise _Refused(node, "anchors and aliases are not allowed in gate files", path)
        self._seen.add(id(node))
        if len(self._seen) > MAX_NODES:
            raise _Refused(node, f"more than {MAX_NODES} YAML nodes; a gate file is small")
        if depth > MAX_DEPTH:
            raise _Refused(node, f"nested deeper than {MAX_DEPTH} levels")  # the line says where, as the scan's
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.CollectionNode) and node.tag not in _COLLECTION_TAGS:
            raise _Refused(node, f"YAML tag {node.tag} is not allowed", path)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == "<<":  # tagged merge, not str
                    raise _Refused(key_node, "merge keys (<<) are not allowed in gate files", path)
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                    raise _Refused(key_node, "keys must be plain strings", path)
                key = key_node.value
                if key in out:
                    raise _Refused(key_node, f"duplicate key {key!r}", (*path, key))
                key_path = (*path, key)
                line = key_node.start_mark.line + 1
                self.lines[key_path] = line
                out[key] = self.build(value_node, key_path, depth + 1)
                self.lines[key_path] = line  # the key's line, not its value's (set by build)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if node.tag == _STR:  # most scalars; what SafeConstructor would return for them
            return node.value
        if node.tag not in _SCALAR_TAGS:
            raise _Refused(node, f"YAML tag {node.tag} is not allowed", path)
        if len(node.value) > 100 and node.tag in (_INT, _FLOAT):  # int() and str() refuse > 4300 digits
            raise _Refused(node, f"a number {len(node.value)} characters long; quote it if it is text", path)
        try:
            return self._constructor.construct_object(node)
        except (ValueError, KeyError, TypeError, OverflowError):  # "!!int abc", "!!bool maybe"
            raise _Refused(node, f"{node.value[:40]!r} is not a valid {node.tag.rsplit(':', 1)[-1]}", path) from None


_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


# A YAML collection opens with "[" or "{" (flow) or with "-", "?" or ":" (block). libyaml composes
# thousands of levels safely (it crashed near 100,000), and `_Doc.build` refuses depth over MAX_DEPTH.
_COLLECTION_INDICATORS = ("[", "{", "-", "?", ":")
_SAFE_INDICATORS = 2_000


class _Refused(Exception):
    def __init__(self, node: yaml.Node, message: str, path: Path = ()) -> None:
        super().__init__(message)
        self.line = node.start_mark.line + 1
        self.message = message
        self.key = render_key(path)


def _load(file: str, data: bytes) -> tuple[Any, _Doc]:
    doc = _Doc(file)
    if len(data) > MAX_FILE_BYTES:
        doc.problems.append(Problem(file, None, "", f"file is {len(data)} bytes; the limit is {MAX_FILE_BYTES}"))
        return None, doc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        doc.problems.append(Problem(file, None, "", f"not UTF-8 text (byte {e.start})"))
        return None, doc
    fast = fastyaml.load(text)  # the common, simple shape of gate files, read without libyaml
    if fast is not None:
        value, doc.lines = fast
        return value, doc
    try:
        # Bound nesting before composing: libyaml's composer recurses in C and crashes the process
        # (SIGSEGV) on a deeply nested document long before the size limit is reached.
        # Every collection starts at one of the indicators counted here, so a document with few of
        # them cannot be deep, and the (slower) event scan is only needed for the rest.
        if sum(map(text.count, _COLLECTION_INDICATORS)) > _SAFE_INDICATORS:
            depth = 0
            for event in yaml.parse(text, Loader=_Loader):
                if isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
                    if depth > MAX_DEPTH + 1:
                        line = event.start_mark.line + 1 if event.start_mark else None
                        doc.problems.append(Problem(file, line, "", f"nested deeper than {MAX_DEPTH} levels"))
                        return None, doc
                elif isinstance(event, yaml.CollectionEndEvent):
                    depth -= 1
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        doc.problems.append(Problem(file, line, "", f"not valid YAML: {e.problem or e}"))
        return None, doc
    except (yaml.YAMLError, RecursionError) as e:
        doc.problems.append(Problem(file, None, "", f"not valid YAML: {type(e).__name__}"))
        return None, doc
    if len(nodes) != 1 or nodes[0] is None:
        what = "empty" if not nodes or nodes[0] is None else f"{len(nodes)} YAML documents"
        doc.problems.append(Problem(file, 1, "", f"file is {what}; it must hold one mapping"))
        return None, doc
    try:
        value = doc.build(nodes[0], (), 0)
    except _Refused as e:
        doc.problems.append(Problem(file, e.line, e.key, e.message))
        return None, doc
    except RecursionError:
        doc.problems.append(Problem(file, None, "", "nested too deeply"))
        return None, doc
    if value is None:  # "---", "~" or "null": callers read None as "refused", so say why
        doc.problems.append(Problem(file, 1, "", "file is empty; it must hold one mapping"))
    return value, doc


# --- field checks --------------------------------------------------------------------------------

_TYPE_NAMES: dict[type, str] = {str: "a string", dict: "a mapping", list: "a list"}
# The keys each mapping allows, and those it needs.
_TOP_KEYS = frozenset({"apiVersion", "kind", "metadata", "spec"})
_GATE_REQUIRED = frozenset({"apiVersion", "kind", "metadata"})
_POLICY_REQUIRED = frozenset({"apiVersion", "kind"})
_METADATA_KEYS = frozenset({"name", "namespace", "labels", "annotations"})
_METADATA_REQUIRED = frozenset({"name", "namespace"})
_GATE_SPEC_KEYS = frozenset({"default", "approvals", "freeze"})
_POLICY_SPEC_KEYS = frozenset({"default", "freeze"})
_APPROVAL_KEYS = frozenset({"hook", "checksum", "expires", "request", "note"})
_APPROVAL_REQUIRED = frozenset({"hook", "checksum"})
_FREEZE_KEYS = frozenset({"start", "duration", "timezone", "reason"})
_FREEZE_REQUIRED = frozenset({"start", "duration"})


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a number"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _expect(doc: _Doc, value: Any, path: Path, kind: type, hint: str = "") -> bool:
    if type(value) is kind or (isinstance(value, kind) and not (kind is str and isinstance(value, bool))):
        return True
    extra = f"; {hint}" if hint else ""
    doc.problem(path, f"must be {_TYPE_NAMES[kind]}, not {_type_name(value)}{extra}")
    return False


def _keys(doc: _Doc, mapping: dict[str, Any], path: Path, allowed: frozenset[str], required: frozenset[str]) -> None:
    present = mapping.keys()
    if present <= allowed and present >= required:  # the common case, in two set operations
        return
    for key in mapping:
        if key not in allowed:
            doc.problem((*path, key), f"unknown key; allowed here: {', '.join(sorted(allowed))}")
    for key in sorted(required - mapping.keys()):
        doc.problem(path if path else (), f"missing required key {render_key((*path, key))!r}")


def _default(doc: _Doc, spec: dict[str, Any], path: Path) -> Default | None:
    if "default" not in spec:
        return None
    value = spec["default"]
    if value in ("open", "closed") and isinstance(value, str):
        return Default(value)
    doc.problem((*path, "default"), f"must be open or closed, not {value!r}")
    return None


def _freeze(doc: _Doc, spec: dict[str, Any], path: Path) -> tuple[FreezeWindow, ...]:
    raw = spec.get("freeze")
    if raw is None:
        return ()
    if not _expect(doc, raw, (*path, "freeze"), list):
        return ()
    out = []
    for i, item in enumerate(raw):
        p: Path = (*path, "freeze", i)
        if not _expect(doc, item, p, dict):
            continue
        _keys(doc, item, p, _FREEZE_KEYS, _FREEZE_REQUIRED)
        start, duration, tz, reason = (item.get(k) for k in ("start", "duration", "timezone", "reason"))
        ok = True
        if "start" in item and _expect(doc, start, (*p, "start"), str, 'quote it: "0 18 * * FRI"'):
            err = validate_cron(start)
            if err:
                doc.problem((*p, "start"), err)
                ok = False
        else:
            ok = False
        delta = None
        if "duration" in item and _expect(doc, duration, (*p, "duration"), str):
            try:
                delta = parse_duration(duration)
            except ValueError as e:
                doc.problem((*p, "duration"), str(e))
        if tz is None:
            tz = "UTC"
        elif _expect(doc, tz, (*p, "timezone"), str):
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, a name too long
                doc.problem((*p, "timezone"), f"{tz!r} is not an IANA time zone (e.g. Europe/Berlin)")
                ok = False
        else:
            ok = False
        if reason is not None and not _expect(doc, reason, (*p, "reason"), str):
            ok = False
        if ok and delta is not None:
            line = doc.lines.get(p)
            out.append(FreezeWindow(start, delta, tz, reason, f"{doc.file}:{line}" if line else doc.file))
    return tuple(out)


def _approvals(doc: _Doc, spec: dict[str, Any], path: Path) -> tuple[Approval, ...]:
    raw = spec.get("approvals")
    if raw is None:
        return ()
    if not _expect(doc, raw, (*path, "approvals"), list):
        return ()
    out = []
    for i, item in enumerate(raw):
        p: Path = (*path, "approvals", i)
        if not _expect(doc, item, p, dict):
            continue
        _keys(doc, item, p, _APPROVAL_KEYS, _APPROVAL_REQUIRED)
        ok = "hook" in item and "checksum" in item
        # `type(x) is str or _expect(...)`: the key path is built only for a problem (this loop runs
        # for every approval of every file of a first start).
        hook = item.get("hook")
        if "hook" in item and (type(hook) is str or _expect(doc, hook, (*p, "hook"), str, 'quote "*"')):
            if hook not in GATE_HOOKS:
                doc.problem((*p, "hook"), f"{hook!r} is not one of {', '.join(GATE_HOOKS)}")
                ok = False
        else:
            ok = False
        checksum = item.get("checksum")
        hint = f'quote it: checksum: "{checksum}"' if type(checksum) in (int, float) else ""  # not for null/bool
        if "checksum" in item and (type(checksum) is str or _expect(doc, checksum, (*p, "checksum"), str, hint)):
            if checksum != ANY and not _CHECKSUM.fullmatch(checksum):
                doc.problem((*p, "checksum"), f'{checksum!r} is not a Flagger checksum or "*"')
                ok = False
        else:
            ok = False
        expires = None
        stamp = item.get("expires")
        if stamp is not None:
            if type(stamp) is str or _expect(doc, stamp, (*p, "expires"), str, 'quote it: "2026-11-23T12:00:00Z"'):
                try:
                    expires = parse_timestamp(stamp)
                except ValueError as e:
                    doc.problem((*p, "expires"), str(e))
                    ok = False
            else:
                ok = False
        for key in ("request", "note"):
            text = item.get(key)
            if text is not None and type(text) is not str and not _expect(doc, text, (*p, key), str):
                ok = False
        if ok:
            out.append(Approval(hook, checksum, expires, item.get("request"), item.get("note"), doc.lines.get(p)))
    return tuple(out)


def _header(doc: _Doc, value: Any, kind: str) -> dict[str, Any] | None:
    if not _expect(doc, value, (), dict):
        return None
    _keys(doc, value, (), _TOP_KEYS, _GATE_REQUIRED if kind == "Gate" else _POLICY_REQUIRED)
    if "apiVersion" in value and value["apiVersion"] != API_VERSION:
        doc.problem(("apiVersion",), f"must be {API_VERSION}, not {value['apiVersion']!r}")
    if "kind" in value and value["kind"] != kind:
        doc.problem(("kind",), f"must be {kind} in this file, not {value['kind']!r}")
    spec = value.get("spec", {})
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        _expect(doc, spec, ("spec",), dict)
        return None
    return spec


def parse_gate(file: str, data: bytes, canary: CanaryRef) -> tuple[Gate | None, list[Problem]]:
    """Parse a gate file that must describe `canary` (from its place in the tree)."""
    value, doc = _load(file, data)
    if value is None:
        return None, doc.problems
    spec = _header(doc, value, "Gate")
    meta = value.get("metadata") if isinstance(value, dict) else None
    if isinstance(value, dict) and "metadata" in value and not isinstance(meta, dict):
        _expect(doc, meta, ("metadata",), dict)
    if isinstance(meta, dict):
        _keys(doc, meta, ("metadata",), _METADATA_KEYS, _METADATA_REQUIRED)
        for key, want in (("name", canary.name), ("namespace", canary.namespace)):
            got = meta.get(key)
            if key in meta and _expect(doc, got, ("metadata", key), str) and got != want:
                where = "file name" if key == "name" else "folder"
                doc.problem(("metadata", key), f"is {got!r} but the {where} says {want!r}")
        for key in ("labels", "annotations"):
            if key in meta and _expect(doc, meta[key], ("metadata", key), dict):
                for k, v in meta[key].items():
                    _expect(doc, v, ("metadata", key, k), str)
    if spec is None:
        return None, doc.problems
    _keys(doc, spec, ("spec",), _GATE_SPEC_KEYS, frozenset())
    gate = Gate(
        canary=canary,
        path=file,
        default=_default(doc, spec, ("spec",)),
        approvals=_approvals(doc, spec, ("spec",)),
        freeze=_freeze(doc, spec, ("spec",)),
    )
    return (None if doc.problems else gate), doc.problems


def parse_policy(file: str, data: bytes) -> tuple[Policy | None, list[Problem]]:
    value, doc = _load(file, data)
    if value is None:
        return None, doc.problems
    spec = _header(doc, value, "Policy")
    if isinstance(value, dict) and "metadata" in value:
        _expect(doc, value["metadata"], ("metadata",), dict)
    if spec is None:
        return None, doc.problems
    _keys(doc, spec, ("spec",), _POLICY_SPEC_KEYS, frozenset())
    policy = Policy(file, _default(doc, spec, ("spec",)), _freeze(doc, spec, ("spec",)))
    return (None if doc.problems else policy), doc.problems


_GATE_FILE = re.compile(rf"({_DNS_LABEL.pattern})/({_DNS_SUBDOMAIN.pattern})\.yaml")


def canary_for_path(file: str, gates_path: str) -> tuple[CanaryRef | None, str]:
    """Where a file under the gates folder says its canary is; or why the path is not a gate file."""
    rel = file[len(gates_path) + 1 :] if gates_path else file
    whole = _GATE_FILE.fullmatch(rel) if len(rel) <= 320 else None  # the common case, in one match
    if whole is not None and len(whole[3]) <= 253:
        # One namespace string for all its canaries (100,000 keys of a snapshot, pickled by a
        # parse worker as one object per namespace).
        return CanaryRef(sys.intern(whole[1]), whole[3]), ""
    parts = rel.split("/")
    if len(parts) != 2 or not parts[1].endswith(".yaml"):
        folder = f"{gates_path}/" if gates_path else ""
        return None, (f"not a gate file path; gate files live at {folder}<namespace>/<name>.yaml")
    namespace, name = parts[0], parts[1][: -len(".yaml")]
    if not _DNS_LABEL.fullmatch(namespace):
        return None, f"folder {namespace!r} is not a Kubernetes namespace name"
    if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        return None, f"{name!r} is not a Kubernetes object name"
    return CanaryRef(namespace, name), ""


def valid_ref(namespace: str, name: str) -> bool:
    return bool(_DNS_LABEL.fullmatch(namespace)) and len(name) <= 253 and bool(_DNS_SUBDOMAIN.fullmatch(name))


# --- JSON Schema (for editors, through yaml-language-server) -------------------------------------

_FREEZE_SCHEMA: dict[str, Any] = {
    "type": ["array", "null"],
    "description": "Windows in which every confirm-* hook answers closed. Windows add up.",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["start", "duration"],
        "properties": {
            "start": {"type": "string", "description": "Cron expression for the window's start (5 fields)."},
            "duration": {
                "type": "string",
                "pattern": r"^\s*(?=[^1-9]*[1-9])(\d+(d|h|m|s))+\s*$",  # longer than zero
                "description": "How long the window lasts, e.g. 63h or 1h30m.",
            },
            "timezone": {"type": ["string", "null"], "description": "IANA time zone; default UTC.", "default": "UTC"},
            "reason": {"type": ["string", "null"]},
        },
    },
}
_DEFAULT_SCHEMA: dict[str, Any] = {
    "enum": ["open", "closed"],
    "description": "Answer of confirm-* hooks with no matching approval.",
}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of gate and policy files (one schema; `kind` selects the shape)."""
    approval = {
        "type": "object",
        "additionalProperties": False,
        "required": ["hook", "checksum"],
        "properties": {
            "hook": {"enum": list(GATE_HOOKS)},
            "checksum": {
                "type": "string",
                "pattern": r"^(\*|[A-Za-z0-9._-]{1,128})$",
                "description": 'Flagger checksum this approval is bound to; "*" = any revision.',
            },
            "expires": {
                "type": ["string", "null"],
                "pattern": r"^\s*\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})\s*$",
                "description": "RFC 3339; after it the approval no longer counts.",
            },
            "request": {"type": ["string", "null"], "description": "Link to the approval request."},
            "note": {"type": ["string", "null"]},
        },
    }
    gate = {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata"],
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"const": "Gate"},
            "metadata": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "namespace"],
                "properties": {
                    "name": {"type": "string", "description": "Must match the file name."},
                    "namespace": {"type": "string", "description": "Must match the folder."},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
            "spec": {
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": {
                    "default": _DEFAULT_SCHEMA,
                    "approvals": {"type": ["array", "null"], "items": approval},
                    "freeze": _FREEZE_SCHEMA,
                },
            },
        },
    }
    policy = {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind"],
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"const": "Policy"},
            "metadata": {"type": "object"},
            "spec": {
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": {"default": _DEFAULT_SCHEMA, "freeze": _FREEZE_SCHEMA},
            },
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://gitgate.dev/schema/v1.json",
        "title": "gitgate Gate or Policy (gitgate/v1)",
        "oneOf": [gate, policy],
    }

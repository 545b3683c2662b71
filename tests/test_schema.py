"""Gate and Policy files: YAML text -> model, errors that name file, line and key path; JSON Schema.

SPEC §1 "The approvals repo", "Gate file, v1". Every test feeds real YAML text to the parser and
asserts what a person reads: the value built, or the exact rendered problem lines.
"""

from __future__ import annotations

import copy
import json
import textwrap
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from gitgate.errors import Problem
from gitgate.model import Approval, CanaryRef, Default, FreezeWindow, Gate, Policy
from gitgate.schema import MAX_FILE_BYTES, canary_for_path, json_schema, parse_gate, parse_policy
from gitgate.timeutil import parse_timestamp

FILE = "gates/test/podinfo.yaml"
POLICY = "gitgate.yaml"
CANARY = CanaryRef("test", "podinfo")
HEADER = """\
apiVersion: gitgate/v1
kind: Gate
metadata:
  name: podinfo
  namespace: test
"""  # lines 1-5 of every gate file below; `spec:` is line 6


def _text(text: str) -> bytes:
    return textwrap.dedent(text).encode()


def gate(text: str | bytes, *, file: str = FILE, canary: CanaryRef = CANARY) -> tuple[Gate | None, list[Problem]]:
    return parse_gate(file, text if isinstance(text, bytes) else _text(text), canary)


def gate_problems(text: str | bytes, **kwargs: Any) -> list[str]:
    """The rendered problems of a file that must be refused, in line order."""
    value, problems = gate(text, **kwargs)
    assert value is None, "an invalid file must not give a Gate"
    assert problems, "a refused file must say why"
    return [p.render() for p in sorted(problems, key=lambda p: (p.line or 0, p.render()))]


def policy_problems(text: str | bytes) -> list[str]:
    value, problems = parse_policy(POLICY, text if isinstance(text, bytes) else _text(text))
    assert value is None
    assert problems
    return [p.render() for p in sorted(problems, key=lambda p: (p.line or 0, p.render()))]


# --- valid files ---------------------------------------------------------------------------------


def test_a_gate_with_every_key_parses_to_exact_values() -> None:
    text = HEADER + textwrap.dedent("""\
          labels:
            team: payments
          annotations:
            owner: "@acme/sre"
        spec:
          default: closed
          approvals:
            - hook: confirm-promotion
              checksum: 85d557f47b
              expires: "2026-11-23T12:00:00Z"
              request: https://github.com/acme/approvals/pull/42
              note: "1.4.2, load-tested"
            - hook: "*"
              checksum: "*"
            - hook: rollback
              checksum: "5578456"
              expires: 2026-11-23T12:00:00+05:30
          freeze:
            - start: "0 18 * * FRI"
              duration: 63h
              timezone: Europe/Berlin
              reason: No deploys over the weekend
            - start: "*/30 9-17 * * MON-FRI"
              duration: 1h30m
        """)
    value, problems = gate(text.encode())
    assert problems == []
    assert value == Gate(
        canary=CANARY,
        path=FILE,
        default=Default.CLOSED,
        approvals=(
            Approval(
                "confirm-promotion",
                "85d557f47b",
                datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
                "https://github.com/acme/approvals/pull/42",
                "1.4.2, load-tested",
                line=13,
            ),
            Approval("*", "*", None, None, None, line=18),
            Approval("rollback", "5578456", datetime(2026, 11, 23, 6, 30, tzinfo=UTC), None, None, line=20),
        ),
        freeze=(
            FreezeWindow(
                "0 18 * * FRI", timedelta(hours=63), "Europe/Berlin", "No deploys over the weekend", f"{FILE}:24"
            ),
            FreezeWindow("*/30 9-17 * * MON-FRI", timedelta(minutes=90), "UTC", None, f"{FILE}:28"),
        ),
    )


@pytest.mark.parametrize(
    ("written", "utc"),
    [
        ('"2026-11-23T12:00:00Z"', datetime(2026, 11, 23, 12, 0, tzinfo=UTC)),
        ("2026-11-23T12:00:00Z", datetime(2026, 11, 23, 12, 0, tzinfo=UTC)),  # unquoted stays text
        ('"2026-11-23t12:00:00z"', datetime(2026, 11, 23, 12, 0, tzinfo=UTC)),
        ('"2026-11-23 12:00:00Z"', datetime(2026, 11, 23, 12, 0, tzinfo=UTC)),
        ('"2026-11-23T12:00:00+01:00"', datetime(2026, 11, 23, 11, 0, tzinfo=UTC)),
        ('"2026-11-23T12:00:00-08:00"', datetime(2026, 11, 23, 20, 0, tzinfo=UTC)),
        ('"2026-11-23T00:30:00+05:30"', datetime(2026, 11, 22, 19, 0, tzinfo=UTC)),
        ('"2026-11-23T12:00:00.5Z"', datetime(2026, 11, 23, 12, 0, 0, 500000, tzinfo=UTC)),
        ('"2026-11-23T12:00:00.123456789Z"', datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_expires_with_z_and_offsets_is_an_instant_in_utc(written: str, utc: datetime) -> None:
    value, problems = gate(
        HEADER + f"spec:\n  approvals:\n    - hook: confirm-rollout\n      checksum: abc\n      expires: {written}\n"
    )
    assert problems == []
    assert value is not None
    assert value.approvals[0].expires == utc
    assert value.approvals[0].expires.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "spec",
    ["", "spec:\n", "spec: {}\n", "spec:\n  approvals:\n", "spec:\n  approvals: []\n  freeze: []\n"],
    ids=["no spec", "null spec", "empty spec", "null approvals", "empty lists"],
)
def test_a_gate_with_nothing_in_it_is_valid_and_empty(spec: str) -> None:
    assert gate(HEADER + spec) == (Gate(CANARY, FILE), [])


def test_a_utf8_byte_order_mark_is_accepted() -> None:
    value, problems = gate(b"\xef\xbb\xbf" + HEADER.encode())
    assert (value, problems) == (Gate(CANARY, FILE), [])


def test_explicit_standard_tags_are_plain_values() -> None:
    value, problems = gate(
        HEADER + "spec: !!map\n  approvals: !!seq\n    - hook: !!str rollback\n      checksum: !!str 5578456\n"
    )
    assert problems == []
    assert value is not None
    assert value.approvals == (Approval("rollback", "5578456", line=8),)


@pytest.mark.parametrize(("tz", "expected"), [("", "UTC"), ("      timezone: America/New_York\n", "America/New_York")])
def test_freeze_timezone_defaults_to_utc(tz: str, expected: str) -> None:
    value, problems = gate(HEADER + 'spec:\n  freeze:\n    - start: "0 0 * * *"\n      duration: 2d\n' + tz)
    assert problems == []
    assert value is not None
    assert value.freeze == (FreezeWindow("0 0 * * *", timedelta(days=2), expected, None, f"{FILE}:8"),)


def test_a_policy_with_default_and_freeze_parses() -> None:
    text = """\
        apiVersion: gitgate/v1
        kind: Policy
        metadata:
          name: anything
        spec:
          default: open
          freeze:
            - start: "0 0 24 12 *"
              duration: 2d
              timezone: Europe/Berlin
              reason: Christmas
        """
    assert parse_policy("clusters/prod/gitgate.yaml", _text(text)) == (
        Policy(
            "clusters/prod/gitgate.yaml",
            Default.OPEN,
            (
                FreezeWindow(
                    "0 0 24 12 *", timedelta(days=2), "Europe/Berlin", "Christmas", "clusters/prod/gitgate.yaml:8"
                ),
            ),
        ),
        [],
    )
    assert parse_policy(POLICY, b"apiVersion: gitgate/v1\nkind: Policy\n") == (Policy(POLICY), [])


# --- errors: every one names file, line and key path ---------------------------------------------

A = FILE  # shorter expected lines below


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            "spec:\n  approvals:\n    - bogus: 1\n      hook: confirm-promotion\n      checksum: 85d557f47b\n",
            [f"{A}:8: spec.approvals[0].bogus: unknown key; allowed here: checksum, expires, hook, note, request"],
            id="approval",
        ),
        pytest.param(
            "bogus: 1\n",
            [f"{A}:6: bogus: unknown key; allowed here: apiVersion, kind, metadata, spec"],
            id="top",
        ),
        pytest.param(
            "spec:\n  approval: []\n",
            [f"{A}:7: spec.approval: unknown key; allowed here: approvals, default, freeze"],
            id="spec",
        ),
        pytest.param(
            'spec:\n  freeze:\n    - start: "0 0 * * *"\n      duration: 1h\n      tz: UTC\n',
            [f"{A}:10: spec.freeze[0].tz: unknown key; allowed here: duration, reason, start, timezone"],
            id="freeze",
        ),
        pytest.param(
            "spec:\n  approvals:\n    - hook: rollback\n      checksum: abc\n    - hook: rollback\n"
            "      checksum: abc\n      expire: '2026-01-01T00:00:00Z'\n",
            [f"{A}:12: spec.approvals[1].expire: unknown key; allowed here: checksum, expires, hook, note, request"],
            id="second approval",
        ),
    ],
)
def test_unknown_keys_at_every_level(body: str, expected: list[str]) -> None:
    assert gate_problems(HEADER + body) == expected


def test_unknown_key_in_metadata() -> None:
    assert gate_problems(HEADER + "  uid: 1234\n") == [
        f"{A}:6: metadata.uid: unknown key; allowed here: annotations, labels, name, namespace"
    ]


def test_unknown_keys_in_a_policy() -> None:
    assert policy_problems("apiVersion: gitgate/v1\nkind: Policy\nspec:\n  approvals: []\nextra: 1\n") == [
        "gitgate.yaml:4: spec.approvals: unknown key; allowed here: default, freeze",
        "gitgate.yaml:5: extra: unknown key; allowed here: apiVersion, kind, metadata, spec",
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            "spec:\n  approvals:\n    - hook: confirm-promotion\n      checksum: 5578456\n",
            [f'{A}:9: spec.approvals[0].checksum: must be a string, not a number; quote it: checksum: "5578456"'],
            id="numeric checksum",
        ),
        pytest.param(
            "spec:\n  approvals:\n    - hook: confirm-promotion\n      checksum:\n",
            [f"{A}:9: spec.approvals[0].checksum: must be a string, not null"],
            id="empty checksum",
        ),
        pytest.param(
            "spec:\n  approvals:\n    - hook: confirm-promotion\n      checksum: yes\n",
            [f"{A}:9: spec.approvals[0].checksum: must be a string, not a boolean"],
            id="boolean checksum",
        ),
        pytest.param(
            "spec:\n  approvals:\n    - hook: 1\n      checksum: abc\n",
            [f'{A}:8: spec.approvals[0].hook: must be a string, not a number; quote "*"'],
            id="numeric hook",
        ),
        pytest.param(
            "spec:\n  approvals:\n    - hook: confirm\n      checksum: abc\n",
            [
                f"{A}:8: spec.approvals[0].hook: 'confirm' is not one of confirm-rollout, "
                "confirm-traffic-increase, confirm-promotion, rollback, *"
            ],
            id="unknown hook",
        ),
        pytest.param(
            "spec:\n  approvals:\n    - hook: rollback\n      checksum: 'a b'\n",
            [f"""{A}:9: spec.approvals[0].checksum: 'a b' is not a Flagger checksum or "*\""""],
            id="bad checksum",
        ),
        pytest.param(
            "spec:\n  approvals:\n    - hook: rollback\n      checksum: abc\n      note: 3\n      request: [x]\n",
            [
                f"{A}:10: spec.approvals[0].note: must be a string, not a number",
                f"{A}:11: spec.approvals[0].request: must be a string, not a list",
            ],
            id="note and request",
        ),
        pytest.param(
            "spec:\n  approvals:\n    - hook: rollback\n",
            [f"{A}:8: spec.approvals[0]: missing required key 'spec.approvals[0].checksum'"],
            id="missing checksum",
        ),
        pytest.param(
            "spec:\n  approvals:\n    - rollback\n",
            [f"{A}:8: spec.approvals[0]: must be a mapping, not a string"],
            id="approval not a mapping",
        ),
        pytest.param(
            "spec:\n  approvals:\n    hook: rollback\n",
            [f"{A}:7: spec.approvals: must be a list, not a mapping"],
            id="approvals not a list",
        ),
        pytest.param(
            "spec:\n  default: Open\n",
            [f"{A}:7: spec.default: must be open or closed, not 'Open'"],
            id="default spelled wrong",
        ),
        pytest.param(
            "spec:\n  default: true\n", [f"{A}:7: spec.default: must be open or closed, not True"], id="default bool"
        ),
        pytest.param("spec: [1]\n", [f"{A}:6: spec: must be a mapping, not a list"], id="spec a list"),
        pytest.param(
            "spec:\n  freeze:\n    start: x\n", [f"{A}:7: spec.freeze: must be a list, not a mapping"], id="freeze"
        ),
        pytest.param(
            "spec:\n  freeze:\n    - start: 5\n      duration: 5\n      timezone: 1\n      reason: [no]\n",
            [
                f'{A}:8: spec.freeze[0].start: must be a string, not a number; quote it: "0 18 * * FRI"',
                f"{A}:9: spec.freeze[0].duration: must be a string, not a number",
                f"{A}:10: spec.freeze[0].timezone: must be a string, not a number",
                f"{A}:11: spec.freeze[0].reason: must be a string, not a list",
            ],
            id="freeze types",
        ),
        pytest.param(
            "spec:\n  freeze:\n    - duration: 1h\n",
            [f"{A}:8: spec.freeze[0]: missing required key 'spec.freeze[0].start'"],
            id="freeze without start",
        ),
        pytest.param(
            "spec:\n  approvals:\n    - hook: rollback\n      checksum: abc\n      expires: 1795435200\n",
            [f'{A}:10: spec.approvals[0].expires: must be a string, not a number; quote it: "2026-11-23T12:00:00Z"'],
            id="expires as a number",
        ),
    ],
)
def test_wrong_types_and_values(body: str, expected: list[str]) -> None:
    assert gate_problems(HEADER + body) == expected


def test_wrong_types_in_metadata() -> None:
    text = HEADER + "  labels:\n    team: 1\n  annotations: note\n"
    assert gate_problems(text) == [
        f"{A}:7: metadata.labels.team: must be a string, not a number",
        f"{A}:8: metadata.annotations: must be a mapping, not a string",
    ]
    assert gate_problems("apiVersion: gitgate/v1\nkind: Gate\nmetadata: [podinfo]\n") == [
        f"{A}:3: metadata: must be a mapping, not a list"
    ]
    assert gate_problems("apiVersion: gitgate/v1\nkind: Gate\nmetadata:\n  name: 5\n  namespace: test\n") == [
        f"{A}:4: metadata.name: must be a string, not a number"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- apiVersion: gitgate/v1\n", [f"{A}:1: must be a mapping, not a list"]),
        ("podinfo\n", [f"{A}:1: must be a mapping, not a string"]),
        ("apiVersion: gitgate/v1\nkind: Gate\n", [f"{A}:1: missing required key 'metadata'"]),
        (
            "metadata: {name: podinfo, namespace: test}\n",
            [f"{A}:1: missing required key 'apiVersion'", f"{A}:1: missing required key 'kind'"],
        ),
        (
            "apiVersion: gitgate/v1\nkind: Gate\nmetadata:\n  name: podinfo\n",
            [f"{A}:3: metadata: missing required key 'metadata.namespace'"],
        ),
    ],
)
def test_wrong_shape_of_the_whole_file(text: str, expected: list[str]) -> None:
    assert gate_problems(text) == expected


def test_metadata_must_match_the_file_path() -> None:
    text = "apiVersion: gitgate/v1\nkind: Gate\nmetadata:\n  name: frontend\n  namespace: prod\n"
    assert gate_problems(text) == [
        f"{A}:4: metadata.name: is 'frontend' but the file name says 'podinfo'",
        f"{A}:5: metadata.namespace: is 'prod' but the folder says 'test'",
    ]
    # The same text is right where the path agrees with it.
    value, problems = gate(text, file="gates/prod/frontend.yaml", canary=CanaryRef("prod", "frontend"))
    assert problems == []
    assert value == Gate(CanaryRef("prod", "frontend"), "gates/prod/frontend.yaml")


def test_wrong_api_version_and_kind() -> None:
    text = "apiVersion: gitgate/v2\nkind: Policy\nmetadata:\n  name: podinfo\n  namespace: test\n"
    assert gate_problems(text) == [
        f"{A}:1: apiVersion: must be gitgate/v1, not 'gitgate/v2'",
        f"{A}:2: kind: must be Gate in this file, not 'Policy'",
    ]
    assert policy_problems("apiVersion: v1\nkind: Gate\n") == [
        "gitgate.yaml:1: apiVersion: must be gitgate/v1, not 'v1'",
        "gitgate.yaml:2: kind: must be Policy in this file, not 'Gate'",
    ]
    assert policy_problems("apiVersion: gitgate/v1\nkind: Policy\nmetadata: x\n") == [
        "gitgate.yaml:3: metadata: must be a mapping, not a string"
    ]


@pytest.mark.parametrize(
    ("start", "message"),
    [
        ("61 18 * * FRI", "'61 18 * * FRI' is not a valid cron expression: Bad minute"),
        ("0 18 * * FRIDAY", "'0 18 * * FRIDAY' is not a valid cron expression: Bad day-of-week"),
        ("0 0 30 2 *", "'0 0 30 2 *' is not a valid cron expression: Bad day-of-month"),
        ("0 18 * *", "'0 18 * *' is not a cron expression with 5 fields (minute hour day month weekday)"),
        ("0 0 18 * * FRI", "'0 0 18 * * FRI' is not a cron expression with 5 fields (minute hour day month weekday)"),
        ("@weekly", "'@weekly' is not a cron expression with 5 fields (minute hour day month weekday)"),
        ("", "'' is not a cron expression with 5 fields (minute hour day month weekday)"),
    ],
)
def test_a_bad_cron_expression(start: str, message: str) -> None:
    text = HEADER + f'spec:\n  freeze:\n    - start: "{start}"\n      duration: 1h\n'
    assert gate_problems(text) == [f"{A}:8: spec.freeze[0].start: {message}"]


@pytest.mark.parametrize("tz", ["Mars/Olympus", "CEST", "", "../../etc/passwd", "/etc/localtime"])
def test_a_bad_timezone(tz: str) -> None:
    text = HEADER + f'spec:\n  freeze:\n    - start: "0 18 * * FRI"\n      duration: 1h\n      timezone: "{tz}"\n'
    assert gate_problems(text) == [
        f"{A}:10: spec.freeze[0].timezone: {tz!r} is not an IANA time zone (e.g. Europe/Berlin)"
    ]


@pytest.mark.parametrize(
    ("duration", "message"),
    [
        ("63x", "'63x' is not a duration; use e.g. 30s, 15m, 24h, 1h30m or 2d"),
        ("1.5h", "'1.5h' is not a duration; use e.g. 30s, 15m, 24h, 1h30m or 2d"),
        ("-1h", "'-1h' is not a duration; use e.g. 30s, 15m, 24h, 1h30m or 2d"),
        ("h", "'h' is not a duration; use e.g. 30s, 15m, 24h, 1h30m or 2d"),
        ("1 h", "'1 h' is not a duration; use e.g. 30s, 15m, 24h, 1h30m or 2d"),
        ("", "'' is not a duration; use e.g. 30s, 15m, 24h, 1h30m or 2d"),
        ("0h", "'0h' must be longer than zero"),
        ("0h0m", "'0h0m' must be longer than zero"),
        ("3651d", "'3651d' is too long; the limit is 3650d"),
        ("99999999999999999999d", "'99999999999999999999d' is too long; the limit is 3650d"),
    ],
)
def test_a_bad_duration(duration: str, message: str) -> None:
    text = HEADER + f'spec:\n  freeze:\n    - start: "0 18 * * FRI"\n      duration: "{duration}"\n'
    assert gate_problems(text) == [f"{A}:9: spec.freeze[0].duration: {message}"]


def test_the_longest_duration_is_accepted() -> None:
    value, problems = gate(HEADER + 'spec:\n  freeze:\n    - start: "0 0 1 1 *"\n      duration: 3650d\n')
    assert problems == []
    assert value is not None
    assert value.freeze[0].duration == timedelta(days=3650)


_NO_ZONE = '{!r} is not an RFC 3339 timestamp with a time zone; use e.g. "2026-11-23T12:00:00Z"'


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ('"2026-11-23T12:00:00"', _NO_ZONE.format("2026-11-23T12:00:00")),
        ("2026-11-23", _NO_ZONE.format("2026-11-23")),
        ('"2026-11-23T12:00Z"', _NO_ZONE.format("2026-11-23T12:00Z")),
        ('"2026-11-23T12:00:00+0100"', _NO_ZONE.format("2026-11-23T12:00:00+0100")),
        ('"2026-11-23T12:00:00 UTC"', _NO_ZONE.format("2026-11-23T12:00:00 UTC")),
        ('"next friday"', _NO_ZONE.format("next friday")),
        ('"2026-02-30T12:00:00Z"', "day is out of range for month"),
        ('"2026-13-01T12:00:00Z"', "month must be in 1..12"),
    ],
)
def test_a_bad_or_zoneless_timestamp(written: str, message: str) -> None:
    text = HEADER + f"spec:\n  approvals:\n    - hook: rollback\n      checksum: abc\n      expires: {written}\n"
    assert gate_problems(text) == [f"{A}:10: spec.approvals[0].expires: {message}"]


@settings(max_examples=300, deadline=None)
@given(
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")
    | st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat(timespec="seconds").replace("+00:00", "Z"))
)
def test_the_usual_timestamp_form_reads_as_the_general_rules_read_it(stamp: str) -> None:
    """`...T12:00:00Z`, the form nearly every approval uses, has a shortcut; a space in front
    takes the general path (which strips it). Both give the same time, or the same refusal."""

    def read(text: str) -> object:
        try:
            moment = parse_timestamp(text)
        except ValueError as e:
            return str(e)
        return (moment, moment.tzinfo)

    assert read(stamp) == read(" " + stamp)


# --- errors of YAML itself -----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing here\n", "---\n", "~\n", "null\n", "--- \n...\n"])
def test_an_empty_file_is_refused(text: str) -> None:
    assert gate_problems(text) == [f"{A}:1: file is empty; it must hold one mapping"]
    assert policy_problems(text) == ["gitgate.yaml:1: file is empty; it must hold one mapping"]


def test_several_yaml_documents_are_refused() -> None:
    assert gate_problems(HEADER + "---\n" + HEADER) == [f"{A}:1: file is 2 YAML documents; it must hold one mapping"]


def test_duplicate_keys_are_refused_at_the_second_one() -> None:
    text = HEADER + "spec:\n  default: open\n  approvals: []\n  default: closed\n"
    assert gate_problems(text) == [f"{A}:9: spec.default: duplicate key 'default'"]


def test_invalid_yaml_names_the_line() -> None:
    assert gate_problems(HEADER + "spec:\n  approvals: [\n") == [
        f"{A}:8: not valid YAML: did not find expected node content"
    ]
    # `hook: *` unquoted is an alias in YAML: the hint in the docs is to quote it.
    assert gate_problems(HEADER + "spec:\n  approvals:\n    - hook: *\n      checksum: abc\n") == [
        f"{A}:8: not valid YAML: did not find expected alphabetic or numeric character"
    ]


def test_aliases_are_refused() -> None:
    text = HEADER + (
        "spec:\n  approvals:\n    - &ok {hook: confirm-promotion, checksum: abc}\n    - *ok\n"  # line 9
    )
    # The alias resolves to the anchored node, so the line shown is where the anchor stands.
    assert gate_problems(text) == [f"{A}:8: spec.approvals[1]: anchors and aliases are not allowed in gate files"]


def test_a_billion_laughs_bomb_is_refused_fast_without_expanding_it() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefghi", "bcdefghij", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    bomb = "\n".join(lines) + "\n"  # expanded: 9**10 strings
    started = time.perf_counter()
    problems = gate_problems(bomb)
    assert time.perf_counter() - started < 1.0
    assert problems == [f"{A}:1: b[0]: anchors and aliases are not allowed in gate files"]


def test_merge_keys_are_refused() -> None:
    text = HEADER + "spec:\n  approvals:\n    - &base {hook: rollback, checksum: abc}\n    - <<: *base\n"
    assert gate_problems(text) == [f"{A}:9: spec.approvals[1]: merge keys (<<) are not allowed in gate files"]
    text = HEADER + "spec:\n  <<: {default: open}\n"
    assert gate_problems(text) == [f"{A}:7: spec: merge keys (<<) are not allowed in gate files"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("? [a, b]\n: 1\n", "1"),
        (HEADER + "spec:\n  1: open\n", "7: spec"),
        (HEADER + "spec:\n  null: open\n", "7: spec"),
    ],
)
def test_keys_must_be_plain_strings(text: str, where: str) -> None:
    assert gate_problems(text) == [f"{A}:{where}: keys must be plain strings"]


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("!!python/object/apply:os.system [echo hi]", "tag:yaml.org,2002:python/object/apply:os.system"),
        ("!!python/name:os.system ''", "tag:yaml.org,2002:python/name:os.system"),
        ("!custom open", "!custom"),
        ("!!timestamp 2026-11-23T12:00:00Z", "tag:yaml.org,2002:timestamp"),
        ("!!binary aGVsbG8=", "tag:yaml.org,2002:binary"),
        ("!!set {a, b}", "tag:yaml.org,2002:set"),
        ("!gitgate {x: 1}", "!gitgate"),
        ("!!omap [a: 1]", "tag:yaml.org,2002:omap"),
    ],
)
def test_yaml_tags_are_refused(value: str, tag: str) -> None:
    assert gate_problems(HEADER + f"spec:\n  default: {value}\n") == [
        f"{A}:7: spec.default: YAML tag {tag} is not allowed"
    ]


def test_nesting_is_bounded() -> None:
    ok = HEADER + "x: " + "[" * 32 + "]" * 32 + "\n"
    assert gate_problems(ok) == [f"{A}:6: x: unknown key; allowed here: apiVersion, kind, metadata, spec"]
    deep = HEADER + "x: " + "[" * 33 + "]" * 33 + "\n"
    assert gate_problems(deep) == [f"{A}:6: nested deeper than 32 levels"]
    block = HEADER + "".join("  " * i + f"k{i}:\n" for i in range(40))
    assert gate_problems(block) == [f"{A}:39: nested deeper than 32 levels"]


@pytest.mark.parametrize("depth", [1_000, 60_000, 120_000])
def test_very_deep_nesting_within_the_size_limit_is_refused_fast(depth: int) -> None:
    # 60 000 nested lists once crashed the process (libyaml's composer recursing in C).
    text = ("[" * depth + "]" * depth).encode()
    assert len(text) <= MAX_FILE_BYTES
    started = time.perf_counter()
    assert gate_problems(text) == [f"{A}:1: nested deeper than 32 levels"]
    assert time.perf_counter() - started < 1.0


def test_too_many_nodes_are_refused() -> None:
    text = "x: [" + ",".join(["1"] * 25_000) + "]\n"
    assert gate_problems(text) == [f"{A}:1: more than 20000 YAML nodes; a gate file is small"]


def test_a_file_over_the_size_limit_is_refused_before_parsing() -> None:
    valid = HEADER.encode()
    at_limit = valid + b"#" * (MAX_FILE_BYTES - len(valid))
    assert len(at_limit) == MAX_FILE_BYTES
    assert gate(at_limit) == (Gate(CANARY, FILE), [])
    over = at_limit + b"\n"
    assert gate_problems(over) == [f"{A}: file is {MAX_FILE_BYTES + 1} bytes; the limit is {MAX_FILE_BYTES}"]


def test_non_utf8_bytes_are_refused() -> None:
    assert gate_problems(HEADER.encode() + b"spec:\n  default: \xff\n") == [f"{A}: not UTF-8 text (byte 95)"]
    assert gate_problems("kind: Gate\n".encode("utf-16")) == [f"{A}: not UTF-8 text (byte 0)"]


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    text = HEADER + textwrap.dedent("""\
        spec:
          default: maybe
          approvals:
            - hook: confirm-promotion
              checksum: 123
              bogus: x
          freeze:
            - start: "0 25 * * *"
              duration: 1w
              timezone: Nowhere/Town
        """)
    assert gate_problems(text) == [
        f"{A}:7: spec.default: must be open or closed, not 'maybe'",
        f'{A}:10: spec.approvals[0].checksum: must be a string, not a number; quote it: checksum: "123"',
        f"{A}:11: spec.approvals[0].bogus: unknown key; allowed here: checksum, expires, hook, note, request",
        f"{A}:13: spec.freeze[0].start: '0 25 * * *' is not a valid cron expression: Bad hour",
        f"{A}:14: spec.freeze[0].duration: '1w' is not a duration; use e.g. 30s, 15m, 24h, 1h30m or 2d",
        f"{A}:15: spec.freeze[0].timezone: 'Nowhere/Town' is not an IANA time zone (e.g. Europe/Berlin)",
    ]


# --- where a gate file stands --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "gates_path", "canary"),
    [
        ("gates/test/podinfo.yaml", "gates", CanaryRef("test", "podinfo")),
        ("clusters/prod/gates/apps/web-v2.yaml", "clusters/prod/gates", CanaryRef("apps", "web-v2")),
        ("gates/kube-system/podinfo.canary.yaml", "gates", CanaryRef("kube-system", "podinfo.canary")),
        ("test/podinfo.yaml", "", CanaryRef("test", "podinfo")),
        (f"gates/{'n' * 63}/{'a' * 253}.yaml", "gates", CanaryRef("n" * 63, "a" * 253)),
    ],
)
def test_canary_for_path(path: str, gates_path: str, canary: CanaryRef) -> None:
    assert canary_for_path(path, gates_path) == (canary, "")


_NOT_A_GATE = "not a gate file path; gate files live at gates/<namespace>/<name>.yaml"


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("gates/test/podinfo.yml", _NOT_A_GATE),
        ("gates/test/podinfo.YAML", _NOT_A_GATE),
        ("gates/podinfo.yaml", _NOT_A_GATE),
        ("gates/README.md", _NOT_A_GATE),
        ("gates/test/v2/podinfo.yaml", _NOT_A_GATE),
        ("gates/test/.yaml", "'' is not a Kubernetes object name"),
        ("gates/Test/podinfo.yaml", "folder 'Test' is not a Kubernetes namespace name"),
        ("gates/te_st/podinfo.yaml", "folder 'te_st' is not a Kubernetes namespace name"),
        ("gates/-test/podinfo.yaml", "folder '-test' is not a Kubernetes namespace name"),
        (f"gates/{'n' * 64}/podinfo.yaml", f"folder {'n' * 64!r} is not a Kubernetes namespace name"),
        ("gates/test/Podinfo.yaml", "'Podinfo' is not a Kubernetes object name"),
        ("gates/test/pod info.yaml", "'pod info' is not a Kubernetes object name"),
        ("gates/test/podinfo-.yaml", "'podinfo-' is not a Kubernetes object name"),
        (f"gates/test/{'a' * 254}.yaml", f"{'a' * 254!r} is not a Kubernetes object name"),
    ],
)
def test_canary_for_a_bad_path(path: str, why: str) -> None:
    assert canary_for_path(path, "gates") == (None, why)


def test_canary_for_a_bad_path_without_a_gates_folder() -> None:
    # `gitgate lint FILE` asks with no gates folder: the message must not invent a leading "/".
    assert canary_for_path("test/podinfo.yml", "") == (
        None,
        "not a gate file path; gate files live at <namespace>/<name>.yaml",
    )


# --- the JSON Schema, checked against the parser -------------------------------------------------

SCHEMA = json_schema()
VALIDATOR = Draft202012Validator(SCHEMA)


def test_the_schema_is_a_valid_2020_12_schema() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)
    json.dumps(SCHEMA)  # what `gitgate schema` prints


GATE_DOC: dict[str, Any] = {
    "apiVersion": "gitgate/v1",
    "kind": "Gate",
    "metadata": {"name": "podinfo", "namespace": "test", "labels": {"team": "a"}, "annotations": {"b": "c"}},
    "spec": {
        "default": "closed",
        "approvals": [
            {
                "hook": "confirm-promotion",
                "checksum": "85d557f47b",
                "expires": "2026-11-23T12:00:00Z",
                "request": "https://github.com/acme/approvals/pull/42",
                "note": "1.4.2",
            },
            {"hook": "*", "checksum": "*"},
        ],
        "freeze": [{"start": "0 18 * * FRI", "duration": "63h", "timezone": "Europe/Berlin", "reason": "weekend"}],
    },
}
POLICY_DOC: dict[str, Any] = {
    "apiVersion": "gitgate/v1",
    "kind": "Policy",
    "metadata": {"name": "anything", "labels": {"x": "y"}},
    "spec": {"default": "open", "freeze": [{"start": "0 0 24 12 *", "duration": "2d"}]},
}


class _Delete:
    def __repr__(self) -> str:
        return "<deleted>"


_DELETE = _Delete()


def _mutate(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    target: Any = out
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


# (path, value) -> changes to the valid documents above; each one is valid or invalid for both.
GATE_MUTATIONS: list[tuple[tuple[str | int, ...], Any]] = [
    ((), None),  # unchanged
    (("apiVersion",), "gitgate/v2"),
    (("apiVersion",), _DELETE),
    (("kind",), "Policy"),  # a Policy in a gate file: still wrong for parse_gate (see below)
    (("kind",), "gate"),
    (("metadata",), _DELETE),
    (("metadata",), ["podinfo"]),
    (("metadata", "name"), _DELETE),
    (("metadata", "name"), 5),
    (("metadata", "uid"), "x"),
    (("metadata", "labels"), {"team": 1}),
    (("metadata", "labels"), None),
    (("metadata", "annotations"), "x"),
    (("bogus",), 1),
    (("spec",), None),
    (("spec",), _DELETE),
    (("spec",), {}),
    (("spec",), [1]),
    (("spec", "bogus"), 1),
    (("spec", "default"), "open"),
    (("spec", "default"), "Open"),
    (("spec", "default"), None),
    (("spec", "default"), True),
    (("spec", "default"), _DELETE),
    (("spec", "approvals"), None),
    (("spec", "approvals"), []),
    (("spec", "approvals"), {}),
    (("spec", "approvals", 0), "x"),
    (("spec", "approvals", 0, "hook"), "rollback"),
    (("spec", "approvals", 0, "hook"), "confirm-rollout"),
    (("spec", "approvals", 0, "hook"), "confirm-traffic-increase"),
    (("spec", "approvals", 0, "hook"), "confirm"),
    (("spec", "approvals", 0, "hook"), "ROLLBACK"),
    (("spec", "approvals", 0, "hook"), 1),
    (("spec", "approvals", 0, "hook"), _DELETE),
    (("spec", "approvals", 0, "checksum"), 5578456),
    (("spec", "approvals", 0, "checksum"), 1.5),
    (("spec", "approvals", 0, "checksum"), None),
    (("spec", "approvals", 0, "checksum"), ""),
    (("spec", "approvals", 0, "checksum"), "a b"),
    (("spec", "approvals", 0, "checksum"), "**"),
    (("spec", "approvals", 0, "checksum"), "x" * 128),
    (("spec", "approvals", 0, "checksum"), "x" * 129),
    (("spec", "approvals", 0, "checksum"), "v1.2_3-4"),
    (("spec", "approvals", 0, "checksum"), "abc/def"),
    (("spec", "approvals", 0, "checksum"), _DELETE),
    (("spec", "approvals", 0, "expires"), _DELETE),
    (("spec", "approvals", 0, "expires"), None),
    (("spec", "approvals", 0, "expires"), "2026-11-23T12:00:00+05:30"),
    (("spec", "approvals", 0, "expires"), "2026-11-23t12:00:00.123456789z"),
    (("spec", "approvals", 0, "expires"), "2026-11-23 12:00:00Z"),
    (("spec", "approvals", 0, "expires"), " 2026-11-23T12:00:00Z "),
    (("spec", "approvals", 0, "expires"), "2026-11-23T12:00:00"),
    (("spec", "approvals", 0, "expires"), "2026-11-23"),
    (("spec", "approvals", 0, "expires"), "2026-11-23T12:00:00.Z"),
    (("spec", "approvals", 0, "expires"), "2026-11-23T12:00:00.1234567890Z"),
    (("spec", "approvals", 0, "expires"), "2026-11-23T12:00:00+0100"),
    (("spec", "approvals", 0, "expires"), 1795435200),
    (("spec", "approvals", 0, "request"), None),
    (("spec", "approvals", 0, "request"), 42),
    (("spec", "approvals", 0, "note"), None),
    (("spec", "approvals", 0, "note"), ["a"]),
    (("spec", "approvals", 0, "bogus"), "x"),
    (("spec", "freeze"), None),
    (("spec", "freeze"), []),
    (("spec", "freeze"), "weekend"),
    (("spec", "freeze", 0), 1),
    (("spec", "freeze", 0, "start"), _DELETE),
    (("spec", "freeze", 0, "start"), 5),
    (("spec", "freeze", 0, "duration"), _DELETE),
    (("spec", "freeze", 0, "duration"), 63),
    (("spec", "freeze", 0, "duration"), "1h30m"),
    (("spec", "freeze", 0, "duration"), "2d12h30m15s"),
    (("spec", "freeze", 0, "duration"), " 63h "),
    (("spec", "freeze", 0, "duration"), "63"),
    (("spec", "freeze", 0, "duration"), "63 h"),
    (("spec", "freeze", 0, "duration"), "1.5h"),
    (("spec", "freeze", 0, "duration"), "0s"),
    (("spec", "freeze", 0, "duration"), "0d0h"),
    (("spec", "freeze", 0, "duration"), "00h01m"),
    (("spec", "freeze", 0, "duration"), ""),
    (("spec", "freeze", 0, "timezone"), _DELETE),
    (("spec", "freeze", 0, "timezone"), None),
    (("spec", "freeze", 0, "timezone"), "UTC"),
    (("spec", "freeze", 0, "timezone"), 1),
    (("spec", "freeze", 0, "reason"), None),
    (("spec", "freeze", 0, "reason"), 1),
    (("spec", "freeze", 0, "bogus"), 1),
]
POLICY_MUTATIONS: list[tuple[tuple[str | int, ...], Any]] = [
    ((), None),
    (("metadata",), _DELETE),
    (("metadata",), {}),
    (("metadata",), "x"),
    (("metadata",), None),
    (("kind",), "Gate"),
    (("kind",), _DELETE),
    (("apiVersion",), "gitgate/v1beta1"),
    (("spec",), None),
    (("spec",), "x"),
    (("spec", "approvals"), []),
    (("spec", "default"), "closed"),
    (("spec", "default"), "no"),
    (("spec", "freeze"), None),
    (("spec", "freeze", 0, "duration"), "1w"),
    (("spec", "freeze", 0, "timezone"), None),
    (("spec", "freeze", 0, "reason"), 5),
    (("bogus",), 1),
]


def _agree(kind: str, doc: Any) -> tuple[bool, bool, list[str]]:
    text = yaml.safe_dump(doc, sort_keys=False).encode()
    if kind == "Gate":
        value, problems = parse_gate(FILE, text, CANARY)
    else:
        value, problems = parse_policy(POLICY, text)
    return VALIDATOR.is_valid(doc), value is not None, [p.render() for p in problems]


@pytest.mark.parametrize(
    ("kind", "doc"),
    [
        pytest.param("Gate", _mutate(GATE_DOC, p, v) if p else GATE_DOC, id=f"gate {p} = {v!r}")
        for p, v in GATE_MUTATIONS
    ]
    + [
        pytest.param("Policy", _mutate(POLICY_DOC, p, v) if p else POLICY_DOC, id=f"policy {p} = {v!r}")
        for p, v in POLICY_MUTATIONS
    ],
)
def test_schema_and_parser_agree(kind: str, doc: Any) -> None:
    by_schema, by_parser, problems = _agree(kind, doc)
    if doc.get("kind") in ("Gate", "Policy") and doc["kind"] != kind:
        # The schema accepts a Policy or a Gate; only the parser knows which file it reads.
        assert by_parser is False
        return
    assert by_schema == by_parser, f"schema says {by_schema}, parser says {by_parser}: {problems}"


def test_the_corpus_holds_both_valid_and_invalid_documents() -> None:
    results = [_agree("Gate", _mutate(GATE_DOC, p, v) if p else GATE_DOC)[1] for p, v in GATE_MUTATIONS]
    assert 15 < results.count(True) < len(results) - 15


# Rules the schema cannot express: the parser alone refuses these (documented here on purpose).
PARSER_ONLY: list[tuple[str, tuple[str | int, ...], Any]] = [
    ("cron syntax", ("spec", "freeze", 0, "start"), "61 18 * * FRI"),
    ("cron that never fires", ("spec", "freeze", 0, "start"), "0 0 30 2 *"),
    ("IANA time zone", ("spec", "freeze", 0, "timezone"), "Mars/Olympus"),
    ("metadata vs file name", ("metadata", "name"), "frontend"),
    ("metadata vs folder", ("metadata", "namespace"), "prod"),
    ("calendar date", ("spec", "approvals", 0, "expires"), "2026-02-30T12:00:00Z"),
    ("duration upper bound", ("spec", "freeze", 0, "duration"), "3651d"),
]


@pytest.mark.parametrize(("rule", "path", "value"), PARSER_ONLY, ids=[r for r, _, _ in PARSER_ONLY])
def test_rules_only_the_parser_checks(rule: str, path: tuple[str | int, ...], value: Any) -> None:
    by_schema, by_parser, problems = _agree("Gate", _mutate(GATE_DOC, path, value))
    assert (by_schema, by_parser) == (True, False), rule
    assert len(problems) == 1


_ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
_EXPIRES = st.builds(
    lambda moment, sep, z: moment.isoformat(sep=sep).replace("+00:00", z),
    st.datetimes(datetime(1971, 1, 1), datetime(2100, 1, 1), timezones=st.sampled_from(_ZONES)),
    st.sampled_from(["T", "t", " "]),
    st.sampled_from(["Z", "z", "+00:00"]),
)
_VALID_APPROVAL = st.fixed_dictionaries(
    {
        "hook": st.sampled_from(["confirm-rollout", "confirm-traffic-increase", "confirm-promotion", "rollback", "*"]),
        "checksum": st.just("*") | st.from_regex(r"[A-Za-z0-9._-]{1,128}", fullmatch=True),
    },
    optional={"expires": _EXPIRES | st.none(), "request": st.text() | st.none(), "note": st.text() | st.none()},
)
_VALID_WINDOW = st.fixed_dictionaries(
    {
        "start": st.sampled_from(["0 18 * * FRI", "*/5 9-17 * * MON-FRI", "0 0 29 2 *", "30 2 * * 0"]),
        "duration": st.from_regex(r"[1-9][0-9]{0,2}[dhms]([0-9]{1,2}[hms]){0,2}", fullmatch=True),
    },
    optional={"timezone": st.sampled_from(["UTC", "Europe/Berlin", "Asia/Kolkata"]) | st.none(), "reason": st.text()},
)
_VALID_GATE = st.fixed_dictionaries(
    {
        "apiVersion": st.just("gitgate/v1"),
        "kind": st.just("Gate"),
        "metadata": st.fixed_dictionaries(
            {"name": st.just("podinfo"), "namespace": st.just("test")},
            optional={"labels": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)},
        ),
    },
    optional={
        "spec": st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "default": st.sampled_from(["open", "closed"]),
                "approvals": st.none() | st.lists(_VALID_APPROVAL, max_size=3),
                "freeze": st.none() | st.lists(_VALID_WINDOW, max_size=2),
            },
        )
    },
)
_NOT_STRINGS = st.one_of(st.none(), st.booleans(), st.integers(-(10**9), 10**9), st.floats(allow_nan=False))
_VALUES = (
    _NOT_STRINGS
    | st.just([])
    | st.just({})
    | st.just(_DELETE)
    | st.sampled_from(["", "x", "*", "**", "open", "closed", "abc", "a b", "63h", "0s", " 1h ", "1 h", "gitgate/v1"])
    | st.sampled_from(["rollback", "confirm", "2026-11-23T12:00:00Z", "2026-11-23", "2026-11-23T12:00:00", "x" * 129])
)


def _places(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every key path in a document, and a new key in every mapping."""
    out: list[tuple[str | int, ...]] = []
    if isinstance(value, dict):
        out.append((*path, "bogus"))
        for key, item in value.items():
            out += [(*path, key), *_places(item, (*path, key))]
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += [(*path, i), *_places(item, (*path, i))]
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_VALID_GATE, changes=st.lists(st.tuples(st.integers(0, 10**6), _VALUES), max_size=2))
def test_schema_and_parser_agree_on_generated_gates(doc: dict[str, Any], changes: list[tuple[int, Any]]) -> None:
    for pick, value in changes:
        places = _places(doc)
        path = places[pick % len(places)]
        if isinstance(value, str) and path[-1] in ("start", "timezone", "name", "namespace", "kind"):
            continue  # cron and time zone syntax, metadata vs path, Gate vs Policy: parser-only rules
        if value is _DELETE and path[-1] == "bogus":
            continue
        doc = _mutate(doc, path, value)
    by_schema, by_parser, problems = _agree("Gate", doc)
    assert by_schema == by_parser, f"schema says {by_schema}, parser says {by_parser}: {problems}"

"""The webhook service through Flask's test client: what Flagger and an operator see on the wire.

The service reads a `source` (the reconciler's seam): here a small real object holding a Snapshot
built from model values. The clock is injected and fixed.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import TestResponse

from gitgate.metrics import Metrics
from gitgate.model import Approval, CanaryRef, Default, FreezeWindow, Gate, Hook, Snapshot
from gitgate.server import create_app

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday
COMMIT = "3f9c2b1a7d4e5f60718293a4b5c6d7e8f9012345"
SUM = "85d557f47b"
TOKEN = "s3cret-admin-token"
KIB64 = 64 * 1024

# Check endpoint -> how its answer names the hook.
CHECKS = {
    "/gate/check": "gate",
    "/gate/check/confirm-rollout": "confirm-rollout",
    "/gate/check/confirm-traffic-increase": "confirm-traffic-increase",
    "/gate/check/confirm-promotion": "confirm-promotion",
    "/rollback/check": "rollback",
}
WRITES = ("/gate/open", "/gate/close", "/rollback/open", "/rollback/close")
ACCEPTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")
MADE_UP_METHODS = ("BREW", "PROPFIND", "TRACE", "LINK")


def ref(namespace: str, name: str) -> CanaryRef:
    return CanaryRef(namespace, name)


def gate(namespace: str, name: str, *approvals: Approval, **kwargs: Any) -> Gate:
    return Gate(ref(namespace, name), f"gates/{namespace}/{name}.yaml", approvals=approvals, **kwargs)


def snapshot(commit: str = COMMIT) -> Snapshot:
    """The approvals repo the tests answer from."""
    gates = [
        gate(
            "test",
            "podinfo",
            Approval("confirm-promotion", SUM, line=9),
            Approval("rollback", SUM, line=12),
            Approval("confirm-rollout", "*", expires=NOW - timedelta(hours=1), line=15),
        ),
        gate("test", "trafficstep", Approval("confirm-traffic-increase", SUM, line=9)),
        # The load tester's one gate per canary, opened for anything.
        gate("test", "legacy", Approval("*", "*", line=9)),
        gate("test", "relaxed", default=Default.OPEN),
        gate(
            "prod",
            "api",
            Approval("*", "*", line=9),
            Approval("rollback", "*", line=10),
            freeze=(
                FreezeWindow(
                    "0 9 * * MON", timedelta(hours=8), reason="Monday release review", source="gates/prod/api.yaml:12"
                ),
            ),
        ),
    ]
    return Snapshot(commit, "gates", {g.canary: g for g in gates})


class Source:
    """The service's seam: what is served, and the reconciler's account of itself."""

    def __init__(self, snap: Snapshot | None) -> None:
        self.snapshot = snap
        self.triggered = 0

    def status(self) -> dict[str, Any]:
        snap = self.snapshot
        return {
            "repo": "https://git.example.test/acme/approvals.git",
            "branch": "main",
            "verify": "all",
            "ready": snap is not None,
            "verified": None if snap is None else {"commit": snap.commit, "signer": "alice@example.test"},
            "refused": [],
        }

    def trigger(self) -> None:
        self.triggered += 1


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Served:
    client: FlaskClient
    source: Source
    metrics: Metrics
    clock: Clock


def serve(snap: Snapshot | None = None, *, admin_token: str | None = None) -> Served:
    source, metrics, clock = Source(snap), Metrics(), Clock(NOW)
    app = create_app(source=source, metrics=metrics, clock=clock, admin_token=admin_token)
    return Served(app.test_client(), source, metrics, clock)


@pytest.fixture
def served() -> Served:
    return serve(snapshot())


@pytest.fixture
def client(served: Served) -> FlaskClient:
    return served.client


def payload(name: str = "podinfo", namespace: str = "test", **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "phase": "Progressing", "checksum": SUM, **extra}


def post(client: FlaskClient, path: str, body: Any = None, *, method: str = "POST", **headers: str) -> TestResponse:
    data = body if isinstance(body, bytes) else json.dumps(body if body is not None else payload()).encode()
    return client.open(path, method=method, data=data, content_type="application/json", headers=headers)


def one_line(resp: TestResponse) -> str:
    """The body as an operator reads it: text, one line, not empty."""
    assert resp.mimetype == "text/plain"
    text = resp.get_data(as_text=True)
    assert text.endswith("\n")
    assert "\n" not in text[:-1]
    assert text.strip()
    return text[:-1]


def assert_closed(resp: TestResponse, hook: str, canary: str, checksum: str) -> str:
    assert resp.status_code == 403
    line = one_line(resp)
    assert f"{hook} of {canary} (checksum {checksum}) is closed" in line
    assert COMMIT[:12] in line
    assert resp.headers["X-Gitgate-Commit"] == COMMIT
    return line


def assert_open(resp: TestResponse, commit: str = COMMIT) -> None:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_data(as_text=True) == "Approved\n"
    assert resp.headers["X-Gitgate-Commit"] == commit


# --- The answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/gate/check/confirm-promotion", payload()),
        ("/rollback/check", payload()),
        ("/gate/check/confirm-traffic-increase", payload("trafficstep")),
        ("/gate/check/confirm-rollout", payload("legacy", phase="Initialized", checksum="anything")),
        ("/gate/check", payload("legacy")),
        ("/gate/check", payload(metadata={"hook": "confirm-promotion"})),
        ("/gate/check", payload(metadata={"hook": "rollback", "cmd": "ignored"})),
    ],
)
def test_an_approved_check_answers_200_approved(client: FlaskClient, path: str, body: dict[str, Any]) -> None:
    assert_open(post(client, path, body))


def test_a_closed_check_says_why_and_where_to_approve_in_one_line(client: FlaskClient) -> None:
    resp = post(client, "/gate/check/confirm-traffic-increase", payload())
    assert resp.status_code == 403
    assert resp.get_data(as_text=True) == (
        f"confirm-traffic-increase of test/podinfo (checksum {SUM}) is closed: no approval for this hook and "
        f"checksum; at commit {COMMIT[:12]}; to approve, add an approval to gates/test/podinfo.yaml\n"
    )
    assert resp.headers["X-Gitgate-Commit"] == COMMIT


@pytest.mark.parametrize(
    ("path", "checksum", "why"),
    [
        ("/gate/check", SUM, "no approval for this hook and checksum"),
        ("/gate/check/confirm-rollout", "0a1b2c3d4e", "its approval expired"),
        ("/gate/check/confirm-traffic-increase", SUM, "no approval for this hook and checksum"),
        ("/gate/check/confirm-promotion", "1234567890", "no approval for this hook and checksum"),
        ("/rollback/check", "1234567890", "no approval for this hook and checksum"),
    ],
)
def test_every_check_endpoint_names_canary_hook_checksum_commit_and_gate_file(
    client: FlaskClient, path: str, checksum: str, why: str
) -> None:
    line = assert_closed(post(client, path, payload(checksum=checksum)), CHECKS[path], "test/podinfo", checksum)
    assert why in line
    assert "gates/test/podinfo.yaml" in line


def test_a_canary_without_a_gate_file_is_closed_and_told_which_file_to_add(client: FlaskClient) -> None:
    for path, hook in CHECKS.items():
        line = assert_closed(post(client, path, payload("newapp")), hook, "test/newapp", SUM)
        assert "no gate file gates/test/newapp.yaml" in line


def test_a_check_without_checksum_says_so_and_only_any_checksum_approvals_count(client: FlaskClient) -> None:
    body = {"name": "podinfo", "namespace": "test", "phase": "Progressing"}
    assert_closed(post(client, "/gate/check/confirm-promotion", body), "confirm-promotion", "test/podinfo", "none sent")
    assert_open(post(client, "/gate/check/confirm-promotion", {**body, "name": "legacy"}))


def test_a_wildcard_checksum_from_the_caller_does_not_match_a_bound_approval(client: FlaskClient) -> None:
    assert_closed(
        post(client, "/gate/check/confirm-promotion", payload(checksum="*")), "confirm-promotion", "test/podinfo", "*"
    )


def test_the_hook_comes_from_the_url_path_never_from_the_phase(client: FlaskClient) -> None:
    # Flagger sends phase Progressing to both confirm-traffic-increase and confirm-promotion.
    body = payload(phase="Progressing")
    assert_open(post(client, "/gate/check/confirm-promotion", body))
    assert_closed(
        post(client, "/gate/check/confirm-traffic-increase", body), "confirm-traffic-increase", "test/podinfo", SUM
    )
    assert_closed(post(client, "/gate/check/confirm-rollout", body), "confirm-rollout", "test/podinfo", SUM)
    # metadata.hook does not override the path of a hook-specific endpoint.
    named = payload(phase="Progressing", metadata={"hook": "confirm-promotion"})
    assert_closed(
        post(client, "/gate/check/confirm-traffic-increase", named), "confirm-traffic-increase", "test/podinfo", SUM
    )
    # and the other way round: a traffic-increase approval does not promote.
    assert_open(post(client, "/gate/check/confirm-traffic-increase", payload("trafficstep")))
    assert_closed(
        post(client, "/gate/check/confirm-promotion", payload("trafficstep")),
        "confirm-promotion",
        "test/trafficstep",
        SUM,
    )


def test_gate_check_uses_metadata_hook_else_only_any_hook_approvals_count(client: FlaskClient) -> None:
    # No metadata.hook: only "*" approvals count (podinfo has hook-specific ones only).
    assert_closed(post(client, "/gate/check", payload()), "gate", "test/podinfo", SUM)
    assert_open(post(client, "/gate/check", payload("legacy")))
    # An empty metadata map is the same as none.
    assert_closed(post(client, "/gate/check", payload(metadata={})), "gate", "test/podinfo", SUM)
    # With metadata.hook the named hook's approvals count.
    assert_open(post(client, "/gate/check", payload(metadata={"hook": "confirm-promotion"})))
    assert_closed(
        post(client, "/gate/check", payload(metadata={"hook": "confirm-traffic-increase"})),
        "confirm-traffic-increase",
        "test/podinfo",
        SUM,
    )
    assert_closed(post(client, "/gate/check", payload(metadata={"hook": "*"})), "gate", "test/podinfo", SUM)


def test_an_unknown_metadata_hook_on_gate_check_is_a_400_listing_the_hooks(client: FlaskClient) -> None:
    resp = post(client, "/gate/check", payload(metadata={"hook": "confirm-everything"}))
    assert resp.status_code == 400
    line = one_line(resp)
    assert "'confirm-everything'" in line
    for hook in ("confirm-rollout", "confirm-traffic-increase", "confirm-promotion", "rollback"):
        assert hook in line
    assert resp.headers["X-Gitgate-Commit"] == COMMIT


def test_a_default_open_gate_opens_confirm_hooks_but_never_rollback(client: FlaskClient) -> None:
    for path in CHECKS:
        resp = post(client, path, payload("relaxed"))
        if path == "/rollback/check":
            assert_closed(resp, "rollback", "test/relaxed", SUM)
        else:
            assert_open(resp)


def test_a_freeze_closes_confirm_hooks_until_it_ends_but_never_rollback(served: Served) -> None:
    client = served.client
    for path, hook in CHECKS.items():
        resp = post(client, path, payload("api", "prod"))
        if path == "/rollback/check":
            assert_open(resp)
        else:
            line = assert_closed(resp, hook, "prod/api", SUM)
            assert "frozen until 2026-11-23T17:00:00Z: Monday release review" in line
            assert "gates/prod/api.yaml:12" in line
    served.clock.now = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
    for path in CHECKS:
        assert_open(post(client, path, payload("api", "prod")))


def test_checks_never_wait_on_git(served: Served) -> None:
    for path in CHECKS:
        post(served.client, path)
    assert served.source.triggered == 0


# --- X-Gitgate-Commit on every check answer ------------------------------------------------------


def _requests_of_every_kind() -> list[tuple[str, Callable[[FlaskClient, str], TestResponse]]]:
    return [
        ("legacy-gate", lambda c, p: post(c, p, payload("legacy"))),
        ("closed", lambda c, p: post(c, p, payload("newapp"))),
        ("bad-json", lambda c, p: post(c, p, b"{nope")),
        ("empty", lambda c, p: post(c, p, b"")),
        ("too-big", lambda c, p: post(c, p, b" " * (KIB64 + 1))),
        ("made-up-method", lambda c, p: post(c, p, method="BREW")),
    ]


@pytest.mark.parametrize(("kind", "send"), _requests_of_every_kind(), ids=[k for k, _ in _requests_of_every_kind()])
@pytest.mark.parametrize("path", list(CHECKS))
@pytest.mark.parametrize("ready", [True, False], ids=["ready", "not-ready"])
def test_every_check_answer_carries_the_commit(
    path: str, kind: str, send: Callable[[FlaskClient, str], TestResponse], ready: bool
) -> None:
    resp = send(serve(snapshot() if ready else None).client, path)
    assert "X-Gitgate-Commit" in resp.headers, (kind, resp.status_code)
    assert resp.headers["X-Gitgate-Commit"] == (COMMIT if ready else "")
    assert resp.status_code in (200, 403, 400, 405, 413)


# --- Before the first snapshot -------------------------------------------------------------------


def test_before_the_first_snapshot_every_check_is_closed_not_ready() -> None:
    served = serve(None)
    client = served.client
    for path, hook in CHECKS.items():
        resp = post(client, path, payload("legacy"))
        assert resp.status_code == 403
        line = one_line(resp)
        assert f"{hook} of test/legacy (checksum {SUM}) is closed: not ready" in line
        assert resp.headers["X-Gitgate-Commit"] == ""
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "not ready" in one_line(ready)
    assert client.get("/healthz").status_code == 200
    status = client.get("/api/v1/status").get_json()
    assert status["serving"] == ""
    assert status["ready"] is False

    # The first snapshot arrives: the same checks now answer from it.
    served.source.snapshot = snapshot()
    assert_open(post(client, "/gate/check", payload("legacy")))
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert COMMIT in one_line(ready)


# --- Load tester compatibility -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET", "PUT", "DELETE"])
@pytest.mark.parametrize("ready", [True, False], ids=["ready", "not-ready"])
def test_gate_approve_and_halt_answer_as_the_load_tester(method: str, ready: bool) -> None:
    client = serve(snapshot() if ready else None).client
    for body in (payload(), b""):
        approve = post(client, "/gate/approve", body, method=method)
        assert approve.status_code == 200
        assert one_line(approve) == "OK"
        halt = post(client, "/gate/halt", body, method=method)
        assert halt.status_code == 403
        assert one_line(halt) == "Forbidden"


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_check_endpoints_answer_any_method_the_load_tester_accepted(client: FlaskClient, method: str) -> None:
    assert_open(post(client, "/gate/check/confirm-promotion", method=method))
    assert_closed(
        post(client, "/gate/check/confirm-traffic-increase", method=method),
        "confirm-traffic-increase",
        "test/podinfo",
        SUM,
    )


def test_head_on_a_check_endpoint_gives_the_status_without_a_body(client: FlaskClient) -> None:
    resp = post(client, "/gate/check/confirm-promotion", method="HEAD")
    assert resp.status_code == 200
    assert resp.get_data() == b""
    assert resp.headers["X-Gitgate-Commit"] == COMMIT
    assert post(client, "/gate/check/confirm-traffic-increase", method="HEAD").status_code == 403
    assert post(client, "/gate/check", b"", method="HEAD").status_code == 400


# --- Bad input: a 4xx with a one-line message, never 2xx, never 5xx -------------------------------

BAD_BODIES: list[tuple[str, bytes, int, str]] = [
    ("malformed-json", b'{"name": "podinfo",', 400, "not JSON"),
    ("single-quotes", b"{'name': 'podinfo', 'namespace': 'test'}", 400, "not JSON"),
    ("trailing-garbage", json.dumps(payload()).encode() + b" x", 400, "not JSON"),
    ("empty", b"", 400, "empty body"),
    ("whitespace", b" \r\n\t ", 400, "empty body"),
    ("array", json.dumps([payload()]).encode(), 400, "must be a JSON object"),
    ("string", b'"podinfo"', 400, "must be a JSON object"),
    ("number", b"42", 400, "must be a JSON object"),
    ("null", b"null", 400, "must be a JSON object"),
    ("true", b"true", 400, "must be a JSON object"),
    ("missing-name", json.dumps({"namespace": "test", "checksum": SUM}).encode(), 400, "missing 'name'"),
    ("missing-namespace", json.dumps({"name": "podinfo", "checksum": SUM}).encode(), 400, "missing 'namespace'"),
    ("empty-name", json.dumps(payload("")).encode(), 400, "'name' must be a non-empty string"),
    ("empty-namespace", json.dumps(payload(namespace="")).encode(), 400, "'namespace' must be a non-empty string"),
    ("numeric-name", json.dumps(payload(5)).encode(), 400, "'name' must be a non-empty string"),
    ("null-name", json.dumps(payload(None)).encode(), 400, "'name' must be a non-empty string"),
    ("list-name", json.dumps(payload(["podinfo"])).encode(), 400, "'name' must be a non-empty string"),
    ("object-namespace", json.dumps(payload(namespace={"a": 1})).encode(), 400, "'namespace' must be"),
    ("bool-namespace", json.dumps(payload(namespace=True)).encode(), 400, "'namespace' must be"),
    ("nan-name", b'{"name": NaN, "namespace": "test"}', 400, "'name' must be a non-empty string"),
    ("uppercase-name", json.dumps(payload("Podinfo")).encode(), 400, "is not a Kubernetes namespace/name"),
    ("underscore-name", json.dumps(payload("pod_info")).encode(), 400, "is not a Kubernetes namespace/name"),
    ("dash-first-name", json.dumps(payload("-podinfo")).encode(), 400, "is not a Kubernetes namespace/name"),
    ("path-name", json.dumps(payload("../../etc/passwd")).encode(), 400, "is not a Kubernetes namespace/name"),
    ("newline-name", json.dumps(payload("podinfo\nok")).encode(), 400, "is not a Kubernetes namespace/name"),
    ("long-name", json.dumps(payload("a" * 254)).encode(), 400, "is not a Kubernetes namespace/name"),
    ("dotted-namespace", json.dumps(payload(namespace="te.st")).encode(), 400, "is not a Kubernetes"),
    ("long-namespace", json.dumps(payload(namespace="a" * 64)).encode(), 400, "is not a Kubernetes"),
    ("numeric-checksum", json.dumps(payload(checksum=85557)).encode(), 400, "'checksum' must be a string"),
    ("list-checksum", json.dumps(payload(checksum=[SUM])).encode(), 400, "'checksum' must be a string"),
    ("bool-checksum", json.dumps(payload(checksum=True)).encode(), 400, "'checksum' must be a string"),
    ("newline-checksum", json.dumps(payload(checksum=f"{SUM}\nApproved")).encode(), 400, "'checksum' must be"),
    ("control-checksum", json.dumps(payload(checksum="a\x00b")).encode(), 400, "'checksum' must be"),
    ("numeric-phase", json.dumps(payload(phase=3)).encode(), 400, "'phase' must be a string"),
    ("object-phase", json.dumps(payload(phase={"a": "b"})).encode(), 400, "'phase' must be a string"),
    ("string-metadata", json.dumps(payload(metadata="hook=rollback")).encode(), 400, "'metadata' must be"),
    ("list-metadata", json.dumps(payload(metadata=["rollback"])).encode(), 400, "'metadata' must be"),
    ("number-metadata", json.dumps(payload(metadata=1)).encode(), 400, "'metadata' must be"),
    ("deeply-nested", b'{"name": "podinfo", "namespace": "test", "x": ' + b"[" * 20000 + b"]" * 20000 + b"}", 400,
     "not JSON"),
    ("deeply-nested-objects", b'{"a":' * 5000 + b"1" + b"}" * 5000, 400, "not JSON"),
    ("huge-integer", b'{"name": "podinfo", "namespace": "test", "x": ' + b"9" * 5000 + b"}", 400, "not JSON"),
    ("invalid-utf8", b'{"name": "podinfo\xff", "namespace": "test"}', 400, "not JSON"),
    ("latin1", '{"name": "podinfö", "namespace": "test"}'.encode("latin-1"), 400, "not JSON"),
    ("nul-bytes", b"\x00\x00\x00\x00", 400, ""),
    ("binary", bytes(range(256)), 400, "not JSON"),
    ("over-64KiB", json.dumps(payload(pad=" " * KIB64)).encode(), 413, "body over 65536 bytes"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "says"), [c[1:] for c in BAD_BODIES], ids=[c[0] for c in BAD_BODIES])
def test_bad_input_is_a_4xx_with_a_one_line_message(client: FlaskClient, body: bytes, status: int, says: str) -> None:
    for path in CHECKS:
        resp = post(client, path, body)
        assert resp.status_code == status, path
        assert says in one_line(resp)
        assert resp.headers["X-Gitgate-Commit"] == COMMIT


def test_a_body_of_exactly_64_kib_is_still_read(client: FlaskClient) -> None:
    raw = json.dumps(payload()).encode()
    body = raw[:-1] + b" " * (KIB64 - len(raw)) + b"}"
    assert len(body) == KIB64
    assert_open(post(client, "/gate/check/confirm-promotion", body))
    assert post(client, "/gate/check/confirm-promotion", body + b" ").status_code == 413


@pytest.mark.parametrize(
    "path",
    [
        "/gate",
        "/gate/",
        "/gate/check/",
        "/gate/check/confirm-everything",
        "/gate/check/confirm-promotion/extra",
        "/GATE/CHECK",
        "/rollback",
        "/rollback/check/confirm-promotion",
        "/api/v1/nothing",
        "/index.html",
    ],
)
def test_an_unknown_path_is_a_404_pointing_at_the_api_description(client: FlaskClient, path: str) -> None:
    resp = post(client, path)
    assert resp.status_code == 404
    line = one_line(resp)
    assert path in line
    assert "/openapi.json" in line


@pytest.mark.parametrize("method", ["OPTIONS", "PATCH", "GET", "DELETE"])
@pytest.mark.parametrize("path", list(CHECKS))
def test_an_odd_method_without_a_body_is_a_readable_400(client: FlaskClient, path: str, method: str) -> None:
    resp = client.open(path, method=method)
    assert resp.status_code == 400
    assert "empty body" in one_line(resp)


@pytest.mark.parametrize("method", MADE_UP_METHODS)
@pytest.mark.parametrize("path", list(CHECKS))
def test_a_made_up_method_is_a_405_even_with_an_approved_payload(client: FlaskClient, path: str, method: str) -> None:
    resp = post(client, path, payload("legacy"), method=method)
    assert resp.status_code == 405
    assert one_line(resp) == f"method {method} is not accepted on {path}"
    assert resp.headers["X-Gitgate-Commit"] == COMMIT


# --- Property: whatever arrives, nothing 5xx and no accidental 2xx --------------------------------

FUZZ_SNAPSHOT = Snapshot(
    "9" * 40, "gates", {ref("test", "podinfo"): gate("test", "podinfo", Approval("confirm-promotion", SUM))}
)
FUZZ_CLIENT = serve(FUZZ_SNAPSHOT, admin_token=TOKEN).client
FUZZ_HOOKS = {"confirm-rollout", "confirm-traffic-increase", "confirm-promotion", "rollback", "*"}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
NON_STRINGS = JSON_VALUES.filter(lambda v: not isinstance(v, str))
NON_STRINGS_OR_NULL = NON_STRINGS.filter(lambda v: v is not None)
MISSING: Any = object()


def _field(target: Any, valid: list[Any], invalid: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, bool]]:
    """Half the time the value that opens the gate, else another valid value, else an invalid one."""
    return st.integers(0, 9).flatmap(
        lambda i: (
            st.just((target, True))
            if i < 5
            else st.sampled_from(valid).map(lambda v: (v, True))
            if i < 8
            else invalid.map(lambda v: (v, False))
        )
    )


FIELDS = {
    "name": _field(
        "podinfo",
        ["other", "a.b-c", "x" * 253, "0"],
        st.sampled_from(["", "Podinfo", "pod_info", "-podinfo", "podinfo-", "x" * 254, "pod info", "p\n", "ü"])
        | NON_STRINGS
        | st.just(MISSING),
    ),
    "namespace": _field(
        "test",
        ["prod", "x" * 63],
        st.sampled_from(["", "Test", "te.st", "x" * 64, "-test", "test/x"]) | NON_STRINGS | st.just(MISSING),
    ),
    "phase": _field(
        "Progressing",
        [MISSING, None, "WaitingPromotion", "", "Ünïcode"],
        st.sampled_from(["Progressing\n", "\x00", "a\u2028b"]) | NON_STRINGS_OR_NULL,
    ),
    "checksum": _field(
        SUM,
        [MISSING, None, "0000000000", "", "*", SUM.upper(), "<b>x</b>"],
        st.sampled_from([f"{SUM}\n", "\t", "\r\n"]) | NON_STRINGS_OR_NULL,
    ),
    "metadata": _field(
        {"hook": "confirm-promotion"},
        [MISSING, None, {}, {"cmd": "x"}, *({"hook": h} for h in [*sorted(FUZZ_HOOKS), "bogus", ""])],
        st.sampled_from(["x", 3, [], True, [{"hook": "confirm-promotion"}]]),
    ),
}
EXTRA_KEYS = st.dictionaries(st.text(max_size=8).filter(lambda k: k not in FIELDS), JSON_VALUES, max_size=3)


def expected_status(path: str, method: str, doc: dict[str, Any], valid: bool) -> int:
    """The contract, written out independently of the service: 405, 400, or 200/403 from the table."""
    if method not in ACCEPTED_METHODS:
        return 405
    if not valid:
        return 400
    hook = CHECKS[path]
    if path == "/gate/check":
        meta = doc.get("metadata")
        named = meta.get("hook") if isinstance(meta, dict) else None
        if named is not None and named not in FUZZ_HOOKS:
            return 400
        hook = named or "*"
    approved = (doc["namespace"], doc["name"], hook, doc.get("checksum")) == (
        "test",
        "podinfo",
        "confirm-promotion",
        SUM,
    )
    return 200 if approved else 403


@settings(max_examples=300, deadline=None)
@given(
    path=st.sampled_from(list(CHECKS)),
    method=st.sampled_from(ACCEPTED_METHODS + MADE_UP_METHODS),
    fields=st.fixed_dictionaries(FIELDS),
    extra=EXTRA_KEYS,
    ascii_only=st.booleans(),
)
def test_property_check_answers_follow_the_contract_for_any_payload(
    path: str, method: str, fields: dict[str, tuple[Any, bool]], extra: dict[str, Any], ascii_only: bool
) -> None:
    doc = {**extra, **{k: v for k, (v, _) in fields.items() if v is not MISSING}}
    valid = all(ok for _, ok in fields.values())
    body = json.dumps(doc, ensure_ascii=ascii_only).encode()
    resp = post(FUZZ_CLIENT, path, body, method=method)
    assert resp.status_code == expected_status(path, method, doc, valid), (doc, resp.get_data(as_text=True))
    assert resp.headers["X-Gitgate-Commit"] == "9" * 40
    if method != "HEAD":
        if resp.status_code == 200:
            assert resp.get_data(as_text=True) == "Approved\n"
        else:
            one_line(resp)


@settings(max_examples=200, deadline=None)
@given(
    path=st.sampled_from(list(CHECKS)),
    fields=st.fixed_dictionaries(FIELDS),
    extra=EXTRA_KEYS,
    other=st.sampled_from(["PUT", "PATCH", "DELETE", "GET"]),
)
def test_property_a_post_answers_exactly_as_the_same_check_by_any_other_method(
    path: str, fields: dict[str, tuple[Any, bool]], extra: dict[str, Any], other: str
) -> None:
    # Flagger's POSTs are answered ahead of Flask (the lean path); other methods go through Flask.
    # Both must give the same status, text and headers for the same body.
    doc = {**extra, **{k: v for k, (v, _) in fields.items() if v is not MISSING}}
    body = json.dumps(doc).encode()
    lean, flask = post(FUZZ_CLIENT, path, body), post(FUZZ_CLIENT, path, body, method=other)
    assert (lean.status, lean.get_data()) == (flask.status, flask.get_data())
    named = ("Content-Type", "Content-Length", "X-Gitgate-Commit", "X-Gitgate-Reason")
    assert [(k, lean.headers.get(k)) for k in named] == [(k, flask.headers.get(k)) for k in named]


class Broken(Source):
    """A source whose snapshot cannot be read (a bug, not a state): the check must fail closed."""

    @property  # type: ignore[override]
    def snapshot(self) -> Snapshot | None:
        raise RuntimeError("the snapshot is gone")

    @snapshot.setter
    def snapshot(self, value: Snapshot | None) -> None:
        pass


def test_a_check_that_fails_inside_answers_500_closed_and_logs_why(caplog: pytest.LogCaptureFixture) -> None:
    client = create_app(source=Broken(None), metrics=Metrics(), clock=Clock(NOW)).test_client()
    resp = post(client, "/gate/check/confirm-promotion")
    assert resp.status_code == 500
    assert "the gate stays closed" in one_line(resp)
    assert "the snapshot is gone" in caplog.text and "/gate/check/confirm-promotion" in caplog.text


PATH_CHARS = string.ascii_letters + string.digits + "/-._~%:@!$&'()*+,;= é"


@settings(max_examples=300, deadline=None)
@given(
    path=st.sampled_from([*CHECKS, *WRITES, "/gate/approve", "/gate/halt", "/healthz", "/readyz", "/metrics", "/"])
    | st.text(PATH_CHARS, max_size=40).map(lambda p: "/" + p),
    method=st.sampled_from(ACCEPTED_METHODS + MADE_UP_METHODS)
    | st.text(string.ascii_uppercase, min_size=1, max_size=8),
    body=st.binary(max_size=300) | JSON_VALUES.map(lambda v: json.dumps(v).encode()),
)
def test_property_nothing_is_a_5xx_and_checks_open_only_for_an_approved_payload(
    path: str, method: str, body: bytes
) -> None:
    # PATH_INFO as a server hands it over, whatever it holds (the test client would parse "//x" as a host).
    resp = FUZZ_CLIENT.open(
        "/",
        method=method,
        data=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        environ_overrides={"PATH_INFO": path},
    )
    # 501 is the write endpoints' documented "no forge to open requests with", not a failure.
    assert resp.status_code < 500 or (path in WRITES and resp.status_code == 501), (path, method, body)
    if path in CHECKS and 200 <= resp.status_code < 300:
        doc = json.loads(body)
        assert (doc["namespace"], doc["name"], doc["checksum"]) == ("test", "podinfo", SUM)
    if 400 <= resp.status_code < 500 and method != "HEAD":
        one_line(resp)


# --- Write endpoints: never change state directly -------------------------------------------------


@pytest.mark.parametrize("path", WRITES)
@pytest.mark.parametrize("authorization", [None, f"Bearer {TOKEN}", "Bearer ", "Basic Zm9vOmJhcg=="])
def test_write_endpoints_are_disabled_without_an_admin_token(path: str, authorization: str | None) -> None:
    client = serve(snapshot(), admin_token=None).client
    headers = {"Authorization": authorization} if authorization else {}
    resp = post(client, path, **headers)
    assert resp.status_code == 401
    assert "--admin-token" in one_line(resp)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", WRITES)
def test_an_empty_admin_token_does_not_enable_write_endpoints(path: str) -> None:
    client = serve(snapshot(), admin_token="").client
    assert post(client, path, Authorization="Bearer ").status_code == 401
    assert post(client, path, Authorization="Bearer").status_code == 401


@pytest.mark.parametrize("path", WRITES)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        TOKEN,
        f"Basic {TOKEN}",
        f"Token {TOKEN}",
        "Bearer",
        "Bearer ",
        "Bearer wrong",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN.upper()}",
        f"Bearer{TOKEN}",
    ],
)
def test_write_endpoints_refuse_a_missing_or_wrong_bearer_token(path: str, authorization: str | None) -> None:
    client = serve(snapshot(), admin_token=TOKEN).client
    headers = {"Authorization": authorization} if authorization is not None else {}
    resp = post(client, path, **headers)
    assert resp.status_code == 401
    assert "bearer token" in one_line(resp)
    assert TOKEN not in resp.get_data(as_text=True)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", WRITES)
@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_write_endpoints_with_the_right_token_say_requests_are_not_available_yet(path: str, scheme: str) -> None:
    client = serve(snapshot(), admin_token=TOKEN).client
    resp = post(client, path, Authorization=f"{scheme} {TOKEN}")
    assert resp.status_code == 501
    line = one_line(resp)
    assert path in line
    assert "--forge" in line
    assert "approvals repo" in line


@pytest.mark.parametrize("path", WRITES)
@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{", "not JSON"),
        (b"", "empty body"),
        (b"[]", "JSON object"),
        (json.dumps({"namespace": "test"}).encode(), "missing 'name'"),
        (json.dumps(payload("Bad_Name")).encode(), "Kubernetes"),
    ],
)
def test_write_endpoints_with_the_right_token_refuse_a_bad_payload(path: str, body: bytes, says: str) -> None:
    client = serve(snapshot(), admin_token=TOKEN).client
    resp = post(client, path, body, Authorization=f"Bearer {TOKEN}")
    assert resp.status_code == 400
    assert says in one_line(resp)
    big = post(client, path, b" " * (KIB64 + 1), Authorization=f"Bearer {TOKEN}")
    assert big.status_code == 413


def test_write_endpoints_never_change_an_answer() -> None:
    served = serve(snapshot(), admin_token=TOKEN)
    client = served.client
    canaries = ["podinfo", "legacy", "trafficstep", "newapp"]

    def answers() -> list[tuple[int, str]]:
        return [
            (r.status_code, r.get_data(as_text=True))
            for path in CHECKS
            for name in canaries
            for r in [post(client, path, payload(name))]
        ]

    before = answers()
    served_snapshot = served.source.snapshot
    for path in WRITES:
        for name in canaries:
            for auth in ({}, {"Authorization": f"Bearer {TOKEN}"}, {"Authorization": "Bearer wrong"}):
                for method in ("POST", "GET", "PUT"):
                    assert post(client, path, payload(name), method=method, **auth).status_code in (401, 501)
    assert answers() == before
    assert served.source.snapshot is served_snapshot


# --- Metrics, status, status page ----------------------------------------------------------------


def check_counts(client: FlaskClient) -> dict[tuple[str, str], float]:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    families = {f.name: f for f in text_string_to_metric_families(resp.get_data(as_text=True))}
    return {
        (s.labels["hook"], s.labels["answer"]): s.value
        for s in families["gitgate_checks"].samples
        if s.name == "gitgate_checks_total"
    }


def bad_request_count(client: FlaskClient, endpoint: str) -> float:
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))}
    return sum(
        s.value
        for s in families["gitgate_bad_requests"].samples
        if s.name == "gitgate_bad_requests_total" and s.labels["endpoint"] == endpoint
    )


def test_metrics_count_checks_by_hook_and_answer(client: FlaskClient) -> None:
    # Every hook and answer is a series from the start (at 0), so rate() and alerts work at once.
    assert check_counts(client) == {(h.value, a): 0 for h in Hook for a in ("open", "closed")}
    post(client, "/gate/check/confirm-promotion")
    post(client, "/gate/check/confirm-promotion")
    post(client, "/gate/check/confirm-traffic-increase")
    post(client, "/gate/check", payload("legacy"))
    post(client, "/gate/check", payload())
    post(client, "/gate/check", payload(metadata={"hook": "rollback"}))
    post(client, "/rollback/check", payload("relaxed"))
    assert {k: v for k, v in check_counts(client).items() if v} == {
        ("confirm-promotion", "open"): 2,
        ("confirm-traffic-increase", "closed"): 1,
        ("*", "open"): 1,
        ("*", "closed"): 1,
        ("rollback", "open"): 1,
        ("rollback", "closed"): 1,
    }
    # Bad input is not a check answered; it is counted on its own.
    before = bad_request_count(client, "/gate/check")
    post(client, "/gate/check", b"{")
    post(client, "/gate/check", b" " * (KIB64 + 1))
    assert sum(check_counts(client).values()) == 7
    assert bad_request_count(client, "/gate/check") == before + 2


def test_status_shows_the_last_check_per_canary_and_hook_with_its_current_answer(served: Served) -> None:
    client = served.client
    post(client, "/gate/check/confirm-promotion", payload(phase="Progressing"))
    post(client, "/gate/check/confirm-traffic-increase", payload(checksum="1111111111"))
    closed_line = post(client, "/gate/check/confirm-traffic-increase", payload()).get_data(as_text=True).strip()
    post(client, "/rollback/check", payload("newapp", phase="WaitingPromotion"))

    resp = client.get("/api/v1/status")
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    status = resp.get_json()
    assert status["repo"] == "https://git.example.test/acme/approvals.git"
    assert status["serving"] == COMMIT
    assert status["now"] == "2026-11-23T10:00:00Z"
    gates = {(g["namespace"], g["name"]): g for g in status["gates"]}
    podinfo = gates[("test", "podinfo")]
    assert podinfo["file"] == "gates/test/podinfo.yaml"
    assert podinfo["checks"]["confirm-promotion"] == {
        "checksum": SUM,
        "phase": "Progressing",
        "asked_at": "2026-11-23T10:00:00Z",
        "open": True,
        "reason": f"confirm-promotion of test/podinfo (checksum {SUM}) is open: approved in "
        f"gates/test/podinfo.yaml:9 at commit {COMMIT[:12]}",
    }
    # The last check of a hook wins.
    traffic = podinfo["checks"]["confirm-traffic-increase"]
    assert (traffic["checksum"], traffic["open"], traffic["reason"]) == (SUM, False, closed_line)
    # A canary with no gate file is listed too, by what Flagger asked.
    newapp = gates[("test", "newapp")]
    assert newapp["file"] is None
    assert newapp["checks"]["rollback"]["open"] is False
    assert newapp["checks"]["rollback"]["phase"] == "WaitingPromotion"

    # A new commit revokes the approval: the status shows the answer Flagger would get now.
    revoked = "b" * 40
    served.source.snapshot = Snapshot(revoked, "gates", {ref("test", "podinfo"): gate("test", "podinfo")})
    status = client.get("/api/v1/status").get_json()
    podinfo = next(g for g in status["gates"] if g["name"] == "podinfo")
    assert podinfo["checks"]["confirm-promotion"]["open"] is False
    assert revoked[:12] in podinfo["checks"]["confirm-promotion"]["reason"]
    assert status["serving"] == revoked
    assert post(client, "/gate/check/confirm-promotion").status_code == 403


def test_status_describes_a_bounded_number_of_gates_unless_asked_for_all(client: FlaskClient) -> None:
    assert post(client, "/gate/check/confirm-promotion").status_code == 200  # podinfo was asked: it matters
    two = client.get("/api/v1/status?limit=2").get_json()
    assert two["gates_total"] == 5
    assert len(two["gates"]) == 2
    assert ("test", "podinfo") in {(g["namespace"], g["name"]) for g in two["gates"]}
    assert len(client.get("/api/v1/status?limit=all").get_json()["gates"]) == 5
    assert len(client.get("/api/v1/status").get_json()["gates"]) == 5  # under the default of 1,000
    for bad in ("-1", "ten", "1e3", "9999999", ""):
        resp = client.get(f"/api/v1/status?limit={bad}")
        assert resp.status_code == 400, bad
        assert "limit must be a number of gates or 'all'" in resp.text


def test_status_lists_gates_with_their_approvals_and_freezes(client: FlaskClient) -> None:
    gates = {(g["namespace"], g["name"]): g for g in client.get("/api/v1/status").get_json()["gates"]}
    assert set(gates) == {
        ("test", "podinfo"),
        ("test", "trafficstep"),
        ("test", "legacy"),
        ("test", "relaxed"),
        ("prod", "api"),
    }
    assert gates[("prod", "api")]["frozen_until"] == "2026-11-23T17:00:00Z"
    assert gates[("test", "relaxed")]["default"] == "open"
    rollout = next(a for a in gates[("test", "podinfo")]["approvals"] if a["hook"] == "confirm-rollout")
    assert rollout["live"] is False
    assert rollout["expires"] == "2026-11-23T09:00:00Z"


def test_the_status_page_shows_canaries_and_escapes_what_callers_sent(client: FlaskClient) -> None:
    post(client, "/gate/check/confirm-promotion", payload(checksum="<script>alert(1)</script>"))
    resp = client.get("/")
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    page = resp.get_data(as_text=True)
    assert "test/podinfo" in page
    assert COMMIT in page
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_status_page_renders_before_the_first_snapshot() -> None:
    resp = serve(None).client.get("/")
    assert resp.status_code == 200
    assert "not ready" in resp.get_data(as_text=True)


# --- The API description -------------------------------------------------------------------------


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    doc: dict[str, Any] = resp.get_json()
    return doc


def test_openapi_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_route_is_documented_and_every_documented_path_is_served(served: Served) -> None:
    app = served.client.application
    document = served.client.get("/openapi.json").get_json()
    routes = {rule.rule: rule.methods or set() for rule in app.url_map.iter_rules() if rule.endpoint != "static"}
    assert set(routes) == set(document["paths"])
    for path, item in document["paths"].items():
        for method in item:
            assert method.upper() in routes[path], (path, method)


def test_every_check_answer_documents_the_commit_header(document: dict[str, Any]) -> None:
    for path in CHECKS:
        for status, response in document["paths"][path]["post"]["responses"].items():
            assert "X-Gitgate-Commit" in response.get("headers", {}), (path, status)


SAMPLES: list[tuple[str, str, Any, dict[str, str]]] = [
    *[("post", path, payload(), {}) for path in CHECKS],
    *[("post", path, payload("legacy"), {}) for path in CHECKS],
    *[("post", path, b"{", {}) for path in CHECKS],
    *[("post", path, b" " * (KIB64 + 1), {}) for path in CHECKS],
    *[("post", path, payload(), {}) for path in WRITES],
    *[("post", path, payload(), {"Authorization": f"Bearer {TOKEN}"}) for path in WRITES],
    *[("post", path, b"[]", {"Authorization": f"Bearer {TOKEN}"}) for path in WRITES],
    ("post", "/gate/approve", payload(), {}),
    ("post", "/gate/halt", payload(), {}),
    *[("get", path, None, {}) for path in ("/healthz", "/readyz", "/metrics", "/api/v1/status", "/openapi.json", "/")],
]


@pytest.mark.parametrize("ready", [True, False], ids=["ready", "not-ready"])
def test_answers_use_only_status_codes_and_media_types_the_document_lists(ready: bool) -> None:
    client = serve(snapshot() if ready else None, admin_token=TOKEN).client
    document = client.get("/openapi.json").get_json()
    seen: set[int] = set()
    for method, path, body, headers in SAMPLES:
        resp = client.get(path, headers=headers) if method == "get" else post(client, path, body, **headers)
        responses = document["paths"][path][method]["responses"]
        assert str(resp.status_code) in responses, (method, path, resp.status_code)
        content = responses[str(resp.status_code)].get("content", {})
        assert resp.mimetype in content, (method, path, resp.mimetype)
        seen.add(resp.status_code)
    assert {200, 400, 401, 403, 413, 501} <= seen


def test_a_non_string_metadata_hook_is_a_400_not_the_any_hook_gate(client: FlaskClient) -> None:
    resp = post(client, "/gate/check", payload(checksum="abc", metadata={"hook": 5}))
    assert resp.status_code == 400
    assert "'metadata.hook' must be a string" in one_line(resp)


def test_caller_input_quoted_in_a_400_is_bounded(client: FlaskClient) -> None:
    resp = post(client, "/gate/check/confirm-promotion", payload(name="X" * 20_000, checksum="abc"))
    assert resp.status_code == 400
    assert len(one_line(resp)) < 300

"""Hostile HTTP (issue 6, hostile input): fuzz every endpoint of /openapi.json.

In process, through the WSGI app: Schemathesis generates schema-valid and schema-breaking requests
for every operation of the published document and checks every answer against it; Hypothesis adds
what the document does not describe (any method, path, query string and header). The snapshot is
built by the real parser from gate files. Every answer is a documented status, never a 5xx; no
check answers 200 unless an approval in the snapshot matches.

Over real sockets, against a real `gitgate serve`: requests no HTTP client sends (lying
Content-Length, huge headers, partial bodies, non-UTF-8 bytes, smuggling), and slow clients. None
opens a gate; the process keeps answering, its memory stays bounded.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import string
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from helpers import Approvals, Keys, Service
from hostile import (
    ANY_METHOD,
    APPROVED_BODY,
    CHECKS,
    COMMIT,
    DENIED_BODY,
    DOCUMENT,
    GITHUB_SECRET,
    GITLAB_TOKEN,
    HOOKS,
    NOW,
    SUM,
    TOKEN,
    WRITES,
    documented,
    hook_of,
    http_request,
    opens,
    raw_http_corpus,
    smuggled,
    snapshot,
    statuses,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from test_server import Clock, Source

from gitgate.metrics import Metrics
from gitgate.server import create_app

APP = create_app(
    source=Source(snapshot()),
    metrics=Metrics(),
    clock=Clock(NOW),
    admin_token=TOKEN,
    github_webhook_secret=GITHUB_SECRET,
    gitlab_webhook_token=GITLAB_TOKEN,
)


def assert_not_a_wrong_open(path: str, body: bytes, status: int) -> None:
    if hook_of(path, {}) is None or status != 200:
        return
    doc = json.loads(body)
    hook = hook_of(path, doc)
    assert opens(doc.get("namespace"), doc.get("name"), hook or "", doc.get("checksum")), (path, doc)


# --- Schemathesis: every operation of the published document -----------------------------------------


@schemathesis.check
def gates_open_only_for_an_approval(ctx: Any, response: Any, case: Any) -> bool | None:
    """A check answered 200 must be for a canary, hook and checksum an approval in the snapshot covers."""
    if hook_of(case.path, {}) is not None and response.status_code == 200:
        sent = response.request.body or b""
        assert_not_a_wrong_open(case.path, sent.encode() if isinstance(sent, str) else sent, response.status_code)
    return None


_CONFIG = schemathesis.Config()
_CONFIG.projects.override.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=10,
    codec="ascii",  # the document's patterns say exactly what is refused for ASCII text; see openapi.py
    deterministic=True,
)
# A 405 without an Allow header: see test_a_405_says_which_methods_are_allowed below.
_CONFIG.projects.override.checks.update(excluded_check_names=["unsupported_method"])
SCHEMA = schemathesis.openapi.from_wsgi("/openapi.json", APP, config=_CONFIG)


@SCHEMA.parametrize()
def test_every_operation_answers_as_documented_for_valid_and_invalid_requests(case: Any) -> None:
    case.call_and_validate()


def test_a_405_says_which_methods_are_allowed() -> None:
    """RFC 9110 §15.5.6: a 405 "MUST generate an Allow header field"; clients and scanners (and
    Schemathesis' unsupported_method check) rely on it."""
    client = APP.test_client()
    resp = client.open("/healthz", method="TRACE")
    assert resp.status_code == 405
    assert set(resp.headers.get("Allow", "").replace(" ", "").split(",")) >= {"GET", "HEAD"}


def test_an_event_carrying_half_a_surrogate_pair_is_refused_and_the_page_still_renders() -> None:
    """JSON may escape half of a UTF-16 pair; kept, it could not be written out again, and the page
    at / showing Flagger's events answered 500 for everyone until the event aged out."""
    client = create_app(source=Source(snapshot()), metrics=Metrics(), clock=Clock(NOW)).test_client()
    body = b'{"name":"podinfo","namespace":"test","metadata":{"eventMessage":"x\\ud800","eventType":"Normal"}}'
    resp = client.post("/events", data=body)
    assert resp.status_code == 400
    assert "surrogate" in resp.get_data(as_text=True)
    fine = b'{"name":"podinfo","namespace":"test","metadata":{"eventMessage":"\\ud83d\\ude00 ok","eventType":"Normal"}}'
    assert client.post("/events", data=fine).status_code == 202
    page = client.get("/")
    assert page.status_code == 200
    assert "\N{GRINNING FACE} ok" in page.get_data(as_text=True)


# --- Hypothesis: what the document does not describe ------------------------------------------------

NAMES = st.sampled_from([("test", "podinfo"), ("test", "legacy"), ("test", "relaxed"), ("prod", "api"), ("x", "y")])
TEXT = st.text(max_size=12)  # lone surrogates too: JSON can carry them as "\ud800"
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def payloads(draw: st.DrawFn) -> Any:
    """Mostly Flagger-shaped objects naming canaries the snapshot knows, with fields left out,
    swapped for other types or added."""
    namespace, name = draw(NAMES)
    doc: dict[str, Any] = {"name": name, "namespace": namespace}
    for key, values in (
        ("checksum", st.sampled_from([SUM, "*", "", SUM.upper(), "0" * 10]) | TEXT),
        ("phase", st.sampled_from(["Progressing", "Waiting", "Succeeded"]) | TEXT),
        ("metadata", st.fixed_dictionaries({"hook": st.sampled_from([*HOOKS, "*", "bogus"]) | JSON}) | JSON),
    ):
        if draw(st.booleans()):
            doc[key] = draw(values)
    for key in draw(st.lists(st.sampled_from(["name", "namespace", "checksum", "metadata"]), max_size=2)):
        doc[key] = draw(JSON)
    if draw(st.booleans()):
        doc.update(draw(st.dictionaries(TEXT, JSON, max_size=2)))
    return doc


BODIES = (
    payloads().map(lambda d: json.dumps(d).encode())
    | JSON.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
)
PATHS = st.sampled_from(list(DOCUMENT["paths"])) | st.sampled_from(
    ["/gate/check/", "/gate/check/rollback", "/gate/check/CONFIRM-PROMOTION", "//gate/check", "/gate/check/%2e%2e",
     "/rollback/check/..", "/gate/check/confirm-promotion/", "/api/v1/status/", "/openapi.json/x", "/%00"]
) | st.text(string.ascii_letters + string.digits + "/-._~%:@!$&'()*+,;=", max_size=30).map(lambda p: "/" + p)  # fmt: skip
QUERIES = st.sampled_from(
    ["", "hook=rollback", "name=podinfo&namespace=test&checksum=" + SUM, "metadata[hook]=rollback", "limit=all",
     "limit=-1", "limit=99999999999999999999", "a=%ff%fe", "=" * 50, "&&&"]
) | st.text(string.printable.strip(), max_size=30)  # fmt: skip
HEADERS = st.dictionaries(
    st.sampled_from(
        ["Content-Type", "Authorization", "X-Hub-Signature-256", "X-GitHub-Event", "X-Gitlab-Token",
         "X-Gitgate-Commit", "X-Forwarded-For", "Accept", "Content-Encoding", "Origin", "Cookie", "X-Big"]
    ),
    st.sampled_from(
        ["application/json", "text/plain", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded",
         f"Bearer {TOKEN}", "Bearer ", f"bearer {TOKEN} x", "Basic Zm9vOmJhcg==", "ping", "push", GITLAB_TOKEN,
         "sha256=" + "0" * 64, "gzip", "x" * 8000, "é", "\x7f"]
    )
    | st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=20),
    max_size=4,
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=PATHS,
    method=st.sampled_from([*ANY_METHOD, "TRACE", "PROPFIND", "BREW"])
    | st.text(string.ascii_uppercase, min_size=1, max_size=7),
    query=QUERIES,
    headers=HEADERS,
    body=BODIES,
)
@example(path="/gate/check", method="GET", query="", headers={}, body=b'{"name":"legacy","namespace":"test"}')
def test_any_method_path_query_and_header_gets_a_documented_answer_and_never_a_wrong_open(
    path: str, method: str, query: str, headers: dict[str, str], body: bytes
) -> None:
    client = APP.test_client()
    resp = client.open(
        "/", method=method, data=body, headers=headers, environ_overrides={"PATH_INFO": path, "QUERY_STRING": query}
    )
    status = resp.status_code
    merged = re.sub("/{2,}", "/", path)  # werkzeug routes "//gate/check" as "/gate/check"
    allowed = documented(merged, method)
    if allowed is None:
        # No such operation: 404 (no such path) or 405; OPTIONS on a path that is not a check gets
        # Flask's automatic answer (200, an Allow header, no body).
        expected = {404} if merged not in DOCUMENT["paths"] else {200, 405} if method == "OPTIONS" else {405}
        assert status in expected, (path, method, status, resp.get_data(as_text=True))
    else:
        assert status in allowed, (path, method, status, resp.get_data(as_text=True))
    assert status < 500 or (status == 501 and merged in WRITES)  # 501: no forge to open requests with
    assert_not_a_wrong_open(merged, body, status)
    if status >= 400 and method != "HEAD":
        text = resp.get_data(as_text=True)
        assert resp.mimetype == "text/plain" and text.endswith("\n") and "\n" not in text[:-1], text


@settings(max_examples=150, deadline=None)
@given(path=st.sampled_from(CHECKS), method=st.sampled_from(["POST", "GET", "PUT"]), body=payloads())
def test_a_check_opens_exactly_when_an_approval_in_the_snapshot_matches(path: str, method: str, body: Any) -> None:
    """Both directions, for payloads the server accepts: 200 iff the README's rules say open."""
    resp = APP.test_client().open(path, method=method, data=json.dumps(body).encode())
    if resp.status_code == 400:
        return  # refused input: covered above (never 200)
    hook = hook_of(path, body)
    want = 200 if opens(body["namespace"], body["name"], hook or "", body.get("checksum") or None) else 403
    assert resp.status_code == want, (path, body, resp.get_data(as_text=True))
    assert resp.headers["X-Gitgate-Commit"] == COMMIT


def test_the_generated_payloads_reach_both_answers() -> None:
    """The property above is not vacuous: its generator finds opens and closes (and 400s)."""
    seen = set()

    @settings(max_examples=100, deadline=None, database=None)
    @given(path=st.sampled_from(CHECKS), body=payloads())
    def probe(path: str, body: Any) -> None:
        seen.add(APP.test_client().post(path, data=json.dumps(body).encode()).status_code)

    probe()
    assert seen >= {200, 403, 400}


# --- a real `gitgate serve`, over raw sockets ----------------------------------------------------------


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in KiB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def send_raw(port: int, data: bytes, *, timeout: float = 10) -> bytes:
    """Send `data`, close the sending side, read what comes back until the server closes."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the server may close first: reset, broken pipe, not connected
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                out += chunk
    return out


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Iterator[Service]:
    """`gitgate serve` on a signed approvals repo that opens confirm-promotion of test/podinfo @ SUM."""
    root = tmp_path_factory.mktemp("live")
    repo = Approvals.create(root / "approvals", keys)
    repo.approve("test", "podinfo", "confirm-promotion", SUM)
    repo.land("approve podinfo", keys.alice)
    args = ["--repo", repo.url, "--interval", "60s", "--state-dir", str(root / "state")]
    svc = Service([*args, "--trust-ssh", str(keys.allowed_signers)], root / "run").start()
    try:
        yield svc
    finally:
        svc.stop()
    assert "Traceback" not in svc.log.read_text(errors="replace")


def assert_serving(svc: Service) -> None:
    assert requests.get(svc.url + "/healthz", timeout=5).status_code == 200
    assert svc.check("confirm-promotion", "test", "podinfo", SUM).status_code == 200
    assert svc.check("confirm-promotion", "test", "podinfo", "0000000000").status_code == 403


# What waitress or gitgate may answer a malformed request: client errors, and 501 for a
# Transfer-Encoding it does not implement (RFC 9112 §6.1 asks for exactly that).
RAW_STATUSES = {100, 200, 400, 403, 404, 405, 413, 431, 501}
RAW = raw_http_corpus()


def test_malformed_http_never_opens_a_gate_and_leaves_the_process_answering_in_bounded_memory(live: Service) -> None:
    assert live.proc is not None
    assert_serving(live)
    for case in RAW:  # once to warm up: waitress and Flask allocate their buffers
        send_raw(live.port, case.data)
    before, _ = rss_kib(live.proc.pid)
    answered: dict[str, list[int]] = {}
    for _ in range(3):
        for case in RAW:
            answered[case.id] = statuses(send_raw(live.port, case.data))
    wrong = {c.id: answered[c.id] for c in RAW if 200 in answered[c.id] and not c.may_open}
    assert wrong == {}
    odd = {c.id: answered[c.id] for c in RAW if not set(answered[c.id]) <= RAW_STATUSES}
    assert odd == {}
    assert statuses(send_raw(live.port, smuggled())) in ([400], [403])
    after, peak = rss_kib(live.proc.pid)
    assert after - before < 32 * 1024, f"RSS grew from {before} to {after} KiB over {3 * len(RAW)} requests"
    assert peak < 512 * 1024, f"peak RSS {peak} KiB"
    assert_serving(live)


def test_slow_and_half_sent_requests_do_not_stop_answers(live: Service) -> None:
    """60 connections that send part of a request and stall (slowloris): Flagger's checks are still
    answered while they hang, and once they go the process is as it was."""
    assert live.proc is not None
    whole = http_request(APPROVED_BODY)
    stalls = [whole[:5], whole[: len(whole) // 2], whole[:-10], http_request(DENIED_BODY, length=b"100000")[:-5]]
    slow = []
    try:
        for i in range(60):
            sock = socket.create_connection(("127.0.0.1", live.port), timeout=5)
            sock.sendall(stalls[i % len(stalls)])
            slow.append(sock)
        for i in range(20):
            sock = slow[i]
            sock.sendall(b"x")  # a byte now and then keeps a slowloris connection alive
        assert_serving(live)
        with requests.Session() as http:
            for _ in range(10):
                resp = http.post(live.url + "/gate/check/confirm-promotion", data=APPROVED_BODY, timeout=5)
                assert (resp.status_code, resp.text) == (200, "Approved\n")
    finally:
        for sock in slow:
            sock.close()
    time.sleep(0.2)  # let the server notice the closed sockets
    assert_serving(live)
    assert rss_kib(live.proc.pid)[1] < 512 * 1024

"""The same app behind a real waitress server, as `gitgate serve` runs it: real sockets, real HTTP.

What a client on the network can do to the server (chunked bodies, lying Content-Length, slow and
partial requests, many at once) must still get a correct answer, never a 5xx, and leave it serving.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import waitress
from test_server import COMMIT, KIB64, SUM, Served, check_counts, payload, serve, snapshot

from gitgate.commands.serve import THREADS

APPROVED = json.dumps(payload()).encode()  # opens confirm-promotion of test/podinfo
HEAD = b"POST /gate/check/confirm-promotion HTTP/1.1\r\nHost: gitgate\r\nContent-Type: application/json\r\n"


@dataclass
class Running:
    url: str
    port: int
    served: Served


@contextlib.contextmanager
def running(caplog: pytest.LogCaptureFixture, *, channel_timeout: int) -> Iterator[Running]:
    served = serve(snapshot())
    sockets: dict[int, Any] = {}
    # As `gitgate serve` configures it; the loop checks for idle channels every second.
    srv = waitress.create_server(
        served.client.application,
        map=sockets,
        host="127.0.0.1",
        port=0,
        threads=THREADS,
        ident="gitgate",
        max_request_body_size=1 << 20,
        channel_timeout=channel_timeout,
        cleanup_interval=1,
    )
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            srv.asyncore.loop(timeout=0.05, map=sockets, use_poll=True, count=1)

    thread = threading.Thread(target=loop, name="waitress", daemon=True)
    thread.start()
    try:
        yield Running(f"http://127.0.0.1:{srv.effective_port}", srv.effective_port, served)
    finally:
        stop.set()
        thread.join(timeout=10)
        srv.task_dispatcher.shutdown()
        for dispatcher in list(sockets.values()):
            dispatcher.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


@pytest.fixture
def server(caplog: pytest.LogCaptureFixture) -> Iterator[Running]:
    """The production channel timeout (30 s)."""
    with running(caplog, channel_timeout=30) as srv:
        yield srv


@pytest.fixture
def impatient_server(caplog: pytest.LogCaptureFixture) -> Iterator[Running]:
    """A 1 s channel timeout, so a client that stalls mid-request is dropped within the test."""
    with running(caplog, channel_timeout=1) as srv:
        yield srv


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def parse(data: bytes) -> list[Answer]:
    """Every HTTP/1.x response in a byte stream (all of waitress's carry a Content-Length)."""
    answers = []
    while data:
        head, sep, data = data.partition(b"\r\n\r\n")
        assert sep, f"truncated response: {head!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        length = int(headers["content-length"])
        answers.append(Answer(int(status_line.split()[1]), headers, data[:length]))
        data = data[length:]
    return answers


def exchange(port: int, *pieces: bytes, pause: float = 0.0, timeout: float = 5) -> list[Answer]:
    """Send `pieces` (pausing between them), then read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(pause)
        return parse(read_to_close(sock))


def read_to_close(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def request(body: bytes, *, extra: bytes = b"", close: bool = True) -> bytes:
    conn = b"Connection: close\r\n" if close else b""
    return HEAD + conn + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


def chunked(body: bytes, size: int = 4096) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


def assert_healthy(running: Running) -> None:
    resp = requests.get(running.url + "/healthz", timeout=5)
    assert resp.status_code == 200
    assert resp.text == "ok\n"


def test_checks_over_real_http(server: Running) -> None:
    with requests.Session() as http:
        ok = http.post(server.url + "/gate/check/confirm-promotion", json=payload(), timeout=5)
        assert (ok.status_code, ok.text, ok.headers["X-Gitgate-Commit"]) == (200, "Approved\n", COMMIT)
        assert ok.headers["Server"] == "gitgate"
        closed = http.post(server.url + "/gate/check/confirm-traffic-increase", json=payload(), timeout=5)
        assert closed.status_code == 403
        assert "gates/test/podinfo.yaml" in closed.text
        assert closed.headers["X-Gitgate-Commit"] == COMMIT
        bad = http.post(server.url + "/rollback/check", data=b"{", timeout=5)
        assert bad.status_code == 400
        assert bad.headers["X-Gitgate-Commit"] == COMMIT
        assert http.get(server.url + "/gate/approve", timeout=5).text == "OK\n"
        assert http.delete(server.url + "/gate/halt", timeout=5).status_code == 403
        assert http.post(server.url + "/gate/open", json=payload(), timeout=5).status_code == 401
        assert http.get(server.url + "/readyz", timeout=5).status_code == 200
        assert http.post(server.url + "/nope", json=payload(), timeout=5).status_code == 404


def test_a_chunked_body_over_64_kib_is_a_413(server: Running) -> None:
    padded = json.dumps(payload(pad=" " * KIB64)).encode()

    def pieces(body: bytes) -> Iterator[bytes]:
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000]

    with requests.Session() as http:
        big = http.post(server.url + "/gate/check/confirm-promotion", data=pieces(padded), timeout=5)
        assert big.request.headers["Transfer-Encoding"] == "chunked"
        assert big.status_code == 413
        assert big.text == "body over 65536 bytes; Flagger's payload is far smaller\n"
        assert big.headers["X-Gitgate-Commit"] == COMMIT
        # A small chunked body is read whole and answered.
        small = http.post(server.url + "/gate/check/confirm-promotion", data=pieces(APPROVED), timeout=5)
        assert (small.status_code, small.text) == (200, "Approved\n")

    (raw,) = exchange(server.port, HEAD + b"Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(padded))
    assert raw.status == 413
    assert raw.headers["x-gitgate-commit"] == COMMIT
    (raw,) = exchange(
        server.port, HEAD + b"Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(APPROVED)
    )
    assert (raw.status, raw.text) == (200, "Approved\n")
    assert_healthy(server)


def test_a_content_length_shorter_than_the_body_never_opens_the_gate(impatient_server: Running) -> None:
    server = impatient_server
    # The server reads the first 20 bytes of an approved payload: not JSON.
    short = HEAD + b"Content-Length: 20\r\n\r\n" + APPROVED
    answers = exchange(server.port, short.replace(HEAD, HEAD + b"Connection: close\r\n"))
    assert [a.status for a in answers] == [400]
    assert answers[0].text.startswith("body is not JSON")
    assert answers[0].headers["x-gitgate-commit"] == COMMIT
    # On a kept-alive connection the rest of the body is not taken as a request that could pass.
    answers = exchange(server.port, short)
    assert answers[0].status == 400
    assert all(400 <= a.status < 500 for a in answers)
    assert_healthy(server)


def test_a_content_length_longer_than_the_body_is_dropped_without_an_answer(impatient_server: Running) -> None:
    server = impatient_server
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as stalled:
        stalled.sendall(HEAD + b"Content-Length: 500\r\n\r\n" + APPROVED)
        # While it waits for the rest, everyone else is answered.
        resp = requests.post(server.url + "/gate/check/confirm-promotion", data=APPROVED, timeout=5)
        assert (resp.status_code, resp.text) == (200, "Approved\n")
        # The missing bytes never come: the server closes the connection (within the socket's 5 s
        # timeout), answering nothing.
        assert read_to_close(stalled) == b""
    assert_healthy(server)


@pytest.mark.parametrize(
    ("headers", "body", "status", "says"),
    [
        (b"Content-Length: 100000\r\n", b" " * 100_000, 413, "body over 65536 bytes"),
        (b"Content-Length: 2000000\r\n", b"", 413, "Request Entity Too Large"),
        (b"Content-Length: abc\r\n", APPROVED, 400, "Content-Length is invalid"),
        (b"Content-Length: -5\r\n", APPROVED, 400, "Content-Length is invalid"),
        (b"Content-Length: 5\r\nContent-Length: %d\r\n" % len(APPROVED), APPROVED, 400, "Content-Length is invalid"),
    ],
    ids=["over-64KiB", "over-server-limit", "not-a-number", "negative", "twice"],
)
def test_a_content_length_out_of_bounds_or_unreadable_is_a_4xx(
    server: Running, headers: bytes, body: bytes, status: int, says: str
) -> None:
    answers = exchange(server.port, HEAD + b"Connection: close\r\n" + headers + b"\r\n" + body)
    assert [a.status for a in answers] == [status]
    assert says in answers[0].text
    assert_healthy(server)


def test_garbage_instead_of_http_is_a_400(server: Running) -> None:
    answers = exchange(server.port, b"\x00\x01\x02 not http\r\n\r\n")
    assert [a.status for a in answers] == [400]
    assert_healthy(server)


def test_a_request_sent_byte_by_byte_is_answered(server: Running) -> None:
    data = request(APPROVED)
    started = time.monotonic()
    (answer,) = exchange(server.port, *(data[i : i + 8] for i in range(0, len(data), 8)), pause=0.01)
    assert time.monotonic() - started > 0.2  # it really was slow
    assert (answer.status, answer.text, answer.headers["x-gitgate-commit"]) == (200, "Approved\n", COMMIT)


def test_slow_and_partial_clients_do_not_hold_up_others(server: Running) -> None:
    data = request(APPROVED)
    # More half-sent requests than the server has worker threads.
    partial = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(THREADS * 3)]
    try:
        for i, sock in enumerate(partial):
            sock.sendall(data[: 10 + i * 3])
        # Answered while they wait (a thread-per-connection server would block here for 30 s).
        with requests.Session() as http:
            for _ in range(5):
                resp = http.post(server.url + "/gate/check/confirm-promotion", data=APPROVED, timeout=5)
                assert (resp.status_code, resp.text) == (200, "Approved\n")
        # The partial requests, finished, are answered correctly.
        for i, sock in enumerate(partial):
            sock.sendall(data[10 + i * 3 :])
        for sock in partial:
            (answer,) = parse(read_to_close(sock))
            assert (answer.status, answer.text) == (200, "Approved\n")
    finally:
        for sock in partial:
            sock.close()
    assert_healthy(server)


def test_200_concurrent_checks_are_all_answered_correctly(server: Running) -> None:
    cases: list[tuple[str, Any, int, str]] = [
        ("/gate/check/confirm-promotion", payload(), 200, "Approved\n"),
        ("/gate/check/confirm-traffic-increase", payload(), 403, "confirm-traffic-increase of test/podinfo"),
        ("/rollback/check", payload(), 200, "Approved\n"),
        ("/gate/check", payload("legacy"), 200, "Approved\n"),
        ("/gate/check/confirm-rollout", payload("newapp"), 403, "no gate file gates/test/newapp.yaml"),
        ("/gate/check/confirm-promotion", payload("api", "prod"), 403, "frozen until"),
    ]
    start = threading.Barrier(200, timeout=10)

    def one(i: int) -> tuple[int, int, str, str]:
        path, body, _, _ = cases[i % len(cases)]
        start.wait()
        resp = requests.post(server.url + path, json=body, timeout=10)
        return i, resp.status_code, resp.text, resp.headers.get("X-Gitgate-Commit", "missing")

    with ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(one, range(200)))
    for i, status, text, commit in results:
        _, _, want_status, want_text = cases[i % len(cases)]
        assert status == want_status, (i, text)
        assert text.startswith(want_text) or want_text in text, (i, text)
        assert commit == COMMIT
    counts = check_counts(server.served.client)
    assert sum(counts.values()) == 200
    assert counts[("confirm-promotion", "open")] == 34
    assert counts[("confirm-promotion", "closed")] == 33
    assert_healthy(server)
    assert SUM in requests.get(server.url + "/api/v1/status", timeout=5).text

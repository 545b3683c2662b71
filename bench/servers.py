"""Which production WSGI server should `gitgate serve` use? Measure it.

    python bench/servers.py                  # every candidate once, 5 s per run: 5 to 10 minutes
    python bench/servers.py --only waitress  # candidates whose label contains "waitress"
    python bench/servers.py --rounds 3 --retries 1 --json bench/out/servers.json   # steadier figures

Each candidate serves the real `create_app(...)` in a process of its own on 127.0.0.1, over a
Snapshot of 10,000 gates held in memory, beside a background thread standing in for the
reconciler (SPEC §2: one process, a background reconciler, scale with replicas, not workers).
wrk (Debian: `apt-get install wrk`) loads it over keep-alive connections:

- POST /gate/check/confirm-promotion with a Flagger payload, rotating over the 10,000 gates,
  whose answer is 403 (no approval for this checksum) -- the common case;
- GET /healthz, the same server with almost no application work: the server's own ceiling;

at 16 and 64 connections, `--duration` seconds each, after a 1 s warm-up. Every answer's status
is checked by the Lua script; anything but 403 (check) or 200 (healthz) counts as an error, as do
connect/read/write errors and timeouts. The CPU time of the server process tree, of the load
generator and of everything else on the machine is recorded too: which side was saturated, and
how much other work disturbed the run (with --retries, a disturbed run is measured again).

Then two robustness runs per candidate:
- checks at 16 connections while 4 clients read GET /api/v1/status back to back (people with the
  status page open; with 10,000 gates each read is megabytes of JSON and CPU-heavy);
- a slow-client probe: 32 connections each send the headers of a check and the first bytes of
  its body, then stall (a slow or stuck peer on a cluster network); the probe times a fresh
  GET /healthz. A server that reads request bodies in its worker threads has them all tied up.

Everything stays on loopback; every run and wait is bounded. Results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.metadata
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from string import Template
from types import FrameType
from typing import Any

HOST = "127.0.0.1"
GATES = 10_000
NAMESPACES = 50
COMMIT = "5f0c3a9e1d2b4c6a8e0f1a2b3c4d5e6f7a8b9c0d"
ASKED_CHECKSUM = "c0ffee1234"  # no approval carries it: the answer is 403
CHECK_PATH = "/gate/check/confirm-promotion"
CONNECTIONS = (16, 64)
STALLED = 32  # more than any thread count tried
STATUS_READERS = 4
PROBE_TIMEOUT = 3.0
BODY_CAP = 1 << 20  # what `gitgate serve` gives waitress: max_request_body_size


# --- the application under test (runs in the server process) --------------------------------


def build_snapshot() -> Any:
    """10,000 gates in 50 namespaces, each with two approvals, and a repo-wide policy."""
    from gitgate.model import Approval, CanaryRef, Default, Gate, Policy, Snapshot

    expires = datetime.now(UTC) + timedelta(days=1)
    gates = {}
    for i in range(GATES):
        canary = CanaryRef(f"team-{i % NAMESPACES:02d}", f"app-{i:05d}")
        path = f"gates/{canary.namespace}/{canary.name}.yaml"
        gates[canary] = Gate(
            canary=canary,
            path=path,
            approvals=(
                Approval(hook="confirm-rollout", checksum="*", note="rollouts are routine", line=8),
                Approval(
                    hook="confirm-promotion",
                    checksum=f"{i:010x}",
                    expires=expires,
                    request=f"https://github.com/acme/approvals/pull/{i + 1}",
                    note="load-tested",
                    line=10,
                ),
            ),
        )
    return Snapshot(
        commit=COMMIT, gates_path="gates", gates=gates, policies=(Policy(path="gitgate.yaml", default=Default.CLOSED),)
    )


class BenchSource:
    """The GateSource the service reads: a snapshot and the reconciler's account of itself."""

    def __init__(self, snapshot: Any) -> None:
        self.snapshot = snapshot
        self.triggered = threading.Event()

    def status(self) -> dict[str, Any]:
        return {
            "repo": "bench://in-memory",
            "branch": "main",
            "verify": "all",
            "trust": "bench",
            "ready": self.snapshot is not None,
            "verified": None,
            "remote_head": COMMIT,
            "last_fetch": {"at": None, "ok_at": None, "error": None},
            "refused": [],
        }

    def trigger(self) -> None:
        self.triggered.set()


def build_app() -> Any:
    """create_app(...) over the in-memory snapshot, plus the reconciler's stand-in thread."""
    from gitgate.metrics import Metrics
    from gitgate.server import create_app

    source = BenchSource(build_snapshot())

    def reconciler() -> None:  # wakes like the real one and swaps the (unchanged) snapshot in
        while True:
            source.triggered.wait(1.0)
            source.triggered.clear()
            source.status()
            source.snapshot = source.snapshot

    threading.Thread(target=reconciler, name="reconciler", daemon=True).start()
    return create_app(source=source, metrics=Metrics(), admin_token=None)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve_waitress(port: int, threads: int) -> None:
    import waitress

    signal.signal(signal.SIGTERM, _interrupt)
    # The same arguments as gitgate/commands/serve.py.
    waitress.serve(
        build_app(),
        host=HOST,
        port=port,
        threads=threads,
        ident="gitgate",
        max_request_body_size=BODY_CAP,
        channel_timeout=30,
        _quiet=True,
    )


def serve_cheroot(port: int, threads: int, *, tuned: bool) -> None:
    from cheroot import wsgi

    signal.signal(signal.SIGTERM, _interrupt)
    server = wsgi.Server((HOST, port), build_app(), numthreads=threads, max=threads, server_name="gitgate")
    server.max_request_body_size = BODY_CAP
    if tuned:
        # cheroot's defaults: a listen backlog of 5, and at most 10 idle keep-alive connections
        # (beyond that every answer says "Connection: close"). Tuned to match waitress/gunicorn.
        server.request_queue_size = 1024
        server.keep_alive_conn_limit = 256
    server.safe_start()  # stops on KeyboardInterrupt


def serve_gunicorn(port: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    class Application(BaseApplication):  # type: ignore[misc]
        def __init__(self, options: dict[str, Any]) -> None:
            self.options = options
            super().__init__()

        def load_config(self) -> None:
            for key, value in self.options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            # Runs in the forked worker (no preload): the reconciler thread must start here,
            # a thread started in the arbiter would not survive the fork.
            return build_app()

    Application(
        {
            "bind": f"{HOST}:{port}",
            "workers": 1,  # gitgate's state lives in its process
            "worker_class": "gthread",
            "threads": threads,
            "loglevel": "warning",
            "graceful_timeout": 5,
        }
    ).run()


def serve_granian(port: int, threads: int) -> None:
    from granian.constants import HTTPModes, Interfaces
    from granian.server import Server

    def load(_target: str) -> Any:
        # Runs in the forked worker: the reconciler thread must start there (see gunicorn).
        return build_app()

    Server(
        "bench",
        address=HOST,
        port=port,
        interface=Interfaces.WSGI,
        workers=1,  # gitgate's state lives in its process
        blocking_threads=threads,
        http=HTTPModes.http1,
        log_enabled=False,
    ).serve(target_loader=load)


# --- candidates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    server: str
    threads: int
    variant: str = ""

    @property
    def settings(self) -> str:
        extra = {
            "tuned": ", backlog 1024, keep-alive cap 256",
            "defaults": ", library defaults (backlog 5, keep-alive cap 10)",
        }.get(self.variant, "")
        worker = {"gunicorn": "1 gthread worker, ", "granian": "1 worker process, blocking "}.get(self.server, "")
        return f"{worker}threads={self.threads}{extra}"

    @property
    def label(self) -> str:
        return f"{self.server} {self.settings}"

    def argv(self, port: int) -> list[str]:
        args = [sys.executable, str(Path(__file__).resolve()), "--serve", self.server]
        args += ["--threads", str(self.threads), "--port", str(port)]
        return args + (["--variant", self.variant] if self.variant else [])


CANDIDATES = [
    Candidate("waitress", 4),
    Candidate("waitress", 8),
    Candidate("waitress", 16),
    Candidate("cheroot", 4, "tuned"),
    Candidate("cheroot", 8, "tuned"),
    Candidate("cheroot", 16, "tuned"),
    Candidate("cheroot", 8, "defaults"),
    Candidate("gunicorn", 4),
    Candidate("gunicorn", 8),
    Candidate("gunicorn", 16),
    Candidate("granian", 1),
    Candidate("granian", 2),
    Candidate("granian", 8),
]


# --- the load generator: wrk and its Lua scripts ---------------------------------------------

LUA_COMMON = """
-- Counts answers by status in each wrk thread; done() sums them and prints one line.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) expected = tonumber(args[1]); pause = tonumber(args[2] or "0"); good = 0; bad = 0 end
function response(status, headers, body)
  if status == expected then good = good + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local good, bad = 0, 0
  for _, t in ipairs(threads) do good = good + t:get("good"); bad = bad + t:get("bad") end
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    good, bad, e.connect, e.read, e.write, e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""

LUA_PACED = """
-- Paced load: each connection waits `pause` ms after an answer before its next request.
function delay() return pause end
"""

LUA_CHECK = Template("""
-- Flagger's confirm-promotion payload for one of the gates, in turn.
local n = 0
local headers = {["Content-Type"] = "application/json"}
function request()
  n = (n + 1) % $gates
  local body = string.format(
    '{"name":"app-%05d","namespace":"team-%02d","phase":"Progressing","checksum":"$checksum",' ..
    '"metadata":{"source":"flagger"}}', n, n % $namespaces)
  return wrk.format("POST", "$path", headers, body)
end
""").substitute(gates=GATES, namespaces=NAMESPACES, checksum=ASKED_CHECKSUM, path=CHECK_PATH)


@dataclass
class Run:
    endpoint: str
    connections: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # unexpected statuses + socket errors + timeouts
    error_detail: dict[str, int]
    server_cpu: float  # cores busy, server process tree
    server_ms_per_request: float  # server CPU time per answer
    load_cpu: float  # cores busy, load generator (wrk, and this process's status readers)
    other_cpu: float  # cores busy with anything else on the machine (noise; steal time included)
    status_reads: list[float] = field(default_factory=list)  # seconds per /api/v1/status read, if any


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and all its descendants, from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total


def busy_cpu_seconds() -> float:
    """Time all CPUs spent busy (not idle or waiting on I/O), from the first line of /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU time of this process (its status readers) and of its finished children (wrk)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def wrk(
    port: int, endpoint: str, connections: int, *, duration: float, scripts: dict[str, Path], server_pid: int
) -> Run:
    path, expected = (CHECK_PATH, 403) if endpoint == "check" else ("/healthz", 200)
    return load(port, path, expected, scripts[endpoint], connections, duration=duration, server_pid=server_pid)


def load(
    port: int,
    path: str,
    expected: int,
    script: Path,
    connections: int,
    *,
    duration: float,
    server_pid: int,
    extra: tuple[str, ...] = (),
) -> Run:
    """wrk over `connections` keep-alive connections; every answer but `expected` is an error.
    `extra` goes to the script after the expected status (e.g. a delay between requests)."""
    endpoint = "healthz" if path == "/healthz" else "check"
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--timeout", "5s"]
    cmd += ["-s", str(script), f"http://{HOST}:{port}{path}", "--", str(expected), *extra]
    before = own_cpu_seconds()
    server_before = cpu_seconds(server_pid)
    busy_before = busy_cpu_seconds()
    started = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30, check=False)
    wall = time.monotonic() - started
    busy = busy_cpu_seconds() - busy_before
    server_cpu = cpu_seconds(server_pid) - server_before
    load_cpu = own_cpu_seconds() - before
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    n, micros, _good, bad, connect, read, write, timeout, p50, p99 = (int(x) for x in line.split()[1:])
    seconds = micros / 1e6
    detail = {"status": bad, "connect": connect, "read": read, "write": write, "timeout": timeout}
    return Run(
        endpoint=endpoint,
        connections=connections,
        requests=n,
        seconds=round(seconds, 3),
        rps=n / seconds if seconds else 0.0,
        p50_ms=p50 / 1000,
        p99_ms=p99 / 1000,
        errors=sum(detail.values()),
        error_detail=detail,
        server_cpu=server_cpu / wall,
        server_ms_per_request=server_cpu / n * 1000 if n else 0.0,
        load_cpu=load_cpu / wall,
        other_cpu=max(0.0, busy - server_cpu - load_cpu) / wall,
    )


# --- driving one candidate -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def fetch(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 5.0) -> tuple[int, str, str]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(), resp.getheader("X-Gitgate-Commit", "")
    finally:
        conn.close()


def check_body(i: int) -> bytes:
    return json.dumps(
        {"name": f"app-{i:05d}", "namespace": f"team-{i % NAMESPACES:02d}", "checksum": ASKED_CHECKSUM}
    ).encode()


@contextlib.contextmanager
def running(candidate: Candidate, log: Path) -> Iterator[tuple[int, int]]:
    """Start the candidate in its own process (group); yield (port, pid) once /healthz answers."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(candidate.argv(port), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{candidate.label} exited with {proc.returncode}: {log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                if fetch(port, "GET", "/healthz", timeout=1)[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{candidate.label} did not answer /healthz within 60 s")
            time.sleep(0.1)
        yield port, proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def sanity(port: int) -> None:
    """The answers under load are the real ones: a 403 naming the canary and commit, and 200 ok."""
    status, text, commit = fetch(port, "POST", CHECK_PATH, check_body(42))
    want = f"confirm-promotion of team-42/app-00042 (checksum {ASKED_CHECKSUM}) is closed: no approval"
    if status != 403 or not text.startswith(want) or commit != COMMIT:
        raise RuntimeError(f"unexpected check answer {status} {commit!r}: {text!r}")
    status, text, _ = fetch(port, "GET", "/healthz")
    if status != 200 or text.strip() != "ok":
        raise RuntimeError(f"unexpected /healthz answer {status}: {text!r}")


def slow_clients(port: int) -> float | None:
    """Seconds for GET /healthz while STALLED uploads hang mid-body; None if not within the timeout."""
    head = (
        f"POST {CHECK_PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        "Content-Length: 200\r\n\r\n"
    ).encode()
    stalled: list[socket.socket] = []
    try:
        for _ in range(STALLED):
            s = socket.create_connection((HOST, port), timeout=2)
            s.sendall(head + b'{"name": "app-')
            stalled.append(s)
        time.sleep(0.5)  # let the server hand them to whatever reads them
        started = time.monotonic()
        try:
            status, _, _ = fetch(port, "GET", "/healthz", timeout=PROBE_TIMEOUT)
        except OSError:  # socket.timeout is an OSError
            return None
        return time.monotonic() - started if status == 200 else None
    finally:
        for s in stalled:
            s.close()


@contextlib.contextmanager
def status_readers(port: int, readers: int) -> Iterator[list[float]]:
    """`readers` clients reading /api/v1/status back to back (people with the status page open)."""
    stop = threading.Event()
    reads: list[float] = []

    def read() -> None:
        while not stop.is_set():
            started = time.monotonic()
            with contextlib.suppress(OSError):
                if fetch(port, "GET", "/api/v1/status", timeout=30)[0] == 200:
                    reads.append(time.monotonic() - started)

    threads = [threading.Thread(target=read, name=f"status-reader-{i}", daemon=True) for i in range(readers)]
    for t in threads:
        t.start()
    try:
        time.sleep(1)  # under way before the measured run starts
        yield reads
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=35)


@dataclass
class Result:
    candidate: Candidate
    runs: list[Run] = field(default_factory=list)
    beside_status: Run | None = None  # checks at 16 connections while STATUS_READERS read /api/v1/status
    slow_client_healthz_s: float | None = None
    failure: str | None = None


@dataclass(frozen=True)
class Options:
    duration: float  # seconds per run
    max_other: float  # cores busy elsewhere on the machine above which a run is measured again
    retries: int  # how many times, at most; the attempt with the least outside load is kept


def wait_for_quiet(limit: float, patience: float = 3.0) -> None:
    """Wait, at most `patience` seconds, until the machine (the idle server aside) uses under `limit` cores."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        before = busy_cpu_seconds()
        time.sleep(0.5)
        if (busy_cpu_seconds() - before) / 0.5 < limit:
            return


def steady(opts: Options, what: str, go: Callable[[], Run]) -> Run:
    """One measured run; again (at most opts.retries times) if the rest of the machine was busy."""
    attempts: list[Run] = []
    for attempt in range(1 + opts.retries):
        if attempt:
            say(f"  ({what}: {attempts[-1].other_cpu:.2f} cores busy elsewhere; once more)")
        wait_for_quiet(opts.max_other)
        attempts.append(go())
        if attempts[-1].other_cpu <= opts.max_other:
            break
    return min(attempts, key=lambda r: r.other_cpu)


def show(what: str, run: Run) -> None:
    say(
        f"  {what:22} {run.rps:6.0f} rps  p50 {run.p50_ms:7.2f} ms  p99 {run.p99_ms:7.2f} ms  errors {run.errors}  "
        f"{run.server_ms_per_request:.3f} ms CPU/request  cores: server {run.server_cpu:.2f} "
        f"load {run.load_cpu:.2f} other {run.other_cpu:.2f}"
    )


def measure(candidate: Candidate, opts: Options, scripts: dict[str, Path], workdir: Path) -> Result:
    result = Result(candidate)
    log = workdir / f"{candidate.server}-{candidate.threads}{candidate.variant}.log"
    try:
        with running(candidate, log) as (port, pid):
            sanity(port)
            wrk(port, "check", 16, duration=1, scripts=scripts, server_pid=pid)  # warm-up, discarded
            for connections in CONNECTIONS:
                for endpoint in ("check", "healthz"):
                    what = f"{endpoint} c={connections}"
                    run = steady(
                        opts,
                        what,
                        lambda endpoint=endpoint, connections=connections: wrk(
                            port, endpoint, connections, duration=opts.duration, scripts=scripts, server_pid=pid
                        ),
                    )
                    result.runs.append(run)
                    show(what, run)

            def beside_status() -> Run:
                with status_readers(port, STATUS_READERS) as reads:
                    run = wrk(port, "check", 16, duration=opts.duration, scripts=scripts, server_pid=pid)
                run.status_reads = list(reads)
                return run

            what = f"check c=16 + {STATUS_READERS} status"
            result.beside_status = steady(opts, what, beside_status)
            show(what, result.beside_status)
            result.slow_client_healthz_s = slow_clients(port)
            slow = result.slow_client_healthz_s
            say(f"  /healthz with {STALLED} stalled uploads: " + (f"{slow * 1000:.1f} ms" if slow else "no answer"))
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        result.failure = str(e)
        say(f"  FAILED: {e}")
    return result


# --- report ----------------------------------------------------------------------------------


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def table(results: list[list[Result]]) -> str:
    """Two tables, one row per candidate (and connection count); with several rounds, medians."""
    rounds = max(len(r) for r in results)
    spread = " check rps min-max |" if rounds > 1 else ""
    head = (
        "| server | settings | conns | check rps | healthz rps | check/healthz | check p50 ms | check p99 ms "
        f"| healthz p99 ms | server CPU ms/check | errors | cores busy: server/load/other |{spread}"
    )
    first = [head, "|" + "---|" * (head.count("|") - 1)]
    head2 = (
        f"| server | settings | /healthz with {STALLED} stalled uploads "
        f"| checks (16 conns) beside {STATUS_READERS} /api/v1/status readers: rps | p50 ms | p99 ms "
        "| status read, median s | errors |"
    )
    second = [head2, "|" + "---|" * (head2.count("|") - 1)]
    for tries in results:
        candidate = tries[0].candidate
        name = f"| {candidate.server} | {candidate.settings} "
        failed = [r.failure for r in tries if r.failure]
        if failed:
            first.append(f"{name}| - | failed: {failed[0][:100]} |")
            second.append(f"{name}| failed |")
            continue
        for c in CONNECTIONS:
            check = [x for r in tries for x in r.runs if x.endpoint == "check" and x.connections == c]
            health = [x for r in tries for x in r.runs if x.endpoint == "healthz" and x.connections == c]
            check_rps, health_rps = median(x.rps for x in check), median(x.rps for x in health)
            row = (
                f"{name}| {c} | {check_rps:.0f} | {health_rps:.0f} | {check_rps / health_rps:.2f} "
                f"| {median(x.p50_ms for x in check):.1f} | {median(x.p99_ms for x in check):.1f} "
                f"| {median(x.p99_ms for x in health):.1f} | {median(x.server_ms_per_request for x in check):.2f} "
                f"| {sum(x.errors for x in check + health)} | {median(x.server_cpu for x in check):.2f}/"
                f"{median(x.load_cpu for x in check):.2f}/{max(x.other_cpu for x in check + health):.2f} |"
            )
            if rounds > 1:
                row += f" {min(x.rps for x in check):.0f}-{max(x.rps for x in check):.0f} |"
            first.append(row)
        slows = [r.slow_client_healthz_s for r in tries]
        slow = f"no answer in {PROBE_TIMEOUT:g} s" if None in slows else f"{max(x for x in slows if x) * 1000:.0f} ms"
        mixed = [r.beside_status for r in tries if r.beside_status]
        reads = [x for m in mixed for x in m.status_reads]
        answered = [m for m in mixed if m.requests]  # latency is unknown for a run in which none came back
        p50 = f"{median(m.p50_ms for m in answered):.1f}" if answered else "none answered"
        p99 = f"{median(m.p99_ms for m in answered):.1f}" if answered else "none answered"
        second.append(
            f"{name}| {slow} | {median(m.rps for m in mixed):.0f} | {p50} | {p99} "
            f"| {median(reads) if reads else float('nan'):.2f} | {sum(m.errors for m in mixed)} |"
        )
    return "\n".join(first) + "\n\n" + "\n".join(second)


def machine() -> dict[str, Any]:
    model = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor() or "unknown",
    )
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    versions = {
        name: importlib.metadata.version(name) for name in ("waitress", "cheroot", "gunicorn", "granian", "flask")
    }
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "python": platform.python_version(),
        "os": platform.platform(),
        "wrk": wrk_version.split(" Copyright")[0].strip(),
        **versions,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (default 5)")
    parser.add_argument(
        "--max-other",
        type=float,
        default=0.25,
        help="a run is disturbed when other processes kept over this many cores busy; each run first waits "
        "up to 3 s for less, and --retries measures a disturbed run again (default 0.25)",
    )
    parser.add_argument(
        "--retries", type=int, default=0, help="measure a noisy run again at most this often (default 0)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="measure every candidate this many times (default 1)")
    parser.add_argument("--only", help="only candidates whose label contains this text")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--serve", choices=["waitress", "cheroot", "gunicorn", "granian"], help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:  # a child process: serve one candidate until SIGTERM
        serve: dict[str, Callable[[], None]] = {
            "waitress": lambda: serve_waitress(args.port, args.threads),
            "cheroot": lambda: serve_cheroot(args.port, args.threads, tuned=args.variant == "tuned"),
            "gunicorn": lambda: serve_gunicorn(args.port, args.threads),
            "granian": lambda: serve_granian(args.port, args.threads),
        }
        with contextlib.suppress(KeyboardInterrupt):
            serve[args.serve]()
        return 0

    if shutil.which("wrk") is None:
        say("bench/servers.py needs wrk on PATH (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk)")
        return 2
    opts = Options(duration=args.duration, max_other=args.max_other, retries=args.retries)
    candidates = [c for c in CANDIDATES if not args.only or args.only in c.label]
    command = shlex.join(["python", *sys.argv])
    host = machine()
    runs = f"{args.rounds} x {len(candidates)} candidates x {len(CONNECTIONS) * 2 + 1} runs of {args.duration:g} s"
    say(f"{runs} on {host}")
    with tempfile.TemporaryDirectory(prefix="gitgate-bench-") as tmp:
        workdir = Path(tmp)
        scripts = {"check": workdir / "check.lua", "healthz": workdir / "healthz.lua"}
        scripts["check"].write_text(LUA_COMMON + LUA_CHECK)
        scripts["healthz"].write_text(LUA_COMMON)
        results: list[list[Result]] = [[] for _ in candidates]
        for round_no in range(1, args.rounds + 1):  # rounds interleave, so drift hits every candidate
            for candidate, tries in zip(candidates, results, strict=True):
                say(f"{candidate.label} (round {round_no} of {args.rounds})")
                tries.append(measure(candidate, opts, scripts, workdir))
    print(table(results))
    print()
    print(f"Command: `{command}`")
    print(
        f"Machine: nproc {host['nproc']} ({host['cpu']}), Python {host['python']}, {host['os']}; {host['wrk']}; "
        f"waitress {host['waitress']}, cheroot {host['cheroot']}, gunicorn {host['gunicorn']}, "
        f"Flask {host['flask']}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "command": command,
                    "machine": host,
                    "duration": args.duration,
                    "rounds": args.rounds,
                    "results": [[asdict(r) for r in tries] for tries in results],
                },
                indent=2,
            )
        )
    return 1 if any(r.failure for tries in results for r in tries) else 0


if __name__ == "__main__":
    sys.exit(main())

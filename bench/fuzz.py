"""Hostile input for longer than the test suite gives it (issue 6): what was tried, and how it went.

    python bench/fuzz.py                                       # every category, 60 s each: about 5 minutes
    python bench/fuzz.py --seconds 300 --seed 7 --json bench/out/fuzz.json
    python bench/fuzz.py --only parser,http --seconds 20

The inputs live in tests/hostile.py, shared with tests/test_hostile_files.py and tests/test_hostile_http.py;
this script runs the same rules on many more of them, each category for `--seconds`:

- parser: the named corpus, then gates mutated at the text level and the value level (each case from
  random.Random(seed, i), so any case can be replayed), through parse_gate and parse_policy. A result
  must be a Gate, or problems naming this file, a line inside it (or none for a whole-file problem) and a
  message; an accepted gate must read back the same after being written out. Counted: crashes
  (exceptions), contract violations, hangs (a parse over 5 s), the slowest parse and the peak memory one
  parse allocated (tracemalloc, on every 50th case).
- lint: batches of 200 mutated files through `python -m gitgate lint` as a process: exit 0 or 1 only, no
  traceback, one "file[:line]: message" line per problem; the process's peak RSS.
- http: the WSGI app over a snapshot the parser built: random methods, paths, query strings, headers and
  bodies (Flagger payloads naming known canaries, mutated; JSON; bytes). Each answer must be a status that
  /openapi.json lists (404/405 where it describes no operation), never a 5xx; a check answers 200 only if
  an approval matches, by an oracle written from the README's rules (tests/hostile.py: `opens`).
- raw: a real `gitgate serve` on its embedded default repo, with an approval committed (signed), over raw
  sockets: the malformed-request corpus, random byte mutations of a denied check, and waves of 60 stalled
  connections. A wrong open is an "Approved" answer to a request made from the denied one. RSS sampled.
- tree: the same service; signed commits each adding one odd entry (random name bytes, mode and kind)
  together with a valid change that would open rollback. A wrong open is rollback opening although the
  entry breaks the rules (an independent check of path and mode); the commit must be refused then, with
  the entry named in /api/v1/status.

Everything stays on loopback and in a temporary folder. Exit status 1 if anything was wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import re
import resource
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import hostile  # noqa: E402 - shared with the tests, found through the path above
import requests  # noqa: E402
from servers import free_port  # noqa: E402 - a sibling script, found as this one is run

from gitgate.metrics import Metrics  # noqa: E402
from gitgate.schema import parse_gate, parse_policy  # noqa: E402
from gitgate.server import create_app  # noqa: E402

CATEGORIES = ("parser", "lint", "http", "raw", "tree")
SUM = hostile.SUM


@dataclass
class Result:
    category: str
    tried: int = 0
    crashes: int = 0  # exceptions, tracebacks, 5xx answers, a dead process
    wrong_opens: int = 0
    violations: int = 0  # broken contract short of a crash: undocumented status, unlocated problem, ...
    hangs: int = 0
    seconds: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)  # the first few failures, replayable

    def count(self, kind: str) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    def fail(self, what: str, example: str) -> None:
        setattr(self, what, getattr(self, what) + 1)
        if sum(e.startswith(what) for e in self.examples) < 5:  # the first five of each kind
            self.examples.append(f"{what}: {example[:400]}")


class Hang(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    def ring(signum: int, frame: FrameType | None) -> None:
        raise Hang

    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --- parser --------------------------------------------------------------------------------------


def parser_cases(seed: int) -> Iterator[tuple[str, str, bytes]]:
    """(label, kind, data): the named corpus, then mutated gates, each replayable from its label."""
    for case in hostile.gate_corpus():
        yield f"corpus {case.id}", "corpus", case.data
    for i in itertools.count():
        yield (
            f"hostile.mutated_gate(random.Random('{seed}/parser/{i}'))",
            "mutated",
            hostile.mutated_gate(random.Random(f"{seed}/parser/{i}")),
        )


def fuzz_parser(seconds: float, seed: int) -> Result:
    res = Result("parser")
    slowest = (0.0, "")
    peak_alloc = 0
    stop = time.monotonic() + seconds
    for label, kind, data in parser_cases(seed):
        if time.monotonic() > stop:
            break
        res.count(kind)
        res.tried += 1
        if kind == "corpus" or res.tried % 50 == 0:  # the memory one parse allocates; traced runs are not timed
            tracemalloc.start()
            with contextlib.suppress(Exception), deadline(5):
                parse_gate(hostile.FILE, data, hostile.CANARY)
                parse_policy(hostile.POLICY_FILE, data)
            peak_alloc = max(peak_alloc, tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        started = time.perf_counter()
        try:
            with deadline(5):
                gate, problems = parse_gate(hostile.FILE, data, hostile.CANARY)
                policy, policy_problems = parse_policy(hostile.POLICY_FILE, data)
        except Hang:
            res.fail("hangs", label)
            continue
        except Exception as e:  # a crash is what this counts
            res.fail("crashes", f"{label}: {type(e).__name__}: {e}")
            continue
        took = time.perf_counter() - started
        slowest = max(slowest, (took, label))
        broken = hostile.violations(hostile.FILE, data, gate, problems)
        broken += hostile.violations(hostile.POLICY_FILE, data, policy, policy_problems)
        if broken:
            res.fail("violations", f"{label}: {broken[0]}")
        if gate is not None:
            res.count("accepted")
            again, found = parse_gate(hostile.FILE, hostile.write_gate(gate), hostile.CANARY)
            if again is None or hostile.comparable(again) != hostile.comparable(gate):
                res.fail("violations", f"{label}: round trip gave {found or again!r}")
    res.figures = {
        "slowest_parse_ms": round(slowest[0] * 1000, 1),
        "slowest_case": slowest[1],
        "peak_alloc_one_parse_kib": peak_alloc // 1024,
        "process_max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    return res


# --- lint ----------------------------------------------------------------------------------------

LINT_LINE = re.compile(r"^gates/test/f-\d{3}\.yaml(:\d+)?: .")


def fuzz_lint(seconds: float, seed: int, work: Path) -> Result:
    res = Result("lint")
    max_rss = 0
    stop = time.monotonic() + seconds
    batch = 0
    while time.monotonic() < stop:
        root = work / f"lint-{batch}"
        (root / "gates/test").mkdir(parents=True)
        for i in range(200):
            (root / f"gates/test/f-{i:03d}.yaml").write_bytes(
                hostile.mutated_gate(random.Random(f"{seed}/lint/{batch}/{i}"))
            )
        proc = subprocess.Popen(
            [sys.executable, "-m", "gitgate", "lint", "."], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            res.fail("hangs", f"lint batch {batch}")
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        max_rss = max(max_rss, usage.ru_maxrss)
        res.tried += 200
        text = err.decode("utf-8", "replace")
        if "Traceback" in text or proc.returncode not in (0, 1):
            res.fail("crashes", f"batch {batch} (seed {seed}): exit {proc.returncode}: {text[-300:]}")
        bad = [line for line in out.decode("utf-8", "replace").splitlines() if not LINT_LINE.match(line)]
        if bad:
            res.fail("violations", f"batch {batch}: {bad[0]!r}")
        batch += 1
    res.figures = {"batches": batch, "max_rss_of_a_lint_process_kib": max_rss}
    return res


# --- http (in process) ---------------------------------------------------------------------------

PATHS = [*hostile.DOCUMENT["paths"], "/gate/check/", "//gate/check", "/gate/check/ROLLBACK", "/%00", "/x"]
METHODS = [*hostile.ANY_METHOD, "TRACE", "CONNECT", "PROPFIND", "BREW", "get", "P0ST"]
HEADER_NAMES = ["Content-Type", "Authorization", "X-Hub-Signature-256", "X-GitHub-Event", "X-Gitlab-Token", "X-A"]
HEADER_VALUES = [
    "application/json", "text/plain", "multipart/form-data; boundary=z", f"Bearer {hostile.TOKEN}", "Bearer x",
    hostile.GITLAB_TOKEN, "ping", "push", "sha256=" + "0" * 64, "é", "x" * 5000, "",
]  # fmt: skip
NAMES = [("test", "podinfo"), ("test", "legacy"), ("test", "relaxed"), ("prod", "api"), ("x", "y")]


def random_payload(rnd: random.Random) -> Any:
    namespace, name = rnd.choice(NAMES)
    doc: dict[str, Any] = {"name": name, "namespace": namespace}
    if rnd.random() < 0.8:
        doc["checksum"] = rnd.choice([SUM, "*", "", "0" * 10, SUM.upper(), None, 5])
    if rnd.random() < 0.5:
        doc["phase"] = rnd.choice(["Progressing", "Waiting", "\n", None, []])
    if rnd.random() < 0.5:
        doc["metadata"] = rnd.choice(
            [{"hook": rnd.choice([*hostile.HOOKS, "*", "bogus", 3, None])}, {}, None, "x", {"eventMessage": "é"}]
        )
    if rnd.random() < 0.3:
        doc[rnd.choice(["name", "namespace", "checksum", "metadata", "extra"])] = hostile.odd_value(rnd)
    return doc


def random_request(rnd: random.Random) -> tuple[str, str, str, dict[str, str], bytes]:
    path = rnd.choice(PATHS) if rnd.random() < 0.9 else "/" + "".join(rnd.choice("abc/%.-") for _ in range(8))
    method = rnd.choice(METHODS)
    query = rnd.choice(["", "hook=rollback", f"name=podinfo&namespace=test&checksum={SUM}", "limit=all", "a=%ff"])
    headers = {rnd.choice(HEADER_NAMES): rnd.choice(HEADER_VALUES) for _ in range(rnd.randrange(3))}
    kind = rnd.randrange(4)
    if kind <= 1:
        body = json.dumps(random_payload(rnd), default=str).encode()
    elif kind == 2:
        body = json.dumps(hostile.odd_value(rnd), default=str).encode()
    else:
        body = rnd.randbytes(rnd.randrange(200))
    return path, method, query, headers, body


def fuzz_http(seconds: float, seed: int) -> Result:
    res = Result("http")
    sys.path.insert(0, str(ROOT / "tests"))
    from test_server import Clock, Source

    app = create_app(
        source=Source(hostile.snapshot()),
        metrics=Metrics(),
        clock=Clock(hostile.NOW),
        admin_token=hostile.TOKEN,
        github_webhook_secret=hostile.GITHUB_SECRET,
        gitlab_webhook_token=hostile.GITLAB_TOKEN,
    )
    client = app.test_client()
    statuses: dict[int, int] = {}
    opened = 0
    stop = time.monotonic() + seconds
    i = 0
    while time.monotonic() < stop:
        label = f"random.Random('{seed}/http/{i}')"
        path, method, query, headers, body = random_request(random.Random(f"{seed}/http/{i}"))
        i += 1
        res.tried += 1
        try:
            resp = client.open(
                "/",
                method=method,
                data=body,
                headers=headers,
                environ_overrides={"PATH_INFO": path, "QUERY_STRING": query},
            )
        except Exception as e:
            res.fail("crashes", f"{label}: {type(e).__name__}: {e}")
            continue
        status = resp.status_code
        statuses[status] = statuses.get(status, 0) + 1
        merged = re.sub("/{2,}", "/", path)
        method = method.upper()  # as werkzeug hands it to the app
        allowed = hostile.documented(merged, method)
        if allowed is None:
            allowed = {404} if merged not in hostile.DOCUMENT["paths"] else {200, 405} if method == "OPTIONS" else {405}
        if status >= 500 and not (status == 501 and merged in hostile.WRITES):
            res.fail("crashes", f"{label}: {method} {path} -> {status}")
        elif status not in allowed:
            res.fail("violations", f"{label}: {method} {path} -> {status}, documented {sorted(allowed)}")
        hook = hostile.hook_of(merged, {})
        if hook is not None and status == 200:
            opened += 1
            doc = json.loads(body)
            hook = hostile.hook_of(merged, doc)
            if not hostile.opens(doc.get("namespace"), doc.get("name"), hook or "", doc.get("checksum") or None):
                res.fail("wrong_opens", f"{label}: {method} {path} {doc}")
    res.figures = {"statuses": dict(sorted(statuses.items())), "checks_answered_200": opened}
    return res


# --- a real service --------------------------------------------------------------------------------


@dataclass
class Live:
    dir: Path
    repo: Path
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    env: dict[str, str]

    def git(self, *args: str | bytes, stdin: bytes | None = None) -> bytes:
        out = subprocess.run(["git", *args], cwd=self.repo, env=self.env, input=stdin, capture_output=True, check=True)
        return out.stdout

    def rss(self) -> tuple[int, int]:
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
        return fields["VmRSS"], fields["VmHWM"]

    def check(self, hook: str, checksum: str) -> int:
        path = "/rollback/check" if hook == "rollback" else f"/gate/check/{hook}"
        body = {"name": "podinfo", "namespace": "test", "checksum": checksum, "phase": "Progressing"}
        return requests.post(self.url + path, json=body, timeout=10).status_code

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = requests.get(self.url + "/api/v1/status", timeout=10).json()
        return result


GATE = b"""apiVersion: gitgate/v1
kind: Gate
metadata: {name: podinfo, namespace: test}
spec:
  approvals:
    - {hook: confirm-promotion, checksum: "85d557f47b"}
"""


@contextlib.contextmanager
def live_service(work: Path) -> Iterator[Live]:
    """`gitgate serve` on its embedded default repo (gitgate init), approving confirm-promotion @ SUM."""
    folder = work / "live"
    folder.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Fuzz",
        "GIT_AUTHOR_EMAIL": "fuzz@example.test",
        "GIT_COMMITTER_NAME": "Fuzz",
        "GIT_COMMITTER_EMAIL": "fuzz@example.test",
    }
    subprocess.run([sys.executable, "-m", "gitgate", "init"], cwd=folder, env=env, check=True, capture_output=True)
    repo = folder / "approvals"
    (repo / "gates/test/podinfo.yaml").write_bytes(GATE)
    subprocess.run(["git", "commit", "-qam", "approve"], cwd=repo, env=env, check=True)
    port = free_port()
    log = (folder / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitgate", "serve", "--listen", f"127.0.0.1:{port}", "--interval", "60s"],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    live = Live(folder, repo, f"http://127.0.0.1:{port}", port, proc, env)
    try:
        for _ in range(200):
            with contextlib.suppress(requests.RequestException):
                if requests.get(live.url + "/readyz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise SystemExit(f"gitgate serve did not become ready: {(folder / 'serve.log').read_text()}")
        yield live
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def send_raw(port: int, data: bytes, timeout: float = 10) -> bytes:
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the server may close first: reset, broken pipe, not connected
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while chunk := sock.recv(65536):
                out += chunk
    return out


def mutate_bytes(data: bytes, rnd: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rnd.randrange(1, 6)):
        op = rnd.randrange(4)
        pos = rnd.randrange(len(out) + 1)
        if op == 0 and out:
            out[pos % len(out)] = rnd.randrange(256)
        elif op == 1:
            out[pos:pos] = rnd.choice(
                [b"\r\n", b"\n", b"\x00", b":", b" ", b"\xff", b"Content-Length: 9\r\n", b"0\r\n\r\n"]
            )
        elif op == 2 and out:
            del out[pos : pos + rnd.randrange(1, 20)]
        else:
            out[pos:pos] = out[pos : pos + rnd.randrange(1, 40)]
    return bytes(out)


def fuzz_raw(seconds: float, seed: int, live: Live) -> Result:
    res = Result("raw")
    statuses: dict[int, int] = {}
    rss_start, _ = live.rss()
    samples = [rss_start]
    denied = hostile.http_request(hostile.DENIED_BODY)
    stop = time.monotonic() + seconds
    corpus = hostile.raw_http_corpus()
    i = 0
    while time.monotonic() < stop:
        if i % 500 == 0:  # a wave of stalled connections, then the corpus once
            slow = []
            for j in range(60):
                with contextlib.suppress(OSError):
                    sock = socket.create_connection(("127.0.0.1", live.port), timeout=5)
                    sock.sendall(denied[: 5 + j * 3])
                    slow.append(sock)
            if live.check("confirm-promotion", SUM) != 200:
                res.fail("violations", "an approved check was not answered 200 while 60 connections stalled")
            for sock in slow:
                sock.close()
            for case in corpus:
                answer = send_raw(live.port, case.data)
                res.tried += 1
                res.count(f"corpus:{case.category}")
                codes = hostile.statuses(answer)
                if 200 in codes and not case.may_open:
                    res.fail("wrong_opens", f"corpus {case.id}: {codes}")
                for code in codes:
                    statuses[code] = statuses.get(code, 0) + 1
            samples.append(live.rss()[0])
        label = f"random.Random('{seed}/raw/{i}')"
        data = mutate_bytes(denied, random.Random(f"{seed}/raw/{i}"))
        i += 1
        res.tried += 1
        res.count("mutated")
        try:
            answer = send_raw(live.port, data)
        except OSError as e:
            res.fail("crashes", f"{label}: {e}")
            continue
        for code in hostile.statuses(answer):
            statuses[code] = statuses.get(code, 0) + 1
            if code >= 500 and code != 501:
                res.fail("crashes", f"{label}: {code}")
        if b"\r\n\r\nApproved\n" in answer:
            res.fail("wrong_opens", f"{label}: {data[:200]!r}")
        if live.proc.poll() is not None:
            res.fail("crashes", "gitgate serve exited")
            break
    rss_end, hwm = live.rss()
    ok = (
        requests.get(live.url + "/healthz", timeout=10).status_code == 200
        and live.check("confirm-promotion", SUM) == 200
    )
    if not ok:
        res.fail("crashes", "not answering at the end")
    res.figures = {
        "statuses": dict(sorted(statuses.items())),
        "rss_kib_start_end_peak": [rss_start, rss_end, hwm],
        "rss_kib_samples_min_max": [min(samples), max(samples)],
    }
    return res


# --- tree ----------------------------------------------------------------------------------------

_LABEL = re.compile(rb"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_SUBDOMAIN = re.compile(rb"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
NAME_BYTES = [
    b"a",
    b"b",
    b"-",
    b".",
    b" ",
    b"A",
    b"\xff",
    "é".encode(),
    b"\n",
    b"\x1b",
    b"yaml",
    b".yaml",
    b"/",
    b"~",
    b"\t",
]


def a_valid_place(path: bytes, mode: str) -> bool:
    """The rules for a gate file's place, written out on their own: gates/<label>/<subdomain>.yaml, mode 100644."""
    parts = path.split(b"/")
    return (
        mode == "100644"
        and len(parts) == 3
        and parts[0] == b"gates"
        and bool(_LABEL.fullmatch(parts[1]))
        and parts[2].endswith(b".yaml")
        and len(parts[2]) - 5 <= 253
        and bool(_SUBDOMAIN.fullmatch(parts[2][:-5]))
    )


def random_entry(rnd: random.Random) -> tuple[str, bytes]:
    mode = rnd.choice(["100644", "100644", "100755", "120000", "160000"])
    if rnd.random() < 0.3:  # a good place: only the mode decides (and then the change is taken)
        return mode, b"gates/" + rnd.choice([b"test", b"prod", b"a-b"]) + b"/" + rnd.choice(
            [b"web", b"api.v1"]
        ) + b".yaml"
    depth = rnd.choice([1, 2, 2, 2, 3])
    parts = [b"".join(rnd.choice(NAME_BYTES) for _ in range(rnd.randrange(1, 6))) for _ in range(depth)]
    if rnd.random() < 0.6:
        parts[-1] += b".yaml"
    path = b"/".join([b"gates", *parts]).replace(b"//", b"/x/")
    return mode, path.rstrip(b"/")


def gate_for(path: bytes) -> bytes:
    """A gate file whose metadata matches its place, when the place can name a canary; no approvals."""
    parts = path.split(b"/")
    name = parts[-1].removesuffix(b".yaml").decode("utf-8", "replace")
    namespace = parts[-2].decode("utf-8", "replace") if len(parts) > 2 else "x"
    meta = f"{{name: {json.dumps(name)}, namespace: {json.dumps(namespace)}}}"
    return f"apiVersion: gitgate/v1\nkind: Gate\nmetadata: {meta}\n".encode()


def land(live: Live, message: str) -> tuple[str, str]:
    """Commit what is staged (signed by the repo's config), tell the service, wait for its verdict."""
    live.git("commit", "-q", "--allow-empty", "-m", message)
    head = live.git("rev-parse", "HEAD").decode().strip()
    requests.post(live.url + "/hooks/local", timeout=10)
    until = time.monotonic() + 20
    while time.monotonic() < until:
        status = live.status()
        if status["verified"]["commit"] == head:
            return head, "served"
        if any(r["commit"] == head for r in status["refused"]):
            return head, "refused"
        time.sleep(0.05)
    return head, ""


def fuzz_tree(seconds: float, seed: int, live: Live) -> Result:
    res = Result("tree")
    stop = time.monotonic() + seconds
    rollback = GATE + b'    - {hook: rollback, checksum: "c0ffee"}\n'
    page_ok = True
    i = 0
    while time.monotonic() < stop:
        label = f"random_entry(random.Random('{seed}/tree/{i}'))"
        mode, path = random_entry(random.Random(f"{seed}/tree/{i}"))
        i += 1
        live.git("reset", "-q", "--hard", live.status()["verified"]["commit"])
        (live.repo / "gates/test/podinfo.yaml").write_bytes(rollback)
        live.git("add", "-A")
        if mode == "160000":
            oid = b"1" * 40
        else:
            content = b"gates/test/podinfo.yaml" if mode == "120000" else gate_for(path)
            oid = live.git("hash-object", "-w", "--stdin", stdin=content).strip()
        entry = mode.encode() + b" " + oid + b"\t" + path + b"\0"
        with contextlib.suppress(subprocess.CalledProcessError):
            live.git("update-index", "--add", "-z", "--index-info", stdin=entry)
        if b"\t" + path + b"\0" not in live.git("ls-files", "-z", "--stage"):  # git skips names it cannot hold
            res.count("git refuses the name")
            continue
        res.tried += 1
        head, outcome = land(live, f"fuzz {i}")
        res.count(outcome or "no verdict")
        valid = a_valid_place(path, mode)
        opened = live.check("rollback", "c0ffee") == 200
        if not outcome:
            res.fail("hangs", f"{label}: {mode} {path!r}: neither served nor refused in 20 s")
        elif opened and not valid:
            res.fail("wrong_opens", f"{label}: {mode} {path!r} was taken and opened rollback")
        elif outcome == "refused" and valid:
            reason = next(r["reason"] for r in live.status()["refused"] if r["commit"] == head)
            res.fail("violations", f"{label}: {mode} {path!r} refused although valid by the rules: {reason}")
        page = requests.get(live.url + "/", timeout=10).status_code
        if page_ok and page != 200:  # counted once: the refusal stays on the page
            res.fail("crashes", f"{label}: the status page answers {page} from this refusal on: {mode} {path!r}")
        page_ok = page == 200
        if live.proc.poll() is not None:
            res.fail("crashes", "gitgate serve exited")
            break
        if outcome == "served":  # close rollback again for the next case
            (live.repo / "gates/test/podinfo.yaml").write_bytes(GATE)
            live.git("add", "-A")
            land(live, "close rollback")
    res.figures = {"rss_kib_end_peak": list(live.rss())}
    return res


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=60.0, help="per category (default 60)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only", default=",".join(CATEGORIES), help=f"comma-separated: {', '.join(CATEGORIES)}")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    wanted = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = set(wanted) - set(CATEGORIES)
    if unknown:
        p.error(f"unknown categories: {', '.join(sorted(unknown))}")
    command = shlex.join(["python", "bench/fuzz.py", *(argv if argv is not None else sys.argv[1:])])
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="gitgate-fuzz-") as tmp:
        work = Path(tmp)
        runners: dict[str, Callable[[], Result]] = {
            "parser": lambda: fuzz_parser(args.seconds, args.seed),
            "lint": lambda: fuzz_lint(args.seconds, args.seed, work),
            "http": lambda: fuzz_http(args.seconds, args.seed),
        }
        live_needed = {"raw", "tree"} & set(wanted)
        with live_service(work) if live_needed else contextlib.nullcontext() as live:
            if live is not None:
                runners["raw"] = lambda: fuzz_raw(args.seconds, args.seed, live)
                runners["tree"] = lambda: fuzz_tree(args.seconds, args.seed, live)
            for name in wanted:
                started = time.monotonic()
                print(f"{name}: fuzzing for {args.seconds:.0f} s ...", flush=True)
                result = runners[name]()
                result.seconds = round(time.monotonic() - started, 1)
                results.append(result)
                print(report_line(result), flush=True)
    print()
    print("| category | cases tried | wrong opens | crashes | violations | hangs | figures |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        counts = f"{r.tried} | {r.wrong_opens} | {r.crashes} | {r.violations} | {r.hangs}"
        print(f"| {r.category} | {counts} | {json.dumps(r.figures)} |")
    for r in results:
        for example in r.examples:
            print(f"  {r.category}: {example}")
    print(f"\ncommand: {command}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"command": command, "results": [asdict(r) for r in results]}, indent=2))
    bad = sum(r.wrong_opens + r.crashes + r.violations + r.hangs for r in results)
    return 1 if bad else 0


def report_line(r: Result) -> str:
    return (
        f"{r.category}: {r.tried} cases in {r.seconds} s; wrong opens {r.wrong_opens}, crashes {r.crashes}, "
        f"violations {r.violations}, hangs {r.hangs}; {json.dumps(r.by_kind)}; {json.dumps(r.figures)}"
    )


if __name__ == "__main__":
    raise SystemExit(main())

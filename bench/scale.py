"""gitgate at scale: the real `gitgate serve` on synthetic approvals repos, against issue 5's targets.

    python bench/scale.py                       # 1,000, 10,000 and 100,000 gates: about 10 minutes
    python bench/scale.py --sizes 1000 10000    # smaller, quicker
    python bench/scale.py --json bench/out/scale.json --charts docs/images

Repos are built once by bench/repos.py under bench/out/repos/ (100,000 gates, 20,000 commits: about
half a minute) and reused. Each service is a real `gitgate serve` process (waitress, the reconciler
thread, the parse store, SSH signature verification of every new commit) on 127.0.0.1, with
`--no-request-on-deny` (no forge) and a long `--interval`, so reconciles happen when this script
says (POST /hooks/local, as `gitgate approve --notify` and the push webhooks do). wrk (Debian:
`apt-get install wrk`) loads it; it uses ~0.1 core and is not the bottleneck.

Per repo size:
- cold start: empty --state-dir to the first 200 from /readyz (fetch, verification, every file
  parsed); resident memory then; warm restart: the same state dir, SIGTERM and start again; each
  --repeat times (default 3), the median shown with every run;
- one-file commit: a signed commit changing one gate file lands, the service is told, and the cost
  of verifying and applying it (fetch excluded; `last_advance` in /api/v1/status) is read, 7 times;
- check throughput: POST /gate/check/confirm-promotion (answer 403, rotating over every gate) and
  GET /healthz of the same process, 16 connections, side by side, --repeat times (medians
  shown). Checks are answered ahead of Flask and /healthz through it, so at the detail size the
  same POST is also sent to a bare waitress (same threads, an app that does nothing): the floor
  no server goes below here.
At 10,000 gates also: 64 connections (errors), paced load near 1,000 checks/s (p99) idle
(--repeat runs, each beside bare waitress at the same pace: the median shown with every run) and
while reconciles run back to back, merge -> first 200 with the notification and by polling, and
the cost of verifying 50 new commits in one pass against 50 runs of `git verify-commit`.

Everything stays on loopback; every wait is bounded. Results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from string import Template
from typing import Any

import requests
from repos import Repo, canary, gate_path, gate_text
from servers import HOST, LUA_COMMON, LUA_PACED, Run, free_port, load

OUT = Path(__file__).parent / "out"
CHECK_PATH = "/gate/check/confirm-promotion"
ASKED = "c0ffee1234"  # no approval carries it: 403
LUA_CHECK = Template("""
local n = 0
local headers = {["Content-Type"] = "application/json"}
function request()
  n = (n + 1) % $gates
  local body = string.format(
    '{"name":"app-%06d","namespace":"team-%02d","phase":"Progressing","checksum":"$checksum"}', n, n % 100)
  return wrk.format("POST", "$path", headers, body)
end
""")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def proc_status(pid: int, key: str) -> int:
    """A /proc/<pid>/status figure in kB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


class Service:
    def __init__(self, repo: Repo, state: Path, log: Path, *extra: str) -> None:
        self.repo, self.state, self.log, self.extra = repo, state, log, extra
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 600) -> float:
        """Start; seconds until /readyz answers 200."""
        argv = [sys.executable, "-m", "gitgate", "serve", "--repo", str(self.repo.remote)]
        argv += ["--trust-ssh", str(self.repo.allowed_signers), "--state-dir", str(self.state)]
        argv += ["--listen", f"{HOST}:{self.port}", "--no-request-on-deny", "--interval", "1h", *self.extra]
        started = time.monotonic()
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gitgate serve exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            time.sleep(0.02)
        raise RuntimeError(f"not ready within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = requests.get(self.url + "/api/v1/status?limit=0", timeout=30).json()
        return result

    def notify(self) -> None:
        requests.post(self.url + "/hooks/local", timeout=5)

    def check(self, i: int, checksum: str, session: requests.Session | None = None) -> int:
        ns, name = canary(i)
        body = {"name": name, "namespace": ns, "checksum": checksum}
        return (session or requests).post(self.url + CHECK_PATH, json=body, timeout=5).status_code

    def advance(self, commit: str, timeout: float = 120, *, cost: bool = True) -> dict[str, Any]:
        """Tell the service; wait until it answers from `commit` (asking /readyz, which costs the
        service nothing, where /api/v1/status would); then what applying it cost."""
        self.notify()
        deadline = time.monotonic() + timeout
        session = requests.Session()
        while time.monotonic() < deadline:
            if commit in session.get(self.url + "/readyz", timeout=5).text:
                break
            time.sleep(0.01)
        if not cost:
            return {"commit": commit}
        while time.monotonic() < deadline:  # recorded a moment after the answers moved
            last: dict[str, Any] = self.status()["last_advance"] or {}
            if last.get("commit") == commit:
                return last
            time.sleep(0.01)
        raise RuntimeError(f"{commit[:12]} not applied within {timeout} s: {self.status().get('refused')}")


@contextlib.contextmanager
def serving(repo: Repo, state: Path, log: Path, *extra: str) -> Iterator[tuple[Service, float]]:
    service = Service(repo, state, log, *extra)
    try:
        yield service, service.start()
    finally:
        service.stop()


def repo_of(size: int, history: int) -> Repo:
    root = OUT / "repos" / f"gates-{size}"
    repo = Repo(root)
    if not (root / "done").exists():
        shutil.rmtree(root, ignore_errors=True)
        say(f"building a repo of {size} gates and {history} commits in {root}")
        repo.create(size, history)
        (root / "done").write_text("ok\n")
    return repo


def scripts(workdir: Path, size: int) -> dict[str, Path]:
    out = {"check": workdir / f"check-{size}.lua", "healthz": workdir / "healthz.lua", "paced": workdir / "paced.lua"}
    out["check"].write_text(LUA_COMMON + LUA_CHECK.substitute(gates=size, checksum=ASKED, path=CHECK_PATH))
    out["healthz"].write_text(LUA_COMMON)
    out["approve"] = workdir / f"approve-{size}.lua"
    out["approve"].write_text(LUA_COMMON + LUA_CHECK.substitute(gates=size, checksum=ASKED, path="/gate/approve"))
    out["paced"].write_text(LUA_COMMON + LUA_PACED + LUA_CHECK.substitute(gates=size, checksum=ASKED, path=CHECK_PATH))
    return out


def side_by_side(service: Service, lua: dict[str, Path], conns: int, seconds: float) -> tuple[Run, Run, Run]:
    """Checks, GET /healthz, and the same POSTs to /gate/approve (always 200, no work: what a
    POST with a body costs the server before gitgate does anything)."""
    check = load(service.port, CHECK_PATH, 403, lua["check"], conns, duration=seconds, server_pid=service.pid)
    health = load(service.port, "/healthz", 200, lua["healthz"], conns, duration=seconds, server_pid=service.pid)
    post = load(service.port, "/gate/approve", 200, lua["approve"], conns, duration=seconds, server_pid=service.pid)
    return check, health, post


def repeated(
    service: Service, lua: dict[str, Path], conns: int, *, seconds: float, repeat: int, result: dict[str, Any]
) -> None:
    """side_by_side `repeat` times; into `result`, per endpoint, the run with the median rps, every
    run's rps and the errors of all runs."""
    rounds = [side_by_side(service, lua, conns, seconds) for _ in range(repeat)]
    for i, name in enumerate(("check", "healthz", "post")):
        result[f"{name}_{conns}"] = asdict(middle([r[i] for r in rounds], by="rps"))
        result[f"{name}_{conns}_rps"] = [round(r[i].rps) for r in rounds]
        result[f"{name}_{conns}_errors"] = sum(r[i].errors for r in rounds)


BARE_APP = """
import logging, sys, waitress
logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # as gitgate's own logging setup does
def app(environ, start_response):
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\\n"]
waitress.serve(app, host=sys.argv[1], port=int(sys.argv[2]), threads=8, ident="gitgate", _quiet=True)
"""


def floor(lua: dict[str, Path], conns: int, seconds: float, *, pace: bool = False) -> Run:
    """The floor: waitress with the same threads serving a WSGI app that does nothing, for the same
    POST a check is. No server answers a check faster than this on this machine. With `pace`, at
    the pace of `paced` (after 3 s of warm-up, as there)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", BARE_APP, HOST, str(port)], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                requests.get(f"http://{HOST}:{port}/", timeout=1)
                break
            time.sleep(0.05)
        if pace:
            conns, extra = PACED
            load(port, "/bare", 200, lua["paced"], conns, duration=3, server_pid=proc.pid, extra=extra)
            return load(port, "/bare", 200, lua["paced"], conns, duration=seconds, server_pid=proc.pid, extra=extra)
        return load(port, "/bare", 200, lua["approve"], conns, duration=seconds, server_pid=proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


PACED = (20, ("19",))  # about 1,000 requests/s: 20 connections, each pausing 19 ms after every answer


def paced(service: Service, lua: dict[str, Path], seconds: float) -> Run:
    """About 1,000 checks/s."""
    return load(
        service.port, CHECK_PATH, 403, lua["paced"], PACED[0], duration=seconds, server_pid=service.pid, extra=PACED[1]
    )


def middle(runs: list[Run], by: str = "p99_ms") -> Run:
    """The run with the median `by` (the lower middle one of an even count)."""
    return sorted(runs, key=lambda r: float(getattr(r, by)))[(len(runs) - 1) // 2]


def one_file_commits(service: Service, repo: Repo, size: int, count: int, revision: int) -> list[dict[str, Any]]:
    costs = []
    for n in range(count):
        i = (n * 104729 + 17) % size
        (commit,) = repo.land({gate_path(i): gate_text(i, revision + n)})
        costs.append(service.advance(commit))
    return costs


def merge_to_open(service: Service, repo: Repo, size: int, trials: int, *, notify: bool) -> list[float]:
    """A signed change approving a new revision lands (the remote's branch moves: a merge); a client
    asks every 10 ms, as a Flagger with a short interval would; seconds until the first 200."""
    out = []
    session = requests.Session()
    revision = random.randrange(4096, 65536 - trials)  # revisions no earlier run approved
    for n in range(trials):
        i = (n * 7907 + 3) % size
        text = gate_text(i, revision + n)
        checksum = text.split('checksum: "')[2].split('"')[0]  # the confirm-promotion approval's
        if service.check(i, checksum, session) != 403:
            raise RuntimeError("the revision is approved before the change landed")
        repo.land({gate_path(i): text})
        landed = time.monotonic()
        if notify:
            service.notify()
        while service.check(i, checksum, session) != 200:
            if time.monotonic() - landed > 120:
                raise RuntimeError("no 200 within 120 s")
            time.sleep(0.01)
        out.append(time.monotonic() - landed)
    return out


def verification(repo: Repo, service: Service, commits: int) -> dict[str, float]:
    """N signed commits land at once: one pass of the service vs N `git verify-commit` runs."""
    made = repo.land({}, commits=commits)
    cost = service.advance(made[-1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    config = ["-c", f"gpg.ssh.allowedSignersFile={repo.allowed_signers}"]
    started = time.monotonic()
    for commit in made:
        subprocess.run(
            ["git", *config, "verify-commit", commit], cwd=repo.remote, env=env, capture_output=True, check=True
        )
    separate = time.monotonic() - started
    return {
        "commits": commits,
        "verified_in_one_pass": cost["commits_verified"],
        "one_pass_ms": cost["verify_ms"],
        "separate_ms": round(separate * 1000, 1),
    }


def prepare_chain(repo: Repo, size: int, count: int) -> list[str]:
    """Signed one-file commits made beforehand (so that making them costs nothing during a run);
    the branch is put back where it was: the service has not seen them."""
    parent = repo.head()
    chain = []
    for n in range(count):
        i = (n * 3571 + 11) % size
        chain += repo.land({gate_path(i): gate_text(i, 100 + n)})
    subprocess.run(["git", "update-ref", "refs/heads/main", parent], cwd=repo.remote, check=True)
    return chain


def back_to_back(service: Service, repo: Repo, chain: list[str], stop: threading.Event, done: list[str]) -> None:
    """Reconciles back to back: the prepared commits moved onto the branch one after another."""
    for commit in chain:
        if stop.is_set():
            break
        subprocess.run(["git", "update-ref", "refs/heads/main", commit], cwd=repo.remote, check=True)
        service.advance(commit, cost=False)  # the status read would itself disturb the checks measured
        done.append(commit)


def measure_size(
    size: int, lua: dict[str, Path], workdir: Path, *, seconds: float, full: bool, repeat: int
) -> dict[str, Any]:
    history = max(1_000, size // 5)
    repo = repo_of(size, history)
    result: dict[str, Any] = {"gates": size, "commits": history + 1, "cold_start_runs": [], "warm_start_runs": []}
    state = workdir / f"state-{size}"
    log = workdir / f"serve-{size}.log"
    for n in range(repeat):  # the last one leaves its state dir for the warm restarts
        shutil.rmtree(state, ignore_errors=True)
        with serving(repo, state, log) as (service, cold):
            result["cold_start_runs"].append(round(cold, 2))
            result["rss_mb_cold"] = round(proc_status(service.pid, "VmRSS") / 1024)
            result["peak_rss_mb_cold"] = max(
                result.get("peak_rss_mb_cold", 0), round(proc_status(service.pid, "VmHWM") / 1024)
            )
            say(f"{size} gates: cold start {n + 1} of {repeat}: {cold:.1f} s, RSS {result['rss_mb_cold']} MB")
    result["cold_start_s"] = statistics.median(result["cold_start_runs"])
    for n in range(repeat - 1):
        with serving(repo, state, log) as (service, warm):
            result["warm_start_runs"].append(round(warm, 2))
            say(f"{size} gates: warm restart {n + 1} of {repeat}: {warm:.1f} s")
    with serving(repo, state, log) as (service, warm):
        result["warm_start_runs"].append(round(warm, 2))
        result["warm_start_s"] = statistics.median(result["warm_start_runs"])
        result["rss_mb"] = round(proc_status(service.pid, "VmRSS") / 1024)
        say(f"{size} gates: warm restart {repeat} of {repeat}: {warm:.1f} s, RSS {result['rss_mb']} MB")
        costs = one_file_commits(service, repo, size, 7, revision=1)
        result["one_file_commit_ms"] = statistics.median(c["total_ms"] for c in costs)
        result["one_file_commit"] = costs
        say(f"{size} gates: one-file commit {result['one_file_commit_ms']} ms (median of 7, fetch excluded)")
        repeated(service, lua, 16, seconds=seconds, repeat=repeat, result=result)
        say(f"{size} gates: checks/s {result['check_16_rps']} vs /healthz/s {result['healthz_16_rps']} at 16")
        if full:
            bare = floor(lua, 16, seconds)
            result["floor_16"] = asdict(bare)
            say(f"bare waitress, same POST: {bare.rps:.0f}/s at 16 connections")
            repeated(service, lua, 64, seconds=seconds, repeat=repeat, result=result)
            say(
                f"{size} gates: checks/s {result['check_64_rps']} vs /healthz/s {result['healthz_64_rps']} at 64, "
                f"errors {result['check_64_errors']}"
            )
            # A shared VM's neighbours move a p99 by tens of percent (docs/performance.md): the
            # median of `repeat` runs, each beside bare waitress at the same pace.
            idles, bares = [], []
            for _ in range(repeat):
                idles.append(paced(service, lua, seconds))
                bares.append(floor(lua, PACED[0], seconds, pace=True))
                say(
                    f"{size} gates: paced, {idles[-1].rps:.0f} checks/s: p99 {idles[-1].p99_ms} ms "
                    f"(other processes {idles[-1].other_cpu:.2f} cores); bare waitress {bares[-1].p99_ms} ms"
                )
            idle = middle(idles)
            result["paced_idle"], result["paced_floor"] = asdict(idle), asdict(middle(bares))
            result["paced_idle_runs"] = [asdict(r) for r in idles]
            result["paced_floor_runs"] = [asdict(r) for r in bares]
            chain = prepare_chain(repo, size, 60)
            stop, done = threading.Event(), list[str]()
            worker = threading.Thread(target=back_to_back, args=(service, repo, chain, stop, done))
            worker.start()
            busy = paced(service, lua, seconds)
            stop.set()
            worker.join()
            result["paced_reconciling"] = asdict(busy)
            result["reconciles_during"] = len(done)
            say(f"{size} gates: paced while {len(done)} reconciles ran: p99 {busy.p99_ms} ms")
            result["merge_to_open_notify_s"] = merge_to_open(service, repo, size, 11, notify=True)
            p50 = statistics.median(result["merge_to_open_notify_s"])
            say(f"{size} gates: merge -> 200 with notification, p50 {p50:.2f} s")
            result["verification"] = verification(repo, service, 50)
            say(f"{size} gates: verification {result['verification']}")
        result["rss_mb_after"] = round(proc_status(service.pid, "VmRSS") / 1024)
    if full:
        with serving(repo, state, log, "--interval", "2s") as (service, _):
            result["merge_to_open_poll_s"] = merge_to_open(service, repo, size, 5, notify=False)
            say(f"{size} gates: merge -> 200 by polling every 2 s: max {max(result['merge_to_open_poll_s']):.2f} s")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--seconds", type=float, default=5.0, help="per load run")
    parser.add_argument("--detail", type=int, default=10_000, help="the size measured in full (default 10000)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="cold starts, warm restarts and paced runs per size; medians shown"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--charts", type=Path, help="write PNG charts here (needs matplotlib)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        say("bench/scale.py needs wrk (Debian: apt-get install wrk)")
        return 2
    command = shlex.join(["python", *sys.argv])
    results = []
    with tempfile.TemporaryDirectory(prefix="gitgate-scale-") as tmp:
        workdir = Path(tmp)
        for size in args.sizes:
            lua = scripts(workdir, size)
            full = size == args.detail
            results.append(measure_size(size, lua, workdir, seconds=args.seconds, full=full, repeat=args.repeat))
    machine = f"nproc {os.cpu_count()}, Python {platform.python_version()}, {platform.platform()}"
    print(report(results, command, machine))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": command, "machine": machine, "results": results}, indent=2))
    if args.charts:
        charts(results, args.charts, command)
    return 0


def report(results: list[dict[str, Any]], command: str, machine: str) -> str:
    rows = ["| figure | target | measured |", "|---|---|---|"]
    by = {r["gates"]: r for r in results}
    detail = next((r for r in results if "paced_idle" in r), None)
    if detail is not None:
        r = detail
        what = f"{r['gates']:,} gates"
        for conns in (16, 64):
            c, h, p = r.get(f"check_{conns}"), r.get(f"healthz_{conns}"), r.get(f"post_{conns}")
            if c and h and p:
                runs = f"runs: {', '.join(map(str, r[f'check_{conns}_rps']))} vs "
                runs += ", ".join(map(str, r[f"healthz_{conns}_rps"]))
                rows.append(
                    f"| checks/s vs GET /healthz/s, {what}, {conns} connections, medians | ratio ≥ 0.9 | "
                    f"{c['rps']:.0f} vs {h['rps']:.0f}: **{c['rps'] / h['rps']:.2f}** ({runs}; "
                    f"{c['server_ms_per_request']:.2f} vs {h['server_ms_per_request']:.2f} ms CPU each; "
                    f"other processes kept {c['other_cpu']:.1f} cores busy) |"
                )
                rows.append(
                    f"| checks/s vs the same POST to /gate/approve (no work), {conns} connections | — | "
                    f"{c['rps']:.0f} vs {p['rps']:.0f}: **{c['rps'] / p['rps']:.2f}** "
                    f"({p['server_ms_per_request']:.2f} ms CPU each) |"
                )
        if "floor_16" in r:
            c, f = r["check_16"], r["floor_16"]
            rows.append(
                f"| checks/s vs bare waitress answering the same POST (the floor), 16 connections | — | "
                f"{c['rps']:.0f} vs {f['rps']:.0f}: **{c['rps'] / f['rps']:.2f}** "
                f"({f['server_ms_per_request']:.2f} ms CPU each) |"
            )
        if "check_64" in r:
            rows.append(
                f"| errors at 64 connections | 0 | **{r['check_64_errors']}** (in {len(r['check_64_rps'])} runs) |"
            )
        if "paced_idle" in r:
            idle, busy = r["paced_idle"], r["paced_reconciling"]
            runs = ", ".join(f"{x['p99_ms']:.1f}" for x in r["paced_idle_runs"])
            bares = ", ".join(f"{x['p99_ms']:.1f}" for x in r["paced_floor_runs"])
            rows.append(
                f"| check p99 at ~1,000/s ({idle['rps']:.0f}/s), median of {len(r['paced_idle_runs'])} | < 10 ms | "
                f"**{idle['p99_ms']:.1f} ms** (runs: {runs} ms; bare waitress at the same pace: {bares} ms) |"
            )
            rows.append(
                f"| check p99 while reconciles run back to back ({r['reconciles_during']} in "
                f"{idle['seconds']:.0f} s) | ≤ 2x idle | **{busy['p99_ms']:.1f} ms** "
                f"({busy['p99_ms'] / max(idle['p99_ms'], 0.001):.1f}x) |"
            )
            notify = r["merge_to_open_notify_s"]
            rows.append(
                f"| merge → first 200, notified (p50 of {len(notify)}) | < 1 s | "
                f"**{statistics.median(notify):.2f} s** (max {max(notify):.2f}) |"
            )
            poll = r["merge_to_open_poll_s"]
            rows.append(
                f"| merge → first 200, polling every 2 s (max of {len(poll)}) | ≤ 3 s | **{max(poll):.2f} s** |"
            )
            v = r["verification"]
            rows.append(
                f"| verifying {v['commits']} new commits | far less than {v['commits']} `git verify-commit` | "
                f"**{v['one_pass_ms']:.0f} ms** in one pass vs {v['separate_ms']:.0f} ms |"
            )
    for size, r in sorted(by.items()):
        label = f"{size:,} gates"
        rows.append(
            f"| one-file commit applied (fetch excluded), {label} | < 100 ms at 100,000 | "
            f"**{r['one_file_commit_ms']:.0f} ms** |"
        )
        cold, warm = (", ".join(f"{x:.1f}" for x in r[k]) for k in ("cold_start_runs", "warm_start_runs"))
        rows.append(f"| cold start, {label} | < 10 s at 100,000 | **{r['cold_start_s']:.1f} s** (runs: {cold} s) |")
        rows.append(f"| warm restart, {label} | < 2 s at 100,000 | **{r['warm_start_s']:.1f} s** (runs: {warm} s) |")
        rows.append(
            f"| resident memory, {label} | < 300 MB at 100,000 | **{r['rss_mb_after']} MB** "
            f"(peak at cold start {r['peak_rss_mb_cold']} MB) |"
        )
        c, h = r["check_16"], r["healthz_16"]
        rows.append(
            f"| checks/s vs /healthz/s, {label}, 16 connections, median of {len(r['check_16_rps'])} | — | "
            f"{c['rps']:.0f} vs {h['rps']:.0f} (runs: {', '.join(map(str, r['check_16_rps']))} vs "
            f"{', '.join(map(str, r['healthz_16_rps']))}) |"
        )
    return "\n".join(rows) + f"\n\nCommand: `{command}`  \nMachine: {machine}\n"


def charts(results: list[dict[str, Any]], folder: Path, command: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    sizes = [r["gates"] for r in results]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for key, style, label in (
        ("check", "o-", "POST /gate/check/confirm-promotion"),
        ("healthz", "s--", "GET /healthz (same process)"),
    ):
        middle_rps = [r[f"{key}_16"]["rps"] for r in results]
        spread = [
            (m - min(r[f"{key}_16_rps"]), max(r[f"{key}_16_rps"]) - m) for m, r in zip(middle_rps, results, strict=True)
        ]
        yerr = [[lo for lo, _ in spread], [hi for _, hi in spread]]
        ax.errorbar(sizes, middle_rps, yerr=yerr, fmt=style, capsize=3, label=f"{label}: median, range of runs")
    ax.set(xscale="log", xlabel="gate files in the repo", ylabel="answers per second", ylim=(0, None))
    ax.set_title("Check throughput against repo size (16 connections)", fontsize=10)
    ax.legend(fontsize=8)
    fig.text(0.01, 0.01, command, fontsize=6, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(folder / "check-throughput.png", dpi=120)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(sizes, [r["one_file_commit_ms"] for r in results], "o-", label="one-file commit applied (ms)")
    ax.plot(sizes, [r["warm_start_s"] * 1000 for r in results], "s--", label="warm restart (ms)")
    ax.plot(sizes, [r["cold_start_s"] * 1000 for r in results], "^:", label="cold start (ms)")
    ax.set(xscale="log", yscale="log", xlabel="gate files in the repo", ylabel="milliseconds")
    ax.set_title("Reconcile and start-up time against repo size", fontsize=10)
    ax.legend(fontsize=8)
    fig.text(0.01, 0.01, command, fontsize=6, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(folder / "reconcile-time.png", dpi=120)


if __name__ == "__main__":
    raise SystemExit(main())

"""Soak: does a loaded `gitgate serve` grow in memory or open files over time? Measure it.

    python bench/soak.py                    # 180 s of load after a warm-up, 4 client threads
    python bench/soak.py --seconds 60       # shorter
    python bench/soak.py --seconds 600 --json bench/out/soak.json

Everything runs on this machine, on loopback, in a temporary folder: an SSH signing key, an
approvals repo (a bare remote plus a working clone) with `--canaries` gate files, and a real
`gitgate serve` process reading it with `--interval 1s`. Then, for a bounded time:

- client threads send checks over keep-alive connections: mostly Flagger's calls for known
  canaries (all four hooks, approved and unapproved checksums), plus canary names nobody has
  (every one new, as a caller inventing names would send), malformed bodies, Flagger events,
  and reads of /api/v1/status, the status page and /metrics;
- every `--commit-every` seconds a signed commit lands that approves and revokes a few hooks,
  so the reconciler fetches, verifies, builds a snapshot and records it all along;
- every `--sample-every` seconds the service's resident memory, open file descriptors and
  threads are read from /proc/<pid>.

A warm-up first fills what the service keeps by design (the last check of 10,000 canary/hook
pairs, the events of 2,000 canaries, 20 events of each known canary) with invented names, so
that what is measured afterwards is the steady state. Every check answer is held against the
commit it names (X-Gitgate-Commit): a 200 that commit does not approve is a wrong open. The
verdict: memory and descriptors in the last fifth of the samples against the first fifth, within
noise (memory: 5 % or 4 MiB; descriptors: 4), no wrong opens, no 5xx, no crash. Exit 0 when all
hold, 1 otherwise.
Results: docs/reliability.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from servers import free_port  # a sibling script (bench/), found as this one is run

HOST = "127.0.0.1"
HOOKS = ("confirm-rollout", "confirm-traffic-increase", "confirm-promotion", "rollback")
CHECKSUMS = ("aaa111", "bbb222", "ccc333")
NAMESPACE = "soak"
RECENT_PAIRS = 10_000  # gitgate.status.RECENT_CHECKS: last checks kept per (canary, hook)
EVENT_CANARIES = 2_000  # gitgate.status.EventLog: canaries whose events are kept
EVENTS_PER_CANARY = 20  # gitgate.status.EventLog: events kept per canary
MEMORY_NOISE = (0.05, 4.0)  # relative, MiB
FD_NOISE = 4

Probe = tuple[str, str, str]  # (name, hook, checksum)


def sh(*cmd: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({proc.returncode}): {proc.stderr.decode()}")
    return proc.stdout.decode()


# --- the approvals repo ------------------------------------------------------------------------


class Repo:
    """A bare remote and a working clone whose every commit is signed; remembers what each
    commit approves (the oracle)."""

    def __init__(self, root: Path, canaries: int, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.remote = root / "remote.git"
        self.work = root / "work"
        self.key = root / "alice"
        self.signers = root / "allowed_signers"
        self.names = [f"app-{i:04d}" for i in range(canaries)]
        self.current: frozenset[Probe] = frozenset()
        self.approved: dict[str, frozenset[Probe]] = {}
        self.lock = threading.Lock()

    def create(self) -> None:
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@soak.test", "-f", self.key)
        pub = self.key.with_suffix(".pub").read_text().split()[1]
        self.signers.write_text(f'alice@soak.test namespaces="git" ssh-ed25519 {pub}\n')
        sh("git", "init", "-q", "--bare", "-b", "main", self.remote, env=self.env)
        sh("git", "init", "-q", "-b", "main", self.work, env=self.env)
        self.git("remote", "add", "origin", str(self.remote))
        rng = random.Random(1)
        first = frozenset((n, h, c) for n in self.names for h in HOOKS for c in CHECKSUMS if rng.random() < 0.2)
        self.land(first, "initial approvals")

    def git(self, *args: str) -> str:
        return sh("git", *args, cwd=self.work, env=self.env)

    def land(self, approved: frozenset[Probe], message: str) -> str:
        with self.lock:
            changed = {n for n, _, _ in approved.symmetric_difference(self.current)} or set(self.names)
            for name in sorted(changed):
                mine = sorted((h, c) for n, h, c in approved if n == name)
                lines = [
                    "apiVersion: gitgate/v1",
                    "kind: Gate",
                    "metadata:",
                    f"  name: {name}",
                    f"  namespace: {NAMESPACE}",
                    "spec:",
                    "  approvals:" if mine else "  approvals: []",
                    *(f'    - hook: {h}\n      checksum: "{c}"' for h, c in mine),
                ]
                path = self.work / "gates" / NAMESPACE / f"{name}.yaml"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("\n".join(lines) + "\n")
            self.git("add", "-A")
            self.git(
                "-c",
                "gpg.format=ssh",
                "-c",
                f"user.signingkey={self.key}",
                "commit",
                "-q",
                "-S",
                "--allow-empty",
                "-m",
                message,
            )
            sha = self.git("rev-parse", "HEAD").strip()
            self.approved[sha] = approved  # known before any answer can name it
            self.git("push", "-q", "origin", "HEAD:refs/heads/main")
            self.current = approved
            return sha


# --- load -------------------------------------------------------------------------------------


@dataclass
class Counts:
    requests: int = 0
    checks: int = 0
    opens: int = 0
    wrong_opens: int = 0
    wrong_closed: int = 0
    unknown_commit: int = 0
    server_errors: int = 0
    connection_errors: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    status: Counter[int] = field(default_factory=Counter)
    last_commit: str = ""


class Load:
    def __init__(self, port: int, repo: Repo, seed: int) -> None:
        self.port = port
        self.repo = repo
        self.rng = random.Random(seed)
        self.conn: http.client.HTTPConnection | None = None
        self.counts = Counts()
        self.invented = 0
        self.seed = seed
        self.warmed = False

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes] | None:
        for _ in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
                headers = {"Content-Type": "application/json"} if body is not None else {}
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                self.counts.requests += 1
                self.counts.status[resp.status] += 1
                if resp.status >= 500:
                    self.counts.server_errors += 1
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
        self.counts.connection_errors += 1
        return None

    def new_name(self) -> str:
        self.invented += 1
        return f"invented-{self.seed}-{self.invented}"

    def check(self, name: str, hook: str, checksum: str) -> None:
        path = "/rollback/check" if hook == "rollback" else f"/gate/check/{hook}"
        payload = {"name": name, "namespace": NAMESPACE, "checksum": checksum, "phase": "Progressing"}
        got = self.request("POST", path, json.dumps(payload).encode())
        if got is None:
            return
        status, headers, _ = got
        self.counts.checks += 1
        commit = headers.get("x-gitgate-commit", "")
        self.counts.last_commit = commit or self.counts.last_commit
        approved = self.repo.approved.get(commit)
        if approved is None:
            self.counts.unknown_commit += 1
            expected = False
        else:
            expected = (name, hook, checksum) in approved
        if status == 200:
            self.counts.opens += 1
            if not expected:
                self.counts.wrong_opens += 1
        elif (status == 403 and expected) or status not in (200, 403):
            self.counts.wrong_closed += 1

    def event(self, name: str) -> None:
        meta = {"eventType": "Normal", "eventMessage": f"Advance {name}.{NAMESPACE} canary weight 10"}
        meta["timestamp"] = str(int(time.time() * 1000))
        body = {"name": name, "namespace": NAMESPACE, "phase": "Progressing", "checksum": "aaa111", "metadata": meta}
        self.request("POST", "/events", json.dumps(body).encode())

    def warm_up(self, names: int, events: int, known: list[str]) -> None:
        for _ in range(names):
            name = self.new_name()
            for hook in HOOKS:
                self.check(name, hook, "aaa111")
        for _ in range(events):
            self.event(self.new_name())
        for name in known:  # fill the known canaries' event lists to their bound (20)
            for _ in range(EVENTS_PER_CANARY):
                self.event(name)
        self.warmed = True

    def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.80:
            kind = "check"
            self.check(self.rng.choice(self.repo.names), self.rng.choice(HOOKS), self.rng.choice(CHECKSUMS))
        elif roll < 0.90:
            kind = "check invented name"
            self.check(self.new_name(), self.rng.choice(HOOKS), self.rng.choice(CHECKSUMS))
        elif roll < 0.95:
            kind = "bad body"
            self.request(
                "POST", "/gate/check/confirm-promotion", self.rng.choice([b"{", b"[]", b'{"name": 1}', b"\xff"])
            )
        elif roll < 0.98:
            kind = "event"
            self.event(self.rng.choice(self.repo.names) if self.rng.random() < 0.5 else self.new_name())
        else:
            kind, path = self.rng.choice(
                [("status api", "/api/v1/status?limit=50"), ("status page", "/"), ("metrics", "/metrics")]
            )
            self.request("GET", path)
        self.counts.by_kind[kind] += 1


# --- the service --------------------------------------------------------------------------------


def proc_sample(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mib": int(fields["VmRSS"].split()[0]) / 1024,
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(fields["Threads"]),
    }


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gitgate serve exited {proc.returncode} before it was ready")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"gitgate serve not ready in {timeout}s")


def verdict(samples: list[dict[str, Any]]) -> dict[str, Any]:
    measured = [s for s in samples if s["phase"] == "load"]
    fifth = max(1, len(measured) // 5)
    head, tail = measured[:fifth], measured[-fifth:]
    rss_first = statistics.median(s["rss_mib"] for s in head)
    rss_last = statistics.median(s["rss_mib"] for s in tail)
    fds_first = max(s["fds"] for s in head)
    fds_last = max(s["fds"] for s in tail)
    allowed = max(rss_first * MEMORY_NOISE[0], MEMORY_NOISE[1])
    return {
        "rss_first_mib": round(rss_first, 1),
        "rss_last_mib": round(rss_last, 1),
        "rss_growth_mib": round(rss_last - rss_first, 1),
        "rss_allowed_mib": round(allowed, 1),
        "fds_first": fds_first,
        "fds_last": fds_last,
        "memory_ok": rss_last - rss_first <= allowed,
        "fds_ok": fds_last - fds_first <= FD_NOISE,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180, help="length of the measured run (default 180)")
    parser.add_argument("--clients", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--canaries", type=int, default=200, help="gate files in the repo (default 200)")
    parser.add_argument("--commit-every", type=float, default=5.0, help="seconds between commits (default 5)")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between samples (default 5)")
    parser.add_argument("--json", type=Path, help="also write samples and verdict here")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "bench/soak.py", *(sys.argv[1:] if argv is None else argv)])
    git_version = sh("git", "--version").strip()
    print(f"$ {command}")
    print(f"# {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {git_version}")

    with tempfile.TemporaryDirectory(prefix="gitgate-soak-") as tmp:
        root = Path(tmp)
        gitconfig = root / "gitconfig"
        gitconfig.write_text("[user]\n\tname = Soak\n\temail = alice@soak.test\n")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GITGATE_"))},
            "GIT_CONFIG_GLOBAL": str(gitconfig),
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(root),
        }
        repo = Repo(root, args.canaries, env)
        repo.create()
        port = free_port()
        log = (root / "serve.log").open("wb")
        cmd = [
            sys.executable,
            "-m",
            "gitgate",
            "serve",
            "--listen",
            f"{HOST}:{port}",
            "--repo",
            str(repo.remote),
            "--trust-ssh",
            str(repo.signers),
            "--state-dir",
            str(root / "state"),
            "--interval",
            "1s",
        ]
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(port, proc)
            return run(args, command=command, repo=repo, port=port, proc=proc, root=root)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()


def run(
    args: argparse.Namespace, *, command: str, repo: Repo, port: int, proc: subprocess.Popen[bytes], root: Path
) -> int:
    loads = [Load(port, repo, seed) for seed in range(args.clients)]
    stop = threading.Event()
    phase = {"now": "warm-up"}
    commits = [0]

    def client(load: Load) -> None:
        known = repo.names[load.seed :: args.clients]
        load.warm_up(RECENT_PAIRS // len(HOOKS) // args.clients + 50, EVENT_CANARIES // args.clients + 50, known)
        while not stop.is_set():
            load.step()

    def lander() -> None:
        rng = random.Random(7)
        all_probes = [(n, h, c) for n in repo.names for h in HOOKS for c in CHECKSUMS]
        while not stop.wait(args.commit_every):
            flip = set(rng.sample(all_probes, 10))
            repo.land(repo.current.symmetric_difference(flip), f"soak commit {commits[0] + 1}")
            commits[0] += 1

    threads = [threading.Thread(target=client, args=(load,), daemon=True) for load in loads]
    threads.append(threading.Thread(target=lander, daemon=True))
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    for t in threads:
        t.start()
    columns = ("t (s)", 7), ("phase", 8), ("RSS MiB", 8), ("fds", 4), ("threads", 7), ("requests", 9), ("req/s", 6)
    print(" ".join(f"{name:>{width}}" for name, width in columns), f"{'commits':>7}  serving")
    last_requests, last_t = 0, 0.0
    warm_done_at: float | None = None
    end_at: float | None = None
    while True:
        time.sleep(args.sample_every)
        now = time.monotonic() - started
        if proc.poll() is not None:
            print(f"gitgate serve exited {proc.returncode} after {now:.0f} s: a crash")
            stop.set()
            break
        if warm_done_at is None and all(load.warmed for load in loads):
            warm_done_at = now
        requests = sum(load.counts.requests for load in loads)
        sample = {
            "t": round(now, 1),
            "phase": phase["now"],
            **proc_sample(proc.pid),
            "requests": requests,
            "rate": round((requests - last_requests) / (now - last_t)),
            "commits": commits[0],
            "serving": max((load.counts.last_commit for load in loads), key=len)[:12],
        }
        samples.append(sample)
        last_requests, last_t = requests, now
        print(
            f"{sample['t']:>7.0f} {sample['phase']:>8} {sample['rss_mib']:>8.1f} {sample['fds']:>4} "
            f"{sample['threads']:>7} {requests:>9} {sample['rate']:>6} {commits[0]:>7}  {sample['serving']}"
        )
        if phase["now"] == "warm-up" and warm_done_at is not None:
            phase["now"] = "load"
            end_at = now + args.seconds
        if end_at is not None and now >= end_at:
            stop.set()
            break
    for t in threads:
        t.join(timeout=30)
    crashed = proc.poll() is not None
    total = Counts()
    for load in loads:
        for key in ("requests", "checks", "opens", "wrong_opens", "wrong_closed", "unknown_commit"):
            setattr(total, key, getattr(total, key) + getattr(load.counts, key))
        total.server_errors += load.counts.server_errors
        total.connection_errors += load.counts.connection_errors
        total.by_kind.update(load.counts.by_kind)
        total.status.update(load.counts.status)
    result: dict[str, Any] = {"command": command, "crashed": crashed, "samples": samples}
    if not crashed and sum(s["phase"] == "load" for s in samples) >= 2:
        result["verdict"] = verdict(samples)
    counts = asdict(total)
    counts["by_kind"] = dict(total.by_kind)
    counts["status"] = {str(k): v for k, v in sorted(total.status.items())}
    counts["commits"] = commits[0]
    result["counts"] = counts
    log_text = (root / "serve.log").read_text(errors="replace")
    result["log_tracebacks"] = log_text.count("Traceback")
    ok = (
        not crashed
        and "verdict" in result
        and result["verdict"]["memory_ok"]
        and result["verdict"]["fds_ok"]
        and total.wrong_opens == 0
        and total.wrong_closed == 0
        and total.unknown_commit == 0
        and total.server_errors == 0
        and total.connection_errors == 0
        and result["log_tracebacks"] == 0
    )
    result["ok"] = ok
    print()
    print(f"requests {total.requests} ({counts['by_kind']}), statuses {counts['status']}")
    print(
        f"checks {total.checks}, opens {total.opens}, wrong opens {total.wrong_opens}, wrong closed "
        f"{total.wrong_closed}, answers naming an unknown commit {total.unknown_commit}, 5xx "
        f"{total.server_errors}, connection errors {total.connection_errors}, commits landed {commits[0]}, "
        f"tracebacks in the log {result['log_tracebacks']}, crashed {'yes' if crashed else 'no'}"
    )
    if "verdict" in result:
        v = result["verdict"]
        print(
            f"memory: {v['rss_first_mib']} MiB (first fifth, median) -> {v['rss_last_mib']} MiB (last fifth): "
            f"{v['rss_growth_mib']:+} MiB, allowed {v['rss_allowed_mib']} -> {'ok' if v['memory_ok'] else 'GROWS'}"
        )
        print(f"fds: {v['fds_first']} -> {v['fds_last']} (max per fifth) -> {'ok' if v['fds_ok'] else 'GROWS'}")
    print(f"verdict: {'OK, no growth beyond noise' if ok else 'FAILED'}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

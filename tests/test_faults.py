"""Faults, end to end: a real `gitgate serve` on a real approvals repo while its remote goes away,
its own clone is damaged, it is killed with SIGKILL mid-reconcile, its disk fills up, and the clock
sits on the edges of expiries and freezes. Every answer is held against the commit it names
(tests/ledger.py): none may open what that commit does not approve, and the service must keep
answering from the last verified commit and recover by itself."""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from helpers import Approvals, Keys, Service, gate_yaml, service, sh, wait_for
from ledger import Ledger, Probe, Tally, ask, probes, record

from gitgate.git import Mirror
from gitgate.metrics import Metrics
from gitgate.reconcile import Reconciler
from gitgate.server import create_app
from gitgate.snapshot import SnapshotBuilder
from gitgate.state import StateDir
from gitgate.trust import TrustRoots, VerifyMode

pytestmark = pytest.mark.slow

PROBES = probes(3)  # 3 canaries x 4 hooks x 2 checksums
CANARIES = sorted({p.name for p in PROBES})
P1 = Probe("test", "app0", "confirm-promotion", "aaa111")
P2 = Probe("test", "app1", "rollback", "bbb222")
P3 = Probe("test", "app2", "confirm-rollout", "aaa111")


def serve_args(approvals: Approvals, keys: Keys, state: Path) -> list[str]:
    return [
        "--repo",
        approvals.url,
        "--interval",
        "1s",
        "--state-dir",
        str(state),
        "--trust-ssh",
        str(keys.allowed_signers),
    ]


def poke(svc: Service) -> None:
    """Wake the reconciler (what `gitgate approve --notify` does), so tests need not wait an interval."""
    with contextlib.suppress(requests.RequestException):
        requests.post(svc.url + "/hooks/local", timeout=5)


def serving(svc: Service) -> str:
    return str(svc.status()["serving"])


def wait_serving(svc: Service, commit: str, tally: Tally, ledger: Ledger, timeout: float = 20) -> None:
    """Poke until `commit` is served; every answer seen on the way is judged."""

    def there() -> bool:
        poke(svc)
        tally.sweep(ledger, svc.url, PROBES[:4])
        return serving(svc) == commit

    wait_for(there, timeout=timeout, interval=0.1)


def assert_alive_without_crash(svc: Service) -> None:
    assert svc.proc is not None and svc.proc.poll() is None, svc.log.read_text()
    log = svc.log.read_text()
    assert "Traceback" not in log and "reconcile crashed" not in log, log


@pytest.fixture
def ledger(approvals: Approvals, keys: Keys) -> Ledger:
    return Ledger(approvals, keys.alice, CANARIES)


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for svc in started:
        svc.stop()


# --- the remote goes away --------------------------------------------------------------------------


def test_an_unreachable_remote_at_start_and_mid_run_changes_no_answer(
    approvals: Approvals, keys: Keys, ledger: Ledger, tmp_path: Path, services: list[Service]
) -> None:
    tally = Tally()
    away = approvals.root / "away.git"
    state = tmp_path / "state"

    # First start ever, remote unreachable: not ready, and every check closed saying so.
    shutil.move(approvals.remote, away)
    svc = Service(serve_args(approvals, keys, state), tmp_path / "run")
    services.append(svc)
    svc.start(ready=False)
    assert requests.get(svc.url + "/readyz", timeout=5).status_code == 503
    resp = ask(svc.url, P1)
    assert resp.status_code == 403 and "not ready" in resp.text
    tally.sweep(ledger, svc.url, PROBES)
    assert tally.not_ready == len(PROBES)
    shutil.move(away, approvals.remote)
    first = ledger.land(approve=[P1, P2])
    wait_serving(svc, first, tally, ledger)
    before = tally.sweep(ledger, svc.url, PROBES)

    # Mid-run: the remote goes away. Answers stay those of the last verified commit.
    shutil.move(approvals.remote, away)
    wait_for(lambda: poke(svc) or svc.status()["last_fetch"]["error"], timeout=10)
    assert tally.sweep(ledger, svc.url, PROBES) == before
    assert requests.get(svc.url + "/readyz", timeout=5).status_code == 200

    # A restart while it is still away: ready at once, from the state dir, with the same answers.
    svc.stop()
    svc.start(ready=True, timeout=10)
    assert serving(svc) == first
    assert tally.sweep(ledger, svc.url, PROBES) == before
    error = wait_for(lambda: poke(svc) or svc.status()["last_fetch"]["error"], timeout=10)
    assert "fetch" in error or "git" in error

    # The remote is back: the next commit is verified and served, and the error clears.
    shutil.move(away, approvals.remote)
    second = ledger.land(approve=[P3], revoke=[P1])
    wait_serving(svc, second, tally, ledger)
    after = tally.sweep(ledger, svc.url, PROBES)
    assert after[P3][0] == 200 and after[P1][0] == 403
    assert svc.status()["last_fetch"]["error"] is None
    assert_alive_without_crash(svc)
    tally.assert_clean()
    record("remote unreachable", cases=3, checks=tally.checks, wrong_opens=len(tally.wrong_opens), crashes=0)


# --- gitgate's own clone is damaged -----------------------------------------------------------------


def _loose_objects(git_dir: Path) -> list[Path]:
    return [f for f in (git_dir / "objects").glob("??/*") if f.is_file()]


def _overwrite(path: Path, data: bytes) -> None:
    path.chmod(0o644)
    path.write_bytes(data)


def garble_objects(git_dir: Path) -> None:
    for obj in _loose_objects(git_dir):
        _overwrite(obj, os.urandom(max(obj.stat().st_size, 16)))


def empty_objects(git_dir: Path) -> None:
    """What a power cut leaves of objects written without fsync: files of length zero."""
    for obj in _loose_objects(git_dir):
        _overwrite(obj, b"")


def delete_clone(git_dir: Path) -> None:
    shutil.rmtree(git_dir)


def delete_refs(git_dir: Path) -> None:
    shutil.rmtree(git_dir / "refs" / "remotes", ignore_errors=True)
    shutil.rmtree(git_dir / "refs" / "gitgate", ignore_errors=True)
    (git_dir / "packed-refs").unlink(missing_ok=True)


def _repack(git_dir: Path) -> list[Path]:
    sh("git", "--git-dir", git_dir, "repack", "-q", "-a", "-d")
    return sorted((git_dir / "objects" / "pack").glob("pack-*"))


def truncate_pack(git_dir: Path) -> None:
    for pack in _repack(git_dir):
        if pack.suffix == ".pack":
            _overwrite(pack, pack.read_bytes()[: pack.stat().st_size // 2])


def garble_pack_index(git_dir: Path) -> None:
    for pack in _repack(git_dir):
        if pack.suffix == ".idx":
            _overwrite(pack, os.urandom(pack.stat().st_size))


def stale_lock(git_dir: Path) -> None:
    """What a git killed while updating the branch's ref leaves behind."""
    lock = git_dir / "refs" / "remotes" / "origin" / "main.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("0" * 40 + "\n")


def garble_gate_blobs(git_dir: Path) -> None:
    """Objects of the gate files only: a fetch still succeeds, reading them fails."""
    out = sh("git", "--git-dir", git_dir, "ls-tree", "-r", "refs/remotes/origin/main", "--", "gates")
    for line in out.splitlines():
        oid = line.split()[2]
        obj = git_dir / "objects" / oid[:2] / oid[2:]
        if obj.is_file():
            _overwrite(obj, os.urandom(max(obj.stat().st_size, 16)))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "whole clone deleted": delete_clone,
    "refs deleted": delete_refs,
    "loose objects garbled": garble_objects,
    "loose objects emptied": empty_objects,
    "pack truncated": truncate_pack,
    "pack index garbled": garble_pack_index,
    "stale ref lock": stale_lock,
    "gate blobs garbled": garble_gate_blobs,
}


def test_a_damaged_clone_keeps_answers_and_is_cloned_again(
    approvals: Approvals, keys: Keys, ledger: Ledger, tmp_path: Path, services: list[Service]
) -> None:
    tally = Tally()
    state = tmp_path / "state"
    svc = Service(serve_args(approvals, keys, state), tmp_path / "run")
    services.append(svc)
    svc.start(ready=False)
    wait_serving(svc, ledger.land(approve=[P1]), tally, ledger)
    rng = random.Random(6)  # noqa: S311 - which hooks to flip, replayable, not a secret
    for kind, damage in DAMAGE.items():
        before = tally.sweep(ledger, svc.url, PROBES)
        damage(state / "repo.git")
        assert tally.sweep(ledger, svc.url, PROBES) == before, kind  # answered from memory
        flip = rng.sample(PROBES, 3)
        sha = ledger.land(
            approve=[p for p in flip if p not in ledger.current], revoke=[p for p in flip if p in ledger.current]
        )
        wait_serving(svc, sha, tally, ledger)
        after = tally.sweep(ledger, svc.url, PROBES)
        assert {p for p, (status, _, _) in after.items() if status == 200} == ledger.approved[sha], kind
        assert json.loads((state / "state.json").read_text())["commit"] == sha, kind
    assert_alive_without_crash(svc)
    log = svc.log.read_text()
    assert "is damaged" in log and "cloning" in log
    tally.assert_clean()
    record(
        "clone damaged while running",
        cases=len(DAMAGE),
        checks=tally.checks,
        wrong_opens=len(tally.wrong_opens),
        crashes=0,
    )


def test_a_restart_on_a_damaged_or_missing_clone_recovers(
    approvals: Approvals, keys: Keys, ledger: Ledger, tmp_path: Path, services: list[Service]
) -> None:
    tally = Tally()
    state = tmp_path / "state"
    svc = Service(serve_args(approvals, keys, state), tmp_path / "run")
    services.append(svc)
    svc.start(ready=False)
    sha = ledger.land(approve=[P1, P3])
    wait_serving(svc, sha, tally, ledger)
    expected = tally.sweep(ledger, svc.url, PROBES)
    cases = {
        # objects and a ref lock as a SIGKILLed git and a power cut leave them, plus a half-made
        # clone from an interrupted re-clone
        "garbled objects, stale lock, half-made clone": lambda: (
            garble_objects(state / "repo.git"),
            stale_lock(state / "repo.git"),
            (state / "repo.git.new-x1y2z3").mkdir(),
        ),
        "emptied objects": lambda: empty_objects(state / "repo.git"),
        "clone deleted": lambda: delete_clone(state / "repo.git"),
    }
    for kind, damage in cases.items():
        svc.stop()
        damage()
        svc.start(ready=False)
        wait_serving(svc, sha, tally, ledger)
        assert tally.sweep(ledger, svc.url, PROBES) == expected, kind
        assert not (state / "repo.git.new-x1y2z3").exists()
        assert_alive_without_crash(svc)
    tally.assert_clean()
    record(
        "clone damaged across a restart",
        cases=len(cases),
        checks=tally.checks,
        wrong_opens=len(tally.wrong_opens),
        crashes=0,
    )


def test_a_stored_parse_that_does_not_decode_answers_closed_and_is_read_from_git_again(
    approvals: Approvals, keys: Keys, tmp_path: Path, services: list[Service]
) -> None:
    # A restart takes parsed gates from <state-dir>/parsed.jsonl and decodes each when first asked.
    # A line that passes its CRC but does not decode (a bug, a forged state dir) must never read
    # as "no gate file": here the policy's default is open, so that would open the gate.
    approvals.write("gitgate.yaml", "apiVersion: gitgate/v1\nkind: Policy\nspec:\n  default: open\n")
    approvals.gate("test", "app0", default="closed", approvals=[{"hook": "confirm-promotion", "checksum": "aaa111"}])
    approvals.land("gates", keys.alice)
    state = tmp_path / "state"
    svc = Service(serve_args(approvals, keys, state), tmp_path / "run")
    services.append(svc)
    svc.start()
    answers = {s: svc.check("confirm-promotion", "test", "app0", s).status_code for s in ("aaa111", "zzz")}
    assert answers == {"aaa111": 200, "zzz": 403}
    svc.stop()

    store = state / "parsed.jsonl"
    header, line = store.read_text().splitlines()
    path, oid, _value, _crc = line.split("\t")
    forged = '["open", "every", "gate"]'
    body = "\t".join((path, oid, forged))
    store.write_text(f"{header}\n{body}\t{zlib.crc32(body.encode()):08x}\n")

    svc.start()
    first = svc.check("confirm-promotion", "test", "app0", "zzz")
    assert first.status_code == 500, first.text  # closed, and it says so
    assert "stays closed" in first.text
    # That failure asked the reconciler to read the commit from git again, every file parsed anew.
    wait_for(lambda: svc.check("confirm-promotion", "test", "app0", "zzz").status_code == 403)
    assert svc.check("confirm-promotion", "test", "app0", "aaa111").status_code == 200
    log = svc.log.read_text()
    assert "gates/test/app0.yaml: its stored parse does not decode" in log
    assert "reading every gate file from git again" in log
    assert forged not in store.read_text()


# --- SIGKILL in the middle of a reconcile --------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [int(child), *_children(int(child))]
    return found


def kill_tree(pid: int) -> list[str]:
    """SIGKILL the service and every git it runs, as the OOM killer or a node loss would. Returns
    the command names of the children that were killed."""
    os.kill(pid, signal.SIGSTOP)  # no new children from here on
    kids = _children(pid)
    names = []
    for child in kids:
        with contextlib.suppress(OSError):
            names.append(Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:60])
    for target in (pid, *kids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGKILL)
    return names


def test_sigkill_during_reconciles_restarts_consistent(
    approvals: Approvals, keys: Keys, ledger: Ledger, tmp_path: Path, services: list[Service]
) -> None:
    tally = Tally()
    state = tmp_path / "state"
    rng = random.Random(9)  # noqa: S311 - replayable choices, not a secret
    stop = threading.Event()

    def land_commits() -> None:  # people keep approving and revoking while gitgate crashes
        while not stop.is_set():
            flip = rng.sample(PROBES, 2)
            ledger.land(
                approve=[p for p in flip if p not in ledger.current], revoke=[p for p in flip if p in ledger.current]
            )
            time.sleep(0.3)

    lander = threading.Thread(target=land_commits, daemon=True)
    lander.start()
    rounds, mid_git = 5, 0
    try:
        for n in range(rounds):
            svc = Service(serve_args(approvals, keys, state), tmp_path / "run")
            services.append(svc)
            svc.start(ready=n > 0, timeout=20)
            if n > 0:  # restarted: answers at once, each equal to the commit it names
                tally.sweep(ledger, svc.url, PROBES)
            # A large commit, so that the kill lands while git fetches or verifies.
            ledger.land(extra={"blobs/large.bin": os.urandom(2 << 20)})
            poke(svc)
            assert svc.proc is not None
            deadline = time.monotonic() + 3
            while not _children(svc.proc.pid) and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.3))  # in the fetch, the verification, the snapshot or the state write
            killed = kill_tree(svc.proc.pid)
            mid_git += any("git" in k for k in killed)
            svc.proc.wait(timeout=10)
            svc.proc = None
            saved = StateDir(state).load()  # never half-written: loads, and names a landed commit
            assert saved is None or saved.commit in ledger.approved
    finally:
        stop.set()
        lander.join(timeout=30)
    head = ledger.land(approve=[P1])
    svc = Service(serve_args(approvals, keys, state), tmp_path / "run")
    services.append(svc)
    svc.start(ready=True, timeout=20)
    wait_serving(svc, head, tally, ledger)
    final = tally.sweep(ledger, svc.url, PROBES)
    assert {p for p, (status, _, _) in final.items() if status == 200} == ledger.approved[head]
    saved = StateDir(state).load()
    assert saved is not None and saved.commit == head
    assert_alive_without_crash(svc)
    tally.assert_clean()
    assert mid_git >= 1, f"none of {rounds} kills hit a running git"
    record(
        "SIGKILL during reconcile",
        cases=rounds,
        kills_with_git_running=mid_git,
        commits=len(ledger.approved),
        checks=tally.checks,
        wrong_opens=len(tally.wrong_opens),
        crashes=0,
    )


# --- SIGTERM: a rolling update or a node drain -----------------------------------------------------


def test_sigterm_during_a_first_build_waits_for_it_so_the_next_start_parses_nothing(
    approvals: Approvals, keys: Keys, tmp_path: Path
) -> None:
    """Kubernetes stops a pod with SIGTERM, then SIGKILL after its grace period (30 s by default).
    gitgate stops answering at once but lets the reconcile in progress finish: a first build cut
    short would leave no parse store, and the next start would parse every file again."""
    for i in range(6_000):  # enough that the first build is parsed in worker processes
        approvals.gate(f"team-{i % 7}", f"app-{i}", approvals=[{"hook": "confirm-rollout", "checksum": "*"}])
    approvals.land("6,000 gates", keys.alice)
    state = tmp_path / "state"
    svc = Service(serve_args(approvals, keys, state), tmp_path / "run")
    try:
        svc.start(ready=False)  # answering /healthz: the first fetch or build is under way
        assert svc.proc is not None
        assert requests.get(svc.url + "/readyz", timeout=5).status_code == 503, "ready too soon to test this"
        stopping = time.monotonic()
        svc.proc.send_signal(signal.SIGTERM)
        assert svc.proc.wait(timeout=30) == 0
        assert time.monotonic() - stopping < 20  # serve.SHUTDOWN_WAIT, with room for a slow machine
    finally:
        svc.stop(kill=True)  # only if a check above failed: it has exited otherwise
    log = svc.log.read_text()
    assert "gitgate stopped" in log and "Traceback" not in log, log
    assert "read 6000 gate files" in log, log  # the build it was stopped in finished

    with service(serve_args(approvals, keys, state), tmp_path / "run") as again:  # the lock was let go
        assert again.check("confirm-rollout", "team-0", "app-0", "abc123").status_code == 200
        assert "read 6000 gate files of" in (log := again.log.read_text()), log
        assert "(0 parsed, 6000 from the parse store)" in log, log


# --- the disk fills up while state is written ---------------------------------------------------


class PipedService(Service):
    """The service with its output through a pipe (a file size limit must not stop its log) and
    with a file size limit that can be lowered and raised while it runs."""

    def start(self, *, ready: bool = True, timeout: float = 20) -> Service:
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gitgate", "serve", "--listen", f"127.0.0.1:{self.port}", *self.args],
            cwd=self.cwd,
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out = self.proc.stdout
        assert out is not None

        def copy() -> None:
            with self.log.open("ab") as log:
                for line in out:
                    log.write(line)
                    log.flush()

        self._copier = threading.Thread(target=copy, daemon=True)
        self._copier.start()
        wait_for(lambda: ready_or_dead(self), timeout=timeout)
        return self

    def stop(self, *, kill: bool = False) -> None:
        proc = self.proc
        super().stop(kill=kill)
        if proc is not None and proc.stdout is not None:
            self._copier.join(timeout=10)
            proc.stdout.close()

    def limit_file_size(self, size: int) -> None:
        assert self.proc is not None
        _, hard = resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (size, hard))


def ready_or_dead(svc: Service) -> bool:
    assert svc.proc is not None
    if svc.proc.poll() is not None:
        raise AssertionError(f"gitgate serve exited {svc.proc.returncode}:\n{svc.log.read_text()}")
    with contextlib.suppress(requests.RequestException):
        return requests.get(svc.url + "/readyz", timeout=1).status_code == 200
    return False


def test_a_full_disk_while_writing_state_keeps_answers_and_the_old_state_whole(
    keys: Keys, tmp_path: Path, services: list[Service]
) -> None:
    # The remote's path is long, so state.json (which names it) is larger than anything git writes
    # for a small commit: with a file size limit between the two, only the state write fails, as
    # on a disk with a few hundred bytes left. SIGXFSZ is ignored by Python: writes fail with EFBIG.
    deep = tmp_path.joinpath(*(["d" * 200] * 14))
    approvals = Approvals.create(deep, keys)
    ledger = Ledger(approvals, keys.alice, CANARIES)
    tally = Tally()
    state = tmp_path / "state"
    svc = PipedService(serve_args(approvals, keys, state), tmp_path / "run")
    services.append(svc)
    first = ledger.land(approve=[P1])
    svc.start()
    wait_serving(svc, first, tally, ledger)
    state_file = state / "state.json"
    assert state_file.stat().st_size > 3000
    before = tally.sweep(ledger, svc.url, PROBES)

    svc.limit_file_size(2048)
    second = ledger.land(approve=[P2, P3])
    wait_for(lambda: poke(svc) or "cannot record commit" in svc.log.read_text(), timeout=15)
    for _ in range(3):  # it keeps trying, and keeps answering from the first commit meanwhile
        poke(svc)
        assert tally.sweep(ledger, svc.url, PROBES) == before
        assert json.loads(state_file.read_text())["commit"] == first
        # Nothing left behind: a retry may be writing its temporary file at this very moment, but
        # it removes it when the write fails.
        wait_for(lambda: not list(state.glob("state.json.*")), timeout=5, interval=0.01)
        time.sleep(0.3)
    assert requests.get(svc.url + "/readyz", timeout=5).status_code == 200
    assert "free space in" in svc.log.read_text()

    svc.limit_file_size(resource.RLIM_INFINITY)
    wait_serving(svc, second, tally, ledger)
    assert json.loads(state_file.read_text())["commit"] == second
    after = tally.sweep(ledger, svc.url, PROBES)
    assert after[P2][0] == 200 and after[P3][0] == 200
    assert_alive_without_crash(svc)
    tally.assert_clean()
    record("disk full writing state", cases=1, checks=tally.checks, wrong_opens=len(tally.wrong_opens), crashes=0)


def test_a_signature_that_cannot_be_checked_is_tried_again_not_refused(
    approvals: Approvals, keys: Keys, ledger: Ledger, tmp_path: Path, services: list[Service]
) -> None:
    # git writes each signature to a temporary file to check it; when it cannot (TMPDIR full or
    # gone), it calls a good signature "not signed". That must not refuse the commit for good.
    # (A good SSH signature by a listed key is checked in process, without a temporary file; a
    # GPG signature always goes to git.)
    tally = Tally()
    tmpdir, gone = tmp_path / "tmp", tmp_path / "tmp-gone"
    tmpdir.mkdir()
    args = [*serve_args(approvals, keys, tmp_path / "state"), "--trust-gpg", str(keys.carol_asc)]
    svc = Service(args, tmp_path / "run", env={"TMPDIR": str(tmpdir)})
    services.append(svc)
    svc.start(ready=False)
    first = ledger.land(approve=[P1])
    wait_serving(svc, first, tally, ledger)
    before = tally.sweep(ledger, svc.url, PROBES)

    tmpdir.rename(gone)
    ledger.signer = keys.carol
    second = ledger.land(approve=[P2])
    wait_for(lambda: poke(svc) or "cannot check signatures" in svc.log.read_text(), timeout=10)
    assert tally.sweep(ledger, svc.url, PROBES) == before
    assert not [r for r in svc.status()["refused"] if r["commit"] == second]

    gone.rename(tmpdir)
    wait_serving(svc, second, tally, ledger)
    assert tally.sweep(ledger, svc.url, [P2])[P2][0] == 200
    assert_alive_without_crash(svc)
    tally.assert_clean()
    record("signature check impossible (TMPDIR gone)", cases=1, checks=tally.checks, wrong_opens=0, crashes=0)


# --- the clock on the edges of expiries and freezes ----------------------------------------------

EXPIRES = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


class Clock:
    def __init__(self) -> None:
        self.now = EXPIRES

    def __call__(self) -> datetime:
        return self.now


def test_expiry_freeze_and_dst_edges_to_the_second_through_the_app(
    approvals: Approvals, keys: Keys, tmp_path: Path
) -> None:
    def approval(hook: str, **extra: str) -> dict[str, str]:
        return {"hook": hook, "checksum": "abc", **extra}

    approvals.write(
        "gates/test/expiring.yaml",
        gate_yaml("test", "expiring", approvals=[approval("confirm-promotion", expires="2026-11-23T12:00:00Z")]),
    )
    approvals.write(  # the same instant written in another zone
        "gates/test/offset.yaml",
        gate_yaml("test", "offset", approvals=[approval("confirm-promotion", expires="2026-11-23T13:00:00+01:00")]),
    )
    weekend = {"start": "0 18 * * FRI", "duration": "63h", "timezone": "Europe/Berlin", "reason": "weekend"}
    night = {"start": "30 2 * * SUN", "duration": "1h", "timezone": "Europe/Berlin", "reason": "night"}
    for name, window in (("weekend", weekend), ("night", night)):
        approvals.write(
            f"gates/test/{name}.yaml",
            gate_yaml("test", name, approvals=[approval("*"), approval("rollback")], freeze=[window]),
        )
    commit = approvals.land("expiries and freezes", keys.alice)

    st = StateDir(tmp_path / "state")
    st.ensure()
    mirror = Mirror(st.mirror_dir)
    rec = Reconciler(
        repo=approvals.url,
        branch="main",
        mirror=mirror,
        state=st,
        trust=TrustRoots(VerifyMode.ALL, keys.allowed_signers, frozenset(), st.gnupg_dir),
        builder=SnapshotBuilder(mirror, "gates"),
        metrics=Metrics(),
    )
    rec.resume()
    assert rec.reconcile().result == "advanced"
    clock = Clock()
    client = create_app(source=rec, metrics=Metrics(), clock=clock).test_client()

    def at(moment: datetime, name: str, hook: str = "confirm-promotion") -> tuple[int, str]:
        clock.now = moment
        path = "/rollback/check" if hook == "rollback" else f"/gate/check/{hook}"
        resp = client.post(path, json={"name": name, "namespace": "test", "checksum": "abc", "phase": "Progressing"})
        assert resp.headers["X-Gitgate-Commit"] == commit
        return resp.status_code, resp.get_data(as_text=True)

    cases = 0
    # An approval counts until its expiry instant, not at it, in whatever zone it is written.
    for name in ("expiring", "offset"):
        assert at(EXPIRES - SECOND, name)[0] == 200
        for moment in (EXPIRES, EXPIRES + SECOND):
            status, body = at(moment, name)
            assert status == 403 and "its approval expired" in body, body
        cases += 3

    def freeze_edges(name: str, start: datetime, end: datetime) -> int:
        """Open a second before the start; frozen from the start to a second before the end, saying
        until when; open again at the end. Rollback is never frozen."""
        until = end.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert at(start - SECOND, name)[0] == 200, (name, start)
        for moment in (start, start + SECOND, end - SECOND):
            status, body = at(moment, name)
            assert status == 403 and f"frozen until {until}" in body, (name, moment, body)
            assert at(moment, name, "rollback")[0] == 200
        assert at(end, name)[0] == 200, (name, end)
        assert at(end + SECOND, name)[0] == 200, (name, end)
        return 6

    utc = UTC
    # Friday 18:00 Berlin for 63 elapsed hours: in winter, and across both DST changes of 2026.
    cases += freeze_edges("weekend", datetime(2026, 1, 9, 17, 0, tzinfo=utc), datetime(2026, 1, 12, 8, 0, tzinfo=utc))
    cases += freeze_edges("weekend", datetime(2026, 3, 27, 17, 0, tzinfo=utc), datetime(2026, 3, 30, 8, 0, tzinfo=utc))
    cases += freeze_edges(
        "weekend", datetime(2026, 10, 23, 16, 0, tzinfo=utc), datetime(2026, 10, 26, 7, 0, tzinfo=utc)
    )
    # 02:30 on a Sunday: skipped on 29 March (the window starts when the clock jumps to 03:00),
    # twice on 25 October (the window starts at the first 02:30 only).
    cases += freeze_edges("night", datetime(2026, 3, 29, 1, 0, tzinfo=utc), datetime(2026, 3, 29, 2, 0, tzinfo=utc))
    cases += freeze_edges("night", datetime(2026, 10, 25, 0, 30, tzinfo=utc), datetime(2026, 10, 25, 1, 30, tzinfo=utc))
    assert at(datetime(2026, 10, 25, 1, 30, tzinfo=utc) + timedelta(minutes=30), "night")[0] == 200
    record("clock edges", cases=cases, wrong_opens=0, crashes=0)

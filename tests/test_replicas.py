"""Replicas: three `gitgate serve` processes, each with its own state dir, on one approvals repo,
checked concurrently while signed commits land. Whenever two answers name the same commit
(X-Gitgate-Commit) they must be the same answer, word for word, and every answer must be what that
commit says (tests/ledger.py)."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import Approvals, Keys, Service, wait_for
from ledger import Ledger, Probe, Tally, ask, probes, record

pytestmark = pytest.mark.slow

REPLICAS = 3
PROBES = probes(8)  # 8 canaries x 4 hooks x 2 checksums = 64
LOAD_SECONDS = 4.0
CLIENTS = 6

Answer = tuple[int, str, str]  # status, body, X-Gitgate-Reason


@pytest.fixture
def replicas(approvals: Approvals, keys: Keys, tmp_path: Path) -> Iterator[list[Service]]:
    started = [
        Service(
            [
                "--repo",
                approvals.url,
                "--interval",
                "1s",
                "--state-dir",
                str(tmp_path / f"state-{n}"),
                "--trust-ssh",
                str(keys.allowed_signers),
            ],
            tmp_path / f"run-{n}",
        )
        for n in range(REPLICAS)
    ]
    try:
        with ThreadPoolExecutor(REPLICAS) as pool:
            list(pool.map(lambda svc: svc.start(), started))
        yield started
    finally:
        for svc in started:
            svc.stop()


def test_replicas_answer_identically_for_the_same_commit_under_load(
    approvals: Approvals, keys: Keys, replicas: list[Service]
) -> None:
    ledger = Ledger(approvals, keys.alice, {p.name for p in PROBES})
    seen: dict[tuple[str, Probe], dict[int, set[Answer]]] = defaultdict(lambda: defaultdict(set))
    tally = Tally()
    lock = threading.Lock()
    stop = threading.Event()
    rng = random.Random(45)  # noqa: S311 - replayable choices, not a secret

    def land_commits() -> None:
        while not stop.is_set():
            flip = rng.sample(PROBES, 6)
            ledger.land(
                approve=[p for p in flip if p not in ledger.current], revoke=[p for p in flip if p in ledger.current]
            )
            time.sleep(0.1)

    def load(seed: int) -> None:
        mine = random.Random(seed)  # noqa: S311 - replayable load, not a secret
        while not stop.is_set():
            n = mine.randrange(REPLICAS)
            probe = mine.choice(PROBES)
            resp = ask(replicas[n].url, probe)
            answer = (resp.status_code, resp.text, resp.headers.get("X-Gitgate-Reason", ""))
            with lock:
                tally.judge(ledger, probe, resp)
                seen[(resp.headers.get("X-Gitgate-Commit", ""), probe)][n].add(answer)

    threads = [threading.Thread(target=land_commits)] + [
        threading.Thread(target=load, args=(seed,)) for seed in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    time.sleep(LOAD_SECONDS)
    stop.set()
    for t in threads:
        t.join(timeout=30)

    compared = 0
    for (commit, probe), by_replica in seen.items():
        answers = set().union(*by_replica.values())
        assert len(answers) == 1, f"{probe} at {commit[:12]}: replicas disagree: {dict(by_replica)}"
        compared += len(by_replica) > 1
    tally.assert_clean()
    assert len(ledger.approved) > 6 and compared > 100, (len(ledger.approved), compared)

    # Once commits stop, all replicas reach the head and give the same answer to every probe.
    head = ledger.land(approve=[PROBES[0]])
    for svc in replicas:
        wait_for(lambda: svc.status()["serving"] == head, timeout=15)  # noqa: B023
    sweeps = [tally.sweep(ledger, svc.url, PROBES) for svc in replicas]
    assert sweeps[0] == sweeps[1] == sweeps[2]
    tally.assert_clean()
    for svc in replicas:
        assert svc.proc is not None and svc.proc.poll() is None
    record(
        "replicas",
        replicas=REPLICAS,
        commits=len(ledger.approved),
        checks=tally.checks,
        commit_probe_pairs_compared=compared,
        disagreements=0,
        wrong_opens=len(tally.wrong_opens),
        crashes=0,
    )

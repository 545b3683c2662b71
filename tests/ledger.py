"""An approvals repo whose every landed commit is remembered with what it approves: the oracle that
fault, replica and soak runs hold each answer against. An answer names its commit
(X-Gitgate-Commit); it must be open exactly when that commit approves the probe."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import requests
from helpers import Approvals, Signer, gate_yaml

HOOKS = ("confirm-rollout", "confirm-traffic-increase", "confirm-promotion", "rollback")


class Probe(NamedTuple):
    namespace: str
    name: str
    hook: str
    checksum: str


def probes(canaries: int, checksums: Iterable[str] = ("aaa111", "bbb222")) -> list[Probe]:
    sums = list(checksums)
    return [Probe("test", f"app{i}", hook, s) for i in range(canaries) for hook in HOOKS for s in sums]


class Ledger:
    """Commits land through `land`; `approved[commit]` is the set of probes that commit opens."""

    def __init__(self, approvals: Approvals, signer: Signer, canaries: Iterable[str]) -> None:
        self.approvals = approvals
        self.signer = signer
        self.canaries = sorted(set(canaries))
        self.current: frozenset[Probe] = frozenset()
        self.approved: dict[str, frozenset[Probe]] = {approvals.head(): self.current}
        self.lock = threading.Lock()

    def land(
        self, *, approve: Iterable[Probe] = (), revoke: Iterable[Probe] = (), extra: dict[str, bytes] | None = None
    ) -> str:
        """Rewrite every gate file from the new set of approvals and land one signed commit."""
        with self.lock:
            new = (self.current | frozenset(approve)) - frozenset(revoke)
            for name in self.canaries:
                mine = sorted(p for p in new if p.name == name)
                approvals = [{"hook": p.hook, "checksum": p.checksum} for p in mine]
                self.approvals.write(f"gates/test/{name}.yaml", gate_yaml("test", name, approvals=approvals))
            for path, data in (extra or {}).items():
                self.approvals.write(path, data)
            sha = self.approvals.land(f"{len(new)} approvals", self.signer)
            self.current = new
            self.approved[sha] = new
            return sha

    def opens(self, commit: str, probe: Probe) -> bool:
        if commit not in self.approved:
            raise AssertionError(f"an answer names commit {commit!r}, which was never landed")
        return probe in self.approved[commit]


def ask(url: str, probe: Probe, timeout: float = 10) -> requests.Response:
    path = "/rollback/check" if probe.hook == "rollback" else f"/gate/check/{probe.hook}"
    body = {"name": probe.name, "namespace": probe.namespace, "checksum": probe.checksum, "phase": "Progressing"}
    return requests.post(url + path, json=body, timeout=timeout)


@dataclass
class Tally:
    """Answers held against the ledger: a wrong open is a 200 its commit does not approve."""

    checks: int = 0
    wrong_opens: list[str] = field(default_factory=list)
    wrong_closed: list[str] = field(default_factory=list)
    not_ready: int = 0
    commits: Counter[str] = field(default_factory=Counter)

    def judge(self, ledger: Ledger, probe: Probe, resp: requests.Response) -> None:
        self.checks += 1
        commit = resp.headers.get("X-Gitgate-Commit", "")
        assert resp.status_code in (200, 403), f"{probe}: {resp.status_code} {resp.text!r}"
        self.commits[commit] += 1
        if not commit:  # not ready: must be closed
            self.not_ready += 1
            if resp.status_code == 200:
                self.wrong_opens.append(f"{probe} opened before any verified commit")
            return
        expected = ledger.opens(commit, probe)
        if resp.status_code == 200 and not expected:
            self.wrong_opens.append(f"{probe} opened at {commit[:12]}")
        if resp.status_code == 403 and expected:
            self.wrong_closed.append(f"{probe} closed at {commit[:12]}: {resp.text.strip()}")

    def sweep(self, ledger: Ledger, url: str, items: Iterable[Probe]) -> dict[Probe, tuple[int, str, str]]:
        """Ask every probe once; judge each answer; return (status, commit, body) per probe."""
        out = {}
        for probe in items:
            resp = ask(url, probe)
            self.judge(ledger, probe, resp)
            out[probe] = (resp.status_code, resp.headers.get("X-Gitgate-Commit", ""), resp.text)
        return out

    def assert_clean(self) -> None:
        assert not self.wrong_opens, self.wrong_opens[:5]
        assert not self.wrong_closed, self.wrong_closed[:5]


def record(category: str, **figures: object) -> None:
    """With RELIABILITY_FIGURES=FILE, append what a run tried and found (for
    docs/reliability.md); otherwise nothing."""
    target = os.environ.get("RELIABILITY_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps({"category": category, **figures}) + "\n")

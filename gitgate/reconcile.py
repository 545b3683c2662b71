"""Which commit is trusted: fetch -> verify -> snapshot -> persist -> atomic swap. SPEC §3.

Checks read `Reconciler.snapshot`, a reference to an immutable Snapshot replaced in one
assignment, so a check always sees one whole commit and never waits on git.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gitgate.errors import GitError, GitgateError, InvalidFiles
from gitgate.git import Mirror, local_damage
from gitgate.metrics import Metrics
from gitgate.model import Snapshot
from gitgate.snapshot import SnapshotBuilder
from gitgate.state import StateDir, Verified
from gitgate.timeutil import format_timestamp
from gitgate.trust import TrustRoots, Verdict, VerifyMode

log = logging.getLogger("gitgate.reconcile")
VERIFIED_REF = "refs/gitgate/verified"
REFUSALS_KEPT = 20
RECLONE_WAIT = 60.0  # after a re-clone that did not cure local git errors, wait before the next (doubling, at most 1 h)


@dataclass(frozen=True)
class Refusal:
    commit: str
    kind: str  # signature | rewrite | invalid | missing
    reason: str
    at: datetime


@dataclass(frozen=True)
class Outcome:
    result: str  # advanced | unchanged | refused | fetch-failed
    commit: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Evaluation:
    """What --verify makes of moving from `base` to `head`: a verdict per commit checked, and the
    refusal (kind, reason) if the move is not allowed. Gate files are checked separately."""

    verdicts: list[Verdict]
    refusal: tuple[str, str] | None


ReviewCheck = Callable[[str], tuple[bool | None, str]]  # commit -> (ok, why); None: could not ask


def evaluate(
    mirror: Mirror,
    trust: TrustRoots,
    *,
    base: str | None,
    head: str,
    trust_from: str | None = None,
    review: ReviewCheck | None = None,
) -> Evaluation:
    if base is not None:
        if mirror.rev(base) is None:
            return Evaluation(
                [],
                (
                    "rewrite",
                    f"the last verified commit {base[:12]} is gone from the "
                    "branch: it was rewritten; answers stay as they were until it is restored",
                ),
            )
        if not mirror.is_ancestor(base, head):
            return Evaluation(
                [],
                (
                    "rewrite",
                    f"{head[:12]} does not descend from the last verified "
                    f"commit {base[:12]}: the branch was rewritten (force push or reset)",
                ),
            )
    elif trust_from:
        start = mirror.rev(trust_from)
        if start is None or not mirror.is_ancestor(start, head):
            return Evaluation([], ("rewrite", f"--trust-from {trust_from} is not an ancestor of {head[:12]}"))
        base = start
    path = [head] if base is None else mirror.first_parent_path(base, head)  # the new commits
    verdicts: list[Verdict] = []
    if trust.mode is not VerifyMode.OFF:
        verdicts = trust.verify(mirror, [head] if trust.mode is VerifyMode.HEAD else path)
        bad = next((v for v in verdicts if not v.trusted), None)
        if bad is not None:
            where = "" if bad.commit == head else f" (on the way to {head[:12]})"
            return Evaluation(verdicts, ("signature", f"commit {bad.commit[:12]}{where}: {bad.reason}"))
    if review is not None and base is not None:
        # The commit gitgate starts from (no state yet) is trusted on its signature alone, as it
        # must be: a new repo's first commit comes from no review. Every commit after it is checked.
        for commit in path:
            ok, why = review(commit)
            if ok:
                continue
            kind = "review" if ok is False else "unavailable"
            where = "" if commit == head else f" (on the way to {head[:12]})"
            return Evaluation(verdicts, (kind, f"commit {commit[:12]}{where}: {why}"))
    return Evaluation(verdicts, None)


class Reconciler:
    def __init__(
        self,
        *,
        repo: str,
        branch: str,
        mirror: Mirror,
        state: StateDir,
        trust: TrustRoots,
        builder: SnapshotBuilder,
        metrics: Metrics,
        trust_from: str | None = None,
        review: ReviewCheck | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.repo = repo
        self.branch = branch
        self.mirror = mirror
        self.state = state
        self.trust = trust
        self.builder = builder
        self.metrics = metrics
        self.trust_from = trust_from
        self.review = review
        self.clock = clock
        self.snapshot: Snapshot | None = None
        self.verified: Verified | None = None
        self.refusals: collections.deque[Refusal] = collections.deque(maxlen=REFUSALS_KEPT)
        self.last_fetch: datetime | None = None
        self.last_fetch_ok: datetime | None = None
        self.last_fetch_error: str = ""
        self.remote_head: str = ""
        self._refused_heads: dict[str, Refusal] = {}
        self.last_advance: dict[str, Any] | None = None  # what the last move to a new commit cost
        self._damage: str | None = None  # why the local clone must be cloned again, if it must
        self._reclone_after = 0.0
        self._reclone_wait = RECLONE_WAIT
        self._lock = threading.Lock()
        self._wake = threading.Event()
        metrics.unverified.set(1 if trust.mode is VerifyMode.OFF else 0)

    # --- start-up ---------------------------------------------------------------------------

    def resume(self) -> None:
        """Serve the last verified commit from the state dir at once, before any fetch."""
        verified = self.state.load()
        if verified is not None and (verified.repo, verified.branch) != (self.repo, self.branch):
            raise GitgateError(
                f"--state-dir {self.state.path} belongs to {verified.repo} branch {verified.branch}, "
                f"not {self.repo} branch {self.branch}; use another --state-dir for this repo"
            )
        if not self.mirror.exists():
            self.mirror.create(self.repo)
        else:
            left = self.mirror.remove_leftovers()  # we hold the state dir's lock: nobody else uses the clone
            if left:
                log.warning("removed what a killed git left in the local clone: %s", ", ".join(left))
        if verified is None:
            return
        self.verified = verified
        if self.mirror.rev(verified.commit) is None:
            log.warning(
                "verified commit %s is not in the local clone; it must come back with the next fetch",
                verified.commit[:12],
            )
            return
        try:
            self._serve(verified.commit)
        except GitError as e:
            self._damage = f"cannot read verified commit {verified.commit[:12]}: {e}"
            log.warning("local clone %s is damaged (%s); cloning it again", self.mirror.git_dir, self._damage)

    def _serve(self, commit: str) -> bool:
        snap = self._build(commit)
        if snap is None:
            return False
        self._swap(snap)
        return True

    def _build(self, commit: str) -> Snapshot | None:
        """The commit's snapshot, or None (refused) if a file in it is invalid."""
        try:
            return self.builder.build(commit, verified=self.trust.mode is not VerifyMode.OFF)
        except InvalidFiles as e:
            self._refuse(commit, "invalid", str(e))
            return None

    def _swap(self, snap: Snapshot) -> None:
        self.snapshot = snap
        self.metrics.ready.set(1)
        self.metrics.gates.set(len(snap.gates))
        if self.verified:
            self.metrics.verified_commit_time.set(self.verified.committed_at)

    # --- one reconcile ----------------------------------------------------------------------

    def reconcile(self) -> Outcome:
        """Fetch, and move to the branch head if it is trusted. One at a time."""
        with self._lock:
            started = time.perf_counter()
            try:
                outcome = self._reconcile()
            except GitError as e:  # a read of the local clone failed: clone it again next time
                self._damage = str(e)
                raise
            if outcome.result != "fetch-failed":
                self._reclone_after, self._reclone_wait = 0.0, RECLONE_WAIT
            self.metrics.reconcile_seconds.observe(time.perf_counter() - started)
            self.metrics.reconciles.labels(outcome.result).inc()
            return outcome

    def _reconcile(self) -> Outcome:
        self._repair()
        self.last_fetch = self.clock()
        try:
            self._fetch()
        except GitgateError as e:
            self.last_fetch_error = str(e)
            log.warning(
                "fetch of %s failed: %s (answers keep coming from %s)",
                self.repo,
                e,
                self.verified.commit[:12] if self.verified else "nothing: not ready",
            )
            return Outcome("fetch-failed", reason=str(e))
        self.last_fetch_ok = self.last_fetch
        self.last_fetch_error = ""
        self.metrics.last_fetch_success.set(self.last_fetch.timestamp())
        head = self.mirror.rev(f"refs/remotes/origin/{self.branch}")
        if head is None:
            return self._refuse("", "missing", f"branch {self.branch} not found in {self.repo}")
        self.remote_head = head
        if self.verified and head == self.verified.commit:
            if self.snapshot is None or self.snapshot.commit != head:
                self._serve(head)
            return Outcome("unchanged", head)
        if head in self._refused_heads:
            return Outcome("refused", head, self._refused_heads[head].reason)
        return self._advance(head)

    def _repair(self) -> None:
        """A stored parse that did not decode (its checks answer 500, closed): read the served
        commit from git again, every file parsed anew."""
        snap = self.snapshot
        if snap is None or not getattr(snap.gates, "damaged", False):
            return
        log.warning("a stored parse of %s did not decode; reading every gate file from git again", snap.commit[:12])
        try:
            self._swap(self.builder.rebuild(snap.commit, verified=snap.verified, forget_store=True))
        except InvalidFiles as e:  # cannot happen for a commit served before; keep answering as now
            log.error("commit %s read again is refused: %s", snap.commit[:12], e)

    def _advance(self, head: str) -> Outcome:
        base = self.verified.commit if self.verified else None
        started = time.perf_counter()
        ev = evaluate(self.mirror, self.trust, base=base, head=head, trust_from=self.trust_from, review=self.review)
        if ev.refusal is not None:
            return self._refuse(head, *ev.refusal)
        verified_at = time.perf_counter()
        snap = self._build(head)
        if snap is None:
            return Outcome("refused", head, self._refused_heads[head].reason)
        built_at = time.perf_counter()
        committed_at = self.mirror.commit_time(head)
        verified = Verified(
            repo=self.repo,
            branch=self.branch,
            commit=head,
            signer=ev.verdicts[-1].signer if ev.verdicts else "UNVERIFIED",
            committed_at=committed_at,
            verified_at=format_timestamp(self.clock()),
        )
        self.state.save(verified)  # first: never answer from a commit the state dir does not record
        self.verified = verified
        self._swap(snap)
        self.mirror.set_ref(VERIFIED_REF, head)
        self.metrics.verified_commit_time.set(committed_at)
        done = time.perf_counter()
        self.last_advance = {
            "commit": head,
            "commits_verified": len(ev.verdicts),
            "verify_ms": round((verified_at - started) * 1000, 1),
            "snapshot_ms": round((built_at - verified_at) * 1000, 1),
            "record_ms": round((done - built_at) * 1000, 1),
            "total_ms": round((done - started) * 1000, 1),  # fetch excluded
        }
        log.info(
            "now answering from %s (%s); verified %d commit(s), built the snapshot and recorded it in %.0f ms",
            head[:12],
            self.verified.signer,
            len(ev.verdicts),
            (done - started) * 1000,
        )
        return Outcome("advanced", head)

    def _fetch(self) -> None:
        """Fetch the branch into the local clone; clone it again first if it is missing or damaged."""
        if self._damage is None and not self.mirror.exists():
            self._damage = f"{self.mirror.git_dir} is missing"
        if self._damage is None:
            # Nothing verified yet (and no --trust-from): only the head is judged, so only the head
            # is fetched. From then on every commit after the verified one is fetched and checked.
            first = self.verified is None and not self.trust_from
            try:
                self.mirror.fetch(self.branch, depth=1 if first else None)
                return
            except GitError as e:
                if not local_damage(e):
                    raise
                self._damage = str(e)
        self._reclone()

    def _reclone(self) -> None:
        now = time.monotonic()
        if now < self._reclone_after:
            raise GitgateError(
                f"local clone {self.mirror.git_dir} is damaged ({self._damage}); cloning it again did not "
                f"cure it, next try in {int(self._reclone_after - now)}s"
            )
        serving = self.snapshot.commit[:12] if self.snapshot else "nothing: not ready"
        log.warning(
            "local clone %s is damaged (%s): cloning %s again; answers keep coming from %s",
            self.mirror.git_dir,
            self._damage,
            self.repo,
            serving,
        )
        self.mirror.replace(self.repo, self.branch)  # fails (keeping the old clone) if the remote cannot be fetched
        self._damage = None
        self._reclone_after = time.monotonic() + self._reclone_wait
        self._reclone_wait = min(self._reclone_wait * 2, 3600.0)
        if self.verified is not None and self.mirror.rev(self.verified.commit) is not None:
            self.mirror.set_ref(VERIFIED_REF, self.verified.commit)
        log.info("cloned %s again into %s", self.repo, self.mirror.git_dir)

    def _refuse(self, commit: str, kind: str, reason: str) -> Outcome:
        refusal = Refusal(commit, kind, reason, self.clock())
        if commit and kind != "unavailable":  # a forge outage is retried next interval
            if commit in self._refused_heads:
                return Outcome("refused", commit, reason)
            self._refused_heads[commit] = refusal
            if len(self._refused_heads) > 1000:
                self._refused_heads.pop(next(iter(self._refused_heads)))
        self.refusals.appendleft(refusal)
        self.metrics.refused.labels(kind).inc()
        log.warning("refused %s: %s", commit[:12] or "(no commit)", reason)
        return Outcome("refused", commit, reason)

    # --- the loop ---------------------------------------------------------------------------

    def trigger(self) -> None:
        """Reconcile now (a verified push webhook, a local approval)."""
        self._wake.set()

    def run(self, stop: threading.Event, interval: float) -> None:
        while not stop.is_set():
            try:
                self.reconcile()
            except (GitError, GitgateError, OSError) as e:  # keep serving the last verified commit
                log.error("reconcile failed: %s", e)
                self.metrics.reconciles.labels("error").inc()
            except Exception:  # a bug must not stop the loop silently; answers stay as they were
                log.exception("reconcile crashed; answers keep coming from the last verified commit")
                self.metrics.reconciles.labels("crash").inc()
            self._wake.wait(interval)
            self._wake.clear()

    def status(self) -> dict[str, Any]:
        v = self.verified
        snap = self.snapshot
        return {
            "repo": self.repo,
            "branch": self.branch,
            "verify": self.trust.mode.value,
            "trust": self.trust.describe(),
            "ready": snap is not None,
            "verified": None
            if v is None
            else {
                "commit": v.commit,
                "signer": v.signer,
                "committed_at": format_timestamp(datetime.fromtimestamp(v.committed_at, UTC)),
                "verified_at": v.verified_at,
                "serving": snap is not None and snap.commit == v.commit,
            },
            "remote_head": self.remote_head,
            "last_advance": self.last_advance,
            "last_fetch": {
                "at": format_timestamp(self.last_fetch) if self.last_fetch else None,
                "ok_at": format_timestamp(self.last_fetch_ok) if self.last_fetch_ok else None,
                "error": self.last_fetch_error or None,
            },
            "refused": [
                {"commit": r.commit, "kind": r.kind, "reason": r.reason, "at": format_timestamp(r.at)}
                for r in self.refusals
            ],
        }

"""Opening approval requests in the background, for the service.

A denied check asks for a request with `want()`, which never blocks: the first ask for a (canary,
hook, checksum) queues it; later asks find it queued, opened (its URL goes into the 403 answer) or
failed (retried after a bounded backoff, or after the forge's Retry-After). One worker thread talks
to the forge, so a slow or broken forge never delays a check.

Retries are driven by checks, never by a timer: a failed request is tried again at the first check
after its wait is over. A 5xx, a timeout, a rate limit or a rejected token is the forge's state, not
the request's:
it holds every request (no forge call at all) until the forge's Retry-After, or the backoff, has
passed, so an outage costs about one attempt per wait however many canaries are waiting.

A canary that reached Succeeded or Failed (`finished()`, from Flagger's events) has its open requests
for other revisions closed, on the same worker: a burst of events makes one listing of the forge's
open requests (per canary, the latest event's revision is kept), and none while the forge is held.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gitgate.errors import GitgateError
from gitgate.forges.base import Forge, ForgeAuthError, ForgeError, ForgeRateLimited, ForgeUnavailable
from gitgate.model import CanaryRef
from gitgate.request import RequestSpec, branch_name

log = logging.getLogger("gitgate.requests")
KEPT = 10_000
# The wait after consecutive failures: 5 s, 15 s, 45 s, 135 s, then 300 s for as long as it lasts;
# each lengthened by up to JITTER (a fraction), so replicas leaving one outage do not ask at once.
BACKOFF_FIRST = 5.0
BACKOFF_FACTOR = 3.0
BACKOFF_CAP = 300.0
JITTER = 0.1
# A forge's own Retry-After (or rate-limit reset) is obeyed, but read as no less than a second and
# no more than an hour: a broken or hostile header must neither cause a busy loop nor park requests.
RETRY_AFTER_MIN = 1.0
RETRY_AFTER_CAP = 3600.0
# Checks are unauthenticated: anyone who can reach the service can name any canary. New requests
# are limited to this many a minute, so a flood of made-up names cannot flood the forge.
NEW_PER_MINUTE = 30
# An opened request is looked up again after this long (one idempotent call): if someone closed
# it, the next denied check opens a new one, and the 403 never points at a closed request for long.
REVALIDATE = 600.0


@dataclass
class Wanted:
    spec: RequestSpec
    state: str = "queued"  # queued | opened | dispatched | failed
    url: str = ""
    number: int = 0
    error: str = ""
    failures: int = 0
    retry_at: float = 0.0
    opened_at: float = 0.0
    asked_at: str = ""


class Requester:
    def __init__(
        self,
        *,
        forge: Forge,
        gates_path: str,
        via: str = "open",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.forge = forge
        self.gates_path = gates_path
        self.via = via
        self.clock = clock
        self.monotonic = monotonic
        self.jitter = jitter
        # After a 5xx, a timeout, a rate limit or a 401, no request goes to the forge before _hold_until.
        self._hold_until = 0.0
        self._hold_reason = ""
        self._outages = 0  # consecutive 5xx/timeouts/rate limits/401s, forge-wide
        self._items: OrderedDict[str, Wanted] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | Callable[[], object] | None] = queue.Queue()
        self._recent_new: list[float] = []
        self._thread: threading.Thread | None = None
        # finished() canaries whose other requests are to be closed: the latest (checksum, phase) of each.
        self._finished: dict[CanaryRef, tuple[str | None, str]] = {}

    # --- the check path: never blocks --------------------------------------------------------

    def url_for(self, spec: RequestSpec) -> str | None:
        item = self._items.get(branch_name(spec))
        return item.url or None if item else None

    def want(self, spec: RequestSpec) -> None:
        key = branch_name(spec)
        with self._lock:
            item = self._items.get(key)
            if item is None:
                now = self.monotonic()
                self._recent_new = [t for t in self._recent_new if now - t < 60]
                if len(self._recent_new) >= NEW_PER_MINUTE:
                    return  # asked again at the next check, once the minute has passed
                self._recent_new.append(now)
                item = Wanted(spec, asked_at=_ts(self.clock()))
                self._items[key] = item
                if len(self._items) > KEPT:
                    self._items.popitem(last=False)
            elif item.state == "opened" and self.monotonic() - item.opened_at > REVALIDATE:
                pass  # look it up again
            elif item.state != "failed" or self.monotonic() < item.retry_at:
                return
            item.state = "queued"
        self._queue.put(key)

    # --- the worker ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="requester", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)

    def drain(self, timeout: float = 30) -> None:
        """Wait until every queued request has been tried (for `gitgate demo` and tests)."""
        deadline = time.monotonic() + timeout  # real time, whatever clock the requester was given
        while time.monotonic() < deadline:
            if not any(i.state == "queued" for i in list(self._items.values())) and not self._queue.unfinished_tasks:
                return
            time.sleep(0.02)

    def _run(self) -> None:
        while True:
            key = self._queue.get()
            try:
                if key is None:
                    return
                self._do(key)
            finally:
                self._queue.task_done()

    def _do(self, key: str | Callable[[], object]) -> None:
        if callable(key):
            try:
                key()
            except Exception:  # a failing background task must not stop the worker
                log.exception("background forge task failed")
            return
        item = self._items.get(key)
        if item is None or item.state != "queued":
            return
        self.open_now(item)

    def open_now(self, item: Wanted) -> Wanted:
        held = self._held()
        if held > 0:  # the forge is down or rate limited: ask nothing before it said (or the backoff says)
            item.state, item.retry_at = "failed", self._hold_until
            item.error = f"{self._hold_reason} (the forge is left alone for {held:.0f}s more)"
            return item
        try:
            if self.via == "dispatch":
                self.forge.dispatch(item.spec)
                item.state, item.error = "dispatched", ""
                log.info("asked the forge's workflow to open a request for %s", branch_name(item.spec))
            else:
                ref = self.forge.open_request(item.spec, gates_path=self.gates_path, now=self.clock())
                item.state, item.url, item.number, item.error = "opened", ref.url, ref.number, ""
                item.opened_at = self.monotonic()
                log.info("%s request %s for %s", "opened" if ref.created else "found", ref.url, ref.branch)
            item.failures = self._outages = 0
        except (ForgeRateLimited, ForgeUnavailable, ForgeAuthError) as e:  # the forge's state, not the request's
            self._failed(item, str(e), self._hold(e))
        except GitgateError as e:  # about this request (permission, conflict): back off for it alone
            self._failed(item, str(e), wait_after(item.failures + 1, None, self.jitter()))
        except Exception as e:  # a bug in an adapter must not stop the worker
            log.exception("opening a request failed")
            self._failed(item, f"{type(e).__name__}: {e}", BACKOFF_CAP)
        return item

    def _held(self) -> float:
        """Seconds the forge is still left alone after a failure (0 or less: not held)."""
        return self._hold_until - self.monotonic()

    def _hold(self, e: ForgeError) -> float:
        """The forge failed as a whole (5xx, timeout, rate limit, 401): ask it nothing for a while."""
        self._outages += 1
        wait = wait_after(self._outages, getattr(e, "retry_after", None), self.jitter())
        self._hold_until, self._hold_reason = self.monotonic() + wait, str(e)
        return wait

    def _failed(self, item: Wanted, error: str, wait: float) -> None:
        item.failures += 1
        item.state, item.error = "failed", error
        item.retry_at = self.monotonic() + wait
        log.warning("could not open a request for %s: %s (next try in %.0fs)", branch_name(item.spec), error, wait)

    def later(self, task: Callable[[], object]) -> None:
        """Run `task` on the worker thread (forge calls that must not hold up an HTTP answer)."""
        self._queue.put(task)

    # --- events and status --------------------------------------------------------------------

    def finished(self, canary: CanaryRef, keep_checksum: str | None, phase: str) -> None:
        """Flagger says `canary` reached `phase` (Succeeded or Failed) with revision `keep_checksum`:
        close its open requests for other revisions, on the worker. Never blocks. While a close for
        the canary is pending, another event only updates it; while the forge is held after a
        failure, nothing is asked of it (the requests stay open until a later event)."""
        with self._lock:
            held = self._held()
            if held > 0:
                log.info("not closing the other requests of %s: the forge is left alone for %.0fs more", canary, held)
                return
            if canary not in self._finished and len(self._finished) >= KEPT:
                return  # a flood of made-up canaries: the real ones come again with their next event
            first = not self._finished
            self._finished[canary] = (keep_checksum, phase)
        if first:
            self._queue.put(self._close_finished)

    def _close_finished(self) -> None:
        with self._lock:
            finished, self._finished = self._finished, {}
        if not finished or self._held() > 0:
            if finished:
                log.info("not closing the other requests of %d canaries: the forge is held", len(finished))
            return
        try:
            self._close(finished)
        except (ForgeRateLimited, ForgeUnavailable, ForgeAuthError) as e:  # the forge's state
            wait = self._hold(e)
            log.warning("could not close requests of finished canaries: %s (forge left alone for %.0fs)", e, wait)
        except GitgateError as e:
            log.warning("could not close requests of finished canaries: %s", e)

    def _close(self, finished: dict[CanaryRef, tuple[str | None, str]]) -> int:
        """One listing of the forge's open requests; close those of each finished canary, but the one
        for the revision it finished with."""
        closed = 0
        for request in self.forge.open_requests():
            for canary, (keep_checksum, phase) in finished.items():
                prefix = f"gitgate/{canary.namespace}/{canary.name}/"
                if not request.branch.startswith(prefix) or request.branch.endswith(f"/{keep_checksum}"):
                    continue
                comment = (
                    f"Closed by gitgate: canary {canary} reached {phase}"
                    + (f" with revision {keep_checksum}" if keep_checksum else "")
                    + "; this request was for another revision."
                )
                if self.forge.close_request(request.branch, comment):
                    closed += 1
                    with self._lock:
                        self._items.pop(request.branch, None)
        self._outages = 0
        return closed

    def status(self) -> list[dict[str, Any]]:
        now = self.monotonic()
        return [
            {
                "branch": key,
                "canary": str(i.spec.canary),
                "hook": i.spec.hook_word,
                "checksum": i.spec.checksum,
                "state": i.state,
                "url": i.url or None,
                "number": i.number or None,
                "error": i.error or None,
                "failures": i.failures,
                "retry_in": round(max(0.0, i.retry_at - now), 1) if i.state == "failed" else None,
                "asked_at": i.asked_at,
            }
            for key, i in list(self._items.items())
        ]


def backoff(failures: int) -> float:
    """The wait, before jitter, after `failures` consecutive failures (0 for none)."""
    if failures <= 0:
        return 0.0
    # The exponent stops growing long after the cap is reached: 3.0 ** 646 would overflow a float.
    return float(min(BACKOFF_CAP, BACKOFF_FIRST * BACKOFF_FACTOR ** min(failures - 1, 32)))


def wait_after(failures: int, retry_after: float | None, jitter: float) -> float:
    """How long to leave the forge alone after the `failures`-th consecutive failure: the forge's
    Retry-After when it gave one (within [RETRY_AFTER_MIN, RETRY_AFTER_CAP]) but no less than the
    backoff of the failures before this one, else the backoff; then up to JITTER more (jitter in [0, 1))."""
    if retry_after is None:
        wait = backoff(failures)
    else:
        wait = max(min(max(retry_after, RETRY_AFTER_MIN), RETRY_AFTER_CAP), backoff(failures - 1))
    return wait * (1 + JITTER * min(max(jitter, 0.0), 1.0))


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

"""A model of Flagger's gate behaviour, talking to a real gate over HTTP the way Flagger does.

Written from /work/shared/FLAGGER.md and checked against fluxcd/flagger's source
(`pkg/controller/scheduler.go`, `scheduler_hooks.go`, `webhook.go`, `pkg/canary/status.go`):

- A webhook call is `POST` of `{name, namespace, phase, checksum[, metadata]}` as JSON with the
  hook's timeout (default 10s). Pass = status 200, 201 or 202 (Flagger: `StatusCode > 202` fails);
  anything else, a timeout or a refused connection fails. `retries` (default 0) retries only
  connection errors, 429 and 5xx but 501, as go-retryablehttp does (without its backoff); when
  they run out on a 5xx Flagger sees "giving up after N attempt(s)", never the body.
- `checksum` is a hash of (TrackedConfigs, LastAppliedSpec). LastAppliedSpec only changes when
  Flagger *syncs* status (start of Progressing, a restart on a new revision, Failed), not when it
  merely sets a phase (Waiting, WaitingPromotion, Promoting, ...). So confirm-rollout of a pending
  revision carries the checksum of the previously applied one (from Failed, the pending one's:
  Flagger syncs a Failed canary's status before it looks for a new revision).
- Where the source is more precise than FLAGGER.md, the model follows the source: while
  Progressing, confirm-traffic-increase is also asked in the interval that reaches maxWeight,
  right before confirm-promotion; blue/green asks confirm-promotion twice (before routing all
  traffic to the canary, and before promoting) and, while WaitingPromotion, only every other
  interval (Flagger resets status.iterations to iterations-1 on each denial).
- One `Canary.step()` is one `advanceCanary` run, i.e. one analysis interval. The test drives
  the clock: no sleeping an interval. Metrics checks always pass here; only gate hooks decide.

Every call and every event is recorded, for tests to assert on what Flagger would see.
"""

from __future__ import annotations

import enum
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import requests

PASS_STATUSES = frozenset({200, 201, 202})
DEFAULT_TIMEOUT = "10s"
TOTAL_WEIGHT = 100


class Phase(enum.StrEnum):
    INITIALIZING = "Initializing"
    INITIALIZED = "Initialized"
    WAITING = "Waiting"
    PROGRESSING = "Progressing"
    WAITING_PROMOTION = "WaitingPromotion"
    PROMOTING = "Promoting"
    FINALISING = "Finalising"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    TERMINATED = "Terminated"


class HookType(enum.StrEnum):
    CONFIRM_ROLLOUT = "confirm-rollout"
    CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"
    CONFIRM_PROMOTION = "confirm-promotion"
    ROLLBACK = "rollback"


# --- checksums, as Flagger computes them ------------------------------------------------------

_SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand


def _fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def compute_hash(thing: object) -> str:
    """`canary.ComputeHash`: FNV-32a of a printed value, its decimal digits safe-encoded."""
    digits = str(_fnv32a(repr(thing).encode()))
    return "".join(_SAFE_ALPHANUMS[ord(ch) % len(_SAFE_ALPHANUMS)] for ch in digits)


def parse_go_duration(text: str) -> float:
    """Go's time.ParseDuration for the units a webhook timeout uses: 500ms, 10s, 1m30s, 1h."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"time: invalid duration {text!r}")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


# --- the canary's spec ------------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    """One entry of `spec.analysis.webhooks`."""

    name: str
    type: HookType
    url: str
    timeout: str = ""  # Flagger: shorter than 2 characters means the default, 10s
    retries: int = 0
    metadata: dict[str, str] | None = None

    @property
    def timeout_seconds(self) -> float:
        return parse_go_duration(self.timeout if len(self.timeout) >= 2 else DEFAULT_TIMEOUT)


@dataclass(frozen=True)
class CanaryStrategy:
    """Progressive traffic: `stepWeight` (or `stepWeights`) up to `maxWeight`."""

    step_weight: int = 0
    step_weights: tuple[int, ...] = ()
    max_weight: int = 0

    def max(self) -> int:
        if self.step_weights:
            return min(TOTAL_WEIGHT, self.step_weights[-1])
        return self.max_weight or TOTAL_WEIGHT

    def next_step(self, weight: int) -> int:
        """scheduler.go nextStepWeight."""
        if self.step_weight > 0 or not self.step_weights:
            return self.step_weight
        room = TOTAL_WEIGHT - weight
        if room == 0:
            return 1
        if weight == 0:
            return min(room, self.step_weights[0])
        for i, w in enumerate(self.step_weights[:-1]):
            if w == weight:
                return min(room, self.step_weights[i + 1] - weight)
        return room


@dataclass(frozen=True)
class BlueGreen:
    """`analysis.iterations` with no weights: blue/green (A/B without match is the same here)."""

    iterations: int


Strategy = CanaryStrategy | BlueGreen


# --- what Flagger did -------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    interval: int
    hook: HookType
    webhook: str  # the webhook's name in the canary spec
    url: str
    payload: dict[str, Any]
    status: int | None  # None: timeout or no connection
    body: str  # response body, or the error Flagger records
    passed: bool
    canary_phase: Phase  # the canary's status phase when the call was made

    @property
    def phase(self) -> str:
        return str(self.payload["phase"])

    @property
    def checksum(self) -> str:
        return str(self.payload["checksum"])


@dataclass(frozen=True)
class Event:
    interval: int
    type: str  # Normal | Warning
    message: str


def call_webhook(webhook: Webhook, payload: dict[str, Any]) -> tuple[int | None, str, bool]:
    """POST the payload as Flagger's CallWebhook does (with the hook's metadata, if any);
    return (status, body or the error Flagger records, passed)."""
    if webhook.metadata:
        payload = {**payload, "metadata": dict(webhook.metadata)}
    data = json.dumps(payload).encode()
    attempts = 1 + max(0, webhook.retries)
    status: int | None = None
    failure = ""
    for attempt in range(1, attempts + 1):
        try:
            resp = requests.post(
                webhook.url,
                data=data,
                headers={"Content-Type": "application/json"},
                timeout=webhook.timeout_seconds,
            )
        except requests.Timeout:
            status, failure = None, f"Post {webhook.url!r}: context deadline exceeded"
        except requests.RequestException as e:
            status, failure = None, f"Post {webhook.url!r}: {e}"
        else:
            retryable = resp.status_code == 429 or (resp.status_code >= 500 and resp.status_code != 501)
            if not retryable:
                return resp.status_code, resp.text, resp.status_code in PASS_STATUSES
            status, failure = resp.status_code, f"POST {webhook.url} giving up after {attempt} attempt(s)"
    return status, failure, False


# --- the canary -------------------------------------------------------------------------------


@dataclass
class Canary:
    """One Flagger Canary and its target workload. `deploy()` changes the workload's pod
    template (a new revision); `step()` runs one analysis interval."""

    name: str
    namespace: str
    webhooks: Sequence[Webhook]
    strategy: Strategy = field(default_factory=lambda: CanaryStrategy(step_weight=25, max_weight=50))
    revision: str = "v1"
    skip_analysis: bool = False
    tracked_configs: dict[str, str] | None = None

    phase: Phase = field(init=False, default=Phase.INITIALIZED)
    target: str = field(init=False, default="")  # revision the workload runs now
    last_applied: str = field(init=False, default="")  # status.lastAppliedSpec
    last_promoted: str = field(init=False, default="")  # status.lastPromotedSpec
    weight: int = field(init=False, default=0)  # traffic routed to the canary (the mesh's routes)
    iterations: int = field(init=False, default=0)  # status.iterations
    primary: str = field(init=False, default="")  # revision the primary runs
    interval: int = field(init=False, default=0)
    calls: list[Call] = field(init=False, default_factory=list)
    events: list[Event] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        # Initialization: the primary is created from the target; status synced as Initialized.
        self.target = self.revision
        self.last_applied = self._spec_hash(self.target)
        self.last_promoted = self.last_applied
        self.primary = self.target

    # --- status and checksum ---

    @staticmethod
    def _spec_hash(revision: str) -> str:
        return compute_hash({"template": {"containers": [{"name": "app", "image": f"app:{revision}"}]}})

    @property
    def checksum(self) -> str:
        """canaryChecksum: from the status, not from the workload."""
        return compute_hash((self.tracked_configs, self.last_applied))

    def checksum_of(self, revision: str) -> str:
        """The checksum Flagger will send once `revision` is the applied one."""
        return compute_hash((self.tracked_configs, self._spec_hash(revision)))

    def _target_changed(self) -> bool:
        """hasSpecChanged: differs from the last applied spec, and is not the promoted one."""
        new = self._spec_hash(self.target)
        return new not in (self.last_promoted, self.last_applied)

    def _sync_status(self, phase: Phase) -> None:
        """SyncStatus: the only thing that moves LastAppliedSpec (and so the checksum)."""
        self.phase = phase
        self.last_applied = self._spec_hash(self.target)
        self.iterations = 0
        if phase is Phase.INITIALIZED:
            self.last_promoted = self.last_applied

    def _set_phase(self, phase: Phase) -> None:
        """SetStatusPhase: the phase only; LastAppliedSpec (the checksum) is unchanged."""
        if phase not in (Phase.PROGRESSING, Phase.WAITING, Phase.PROMOTING):
            self.iterations = 0
            if phase is Phase.WAITING_PROMOTION:
                self.iterations = self._analysis_iterations() - 1
        if phase in (Phase.INITIALIZED, Phase.SUCCEEDED):
            self.last_promoted = self.last_applied
        self.phase = phase

    def _analysis_iterations(self) -> int:
        return self.strategy.iterations if isinstance(self.strategy, BlueGreen) else 0

    # --- the workload ---

    def deploy(self, revision: str) -> None:
        """A new revision of the target (e.g. a new image), as Flux or kubectl would apply it."""
        self.target = revision

    # --- recording ---

    def _event(self, kind: str, message: str) -> None:
        self.events.append(Event(self.interval, kind, message))

    def _call(self, webhook: Webhook, phase: Phase) -> bool:
        payload: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "phase": str(phase),
            "checksum": self.checksum,
        }
        status, body, passed = call_webhook(webhook, payload)
        if webhook.metadata:
            payload["metadata"] = dict(webhook.metadata)
        self.calls.append(
            Call(self.interval, webhook.type, webhook.name, webhook.url, payload, status, body, passed, self.phase)
        )
        return passed

    def _hooks(self, kind: HookType) -> list[Webhook]:
        return [w for w in self.webhooks if w.type is kind]

    # --- the gate hooks (scheduler_hooks.go) ---

    def _confirm_rollout(self) -> bool:
        for hook in self._hooks(HookType.CONFIRM_ROLLOUT):
            if not self._call(hook, self.phase):
                if self.phase is not Phase.WAITING:
                    self._set_phase(Phase.WAITING)
                    self._event(
                        "Warning", f"Halt {self.name}.{self.namespace} advancement waiting for approval {hook.name}"
                    )
                return False
            self._event("Normal", f"Confirm-rollout check {hook.name} passed")
        return True

    def _confirm_traffic_increase(self) -> bool:
        for hook in self._hooks(HookType.CONFIRM_TRAFFIC_INCREASE):
            if not self._call(hook, Phase.PROGRESSING):
                self._event(
                    "Warning",
                    f"Halt {self.name}.{self.namespace} advancement waiting for traffic increase approval {hook.name}",
                )
                return False
            self._event("Normal", f"Confirm-traffic-increase check {hook.name} passed")
        return True

    def _confirm_promotion(self) -> bool:
        for hook in self._hooks(HookType.CONFIRM_PROMOTION):
            # Always "Progressing" in the payload, even while the status says WaitingPromotion.
            if not self._call(hook, Phase.PROGRESSING):
                if self.phase is not Phase.WAITING_PROMOTION:
                    self._set_phase(Phase.WAITING_PROMOTION)
                    self._event(
                        "Warning",
                        f"Halt {self.name}.{self.namespace} advancement waiting for promotion approval {hook.name}",
                    )
                else:
                    self.iterations = self._analysis_iterations() - 1
                return False
            self._event("Normal", f"Confirm-promotion check {hook.name} passed")
        return True

    def _rollback_requested(self) -> bool:
        """Inverted: a passing (2xx) answer means roll back now."""
        for hook in self._hooks(HookType.ROLLBACK):
            if self._call(hook, self.phase):
                self._event("Warning", f"Rollback check {hook.name} passed")
                return True
            self._event("Normal", f"Rollback hook {hook.name} not signaling a rollback")
        return False

    # --- one analysis interval (scheduler.go advanceCanary) ---

    def step(self) -> list[Call]:
        """Run one analysis interval; return the calls it made."""
        self.interval += 1
        first = len(self.calls)
        self._advance()
        return self.calls[first:]

    def _advance(self) -> None:
        # shouldAdvance
        if self.phase in (Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED):
            changed = self._target_changed()  # judged on the status read at the start of the run
            if self.phase is Phase.FAILED:
                self._sync_status_keep_phase()  # "sync lastAppliedSpec even if the canary is in a failed state"
            if not changed:
                return
        elif self.phase not in (
            Phase.PROGRESSING,
            Phase.WAITING,
            Phase.WAITING_PROMOTION,
            Phase.PROMOTING,
            Phase.FINALISING,
        ):
            return

        # checkCanaryStatus: a new revision is detected; confirm-rollout gates the start.
        if self.phase not in (Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.PROMOTING, Phase.FINALISING):
            if not self._confirm_rollout():
                return
            self._event("Normal", f"New revision detected! Scaling up {self.name}.{self.namespace}")
            self.weight = 0
            self._sync_status(Phase.PROGRESSING)
            return

        # hasCanaryRevisionChanged: a new revision mid-analysis restarts it (no confirm-rollout).
        if self.phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION) and self._target_changed():
            self._event("Normal", f"New revision detected! Restarting analysis for {self.name}.{self.namespace}")
            self.weight = 0
            self._sync_status(Phase.PROGRESSING)
            return

        if self.skip_analysis:
            self._skip_analysis()
            return

        # Rollback: checked while Progressing or WaitingPromotion (Waiting never gets here).
        if self.phase in (Phase.PROGRESSING, Phase.WAITING, Phase.WAITING_PROMOTION) and self._rollback_requested():
            self._event("Warning", f"Rolling back {self.name}.{self.namespace} manual webhook invoked")
            self._roll_back()
            return

        if self.phase is Phase.PROMOTING:
            self._event("Normal", "Routing all traffic to primary")
            self.weight = 0
            self._set_phase(Phase.FINALISING)
            return

        if self.phase is Phase.FINALISING:
            self._set_phase(Phase.SUCCEEDED)
            self._event("Normal", f"Promotion completed! Scaling down {self.name}.{self.namespace}")
            return

        if self.weight == 0 and self.iterations == 0:
            self._event("Normal", f"Starting canary analysis for {self.name}.{self.namespace}")
        # (pre-rollout hooks and metric checks would run here; they pass in this model)

        if isinstance(self.strategy, BlueGreen):
            self._run_blue_green(self.strategy)
            return
        if self.strategy.next_step(self.weight) > 0:
            if self.phase not in (Phase.PROMOTING, Phase.WAITING_PROMOTION, Phase.FINALISING) and not (
                self._confirm_traffic_increase()
            ):
                return
            self._run_canary(self.strategy)

    def _sync_status_keep_phase(self) -> None:
        self.last_applied = self._spec_hash(self.target)

    def _run_canary(self, strategy: CanaryStrategy) -> None:
        if self.weight < strategy.max():
            self.weight = min(TOTAL_WEIGHT, self.weight + strategy.next_step(self.weight))
            self._event("Normal", f"Advance {self.name}.{self.namespace} canary weight {self.weight}")
            return
        if not self._confirm_promotion():
            return
        self._promote()

    def _run_blue_green(self, strategy: BlueGreen) -> None:
        if strategy.iterations > self.iterations:
            self.iterations += 1
            self._event(
                "Normal",
                f"Advance {self.name}.{self.namespace} canary iteration {self.iterations}/{strategy.iterations}",
            )
            return
        if not self._confirm_promotion():
            return
        if strategy.iterations == self.iterations:
            self._event("Normal", "Routing all traffic to canary")
            self.weight = TOTAL_WEIGHT
            self.iterations += 1
            return
        self._promote()

    def _promote(self) -> None:
        self._event(
            "Normal", f"Copying {self.name}.{self.namespace} template spec to {self.name}-primary.{self.namespace}"
        )
        self.primary = self.target
        self._set_phase(Phase.PROMOTING)

    def _roll_back(self) -> None:
        self.weight = 0
        self._event("Warning", f"Canary failed! Scaling down {self.name}.{self.namespace}")
        self._sync_status(Phase.FAILED)

    def _skip_analysis(self) -> None:
        self.weight = 0
        self._event(
            "Normal", f"Copying {self.name}.{self.namespace} template spec to {self.name}-primary.{self.namespace}"
        )
        self.primary = self.target
        self._set_phase(Phase.SUCCEEDED)
        self._event("Normal", f"Promotion completed! Canary analysis was skipped for {self.name}.{self.namespace}")

    # --- for tests ---

    def calls_to(self, hook: HookType | str) -> list[Call]:
        return [c for c in self.calls if c.hook == hook]

    def last_call(self, hook: HookType | str) -> Call:
        calls = self.calls_to(hook)
        assert calls, f"Flagger never called {hook} of {self.namespace}/{self.name}"
        return calls[-1]

    def messages(self, kind: str | None = None) -> list[str]:
        return [e.message for e in self.events if kind is None or e.type == kind]

    def step_until(
        self, done: Callable[[Canary], bool], *, timeout: float = 10, pause: float = 0.05, max_steps: int = 1000
    ) -> float:
        """Step (one interval each) until `done(self)`; wait `pause` between steps, as the
        service may still be picking up a commit. Return the seconds it took."""
        started = time.monotonic()
        for _ in range(max_steps):
            self.step()
            if done(self):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                break
            time.sleep(pause)
        last = self.calls[-1] if self.calls else None
        raise AssertionError(
            f"{self.namespace}/{self.name} stuck in {self.phase} at weight {self.weight} after "
            f"{time.monotonic() - started:.1f}s; last call: {last}; events: {self.messages()[-5:]}"
        )


def gitgate_webhooks(
    base_url: str,
    *,
    rollout: bool = True,
    traffic: bool = True,
    promotion: bool = True,
    rollback: bool = True,
    timeout: str = "",
) -> list[Webhook]:
    """The webhooks a Canary lists to use gitgate, one path per hook (SPEC §2)."""
    hooks = []
    if rollout:
        hooks.append(
            Webhook("gitgate-rollout", HookType.CONFIRM_ROLLOUT, f"{base_url}/gate/check/confirm-rollout", timeout)
        )
    if traffic:
        hooks.append(
            Webhook(
                "gitgate-traffic",
                HookType.CONFIRM_TRAFFIC_INCREASE,
                f"{base_url}/gate/check/confirm-traffic-increase",
                timeout,
            )
        )
    if promotion:
        hooks.append(
            Webhook(
                "gitgate-promotion", HookType.CONFIRM_PROMOTION, f"{base_url}/gate/check/confirm-promotion", timeout
            )
        )
    if rollback:
        hooks.append(Webhook("gitgate-rollback", HookType.ROLLBACK, f"{base_url}/rollback/check", timeout))
    return hooks


def load_tester_webhooks(base_url: str) -> list[Webhook]:
    """What load-tester users have today: one gate (`/gate/check`) for every confirm hook and
    `/rollback/check` for rollback, as in Flagger's docs."""
    return [
        Webhook("gate-rollout", HookType.CONFIRM_ROLLOUT, f"{base_url}/gate/check"),
        Webhook("gate-traffic", HookType.CONFIRM_TRAFFIC_INCREASE, f"{base_url}/gate/check"),
        Webhook("gate-promotion", HookType.CONFIRM_PROMOTION, f"{base_url}/gate/check"),
        Webhook("gate-rollback", HookType.ROLLBACK, f"{base_url}/rollback/check"),
    ]


# --- self-checks: the model against FLAGGER.md, with a stub webhook (`pytest tests/flagger.py`) ----


class _StubGate(BaseHTTPRequestHandler):
    """Answers POST /<status> with that status, /slow after half a second, /gate with `code`."""

    code = 403
    seen: ClassVar[list[tuple[str, str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        _StubGate.seen.append((self.path, self.headers.get("Content-Type", ""), json.loads(body)))
        name = self.path.strip("/")
        if name == "slow":
            time.sleep(0.5)
        code = 200 if name == "slow" else _StubGate.code if name == "gate" else int(name)
        text = b"" if code == 204 else f"answered {code}".encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StubGate)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _StubGate.seen.clear()
    _StubGate.code = 403
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_only_200_201_202_pass_and_a_5xx_body_is_never_seen(stub: str) -> None:
    payload = {"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "85d557f47b"}
    for code in (200, 201, 202):
        assert call_webhook(Webhook("w", HookType.CONFIRM_PROMOTION, f"{stub}/{code}"), payload)[2] is True
    for code in (203, 204, 400, 403, 404, 501):
        status, body, passed = call_webhook(Webhook("w", HookType.CONFIRM_PROMOTION, f"{stub}/{code}"), payload)
        assert (status, passed) == (code, False)
        assert body == ("" if code == 204 else f"answered {code}")
    status, body, passed = call_webhook(Webhook("w", HookType.ROLLBACK, f"{stub}/503", retries=2), payload)
    assert (status, passed) == (503, False)
    assert "giving up after 3 attempt(s)" in body
    assert [path for path, _, _ in _StubGate.seen[-3:]] == ["/503"] * 3


def test_a_timeout_fails_and_the_payload_is_flaggers(stub: str) -> None:
    slow = Webhook("w", HookType.CONFIRM_ROLLOUT, f"{stub}/slow", timeout="200ms")
    assert slow.timeout_seconds == 0.2
    assert Webhook("w", HookType.CONFIRM_ROLLOUT, stub, timeout="1").timeout_seconds == 10
    status, body, passed = call_webhook(slow, {"name": "podinfo", "namespace": "test"})
    assert (status, passed) == (None, False)
    assert "deadline exceeded" in body

    canary = Canary("podinfo", "test", [Webhook("g", HookType.CONFIRM_ROLLOUT, f"{stub}/gate", metadata={"k": "v"})])
    canary.deploy("v2")
    canary.step()
    _, content_type, sent = _StubGate.seen[-1]
    assert content_type == "application/json"
    assert sent == {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Initialized",
        "checksum": canary.checksum,
        "metadata": {"k": "v"},
    }
    assert set(canary.checksum) <= set(_SAFE_ALPHANUMS) and 1 <= len(canary.checksum) <= 10
    assert set("85d557f47b") <= set(_SAFE_ALPHANUMS)  # the docs' example has the same shape


def test_checksums_and_phases_follow_flaggers_scheduler(stub: str) -> None:
    hooks = [
        Webhook("rollout", HookType.CONFIRM_ROLLOUT, f"{stub}/gate"),
        Webhook("promotion", HookType.CONFIRM_PROMOTION, f"{stub}/gate"),
        Webhook("rollback", HookType.ROLLBACK, f"{stub}/403"),
    ]
    canary = Canary("podinfo", "test", hooks, strategy=CanaryStrategy(step_weight=50))
    v1 = canary.checksum
    canary.deploy("v2")
    assert [(c.hook, c.phase, c.checksum) for c in canary.step()] == [(HookType.CONFIRM_ROLLOUT, "Initialized", v1)]
    # Waiting: confirm-rollout again with the old checksum; rollback is never asked while Waiting.
    assert [(c.hook, c.phase, c.checksum) for c in canary.step()] == [(HookType.CONFIRM_ROLLOUT, "Waiting", v1)]
    _StubGate.code = 200
    canary.step()
    assert (canary.phase, canary.checksum) == (Phase.PROGRESSING, canary.checksum_of("v2"))
    _StubGate.code = 403
    while canary.phase is Phase.PROGRESSING:
        canary.step()
    assert (canary.phase, canary.weight) == (Phase.WAITING_PROMOTION, 100)
    assert canary.last_call(HookType.CONFIRM_PROMOTION).phase == "Progressing"
    # A new revision mid-analysis: restart with a new checksum, confirm-rollout not asked.
    canary.deploy("v3")
    assert canary.step() == []
    assert (canary.phase, canary.weight, canary.checksum) == (Phase.PROGRESSING, 0, canary.checksum_of("v3"))
    # From Failed, Flagger syncs the status first: confirm-rollout then carries the *pending* revision's checksum.
    canary._roll_back()
    canary.deploy("v4")
    [call] = canary.step()
    assert (call.phase, call.checksum) == ("Failed", canary.checksum_of("v4"))

"""The answer, SPEC §1 rule by rule: a pure function of (snapshot, request, now).

For a check of (namespace, name, hook, checksum) at time `now`:
1. No verified snapshot yet -> closed ("not ready").
2. hook is confirm-* and a freeze window (gate's or policy's) is active -> closed, "frozen until …: reason".
   Rollback is never frozen.
3. An approval matches — hook equal or `*`, checksum equal or `*`, not expired -> open.
4. Otherwise confirm-* hooks get the gate's default (else the policy's, else closed); rollback is closed.
Closed = a one-line reason naming the canary, hook, checksum, the commit and where to approve.

The exhaustive and property tests compare decide() with `oracle()` below, written from that text
alone; it calls no gitgate code.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitgate.decide import decide
from gitgate.model import (
    Approval,
    CanaryRef,
    CheckRequest,
    Decision,
    Default,
    FreezeWindow,
    Gate,
    Hook,
    Policy,
    Snapshot,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"
SHORT = COMMIT[:12]
CANARY = CanaryRef("test", "podinfo")
GATE_FILE = "gates/test/podinfo.yaml"
NOW = datetime(2026, 1, 14, 12, 30, tzinfo=UTC)  # a Wednesday
SUM = "85d557f47b"
CONFIRM_HOOKS = [Hook.CONFIRM_ROLLOUT, Hook.CONFIRM_TRAFFIC_INCREASE, Hook.CONFIRM_PROMOTION]
ALL_HOOKS = [*CONFIRM_HOOKS, Hook.ROLLBACK, Hook.ANY]

# In force at NOW (started 12:00, ends 13:30) and not in force at NOW (starts 18:00).
ACTIVE = FreezeWindow("0 12 * * *", timedelta(minutes=90), "UTC", "Lunch freeze", "gitgate.yaml:7")
IDLE = FreezeWindow("0 18 * * *", timedelta(hours=1), "UTC", "Evening freeze", "gitgate.yaml:11")


def gate(
    *approvals: Approval, default: Default | None = None, freeze: tuple[FreezeWindow, ...] = (), path: str = GATE_FILE
) -> Gate:
    return Gate(CANARY, path, default, approvals, freeze)


def snapshot(
    gate_: Gate | None = None, *policies: Policy, gates_path: str = "gates", verified: bool = True
) -> Snapshot:
    return Snapshot(COMMIT, gates_path, {CANARY: gate_} if gate_ else {}, policies, verified)


def check(hook: Hook, checksum: str | None = SUM) -> CheckRequest:
    return CheckRequest(CANARY, hook, checksum, "Progressing")


# --- rule 1: no snapshot -------------------------------------------------------------------------


@pytest.mark.parametrize("hook", ALL_HOOKS)
def test_no_snapshot_is_closed_not_ready(hook: Hook) -> None:
    decision = decide(None, check(hook), NOW)
    what = "gate" if hook is Hook.ANY else hook.value
    assert decision == Decision(
        False,
        f"{what} of test/podinfo (checksum {SUM}) is closed: not ready, no verified commit of the approvals repo yet",
        "",
    )


# --- rule 2: freeze ------------------------------------------------------------------------------


@pytest.mark.parametrize("hook", [*CONFIRM_HOOKS, Hook.ANY])
def test_a_gate_freeze_closes_confirm_hooks_even_when_approved_and_default_open(hook: Hook) -> None:
    window = FreezeWindow("0 12 * * *", timedelta(minutes=90), "UTC", "No deploys at lunch", f"{GATE_FILE}:14")
    approved = gate(Approval("*", "*", line=9), default=Default.OPEN, freeze=(window,))
    decision = decide(snapshot(approved, Policy("gitgate.yaml", Default.OPEN)), check(hook), NOW)
    what = "gate" if hook is Hook.ANY else hook.value
    assert decision == Decision(
        False,
        f"{what} of test/podinfo (checksum {SUM}) is closed: frozen until 2026-01-14T13:30:00Z: No deploys at lunch "
        f"({GATE_FILE}:14, at commit {SHORT})",
        COMMIT,
        frozen_until=datetime(2026, 1, 14, 13, 30, tzinfo=UTC),
    )


def test_a_policy_freeze_closes_confirm_hooks_and_says_where_it_is() -> None:
    decision = decide(snapshot(gate(Approval("confirm-promotion", SUM)), Policy("gitgate.yaml", None, (ACTIVE,))),
                      check(Hook.CONFIRM_PROMOTION), NOW)  # fmt: skip
    assert not decision.open
    assert decision.reason == (
        f"confirm-promotion of test/podinfo (checksum {SUM}) is closed: frozen until 2026-01-14T13:30:00Z: "
        f"Lunch freeze (gitgate.yaml:7, at commit {SHORT})"
    )
    assert decision.frozen_until == datetime(2026, 1, 14, 13, 30, tzinfo=UTC)


def test_a_freeze_without_a_reason_says_when_it_ends() -> None:
    quiet = FreezeWindow("0 12 * * *", timedelta(minutes=90), "UTC", None, "clusters/prod/gitgate.yaml:6")
    decision = decide(
        snapshot(None, Policy("clusters/prod/gitgate.yaml", None, (quiet,))), check(Hook.CONFIRM_ROLLOUT), NOW
    )
    assert decision.reason == (
        f"confirm-rollout of test/podinfo (checksum {SUM}) is closed: frozen until 2026-01-14T13:30:00Z "
        f"(clusters/prod/gitgate.yaml:6, at commit {SHORT})"
    )


def test_freezes_of_gate_and_policies_add_up() -> None:
    gate_window = FreezeWindow("0 12 * * *", timedelta(hours=1), "UTC", "gate's", f"{GATE_FILE}:12")
    near = FreezeWindow("0 11 * * *", timedelta(hours=3), "UTC", "near policy's", "clusters/prod/gitgate.yaml:5")
    root = FreezeWindow("0 9 * * *", timedelta(hours=4), "UTC", "root policy's", "gitgate.yaml:5")
    snap = snapshot(
        gate(default=Default.OPEN, freeze=(gate_window,)),
        Policy("clusters/prod/gitgate.yaml", None, (near,)),
        Policy("gitgate.yaml", None, (root,)),
        gates_path="clusters/prod/gates",
    )
    # Each alone closes; together the freeze lasts as long as the longest (here: chained) one.
    decision = decide(snap, check(Hook.CONFIRM_PROMOTION), NOW)
    assert decision.frozen_until == datetime(2026, 1, 14, 14, 0, tzinfo=UTC)
    assert "frozen until 2026-01-14T14:00:00Z: near policy's (clusters/prod/gitgate.yaml:5," in decision.reason
    later = decide(snap, check(Hook.CONFIRM_PROMOTION), datetime(2026, 1, 14, 9, 30, tzinfo=UTC))
    assert later.frozen_until == datetime(2026, 1, 14, 14, 0, tzinfo=UTC)  # 09:00-13:00 then 11:00-14:00
    assert not later.open
    after = decide(snap, check(Hook.CONFIRM_PROMOTION), datetime(2026, 1, 14, 14, 0, tzinfo=UTC))
    assert after.open  # the gate's default, once every window is over
    assert after.frozen_until is None


def test_rollback_is_never_frozen() -> None:
    freeze = (ACTIVE,)
    approved = snapshot(gate(Approval("rollback", SUM, line=8), freeze=freeze), Policy("gitgate.yaml", None, freeze))
    decision = decide(approved, check(Hook.ROLLBACK), NOW)
    assert decision.open
    assert decision.frozen_until is None
    assert (
        decision.reason
        == f"rollback of test/podinfo (checksum {SUM}) is open: approved in {GATE_FILE}:8 at commit {SHORT}"
    )
    unapproved = decide(snapshot(gate(freeze=freeze)), check(Hook.ROLLBACK), NOW)
    assert not unapproved.open
    assert "frozen" not in unapproved.reason


def test_an_idle_window_does_not_close() -> None:
    decision = decide(snapshot(gate(default=Default.OPEN, freeze=(IDLE,))), check(Hook.CONFIRM_PROMOTION), NOW)
    assert decision.open


# --- rule 3: approvals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("approval", "hook", "checksum", "opens"),
    [
        (Approval("confirm-promotion", SUM), Hook.CONFIRM_PROMOTION, SUM, True),
        (Approval("*", SUM), Hook.CONFIRM_PROMOTION, SUM, True),
        (Approval("confirm-promotion", "*"), Hook.CONFIRM_PROMOTION, SUM, True),
        (Approval("*", "*"), Hook.CONFIRM_TRAFFIC_INCREASE, SUM, True),
        (Approval("confirm-rollout", SUM), Hook.CONFIRM_PROMOTION, SUM, False),
        (Approval("confirm-promotion", "5578456"), Hook.CONFIRM_PROMOTION, SUM, False),
        (Approval("confirm-promotion", SUM.upper()), Hook.CONFIRM_PROMOTION, SUM, False),
        (Approval("rollback", SUM), Hook.ROLLBACK, SUM, True),
        (Approval("rollback", "*"), Hook.ROLLBACK, SUM, True),
        (Approval("confirm-promotion", SUM), Hook.ROLLBACK, SUM, False),
        # "*" covers every confirm-* hook but not rollback (gitgate/model.py: a 2xx on rollback rolls
        # the canary back, so it needs its own `hook: rollback`). SPEC §1 reads "hook equal or *".
        (Approval("*", SUM), Hook.ROLLBACK, SUM, False),
        (Approval("*", "*"), Hook.ROLLBACK, SUM, False),
        # `/gate/check` with no metadata.hook: the load tester's one gate per canary, only "*" approvals.
        (Approval("*", SUM), Hook.ANY, SUM, True),
        (Approval("*", "*"), Hook.ANY, None, True),
        (Approval("confirm-promotion", SUM), Hook.ANY, SUM, False),
        (Approval("confirm-rollout", "*"), Hook.ANY, SUM, False),
        # A request with no checksum only matches "*" checksums.
        (Approval("confirm-promotion", "*"), Hook.CONFIRM_PROMOTION, None, True),
        (Approval("confirm-promotion", SUM), Hook.CONFIRM_PROMOTION, None, False),
    ],
)
def test_approval_matching(approval: Approval, hook: Hook, checksum: str | None, opens: bool) -> None:
    decision = decide(snapshot(gate(approval)), check(hook, checksum), NOW)
    assert decision.open is opens
    assert decision.approval == (approval if opens else None)


def test_an_approval_expiring_exactly_now_no_longer_counts() -> None:
    approval = Approval("confirm-promotion", SUM, expires=NOW, line=9)
    decision = decide(snapshot(gate(approval)), check(Hook.CONFIRM_PROMOTION), NOW)
    assert not decision.open
    assert decision.reason == (
        f"confirm-promotion of test/podinfo (checksum {SUM}) is closed: its approval expired; at commit {SHORT}; "
        f"to approve, add an approval to {GATE_FILE}"
    )
    just_before = decide(snapshot(gate(approval)), check(Hook.CONFIRM_PROMOTION), NOW - timedelta(microseconds=1))
    assert just_before.open
    assert just_before.reason == (
        f"confirm-promotion of test/podinfo (checksum {SUM}) is open: approved in {GATE_FILE}:9 at commit {SHORT}"
    )


def test_expiry_is_compared_as_an_instant() -> None:
    # 13:00+01:00 is 12:00Z, before NOW (12:30Z): expired, though its wall clock reads later.
    plus_one = datetime(2026, 1, 14, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert not decide(snapshot(gate(Approval("*", "*", plus_one))), check(Hook.CONFIRM_ROLLOUT), NOW).open
    # 08:00-05:00 is 13:00Z, after NOW: live, though its wall clock reads earlier.
    minus_five = datetime(2026, 1, 14, 8, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert decide(snapshot(gate(Approval("*", "*", minus_five))), check(Hook.CONFIRM_ROLLOUT), NOW).open


def test_the_first_live_match_is_named_and_expired_ones_are_skipped() -> None:
    expired = Approval("confirm-promotion", SUM, expires=NOW - timedelta(days=1), line=8)
    live = Approval("*", "*", expires=NOW + timedelta(days=1), line=11, note="hotfix")
    decision = decide(snapshot(gate(expired, live)), check(Hook.CONFIRM_PROMOTION), NOW)
    assert decision.open
    assert decision.approval == live
    assert decision.reason.endswith(f"is open: approved in {GATE_FILE}:11 at commit {SHORT}")


# --- rule 4: defaults ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gate_default", "policy_defaults", "opens", "source"),
    [
        (None, [], False, None),
        (Default.OPEN, [], True, GATE_FILE),
        (Default.CLOSED, [Default.OPEN], False, None),
        (Default.OPEN, [Default.CLOSED, Default.CLOSED], True, GATE_FILE),
        (None, [Default.OPEN], True, "clusters/prod/gitgate.yaml"),
        (None, [Default.CLOSED, Default.OPEN], False, None),  # nearest policy first
        (None, [None, Default.OPEN], True, "gitgate.yaml"),
        (None, [None, None], False, None),
    ],
)
def test_defaults_gate_wins_then_nearest_policy_then_closed(
    gate_default: Default | None, policy_defaults: list[Default | None], opens: bool, source: str | None
) -> None:
    paths = ["clusters/prod/gitgate.yaml", "gitgate.yaml"]
    policies = [Policy(path, default) for path, default in zip(paths, policy_defaults, strict=False)]
    snap = snapshot(
        gate(default=gate_default, path="clusters/prod/gates/test/podinfo.yaml"),
        *policies,
        gates_path="clusters/prod/gates",
    )
    if source == GATE_FILE:
        source = "clusters/prod/gates/test/podinfo.yaml"
    for hook in (*CONFIRM_HOOKS, Hook.ANY):
        decision = decide(snap, check(hook), NOW)
        assert decision.open is opens, hook
        what = "gate" if hook is Hook.ANY else hook.value
        if opens:
            assert (
                decision.reason
                == f"{what} of test/podinfo (checksum {SUM}) is open: default open in {source} at commit {SHORT}"
            )
        else:
            assert decision.reason == (
                f"{what} of test/podinfo (checksum {SUM}) is closed: no approval for this hook and checksum; "
                f"at commit {SHORT}; to approve, add an approval to clusters/prod/gates/test/podinfo.yaml"
            )
    rollback = decide(snap, check(Hook.ROLLBACK), NOW)
    assert not rollback.open


def test_a_policy_default_applies_to_a_canary_without_a_gate_file() -> None:
    snap = snapshot(None, Policy("gitgate.yaml", Default.OPEN))
    assert decide(snap, check(Hook.CONFIRM_ROLLOUT), NOW).reason == (
        f"confirm-rollout of test/podinfo (checksum {SUM}) is open: default open in gitgate.yaml at commit {SHORT}"
    )
    closed = decide(snapshot(None), check(Hook.CONFIRM_ROLLOUT), NOW)
    assert closed.reason == (
        f"confirm-rollout of test/podinfo (checksum {SUM}) is closed: no gate file {GATE_FILE}; at commit {SHORT}; "
        f"to approve, add an approval to {GATE_FILE}"
    )


def test_rollback_is_closed_without_an_approval_even_with_default_open() -> None:
    snap = snapshot(
        gate(Approval("confirm-promotion", SUM), default=Default.OPEN), Policy("gitgate.yaml", Default.OPEN)
    )
    decision = decide(snap, check(Hook.ROLLBACK), NOW)
    assert decision == Decision(
        False,
        f"rollback of test/podinfo (checksum {SUM}) is closed: no approval for this hook and checksum; at commit {SHORT}; "
        f"to approve, add an approval to {GATE_FILE}",
        COMMIT,
    )


# --- what the closed reason says -----------------------------------------------------------------


def test_the_closed_reason_names_the_request_url_once_one_exists() -> None:
    url = "https://github.com/acme/approvals/pull/42"
    decision = decide(snapshot(gate()), check(Hook.CONFIRM_PROMOTION), NOW, request_url=url)
    assert decision.reason == (
        f"confirm-promotion of test/podinfo (checksum {SUM}) is closed: no approval for this hook and checksum; "
        f"at commit {SHORT}; to approve, merge {url}"
    )


def test_the_closed_reason_for_the_one_gate_and_a_missing_checksum() -> None:
    decision = decide(snapshot(gate(Approval("confirm-promotion", SUM))), check(Hook.ANY, None), NOW)
    assert decision.reason == (
        f"gate of test/podinfo (checksum none sent) is closed: no approval for this hook and checksum; "
        f"at commit {SHORT}; to approve, add an approval to {GATE_FILE}"
    )


def test_an_unverified_commit_is_said_to_be_unverified() -> None:
    snap = snapshot(gate(Approval("*", "*", line=7)), verified=False)
    assert decide(snap, check(Hook.CONFIRM_PROMOTION), NOW).reason == (
        f"confirm-promotion of test/podinfo (checksum {SUM}) is open: approved in {GATE_FILE}:7 at UNVERIFIED commit {SHORT}"
    )
    assert f"at UNVERIFIED commit {SHORT};" in decide(snap, check(Hook.ROLLBACK), NOW).reason


@pytest.mark.parametrize("hook", ALL_HOOKS)
def test_every_closed_reason_is_one_line_naming_canary_hook_checksum_commit_and_where(hook: Hook) -> None:
    for snap in (snapshot(None), snapshot(gate(Approval("confirm-rollout", "other")))):
        decision = decide(snap, check(hook), NOW)
        assert not decision.open
        assert "\n" not in decision.reason
        assert "test/podinfo" in decision.reason
        assert ("gate of" if hook is Hook.ANY else f"{hook.value} of") in decision.reason
        assert f"(checksum {SUM})" in decision.reason
        assert f"commit {SHORT}" in decision.reason
        assert COMMIT not in decision.reason
        assert decision.reason.endswith(f"to approve, add an approval to {GATE_FILE}")
        assert decision.commit == COMMIT


# --- the oracle, from the SPEC text --------------------------------------------------------------

CONFIRM = {"confirm-rollout", "confirm-traffic-increase", "confirm-promotion", "*"}


@dataclass(frozen=True)
class Case:
    """One check, described with plain values only."""

    hook: str  # a hook name, or "*" for `/gate/check`
    checksum: str | None
    approvals: tuple[tuple[str, str, datetime | None], ...] = ()  # (hook, checksum, expires)
    gate_exists: bool = True
    gate_default: str | None = None
    policy_defaults: tuple[str | None, ...] = ()  # nearest first
    frozen: bool = False  # a freeze window (gate's or policy's) is in force
    now: datetime = NOW


def oracle(case: Case) -> bool:
    """SPEC §1 "The answer", rules 2-4 (rule 1 has its own test). Open = True."""
    confirm = case.hook in CONFIRM
    if confirm and case.frozen:  # rule 2
        return False
    for hook, checksum, expires in case.approvals:  # rule 3
        # "hook equal or *": "*" approvals stand for the confirm-* hooks, not rollback (see above).
        hook_ok = hook == case.hook or (hook == "*" and confirm)
        checksum_ok = checksum in ("*", case.checksum)
        if hook_ok and checksum_ok and (expires is None or case.now < expires):
            return True
    if not confirm:  # rule 4
        return False
    defaults = [case.gate_default] if case.gate_exists else []
    chosen = next((d for d in [*defaults, *case.policy_defaults] if d is not None), "closed")
    return chosen == "open"


def build(case: Case, windows: tuple[tuple[str, FreezeWindow], ...] = ()) -> tuple[Snapshot, CheckRequest]:
    """The same case as gitgate's values. `windows`: (where, window) with where in gate/policy."""
    approvals = tuple(Approval(h, c, e, line=8 + i) for i, (h, c, e) in enumerate(case.approvals))
    gate_windows = tuple(w for where, w in windows if where == "gate")
    policy_windows = tuple(w for where, w in windows if where == "policy")
    defaults = list(case.policy_defaults) or [None]
    policies = tuple(
        Policy(path, Default(d) if d else None, policy_windows if i == len(defaults) - 1 else ())
        for i, (path, d) in enumerate(zip(["clusters/prod/gitgate.yaml", "gitgate.yaml"], defaults, strict=False))
    )
    the_gate = gate(*approvals, default=Default(case.gate_default) if case.gate_default else None, freeze=gate_windows)
    snap = snapshot(the_gate if case.gate_exists else None, *policies)
    return snap, CheckRequest(CANARY, Hook(case.hook), case.checksum)


def _check_reason(case: Case, decision: Decision) -> None:
    what = "gate" if case.hook == "*" else case.hook
    checksum = case.checksum if case.checksum is not None else "none sent"
    assert decision.reason.startswith(f"{what} of test/podinfo (checksum {checksum}) is ")
    assert f"commit {SHORT}" in decision.reason
    assert decision.commit == COMMIT
    if not decision.open and decision.frozen_until is None:
        assert decision.reason.endswith(f"to approve, add an approval to {GATE_FILE}")


REQUEST_HOOKS = ["confirm-rollout", "confirm-traffic-increase", "confirm-promotion", "rollback", "*"]
OTHER_HOOK = {"confirm-promotion": "confirm-rollout"}
EXPIRES = {"none": None, "past": NOW - timedelta(hours=1), "now": NOW, "future": NOW + timedelta(hours=1)}
FREEZES: dict[str, tuple[tuple[str, FreezeWindow], ...]] = {
    "none": (("gate", IDLE), ("policy", IDLE)),
    "gate": (("gate", ACTIVE), ("policy", IDLE)),
    "policy": (("gate", IDLE), ("policy", ACTIVE)),
}
DEFAULTS = [None, "open", "closed"]


def _approval_shapes(hook: str, checksum: str | None) -> list[tuple[tuple[str, str, datetime | None], ...]]:
    hooks = {"exact": hook, "other": OTHER_HOOK.get(hook, "confirm-promotion"), "*": "*"}
    sums = {"exact": checksum if checksum is not None else SUM, "other": "5578456", "*": "*"}
    shapes: list[tuple[tuple[str, str, datetime | None], ...]] = [()]  # no approval at all
    for h, c, e in itertools.product(hooks.values(), sums.values(), EXPIRES.values()):
        shapes.append(((h, c, e),))
    return shapes


@pytest.mark.parametrize("freeze", list(FREEZES), ids=[f"freeze={f}" for f in FREEZES])
@pytest.mark.parametrize("hook", REQUEST_HOOKS)
@pytest.mark.parametrize("checksum", [SUM, None], ids=["checksum", "no-checksum"])
def test_every_hook_approval_freeze_and_default_against_the_oracle(
    hook: str, checksum: str | None, freeze: str
) -> None:
    mismatches = []
    count = 0
    for approvals, gate_default, policy_default, gate_exists in itertools.product(
        _approval_shapes(hook, checksum), DEFAULTS, DEFAULTS, [True, False]
    ):
        if not gate_exists and (approvals or gate_default or freeze == "gate"):
            continue
        case = Case(
            hook,
            checksum,
            approvals,
            gate_exists,
            gate_default,
            (policy_default,),
            frozen=freeze != "none",
        )
        decision = decide(*build(case, FREEZES[freeze]), NOW)
        count += 1
        if decision.open is not oracle(case):
            mismatches.append(f"{case} -> {decision.reason}")
        _check_reason(case, decision)
        assert (decision.frozen_until is not None) == (case.frozen and hook != "rollback")
    assert count > 100
    assert not mismatches, "\n".join(mismatches[:20])


# --- the same oracle against generated snapshots, requests and times ------------------------------

BASE = datetime(2026, 1, 14, tzinfo=UTC)


@dataclass(frozen=True)
class Daily:
    """A daily freeze window at hh:mm UTC, shorter than a day: simple enough to evaluate by hand."""

    minute_of_day: int
    minutes: int

    def window(self) -> FreezeWindow:
        hour, minute = divmod(self.minute_of_day, 60)
        return FreezeWindow(f"{minute} {hour} * * *", timedelta(minutes=self.minutes), "UTC", "generated")

    def spans(self, now: datetime) -> list[tuple[datetime, datetime]]:
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        starts = [midnight + timedelta(days=d, minutes=self.minute_of_day) for d in range(-1, 4)]
        return [(s, s + timedelta(minutes=self.minutes)) for s in starts]


def frozen_until(dailies: list[Daily], now: datetime) -> datetime | None:
    """When the freeze in force at `now` ends (spans that touch or overlap join); None if none is."""
    spans = sorted(span for d in dailies for span in d.spans(now))
    end = None
    for start, stop in spans:
        if start <= now < stop or (end is not None and start <= end):
            end = stop if end is None else max(end, stop)
    return end


_hooks = st.sampled_from(REQUEST_HOOKS)
_sums = st.sampled_from([SUM, "5578456", "*"])
_moments = st.integers(0, 48 * 60).map(lambda m: BASE + timedelta(minutes=m)) | st.datetimes(
    datetime(2026, 1, 14), datetime(2026, 1, 16), timezones=st.just(UTC)
)
_approvals = st.lists(
    st.tuples(_hooks, _sums, st.none() | _moments),
    max_size=3,
).map(tuple)
_dailies = st.lists(st.builds(Daily, st.integers(0, 24 * 60 - 1), st.integers(1, 12 * 60)), max_size=2)
_defaults = st.sampled_from([None, "open", "closed"])


@settings(max_examples=300, deadline=None)
@given(
    hook=_hooks,
    checksum=st.none() | st.sampled_from([SUM, "5578456"]),
    approvals=_approvals,
    gate_exists=st.booleans(),
    gate_default=_defaults,
    policy_defaults=st.lists(_defaults, max_size=2).map(tuple),
    gate_dailies=_dailies,
    policy_dailies=_dailies,
    now=_moments,
)
def test_generated_checks_against_the_oracle(
    *,
    hook: str,
    checksum: str | None,
    approvals: tuple[tuple[str, str, datetime | None], ...],
    gate_exists: bool,
    gate_default: str | None,
    policy_defaults: tuple[str | None, ...],
    gate_dailies: list[Daily],
    policy_dailies: list[Daily],
    now: datetime,
) -> None:
    if not gate_exists:
        approvals, gate_default, gate_dailies = (), None, []
    until = frozen_until(gate_dailies + policy_dailies, now)
    case = Case(hook, checksum, approvals, gate_exists, gate_default, policy_defaults, until is not None, now)
    windows = tuple(("gate", d.window()) for d in gate_dailies) + tuple(("policy", d.window()) for d in policy_dailies)
    snap, request = build(case, windows)
    decision = decide(snap, request, now)
    assert decision.open is oracle(case), decision.reason
    _check_reason(case, decision)
    if hook != "rollback" and until is not None:
        # Compare "until" where the chain of spans ends inside the days the oracle looked at.
        if until < now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=3):
            assert decision.frozen_until == until
            assert f"frozen until {until:%Y-%m-%dT%H:%M:%SZ}: generated (" in decision.reason
    else:
        assert decision.frozen_until is None


def test_decide_is_pure() -> None:
    snap = snapshot(gate(Approval("*", "*", expires=NOW), freeze=(IDLE,)), Policy("gitgate.yaml", Default.OPEN))
    request = check(Hook.CONFIRM_PROMOTION)
    first = decide(snap, request, NOW - timedelta(seconds=1))
    assert first == decide(snap, request, NOW - timedelta(seconds=1))
    assert first.approval is not None
    assert decide(snap, request, NOW).approval is None  # only `now` changed the answer


def test_gate_files_at_the_repo_root_are_named_without_a_leading_slash() -> None:
    # --path "" (or "/") keeps gate files at the root of the approvals repo.
    canary = CanaryRef("test", "podinfo")
    snap = Snapshot(COMMIT, "", {})
    decision = decide(snap, CheckRequest(canary, Hook.CONFIRM_PROMOTION, "abc"), datetime(2026, 11, 23, tzinfo=UTC))
    assert "add an approval to test/podinfo.yaml" in decision.reason
    assert "/test/podinfo.yaml" not in decision.reason

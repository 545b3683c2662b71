"""End to end: a model of Flagger (tests/flagger.py) walks canaries through a real `gitgate serve`
that answers from a real approvals repo with real signed commits. Every assertion is something
Flagger (status codes, bodies) or an operator (403 reasons, events, /api/v1/status) would notice."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from flagger import (
    BlueGreen,
    Canary,
    CanaryStrategy,
    HookType,
    Phase,
    Webhook,
    call_webhook,
    gitgate_webhooks,
    load_tester_webhooks,
)
from helpers import Approvals, Keys, Service, Signer, wait_for

pytestmark = pytest.mark.slow

NS, NAME = "test", "podinfo"
GATE_FILE = f"gates/{NS}/{NAME}.yaml"
EVENT_NAME = f"{NAME}.{NS}"  # how Flagger names a canary in its events
POLL = 1.0  # --interval 1s
MARGIN = 2.0  # a busy 2-core machine
ROLLOUT = HookType.CONFIRM_ROLLOUT
TRAFFIC = HookType.CONFIRM_TRAFFIC_INCREASE
PROMOTION = HookType.CONFIRM_PROMOTION
ROLLBACK = HookType.ROLLBACK

Serve = Callable[..., Service]


@pytest.fixture
def serve(approvals: Approvals, keys: Keys, tmp_path: Path) -> Iterator[Serve]:
    """Start `gitgate serve` on the approvals remote; every service is stopped after the test."""
    started: list[Service] = []

    def start(*extra: str, state: str = "state", trust_ssh: bool = True, env: dict[str, str] | None = None) -> Service:
        args = ["--repo", approvals.url, "--interval", "1s", "--state-dir", str(tmp_path / state)]
        if trust_ssh:
            args += ["--trust-ssh", str(keys.allowed_signers)]
        svc = Service([*args, *extra], tmp_path / "run", env=env)
        started.append(svc)
        return svc.start()

    yield start
    for svc in started:
        svc.stop()


def wait_serving(svc: Service, commit: str) -> None:
    wait_for(lambda: svc.status()["serving"] == commit, timeout=POLL + MARGIN + 2)


def wait_refused(svc: Service, commit: str) -> dict[str, Any]:
    def refusal() -> dict[str, Any] | None:
        return next((r for r in svc.status()["refused"] if r["commit"] == commit), None)

    found: dict[str, Any] = wait_for(refusal, timeout=POLL + MARGIN + 2)
    return found


Probe = tuple[str, str]  # (hook, checksum)


def answers(svc: Service, probes: Sequence[Probe]) -> list[tuple[int, str, str]]:
    """What Flagger would get for each probe: status, body and the commit answered from."""
    out = []
    for hook, checksum in probes:
        resp = svc.check(hook, NS, NAME, checksum)
        out.append((resp.status_code, resp.text.strip(), resp.headers.get("X-Gitgate-Commit", "")))
    return out


def gate_status(svc: Service, namespace: str = NS, name: str = NAME) -> dict[str, Any]:
    gate: dict[str, Any] = next(g for g in svc.status()["gates"] if (g["namespace"], g["name"]) == (namespace, name))
    return gate


# --- confirm-rollout ------------------------------------------------------------------------------


def test_rollout_waits_until_a_signed_approval_of_the_named_checksum_lands(
    approvals: Approvals, keys: Keys, serve: Serve
) -> None:
    approvals.gate(NS, NAME)
    gate_commit = approvals.land("podinfo gets a gate", keys.alice)
    svc = serve()
    canary = Canary(NAME, NS, gitgate_webhooks(svc.url, traffic=False, promotion=False, rollback=False))
    previous = canary.checksum

    canary.deploy("v2")
    [call] = canary.step()
    # Flagger asks with the phase it is in and the checksum of the *previous* revision.
    assert (call.hook, call.phase, call.checksum, call.status) == (ROLLOUT, "Initialized", previous, 403)
    assert canary.phase is Phase.WAITING
    assert f"Halt {EVENT_NAME} advancement waiting for approval gitgate-rollout" in canary.messages("Warning")
    # The 403 body lands in `kubectl describe canary`: it says what to approve, and where.
    reason = call.body.strip()
    assert "\n" not in reason
    for needed in (f"{NS}/{NAME}", "confirm-rollout", previous, gate_commit[:12], GATE_FILE):
        assert needed in reason, (needed, reason)

    # Re-polled every interval while Waiting; the checksum does not move while it waits.
    [again] = canary.step()
    assert (again.phase, again.checksum, again.status) == ("Waiting", previous, 403)

    approvals.approve(NS, NAME, "confirm-rollout", previous, note="v2 reviewed")
    approvals.commit("approve confirm-rollout of test/podinfo", keys.alice)
    approvals.push()
    pushed = time.monotonic()
    canary.step_until(lambda c: c.phase is Phase.PROGRESSING, timeout=POLL + MARGIN + 3)
    assert time.monotonic() - pushed < POLL + MARGIN
    opened = canary.last_call(ROLLOUT)
    assert (opened.status, opened.body.strip(), opened.phase, opened.checksum) == (200, "Approved", "Waiting", previous)
    assert {c.status for c in canary.calls[:-1]} == {403}
    assert "Confirm-rollout check gitgate-rollout passed" in canary.messages()
    assert canary.checksum == canary.checksum_of("v2") != previous

    # With no other gate the analysis runs to the end, and Flagger stops asking.
    canary.step_until(lambda c: c.phase is Phase.SUCCEEDED, pause=0)
    assert canary.primary == "v2"
    assert canary.step() == []
    gate = gate_status(svc)
    assert gate["checks"]["confirm-rollout"]["open"] is True
    assert approvals.head()[:12] in gate["checks"]["confirm-rollout"]["reason"]

    # The next revision is asked for with v2's checksum: the approval of v1's does not carry over.
    canary.deploy("v3")
    [next_call] = canary.step()
    assert (next_call.phase, next_call.checksum, next_call.status) == ("Succeeded", canary.checksum_of("v2"), 403)
    assert canary.phase is Phase.WAITING


# --- confirm-traffic-increase, confirm-promotion, rollback ------------------------------------------


def test_traffic_and_promotion_wait_for_approvals_of_the_current_checksum(
    approvals: Approvals, keys: Keys, serve: Serve
) -> None:
    approvals.gate(NS, NAME)
    approvals.land("podinfo gets a gate", keys.alice)
    svc = serve()
    canary = Canary(
        NAME, NS, gitgate_webhooks(svc.url, rollout=False), strategy=CanaryStrategy(step_weight=25, max_weight=50)
    )
    v1 = canary.checksum
    canary.deploy("v2")
    assert canary.step() == []  # no confirm-rollout hook: straight to Progressing, with a new checksum
    c2 = canary.checksum
    assert canary.phase is Phase.PROGRESSING
    assert c2 == canary.checksum_of("v2") != v1

    calls = canary.step()
    assert [(c.hook, c.status) for c in calls] == [(ROLLBACK, 403), (TRAFFIC, 403)]
    held = calls[-1]
    assert (held.phase, held.checksum) == ("Progressing", c2)
    assert "confirm-traffic-increase" in held.body and c2 in held.body and GATE_FILE in held.body
    assert canary.weight == 0
    assert f"Halt {EVENT_NAME} advancement waiting for traffic increase approval gitgate-traffic" in canary.messages()
    canary.step()
    assert canary.weight == 0  # skipped again this interval

    approvals.approve(NS, NAME, "confirm-traffic-increase", c2)
    approvals.land("approve traffic increase", keys.alice)
    canary.step_until(lambda c: c.weight == 25)
    canary.step()
    assert canary.weight == 50
    assert f"Advance {EVENT_NAME} canary weight 50" in canary.messages()

    # At max weight: confirm-promotion. Closed -> WaitingPromotion, but the payload says Progressing.
    canary.step()
    promo = canary.last_call(PROMOTION)
    assert (promo.status, promo.phase, promo.checksum) == (403, "Progressing", c2)
    assert "confirm-promotion" in promo.body and c2 in promo.body
    assert canary.phase is Phase.WAITING_PROMOTION
    assert f"Halt {EVENT_NAME} advancement waiting for promotion approval gitgate-promotion" in canary.messages()
    calls = canary.step()
    assert [(c.hook, c.phase, c.canary_phase, c.status) for c in calls] == [
        (ROLLBACK, "WaitingPromotion", Phase.WAITING_PROMOTION, 403),
        (PROMOTION, "Progressing", Phase.WAITING_PROMOTION, 403),
    ]

    # An approval for an old checksum (v1's) does not open promotion of v2.
    approvals.approve(NS, NAME, "confirm-promotion", v1)
    wait_serving(svc, approvals.land("approve promotion of the old checksum", keys.alice))
    canary.step()
    assert canary.last_call(PROMOTION).status == 403
    assert canary.phase is Phase.WAITING_PROMOTION

    # v3 lands mid-analysis just as someone approves promotion of what they saw (v2's checksum).
    canary.deploy("v3")
    approvals.approve(NS, NAME, "confirm-promotion", c2)
    wait_serving(svc, approvals.land("approve promotion of c2", keys.alice))
    assert canary.step() == []  # Flagger restarts the analysis; confirm-rollout is not asked again
    assert f"New revision detected! Restarting analysis for {EVENT_NAME}" in canary.messages()
    c3 = canary.checksum
    assert (canary.phase, canary.weight) == (Phase.PROGRESSING, 0)
    assert c3 == canary.checksum_of("v3") not in (c2, v1)

    canary.step()  # c2's traffic approval does not carry over either
    assert (canary.last_call(TRAFFIC).checksum, canary.last_call(TRAFFIC).status, canary.weight) == (c3, 403, 0)
    approvals.approve(NS, NAME, "confirm-traffic-increase", c3)
    approvals.land("approve traffic increase of c3", keys.alice)
    canary.step_until(lambda c: c.weight == 50)
    canary.step()
    promo = canary.last_call(PROMOTION)
    assert (promo.checksum, promo.status) == (c3, 403)  # the approval of c2 does not open promotion of c3
    assert c3 in promo.body
    assert canary.phase is Phase.WAITING_PROMOTION

    approvals.approve(NS, NAME, "confirm-promotion", c3)
    approvals.land("approve promotion of c3", keys.alice)
    canary.step_until(lambda c: c.phase is Phase.PROMOTING)
    assert canary.last_call(PROMOTION).status == 200
    assert canary.primary == "v3"
    canary.step_until(lambda c: c.phase is Phase.SUCCEEDED, pause=0)
    assert f"Promotion completed! Scaling down {EVENT_NAME}" in canary.messages()

    # Rollback was asked every interval of the analysis and stayed closed: the canary was never rolled back.
    rollbacks = canary.calls_to(ROLLBACK)
    asked = [c.interval for c in rollbacks]
    assert len(asked) == len(set(asked))  # once per interval
    assert {c.interval for c in canary.calls if c.hook in (TRAFFIC, PROMOTION)} <= set(asked)
    assert {c.status for c in rollbacks} == {403}
    assert {c.phase for c in rollbacks} == {"Progressing", "WaitingPromotion"}
    assert "rollback of test/podinfo" in rollbacks[-1].body


def test_rollback_is_closed_until_approved_for_the_checksum_then_rolls_back(
    approvals: Approvals, keys: Keys, serve: Serve
) -> None:
    approvals.gate(NS, NAME, approvals=[{"hook": "confirm-traffic-increase", "checksum": "*"}])
    approvals.land("traffic may increase for any revision", keys.alice)
    svc = serve()
    canary = Canary(NAME, NS, gitgate_webhooks(svc.url, rollout=False), strategy=CanaryStrategy(step_weight=10))
    canary.deploy("v2")
    canary.step()
    checksum = canary.checksum
    calls = canary.step()
    assert [(c.hook, c.status) for c in calls] == [(ROLLBACK, 403), (TRAFFIC, 200)]
    assert calls[0].body.strip().startswith(f"rollback of {NS}/{NAME} (checksum {checksum}) is closed")
    assert "Rollback hook gitgate-rollback not signaling a rollback" in canary.messages()
    assert canary.weight == 10

    # An approval of rollback for another revision does not roll this one back.
    approvals.approve(NS, NAME, "rollback", canary.checksum_of("v1"))
    wait_serving(svc, approvals.land("roll back v1", keys.alice))
    canary.step()
    assert (canary.last_call(ROLLBACK).status, canary.phase) == (403, Phase.PROGRESSING)

    approvals.approve(NS, NAME, "rollback", checksum, note="errors in eu-west")
    wait_serving(svc, approvals.land("roll back podinfo", keys.alice))
    canary.step()
    assert canary.phase is Phase.FAILED
    signal = canary.last_call(ROLLBACK)
    assert (signal.status, signal.body.strip(), signal.checksum, signal.phase) == (
        200,
        "Approved",
        checksum,
        "Progressing",
    )
    assert f"Rolling back {EVENT_NAME} manual webhook invoked" in canary.messages("Warning")
    assert (canary.weight, canary.primary) == (0, "v1")
    assert canary.step() == []  # Failed, no new revision: Flagger asks nothing


def test_blue_green_promotion_waits_for_approval(approvals: Approvals, keys: Keys, serve: Serve) -> None:
    approvals.gate(NS, NAME)
    approvals.land("podinfo gets a gate", keys.alice)
    svc = serve()
    canary = Canary(NAME, NS, gitgate_webhooks(svc.url, rollout=False, traffic=False), strategy=BlueGreen(3))
    canary.deploy("v2")
    canary.step()
    checksum = canary.checksum
    canary.step_until(lambda c: c.phase is Phase.WAITING_PROMOTION, pause=0, max_steps=10)
    assert f"Advance {EVENT_NAME} canary iteration 3/3" in canary.messages()
    assert canary.calls_to(TRAFFIC) == []  # blue/green has no traffic steps
    for _ in range(3):
        canary.step()
    promotions = canary.calls_to(PROMOTION)
    assert len(promotions) >= 2
    assert {(c.phase, c.checksum, c.status) for c in promotions} == {("Progressing", checksum, 403)}
    assert canary.phase is Phase.WAITING_PROMOTION

    approvals.approve(NS, NAME, "confirm-promotion", checksum)
    approvals.land("promote podinfo", keys.alice)
    canary.step_until(lambda c: c.phase is Phase.PROMOTING)
    assert "Routing all traffic to canary" in canary.messages()
    canary.step_until(lambda c: c.phase is Phase.SUCCEEDED, pause=0)
    assert canary.primary == "v2"
    assert {c.status for c in canary.calls_to(ROLLBACK)} == {403}


# --- the load tester's single gate ------------------------------------------------------------------


def test_gate_check_with_one_wildcard_approval_is_the_load_testers_single_gate(
    approvals: Approvals, keys: Keys, serve: Serve
) -> None:
    approvals.gate(NS, NAME)
    approvals.land("podinfo gets a gate", keys.alice)
    svc = serve()
    canary = Canary(NAME, NS, load_tester_webhooks(svc.url))
    canary.deploy("v2")
    [closed] = canary.step()
    assert (closed.url, closed.status) == (f"{svc.url}/gate/check", 403)
    assert closed.body.strip().startswith(f"gate of {NS}/{NAME} (checksum {closed.checksum}) is closed")
    assert canary.phase is Phase.WAITING

    # "/gate/open": one approval, any hook, any revision. Every confirm-* hook on /gate/check opens;
    # the rollback gate is separate, as in the load tester, and stays closed.
    approvals.approve(NS, NAME, "*", "*", note="gate open")
    approvals.land("open the gate of podinfo", keys.alice)
    canary.step_until(lambda c: c.phase is Phase.SUCCEEDED)
    assert canary.primary == "v2"
    gate_calls = [c for c in canary.calls if c.url.endswith("/gate/check")]
    opened = next(i for i, c in enumerate(gate_calls) if c.status == 200)
    assert {c.status for c in gate_calls[:opened]} == {403}
    assert {(c.status, c.body.strip()) for c in gate_calls[opened:]} == {(200, "Approved")}
    assert {c.hook for c in gate_calls[opened:]} == {ROLLOUT, TRAFFIC, PROMOTION}
    assert {c.status for c in canary.calls_to(ROLLBACK)} == {403}
    assert canary.phase is not Phase.FAILED

    # metadata.hook names the hook on /gate/check: a rollback hook pointed there is not opened by "*"
    # either. The load tester's static endpoints answer as there.
    payload = {"name": NAME, "namespace": NS, "phase": "Progressing", "checksum": canary.checksum}
    rollback_there = Webhook("rollback-on-gate", ROLLBACK, f"{svc.url}/gate/check", metadata={"hook": "rollback"})
    status, body, _ = call_webhook(rollback_there, payload)
    assert (status, body.startswith(f"rollback of {NS}/{NAME} (checksum {canary.checksum}) is closed")) == (403, True)
    promotion_there = Webhook("promotion", PROMOTION, f"{svc.url}/gate/check", metadata={"hook": "confirm-promotion"})
    assert call_webhook(promotion_there, payload) == (200, "Approved\n", True)
    approve = Webhook("approve", ROLLOUT, f"{svc.url}/gate/approve")
    halt = Webhook("halt", ROLLOUT, f"{svc.url}/gate/halt")
    assert call_webhook(approve, payload) == (200, "OK\n", True)
    assert call_webhook(halt, payload) == (403, "Forbidden\n", False)


# --- freeze windows ---------------------------------------------------------------------------------


def test_freeze_window_in_policy_closes_confirm_hooks_but_not_rollback(
    approvals: Approvals, keys: Keys, serve: Serve
) -> None:
    approvals.gate(
        NS,
        NAME,
        approvals=[
            {"hook": "confirm-rollout", "checksum": "*"},
            {"hook": "confirm-traffic-increase", "checksum": "*"},
        ],
    )
    approvals.land("podinfo may roll out", keys.alice)
    svc = serve()
    canary = Canary(NAME, NS, gitgate_webhooks(svc.url))
    canary.deploy("v2")
    canary.step_until(lambda c: c.weight == 25, pause=0, max_steps=5)
    checksum = canary.checksum

    now = datetime.now(UTC)
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=2)
    policy = {
        "apiVersion": "gitgate/v1",
        "kind": "Policy",
        "spec": {
            "freeze": [{"start": f"{start.minute} {start.hour} * * *", "duration": "3h", "reason": "Release freeze"}]
        },
    }
    approvals.write("gitgate.yaml", yaml.safe_dump(policy, sort_keys=False))
    wait_serving(svc, approvals.land("freeze releases for three hours", keys.alice))
    until = (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")

    calls = canary.step()
    assert [(c.hook, c.status) for c in calls] == [(ROLLBACK, 403), (TRAFFIC, 403)]
    assert f"frozen until {until}: Release freeze" in calls[-1].body
    assert "frozen" not in calls[0].body  # rollback is never frozen
    assert canary.weight == 25
    for hook in ("confirm-rollout", "confirm-promotion"):
        resp = svc.check(hook, NS, NAME, checksum)
        assert resp.status_code == 403
        assert f"frozen until {until}: Release freeze" in resp.text
    assert gate_status(svc)["frozen_until"] == until

    approvals.approve(NS, NAME, "rollback", checksum)
    approvals.land("roll back podinfo during the freeze", keys.alice)
    canary.step_until(lambda c: c.phase is Phase.FAILED)
    assert canary.last_call(ROLLBACK).status == 200


# --- Done means: nothing but a trusted, valid, descending commit changes an answer ------------------


def test_untrusted_tampered_rewritten_or_invalid_commits_change_no_answer(
    approvals: Approvals, keys: Keys, serve: Serve
) -> None:
    approvals.gate(NS, NAME, approvals=[{"hook": "confirm-rollout", "checksum": "85d557f47b"}])
    approved = approvals.land("approve confirm-rollout of podinfo", keys.alice)
    svc = serve("--trust-gpg", str(keys.carol_asc), env={"GNUPGHOME": str(keys.gnupg_signers)})
    probes = [("confirm-rollout", "85d557f47b"), ("confirm-promotion", "c0ffee"), ("rollback", "c0ffee")]
    before = answers(svc, probes)
    assert [a[0] for a in before] == [200, 403, 403]
    assert {a[2] for a in before} == {approved}

    def change(signer: Signer, *, text: str | None = None) -> str:
        """On top of the approved state: drop the rollout approval, open promotion and rollback."""
        approvals.git("reset", "-q", "--hard", approved)
        if text is None:
            approvals.gate(
                NS,
                NAME,
                approvals=[
                    {"hook": "confirm-promotion", "checksum": "c0ffee"},
                    {"hook": "rollback", "checksum": "c0ffee"},
                ],
            )
        else:
            approvals.write(GATE_FILE, text)
        return approvals.commit("change podinfo's gate", signer)

    def rewritten() -> str:
        approvals.git("reset", "-q", "--hard", f"{approved}~1")
        approvals.gate(NS, NAME, approvals=[{"hook": "confirm-promotion", "checksum": "c0ffee"}])
        return approvals.commit("history, rewritten and signed by a trusted key", keys.alice)

    def tampered() -> str:
        change(keys.alice)
        return approvals.tamper_head()

    invalid = yaml.safe_dump(
        {
            "apiVersion": "gitgate/v1",
            "kind": "Gate",
            "metadata": {"name": NAME, "namespace": NS},
            "spec": {"approvals": [{"hook": "confirm-promotion", "checksum": "c0ffee", "approver": "alice"}]},
        },
        sort_keys=False,
    )
    cases: list[tuple[str, Callable[[], str], str, list[str]]] = [
        ("unsigned", lambda: change(keys.nobody), "signature", ["not signed"]),
        ("SSH key not trusted", lambda: change(keys.mallory), "signature", ["not in the trust roots"]),
        ("GPG key only in a keyring", lambda: change(keys.dave), "signature", ["trust roots"]),
        ("tampered", tampered, "signature", ["bad signature"]),
        ("force push", rewritten, "rewrite", ["rewritten", approved[:12]]),
        ("invalid gate file", lambda: change(keys.alice, text=invalid), "invalid", [GATE_FILE, "approver"]),
    ]
    for what, make, kind, words in cases:
        bad = make()
        approvals.push(force=True)
        refusal = wait_refused(svc, bad)
        assert refusal["kind"] == kind, (what, refusal)
        for word in words:
            assert word in refusal["reason"], (what, word, refusal)
        if kind == "signature":
            assert bad[:12] in refusal["reason"], (what, refusal)
        assert answers(svc, probes) == before, what
        status = svc.status()
        assert (status["verified"]["commit"], status["remote_head"]) == (approved, bad), what
    assert len(svc.status()["refused"]) == len(cases)

    # The same change signed by carol, whose GPG key is a trust root, is taken.
    good = change(keys.carol)
    approvals.push(force=True)
    wait_serving(svc, good)
    after = answers(svc, probes)
    assert [a[0] for a in after] == [403, 200, 200]
    assert {a[2] for a in after} == {good}
    assert "carol@example.test" in svc.status()["verified"]["signer"]


# --- restarts ---------------------------------------------------------------------------------------


def test_restart_answers_from_the_verified_commit_at_once_and_refuses_a_rewritten_remote(
    approvals: Approvals, keys: Keys, serve: Serve
) -> None:
    approvals.gate(NS, NAME, approvals=[{"hook": "confirm-promotion", "checksum": "85d557f47b"}])
    approved = approvals.land("approve promotion", keys.alice)
    svc = serve()
    probes = [("confirm-promotion", "85d557f47b"), ("confirm-rollout", "85d557f47b"), ("rollback", "85d557f47b")]
    before = answers(svc, probes)
    assert [a[0] for a in before] == [200, 403, 403]

    # While it is down, someone rewrites the remote with a validly signed history.
    svc.stop()
    approvals.git("reset", "-q", "--hard", f"{approved}~1")
    approvals.gate(NS, NAME, approvals=[{"hook": "*", "checksum": "*"}])
    rewritten = approvals.commit("open everything", keys.alice)
    approvals.push(force=True)
    svc.start()
    assert answers(svc, probes) == before
    refusal = wait_refused(svc, rewritten)
    assert refusal["kind"] == "rewrite"
    assert "rewritten" in refusal["reason"]
    assert answers(svc, probes) == before
    assert svc.status()["verified"]["commit"] == approved

    # kill -9, and the remote gone: still ready at once, from the state dir alone.
    svc.stop(kill=True)
    gone = approvals.root / "gone.git"
    approvals.remote.rename(gone)
    try:
        svc.start()
        assert answers(svc, probes) == before
        assert requests.get(svc.url + "/readyz", timeout=5).status_code == 200
        assert wait_for(lambda: svc.status()["last_fetch"]["error"], timeout=POLL + MARGIN + 2)
        assert answers(svc, probes) == before
    finally:
        gone.rename(approvals.remote)


# --- --verify all | head | off ----------------------------------------------------------------------


def test_verify_modes(approvals: Approvals, keys: Keys, serve: Serve) -> None:
    approvals.gate(NS, NAME)
    base = approvals.land("podinfo gets a gate", keys.alice)
    head_svc = serve("--verify", "head", state="state-head")
    all_svc = serve("--verify", "all", state="state-all")

    approvals.approve(NS, NAME, "confirm-rollout", "85d557f47b")
    unsigned = approvals.commit("approval committed without a signature", keys.nobody)
    approvals.write("README.md", "approvals, signed on top\n")
    signed = approvals.land("a signed commit on top", keys.alice)

    wait_serving(head_svc, signed)
    assert head_svc.check("confirm-rollout", NS, NAME, "85d557f47b").status_code == 200
    refusal = wait_refused(all_svc, signed)
    assert refusal["kind"] == "signature"
    assert unsigned[:12] in refusal["reason"] and "not signed" in refusal["reason"]
    closed = all_svc.check("confirm-rollout", NS, NAME, "85d557f47b")
    assert (closed.status_code, closed.headers["X-Gitgate-Commit"]) == (403, base)

    off_svc = serve("--verify", "off", state="state-off", trust_ssh=False)
    assert off_svc.check("confirm-rollout", NS, NAME, "85d557f47b").status_code == 200
    denied = off_svc.check("confirm-promotion", NS, NAME, "85d557f47b")
    assert denied.status_code == 403
    assert "UNVERIFIED" in denied.text
    status = off_svc.status()
    assert status["verify"] == "off"
    assert "UNVERIFIED" in status["trust"]
    assert status["verified"]["signer"] == "UNVERIFIED"
    assert "UNVERIFIED" in requests.get(off_svc.url + "/", timeout=5).text
    assert "UNVERIFIED" not in all_svc.check("confirm-promotion", NS, NAME, "x").text

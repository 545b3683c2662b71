"""The answer: a pure function of (snapshot, request, now). SPEC §1, rule by rule."""

from __future__ import annotations

from datetime import datetime

from gitgate.freeze import in_force
from gitgate.model import CheckRequest, Decision, Default, Gate, Hook, Snapshot
from gitgate.timeutil import format_timestamp


def _what(request: CheckRequest) -> str:
    checksum = request.checksum if request.checksum is not None else "none sent"
    hook = "gate" if request.hook is Hook.ANY else request.hook.value
    return f"{hook} of {request.canary} (checksum {checksum})"


def decide(
    snapshot: Snapshot | None,
    request: CheckRequest,
    now: datetime,
    *,
    request_url: str | None = None,
) -> Decision:
    """Open or closed, and why, in one line that names the canary, hook, checksum and commit.

    `request_url` is where a person approves (the open approval request), when one is known.
    """
    what = _what(request)
    if snapshot is None:
        return Decision(False, f"{what} is closed: not ready, no verified commit of the approvals repo yet", "")

    short = snapshot.commit[:12]
    unverified = "" if snapshot.verified else " UNVERIFIED"
    at = f"at{unverified} commit {short}"
    gate: Gate | None = snapshot.gates.get(request.canary)
    path = snapshot.gate_path(request.canary)

    # 2. Freeze windows close every confirm-* hook; rollback is never frozen.
    if request.hook.is_confirm:
        windows = [w for p in snapshot.policies for w in p.freeze]
        if gate is not None:
            windows = list(gate.freeze) + windows
        frozen = in_force(windows, now)
        if frozen is not None:
            window, end = frozen
            reason = f": {window.reason}" if window.reason else ""
            return Decision(
                False,
                f"{what} is closed: frozen until {format_timestamp(end)}{reason} ({window.source}, {at})",
                snapshot.commit,
                frozen_until=end,
            )

    # 3. A live approval for this hook (or "*") and this checksum (or "*") opens the gate.
    if gate is not None:
        for approval in gate.approvals:
            if approval.matches(request.hook, request.checksum) and approval.live(now):
                line = f":{approval.line}" if approval.line else ""
                return Decision(
                    True,
                    f"{what} is open: approved in {path}{line} {at}",
                    snapshot.commit,
                    approval=approval,
                )

    # 4. Otherwise the default: the gate's, else the policy's, else closed. Rollback is closed.
    if request.hook.is_confirm:
        default, source = _default(snapshot, gate)
        if default is Default.OPEN:
            return Decision(True, f"{what} is open: default open in {source} {at}", snapshot.commit)

    where = f"merge {request_url}" if request_url else f"add an approval to {path}"
    expired = ""
    if gate is not None and any(a.matches(request.hook, request.checksum) and not a.live(now) for a in gate.approvals):
        expired = "its approval expired; "
    missing = f"no gate file {path}" if gate is None else "no approval for this hook and checksum"
    return Decision(
        False,
        f"{what} is closed: {expired or missing + '; '}{at}; to approve, {where}",
        snapshot.commit,
    )


def _default(snapshot: Snapshot, gate: Gate | None) -> tuple[Default, str]:
    if gate is not None and gate.default is not None:
        return gate.default, gate.path
    for policy in snapshot.policies:
        if policy.default is not None:
            return policy.default, policy.path
    return Default.CLOSED, "built-in"

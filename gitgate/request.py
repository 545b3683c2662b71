"""An approval request: what it is called, what it says, and the one-file change it makes. Pure.

The same (namespace, name, hook, checksum) always gives the same branch, title and change, so any
number of callers (replicas, clusters, CI jobs) converge on one request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import yaml

from gitgate.model import ANY, CanaryRef, Hook, gate_file_path
from gitgate.schema import API_VERSION
from gitgate.timeutil import format_duration, format_timestamp, parse_timestamp

BRANCH_PREFIX = "gitgate/"


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """Everything a request is made from. `hook` may be Hook.ANY (the load tester's one gate)."""

    canary: CanaryRef
    hook: Hook
    checksum: str
    phase: str | None = None
    message: str | None = None  # Flagger's last message about the canary
    waiting_since: datetime | None = None
    expires_in: timedelta | None = None
    reviewers: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    revoke: bool = False  # a revocation request (/gate/close, /rollback/close)

    @property
    def hook_word(self) -> str:
        return "any" if self.hook is Hook.ANY else self.hook.value


@dataclass(frozen=True, slots=True)
class RequestRef:
    """A request as a forge knows it."""

    url: str
    number: int
    branch: str
    created: bool  # False when an open request for the same branch already existed


def branch_name(spec: RequestSpec) -> str:
    kind = "revoke/" if spec.revoke else ""
    return f"{BRANCH_PREFIX}{kind}{spec.canary.namespace}/{spec.canary.name}/{spec.hook_word}/{spec.checksum}"


def dispatch_fields(spec: RequestSpec) -> dict[str, str]:
    """What a dispatched workflow needs to run `gitgate request` for `spec` (all strings: GitHub's
    client_payload and GitLab's pipeline variables carry the same fields)."""
    return {
        "namespace": spec.canary.namespace,
        "name": spec.canary.name,
        "hook": spec.hook.value,
        "checksum": spec.checksum,
        "phase": spec.phase or "",
        "message": spec.message or "",
        "expires_in": format_duration(spec.expires_in) if spec.expires_in else "",
        "reviewers": ",".join(spec.reviewers),
        "labels": ",".join(spec.labels),
    }


def gate_file(spec: RequestSpec, gates_path: str) -> str:
    return gate_file_path(gates_path, spec.canary)


def title(spec: RequestSpec) -> str:
    verb = "Revoke" if spec.revoke else "Approve"
    return f"{verb} {spec.hook_word} of {spec.canary} ({spec.checksum})"


def body(spec: RequestSpec, gates_path: str, now: datetime) -> str:
    file = gate_file(spec, gates_path)
    hook = spec.hook_word
    lines = []
    if spec.revoke:
        lines.append(
            f"Merging this removes every approval of `{hook}` for `{spec.canary}` from `{file}`: "
            "the gate closes at the next check after gitgate verifies the merge."
        )
    else:
        expiry = ""
        if spec.expires_in is not None:
            expiry = f", until {format_timestamp(now + spec.expires_in)}"
        lines.append(
            f"Merging this opens the `{hook}` gate of the Flagger canary `{spec.canary}` for revision "
            f"`{spec.checksum}`{expiry}: gitgate answers 200 at Flagger's next check after it has "
            "verified the merge commit."
        )
    lines += [
        "",
        "| | |",
        "|---|---|",
        f"| canary | `{spec.canary}` |",
        f"| hook | `{hook}` |",
        f"| checksum | `{spec.checksum}` |",
        f"| phase | {spec.phase or 'unknown'} |",
        f"| waiting since | {format_timestamp(spec.waiting_since) if spec.waiting_since else 'unknown'} |",
        f"| Flagger's last message | {_cell(spec.message) if spec.message else 'none yet'} |",
        f"| file | `{file}` |",
    ]
    if spec.hook is Hook.CONFIRM_ROLLOUT and not spec.revoke:
        lines += [
            "",
            "Note: Flagger sends `confirm-rollout` with the checksum of the revision that is already "
            "running, not of the one waiting to roll out. This approval lets whatever comes after "
            f"`{spec.checksum}` start its analysis; approve `confirm-promotion` to bind a release to "
            "its exact revision.",
        ]
    if not spec.revoke:
        lines += [
            "",
            f"To revoke after merging: remove the approval from `{file}` in a new change (or call "
            "`/gate/close` with the admin token), and the gate closes at the next check.",
        ]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:500]


def change(current: bytes | None, spec: RequestSpec, now: datetime, *, request_url: str | None = None) -> bytes:
    """The gate file after the request is merged.

    Approve: add the approval (creating the file if needed), and drop this hook's expired approvals
    and its approvals bound to other checksums. Revoke: drop every approval of this hook. Other
    hooks' approvals, `default` and `freeze` are kept as they are.
    """
    doc: dict[str, Any]
    if current is None:
        doc = {
            "apiVersion": API_VERSION,
            "kind": "Gate",
            "metadata": {"name": spec.canary.name, "namespace": spec.canary.namespace},
            "spec": {},
        }
    else:
        loaded = yaml.safe_load(current)
        doc = loaded if isinstance(loaded, dict) else {}
        doc.setdefault("spec", {})
        if doc["spec"] is None:
            doc["spec"] = {}
    hook = ANY if spec.hook is Hook.ANY else spec.hook.value
    kept = []
    for item in doc["spec"].get("approvals") or []:
        if not isinstance(item, dict) or item.get("hook") != hook:
            kept.append(item)
            continue
        if spec.revoke:
            continue
        if item.get("checksum") != spec.checksum or _expired(item.get("expires"), now):
            continue
        kept.append(item)
    if not spec.revoke:
        approval: dict[str, Any] = {"hook": hook, "checksum": spec.checksum}
        if spec.expires_in is not None:
            approval["expires"] = format_timestamp(now + spec.expires_in)
        if request_url:
            approval["request"] = request_url
        kept = [
            a
            for a in kept
            if not (isinstance(a, dict) and a.get("hook") == hook and a.get("checksum") == spec.checksum)
        ]
        kept.append(approval)
    doc["spec"]["approvals"] = kept
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True).encode()


def _expired(value: object, now: datetime) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return parse_timestamp(value) <= now
    except ValueError:
        return True

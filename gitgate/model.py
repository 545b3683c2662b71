"""Frozen domain values: hooks, approvals, freeze windows, gates, policies, snapshots, answers."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple


class Hook(enum.StrEnum):
    CONFIRM_ROLLOUT = "confirm-rollout"
    CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"
    CONFIRM_PROMOTION = "confirm-promotion"
    ROLLBACK = "rollback"
    ANY = "*"  # the load tester's one gate per canary (`/gate/check` with no metadata.hook)

    @property
    def is_confirm(self) -> bool:
        return self is not Hook.ROLLBACK


ANY = "*"
GATE_HOOKS = tuple(h.value for h in Hook)


class Default(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class CanaryRef(NamedTuple):  # a tuple: made and hashed once per check, and per gate of a build
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def gate_file_path(gates_path: str, canary: CanaryRef) -> str:
    """Where a canary's gate file lives in the approvals repo (`gates_path` "" is the repo root)."""
    return f"{gates_path}/{canary.namespace}/{canary.name}.yaml" if gates_path else f"{canary}.yaml"


@dataclass(frozen=True, slots=True)
class Approval:
    hook: str  # a Hook value or "*"
    checksum: str  # a Flagger checksum or "*"
    expires: datetime | None = None
    request: str | None = None
    note: str | None = None
    line: int | None = None  # where it stands in its file, for answers a person reads

    def matches(self, hook: Hook, checksum: str | None) -> bool:
        # "*" is every confirm-* hook, never rollback: a 2xx there makes Flagger roll back, and the
        # load tester keeps its rollback flag apart from the gate. Rollback needs `hook: rollback`.
        hook_ok = self.hook == hook.value or (self.hook == ANY and hook.is_confirm)
        sum_ok = self.checksum == ANY or (checksum is not None and self.checksum == checksum)
        return hook_ok and sum_ok

    def live(self, now: datetime) -> bool:
        return self.expires is None or now < self.expires


@dataclass(frozen=True, slots=True)
class FreezeWindow:
    start: str  # cron expression, evaluated in `timezone`
    duration: timedelta
    timezone: str = "UTC"
    reason: str | None = None
    source: str = ""  # file:line, for answers a person reads


@dataclass(frozen=True, slots=True)
class Gate:
    canary: CanaryRef
    path: str
    default: Default | None = None
    approvals: tuple[Approval, ...] = ()
    freeze: tuple[FreezeWindow, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    path: str
    default: Default | None = None
    freeze: tuple[FreezeWindow, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the answer needs from one verified commit."""

    commit: str
    gates_path: str  # e.g. "gates" or "clusters/prod/gates"
    gates: Mapping[CanaryRef, Gate] = field(default_factory=dict)
    policies: tuple[Policy, ...] = ()  # nearest first: beside the gates folder, then the root
    verified: bool = True  # False only under --verify off

    def gate_path(self, canary: CanaryRef) -> str:
        return gate_file_path(self.gates_path, canary)


@dataclass(frozen=True, slots=True)
class CheckRequest:
    canary: CanaryRef
    hook: Hook
    checksum: str | None
    phase: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    open: bool
    reason: str
    commit: str  # "" when no snapshot
    frozen_until: datetime | None = None
    approval: Approval | None = None

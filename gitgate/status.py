"""What the status endpoint and page show: the last check per canary and hook, Flagger's recent
events, and a description of every gate with its current answers. Built on request from the
served snapshot; nothing here is on the check path but `RecentChecks.record`."""

from __future__ import annotations

import collections
import html
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from gitgate.decide import decide
from gitgate.freeze import in_force
from gitgate.model import CanaryRef, CheckRequest, Hook, Snapshot
from gitgate.timeutil import format_timestamp

RECENT_CHECKS = 10_000


class GateSource(Protocol):
    """What the service reads: the served snapshot and the reconciler's account of itself."""

    snapshot: Snapshot | None

    def status(self) -> dict[str, Any]: ...

    def trigger(self) -> None: ...


@dataclass(frozen=True)
class LastCheck:
    checksum: str | None
    phase: str | None
    open: bool
    at: datetime


@dataclass(frozen=True)
class Event:
    at: datetime
    type: str
    message: str
    phase: str | None
    checksum: str | None


class EventLog:
    """Flagger's recent events per canary: bounded per canary and in canaries."""

    def __init__(self, per_canary: int = 20, canaries: int = 2_000) -> None:
        self._items: collections.OrderedDict[CanaryRef, collections.deque[Event]] = collections.OrderedDict()
        self._per = per_canary
        self._max = canaries
        self._lock = threading.Lock()

    def record(self, canary: CanaryRef, event: Event) -> None:
        with self._lock:
            log = self._items.setdefault(canary, collections.deque(maxlen=self._per))
            log.append(event)
            self._items.move_to_end(canary)
            if len(self._items) > self._max:
                self._items.popitem(last=False)

    def last_message(self, canary: CanaryRef) -> str | None:
        log = self._items.get(canary)
        return log[-1].message if log else None

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            items = [(c, list(log)) for c, log in self._items.items()]
        return [
            {
                "canary": str(c),
                "at": format_timestamp(e.at),
                "type": e.type,
                "message": e.message,
                "phase": e.phase,
                "checksum": e.checksum,
            }
            for c, log in items
            for e in log
        ]


def ts_from_ms(value: str | None, fallback: datetime) -> datetime:
    """Flagger's metadata.timestamp: Unix milliseconds as a string."""
    try:
        return datetime.fromtimestamp(int(value or "") / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return fallback


class RecentChecks:
    """What Flagger last asked per (canary, hook): bounded, for the status endpoint."""

    def __init__(self, limit: int = RECENT_CHECKS) -> None:
        self._items: collections.OrderedDict[tuple[CanaryRef, Hook], LastCheck] = collections.OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def record(self, canary: CanaryRef, hook: Hook, item: LastCheck) -> None:
        with self._lock:
            self._items[(canary, hook)] = item
            self._items.move_to_end((canary, hook))
            if len(self._items) > self._limit:
                self._items.popitem(last=False)

    def items(self) -> list[tuple[tuple[CanaryRef, Hook], LastCheck]]:
        with self._lock:
            return list(self._items.items())


def commit_of(snap: Snapshot | None) -> str:
    return snap.commit if snap else ""


def build_status(source: GateSource, recent: RecentChecks, now: datetime) -> dict[str, Any]:
    snap = source.snapshot
    out = source.status()
    out["now"] = format_timestamp(now)
    out["serving"] = commit_of(snap)
    gates: dict[CanaryRef, dict[str, Any]] = {}
    if snap is not None:
        for canary, gate in sorted(snap.gates.items(), key=lambda kv: (kv[0].namespace, kv[0].name)):
            windows = list(gate.freeze) + [w for p in snap.policies for w in p.freeze]
            frozen = in_force(windows, now)
            gates[canary] = {
                "namespace": canary.namespace,
                "name": canary.name,
                "file": gate.path,
                "default": (gate.default or next((p.default for p in snap.policies if p.default), None) or "closed"),
                "frozen_until": format_timestamp(frozen[1]) if frozen else None,
                "approvals": [
                    {
                        "hook": a.hook,
                        "checksum": a.checksum,
                        "expires": format_timestamp(a.expires) if a.expires else None,
                        "live": a.live(now),
                        "request": a.request,
                        "note": a.note,
                    }
                    for a in gate.approvals
                ],
                "checks": {},
            }
    for (canary, hook), last in recent.items():
        entry = gates.setdefault(
            canary, {"namespace": canary.namespace, "name": canary.name, "file": None, "approvals": [], "checks": {}}
        )
        now_decision = decide(snap, CheckRequest(canary, hook, last.checksum, last.phase), now)
        entry["checks"][hook.value] = {
            "checksum": last.checksum,
            "phase": last.phase,
            "asked_at": format_timestamp(last.at),
            "open": now_decision.open,
            "reason": now_decision.reason,
        }
    out["gates"] = list(gates.values())
    return out


def render_page(status: dict[str, Any]) -> str:
    e = html.escape
    v = status.get("verified") or {}
    mode = "UNVERIFIED" if status["verify"] == "off" else f"verify {status['verify']}"
    rows = []
    for g in status["gates"]:
        checks = (
            "<br>".join(
                f"{e(h)}: <b class={'open' if c['open'] else 'closed'}>{'open' if c['open'] else 'closed'}</b> "
                f"<small>{e(c['reason'])}</small>"
                for h, c in g["checks"].items()
            )
            or "<small>not checked yet</small>"
        )
        approvals = (
            "<br>".join(
                f"{e(a['hook'])} @ {e(a['checksum'])}" + ("" if a["live"] else " (expired)") for a in g["approvals"]
            )
            or "none"
        )
        rows.append(
            f"<tr><td>{e(g['namespace'])}/{e(g['name'])}</td><td>{approvals}</td>"
            f"<td>{e(g.get('frozen_until') or '')}</td><td>{checks}</td></tr>"
        )
    refused = (
        "".join(
            f"<li><code>{e(r['commit'][:12])}</code> {e(r['reason'])} <small>{e(r['at'])}</small></li>"
            for r in status["refused"]
        )
        or "<li>none</li>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>gitgate</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}}
.open{{color:#080}}.closed{{color:#b00}}</style></head><body>
<h1>gitgate</h1>
<p>{e(status["repo"])} <b>{e(status["branch"])}</b> &middot; {e(mode)} &middot;
{"ready" if status["ready"] else "<b class=closed>not ready</b>"}</p>
<p>Answering from <code>{e(v.get("commit", "") or "nothing yet")}</code> signed by {e(v.get("signer", "") or "-")}
(committed {e(v.get("committed_at", "") or "-")})</p>
<h2>Refused commits</h2><ul>{refused}</ul>
<h2>Canaries</h2><table><tr><th>canary</th><th>approvals</th><th>frozen until</th><th>last checks</th></tr>
{"".join(rows)}</table></body></html>"""

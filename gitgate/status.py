"""What the status endpoint and page show: the last check per canary and hook, Flagger's recent
events, and a description of every gate with its current answers. Built on request from the
served snapshot; nothing here is on the check path but `RecentChecks.record`."""

from __future__ import annotations

import collections
import html
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from gitgate.decide import decide
from gitgate.freeze import in_force
from gitgate.model import CanaryRef, CheckRequest, Gate, Hook, Snapshot
from gitgate.timeutil import format_timestamp, parse_timestamp

RECENT_CHECKS = 10_000


class GateSource(Protocol):
    """What the service reads: the served snapshot and the reconciler's account of itself."""

    snapshot: Snapshot | None

    def status(self) -> dict[str, Any]: ...

    def trigger(self) -> None: ...


class LastCheck(NamedTuple):
    """What Flagger last asked of one gate. RecentChecks keeps it as an exact tuple of plain values,
    which the garbage collector stops tracking: one is made per check and lives until that gate is
    asked again, and as tracked objects they made the collector's full passes (tens of
    milliseconds with every thread stopped) come several times a minute under load."""

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
        self._items: collections.OrderedDict[tuple[CanaryRef, Hook], tuple[str | None, str | None, bool, datetime]]
        self._items = collections.OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def record(self, canary: CanaryRef, hook: Hook, item: LastCheck) -> None:
        plain = (item.checksum, item.phase, item.open, item.at)  # an exact tuple: the collector untracks it
        with self._lock:
            self._items[(canary, hook)] = plain
            self._items.move_to_end((canary, hook))
            if len(self._items) > self._limit:
                self._items.popitem(last=False)

    def items(self) -> list[tuple[tuple[CanaryRef, Hook], LastCheck]]:
        with self._lock:
            return [(key, LastCheck._make(value)) for key, value in self._items.items()]


def commit_of(snap: Snapshot | None) -> str:
    return snap.commit if snap else ""


PAGE_GATES = 200  # canaries on the status page; the rest are in /api/v1/status
STATUS_GATES = 1000  # canaries in /api/v1/status unless ?limit= says otherwise
PAGE_EVENTS = 30
PAGE_REFRESH = 20  # seconds


def _gate_entry(snap: Snapshot, canary: CanaryRef, gate: Gate, now: datetime) -> dict[str, Any]:
    windows = list(gate.freeze) + [w for p in snap.policies for w in p.freeze]
    frozen = in_force(windows, now)
    return {
        "namespace": canary.namespace,
        "name": canary.name,
        "file": gate.path,
        "default": (gate.default or next((p.default for p in snap.policies if p.default), None) or "closed"),
        "frozen_until": format_timestamp(frozen[1]) if frozen else None,
        "frozen_reason": (frozen[0].reason or "") if frozen else None,
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


def _bare_entry(canary: CanaryRef) -> dict[str, Any]:
    return {"namespace": canary.namespace, "name": canary.name, "file": None, "approvals": [], "checks": {}}


def _pick(
    snap: Snapshot | None, checks: list[tuple[tuple[CanaryRef, Hook], LastCheck]], now: datetime, limit: int
) -> tuple[list[CanaryRef], int]:
    """The canaries that matter first: asked about by Flagger (newest first), then gates with a
    live approval, then the rest by name; at most `limit`, and how many there are in all."""
    gates = snap.gates if snap is not None else {}
    if limit == 0:  # only the count (e.g. a monitor reading the rest of the status)
        return [], len(gates) + len({c for (c, _hook), _last in checks if c not in gates})
    chosen: dict[CanaryRef, None] = {}
    for (canary, _hook), _last in sorted(checks, key=lambda kv: kv[1].at, reverse=True):
        chosen.setdefault(canary, None)
    total = len(gates) + sum(1 for c in chosen if c not in gates)
    if len(chosen) < limit and snap is not None:
        by_name = _by_name(snap)
        for canary in by_name:  # those with a live approval first, as far as the page needs
            if len(chosen) >= limit:
                break
            if canary not in chosen and any(a.live(now) for a in gates[canary].approvals):
                chosen[canary] = None
        for canary in by_name:
            if len(chosen) >= limit:
                break
            chosen.setdefault(canary, None)
    return list(chosen)[:limit], total


_SORTED: list[tuple[Any, list[CanaryRef]]] = [(None, [])]  # (gates, their canaries sorted), swapped whole


def _by_name(snap: Snapshot) -> list[CanaryRef]:
    """The snapshot's canaries by name, sorted once per snapshot (100,000 take a tenth of a second)."""
    gates, names = _SORTED[0]
    if gates is not snap.gates:
        names = sorted(snap.gates, key=lambda c: (c.namespace, c.name))
        _SORTED[0] = (snap.gates, names)
    return names


def build_status(source: GateSource, recent: RecentChecks, now: datetime, limit: int | None = None) -> dict[str, Any]:
    """Everything, or with `limit` (the page) only the canaries that matter first, plus
    `gates_total`: the cost then no longer grows with the number of gates in the repo."""
    snap = source.snapshot
    out = source.status()
    out["now"] = format_timestamp(now)
    out["serving"] = commit_of(snap)
    checks = recent.items()
    gates: dict[CanaryRef, dict[str, Any]] = {}
    if limit is not None:
        chosen, out["gates_total"] = _pick(snap, checks, now, limit)
        for canary in chosen:
            gate = snap.gates.get(canary) if snap is not None else None
            gates[canary] = _gate_entry(snap, canary, gate, now) if snap and gate else _bare_entry(canary)
    elif snap is not None:
        for canary, gate in sorted(snap.gates.items(), key=lambda kv: (kv[0].namespace, kv[0].name)):
            gates[canary] = _gate_entry(snap, canary, gate, now)
    for (canary, hook), last in checks:
        if limit is not None and canary not in gates:
            continue
        entry = gates.setdefault(canary, _bare_entry(canary))
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


def _when(text: str | None) -> datetime | None:
    try:
        return parse_timestamp(text) if text else None
    except ValueError:
        return None


def in_words(then: datetime | None, now: datetime | None) -> str:
    """'3 hours ago', 'in 7 hours', 'just now'; '' when either is unknown."""
    if then is None or now is None:
        return ""
    seconds = int((now - then).total_seconds())
    span = abs(seconds)
    if span < 60:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if span >= size:
            count = span // size
            words = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"{words} ago" if seconds > 0 else f"in {words}"
    return ""  # pragma: no cover


def _link(url: str | None, text: str | None = None) -> str:
    if not url:
        return ""
    safe = url if url.startswith(("https://", "http://")) else None
    label = html.escape(text or url)
    return f'<a href="{html.escape(safe)}">{label}</a>' if safe else label


def _stamp(text: str | None, now: datetime | None) -> str:
    """A timestamp as a person reads it: words, with the exact time on hover."""
    if not text:
        return "-"
    words = in_words(_when(text), now) or text
    return f'<time datetime="{html.escape(text)}" title="{html.escape(text)}">{html.escape(words)}</time>'


def _answer(is_open: bool) -> str:
    return '<b class="open">open</b>' if is_open else '<b class="closed">closed</b>'


def _request_for(status_requests: dict[tuple[str, str], str], gate: dict[str, Any], hook: str) -> str | None:
    """The link a person follows to approve this hook: an open request, else the approval's."""
    url = status_requests.get((f"{gate['namespace']}/{gate['name']}", hook))
    if url:
        return url
    return next((a["request"] for a in gate["approvals"] if a["request"] and a["hook"] in (hook, "*")), None)


STYLE = """body{font:15px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:72em;padding:0 1em;color:#222}
h1{margin:0 0 .2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%}
td,th{border:1px solid #ddd;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f4f4f4}.open{color:#075e07}.closed{color:#a00}.muted{color:#666}
.banner{padding:.7em 1em;margin:.6em 0;font-weight:bold;border-radius:4px}
.warn{background:#fff2cc;border:2px solid #c90}.bad{background:#fde2e2;border:2px solid #a00}
code{font-size:92%}small{color:#555}"""


def render_page(status: dict[str, Any]) -> str:
    """The status page a person reads: server-rendered, no scripts, refreshing itself."""
    e = html.escape
    now = _when(status.get("now"))
    v = status.get("verified") or {}
    gates: list[dict[str, Any]] = status.get("gates") or []
    parts: list[str] = []
    add = parts.append

    add(f"<h1>gitgate</h1><p>{e(status.get('repo') or '')} <b>{e(status.get('branch') or '')}</b>")
    add(f" &middot; verify {e(status.get('verify') or '')} &middot; as of {e(status.get('now') or '')}</p>")
    if status.get("verify") == "off":
        add(
            '<p class="banner warn" id="unverified">UNVERIFIED: started with --verify off. Commits are served '
            "without checking their signatures; anyone who can push to the branch can open gates.</p>"
        )
    if not status.get("ready"):
        add(
            '<p class="banner bad" id="not-ready">NOT READY: not ready, no verified commit yet. '
            "Every check answers closed until one is.</p>"
        )

    add('<h2>Answering from</h2><section id="commit">')
    if v.get("commit"):
        kind = "unverified commit" if status.get("verify") == "off" else "verified commit"
        add(f"<p>{kind} <code>{e(v['commit'])}</code>")
        if v.get("signer"):
            add(f", signed by <b>{e(v['signer'])}</b>")
        if v.get("committed_at"):
            add(f", committed {_stamp(v['committed_at'], now)}")
        add("</p>")
        serving = status.get("serving")
        if serving and serving != v["commit"]:
            add(f"<p>Serving <code>{e(serving)}</code> until the verified commit is loaded.</p>")
    else:
        add('<p class="muted">nothing yet</p>')
    fetch = status.get("last_fetch") or {}
    if fetch.get("at"):
        add(f"<p><small>last fetch {_stamp(fetch['at'], now)}")
        if fetch.get("error"):
            add(f' &middot; <span class="closed">failed: {e(fetch["error"])}</span>')
        add("</small></p>")
    add("</section>")

    add('<h2>Refused commits</h2><section id="refused">')
    refused = status.get("refused") or []
    if refused:
        add("<ul>")
        for r in refused:
            kind = f" ({e(r['kind'])})" if r.get("kind") else ""
            add(
                f"<li><code>{e(r['commit'][:12])}</code>{kind}: {e(r['reason'])} "
                f"<small>{_stamp(r.get('at'), now)}</small></li>"
            )
        add("</ul>")
    else:
        add('<p class="muted">none</p>')
    add("</section>")

    add('<h2>Freezes in force</h2><section id="freezes">')
    # One line per freeze: a policy-wide window freezes every gate at once.
    frozen: dict[tuple[str, str], list[str]] = {}
    for g in gates:
        if g.get("frozen_until"):
            frozen.setdefault((g["frozen_until"], g.get("frozen_reason") or ""), []).append(
                f"{g['namespace']}/{g['name']}"
            )
    if frozen:
        add("<ul>")
        for (until, why), names in sorted(frozen.items()):
            reason = f": {e(why)}" if why else ""
            who = e(names[0]) if len(names) == 1 else f"{len(names)} canaries"
            add(f"<li><b>{who}</b> frozen until {e(until)} ({_stamp(until, now)}){reason}")
            if len(names) > 1:
                more = f" and {len(names) - 20} more" if len(names) > 20 else ""
                add(f"<br><small>{e(', '.join(names[:20]))}{more}</small>")
            add("</li>")
        add("</ul>")
    else:
        add('<p class="muted">none</p>')
    add("</section>")

    requests: list[dict[str, Any]] = status.get("requests") or []
    open_urls = {(r["canary"], r["hook"]): r["url"] for r in requests if r.get("url")}

    add('<h2>Asked by Flagger recently</h2><section id="asked">')
    asked = [g for g in gates if g["checks"]]
    asked.sort(key=lambda g: max(c["asked_at"] for c in g["checks"].values()), reverse=True)
    if asked:
        add("<table><tr><th>canary</th><th>hook</th><th>answer now</th><th>why</th><th>asked</th><th>request</th></tr>")
        for g in asked:
            name = f"{e(g['namespace'])}/{e(g['name'])}"
            for hook, c in sorted(g["checks"].items()):
                link = _link(_request_for(open_urls, g, hook))
                add(
                    f'<tr class="check"><td>{name}</td><td>{e(hook)}</td><td>{_answer(c["open"])}</td>'
                    f"<td><small>{e(c['reason'])}</small></td><td>{_stamp(c['asked_at'], now)}<br>"
                    f"<small>{e(c.get('phase') or '')} {e(c.get('checksum') or '')}</small></td><td>{link}</td></tr>"
                )
        add("</table>")
    else:
        add('<p class="muted">Flagger has not asked since this process started.</p>')
    add("</section>")

    add('<h2>Gates with live approvals</h2><section id="approved">')
    approved = [(g, [a for a in g["approvals"] if a["live"]]) for g in gates]
    approved = [(g, live) for g, live in approved if live]
    if approved:
        add("<table><tr><th>canary</th><th>hook</th><th>checksum</th><th>expires</th><th>request</th></tr>")
        for g, live in approved:
            for a in live:
                note = f"<br><small>{e(a['note'])}</small>" if a.get("note") else ""
                expires = _stamp(a["expires"], now) if a.get("expires") else "never"
                add(
                    f"<tr><td>{e(g['namespace'])}/{e(g['name'])}</td><td>{e(a['hook'])}</td>"
                    f"<td><code>{e(a['checksum'])}</code>{note}</td><td>{expires}</td>"
                    f"<td>{_link(a.get('request'))}</td></tr>"
                )
        add("</table>")
    else:
        add('<p class="muted">none</p>')
    add("</section>")

    total = status.get("gates_total")
    if isinstance(total, int) and total > len(gates):
        add(
            f'<p id="more"><b>{total - len(gates)} more</b> canaries not shown; '
            'see <a href="/api/v1/status">/api/v1/status</a>.</p>'
        )

    add('<h2>Open requests</h2><section id="requests">')
    if requests:
        add("<table><tr><th>canary</th><th>hook</th><th>checksum</th><th>state</th><th>request</th></tr>")
        for r in sorted(requests, key=lambda r: r.get("state") == "failed")[:PAGE_GATES]:
            err = f"<br><small class=closed>{e(r['error'])}</small>" if r.get("error") else ""
            add(
                f"<tr><td>{e(r['canary'])}</td><td>{e(r['hook'])}</td>"
                f"<td><code>{e(r.get('checksum') or '')}</code></td>"
                f"<td>{e(r['state'])}{err}</td><td>{_link(r.get('url'))}</td></tr>"
            )
        add("</table>")
    else:
        add('<p class="muted">none</p>')
    add("</section>")

    add('<h2>Recent Flagger events</h2><section id="events">')
    events = sorted(status.get("events") or [], key=lambda ev: ev["at"], reverse=True)[:PAGE_EVENTS]
    if events:
        add("<ul>")
        for ev in events:
            add(
                f"<li>{_stamp(ev['at'], now)} <b>{e(ev['canary'])}</b> {e(ev.get('phase') or '')} "
                f"<small>{e(ev.get('type') or '')}</small>: {e(ev['message'])}</li>"
            )
        add("</ul>")
    else:
        add('<p class="muted">none</p>')
    add("</section>")

    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{PAGE_REFRESH}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>gitgate{' - NOT READY' if not status.get('ready') else ''}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(parts)}</body></html>"
    )

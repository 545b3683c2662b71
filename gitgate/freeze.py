"""Freeze windows: is a cron-started window in force at a given moment, and until when. Pure."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from gitgate.model import FreezeWindow

# A chain of back-to-back windows is followed this far when saying "frozen until"; past it the
# end given is a lower bound (the gate is closed at least until then, and still closed after it
# if the chain goes on: the next check computes it again).
_CHAIN_LIMIT = 500
_CACHE_LIMIT = 4096
_PROBE = datetime(2000, 1, 1, tzinfo=ZoneInfo("UTC"))


def validate_cron(expr: str) -> str:
    """'' if `expr` is a usable 5-field cron expression, else why not."""
    if len(expr.split()) != 5:
        return f"{expr!r} is not a cron expression with 5 fields (minute hour day month weekday)"
    try:
        next(CronSim(expr, _PROBE))
    except CronSimError as e:
        return f"{expr!r} is not a valid cron expression: {e}"
    except StopIteration:
        return f"{expr!r} never fires"
    return ""


@lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _last_start(window: FreezeWindow, now: datetime) -> datetime | None:
    """The latest start of `window` at or before `now` (starts fall on whole minutes)."""
    local = now.astimezone(_zone(window.timezone))
    probe = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    try:
        start: datetime = next(CronSim(window.start, probe, reverse=True))
        return start
    except StopIteration:
        return None


def active_until(window: FreezeWindow, now: datetime) -> datetime | None:
    """When the window in force at `now` ends (following back-to-back windows), or None."""
    start = _last_start(window, now)
    if start is None:
        return None
    # Durations are elapsed time: a 63h window is 63 hours long across a DST change too.
    end = start.astimezone(UTC) + window.duration
    if now >= end:
        return None
    upcoming = CronSim(window.start, start)
    for _ in range(_CHAIN_LIMIT):
        nxt = next(upcoming, None)
        if nxt is None or nxt > end:
            break
        end = max(end, nxt.astimezone(UTC) + window.duration)
    return end


Frozen = tuple[FreezeWindow, datetime] | None

# in_force's answer is a step function of time: it holds until the freeze ends or any window
# starts, whichever comes first. Keeping each answer with the span it holds for makes a
# check cost a dict look-up, however long the chain behind "frozen until" is.
_spans: dict[tuple[FreezeWindow, ...], tuple[datetime, datetime, Frozen]] = {}


def in_force(windows: Iterable[FreezeWindow], now: datetime) -> Frozen:
    """The window in force at `now` that ends last, and when the freeze ends; None if none is."""
    key = tuple(windows)
    if not key:
        return None
    span = _spans.get(key)
    if span is not None and span[0] <= now < span[1]:
        return span[2]
    result = compute_in_force(key, now)
    # The answer (which window, until when) can only change when a freeze ends or a window starts.
    until = _next_start(key, now)
    if result is not None:
        until = result[1] if until is None else min(until, result[1])
    if until is not None:
        if len(_spans) >= _CACHE_LIMIT:
            _spans.clear()
        _spans[key] = (now, until, result)
    return result


def _next_start(windows: tuple[FreezeWindow, ...], now: datetime) -> datetime | None:
    starts = []
    for w in windows:
        nxt = next(CronSim(w.start, now.astimezone(_zone(w.timezone))), None)
        if nxt is not None:
            starts.append(nxt.astimezone(UTC))
    return min(starts, default=None)


def compute_in_force(windows: Iterable[FreezeWindow], now: datetime) -> Frozen:
    """The window in force at `now` that ends last, and when the freeze ends (other windows that
    start before it ends, back to back or overlapping, extend it); None if none is in force."""
    windows = list(windows)
    best: tuple[FreezeWindow, datetime] | None = None
    for window in windows:
        end = active_until(window, now)
        if end is not None and (best is None or end > best[1]):
            best = (window, end)
    if best is None or len(windows) < 2:
        return best
    # Every window's starts after `now`, in time order, while they begin before the freeze ends.
    window, end = best
    heap: list[tuple[datetime, int, CronSim]] = []
    for i, w in enumerate(windows):
        upcoming = CronSim(w.start, now.astimezone(_zone(w.timezone)))
        if (nxt := next(upcoming, None)) is not None:
            heap.append((nxt.astimezone(UTC), i, upcoming))
    heapq.heapify(heap)
    try:
        for _ in range(_CHAIN_LIMIT):
            if not heap or heap[0][0] > end:
                break
            start, i, upcoming = heapq.heappop(heap)
            end = max(end, start + windows[i].duration)
            if (nxt := next(upcoming, None)) is not None:
                heapq.heappush(heap, (nxt.astimezone(UTC), i, upcoming))
    except OverflowError:  # chained past year 9999
        pass
    return window, end

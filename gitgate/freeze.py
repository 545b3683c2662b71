"""Freeze windows: is a cron-started window in force at a given moment, and until when. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from gitgate.model import FreezeWindow

# A chain of back-to-back windows is followed this far when saying "frozen until"; past it the
# answer says "at least".
_CHAIN_LIMIT = 500
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


def in_force(windows: Iterable[FreezeWindow], now: datetime) -> tuple[FreezeWindow, datetime] | None:
    """The window in force at `now` that ends last, with its end; None if none is."""
    best: tuple[FreezeWindow, datetime] | None = None
    for window in windows:
        end = active_until(window, now)
        if end is not None and (best is None or end > best[1]):
            best = (window, end)
    return best

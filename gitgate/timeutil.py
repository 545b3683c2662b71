"""Durations and RFC 3339 timestamps, parsed strictly. Pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# ASCII digits only: `\d` also matches other scripts' digits, which int() reads.
_DURATION = re.compile(r"([0-9]+)(d|h|m|s)")
_DURATION_WHOLE = re.compile(r"(?:[0-9]+(?:d|h|m|s))+")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_MAX_DURATION_DAYS = 3650
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


_UTC_SECONDS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def parse_duration(text: str) -> timedelta:
    """'63h', '1h30m', '90s', '2d' -> timedelta. Raises ValueError with a fix-it hint."""
    text = text.strip()
    if not _DURATION_WHOLE.fullmatch(text):
        raise ValueError(f"{text!r} is not a duration; use e.g. 30s, 15m, 24h, 1h30m or 2d")
    parts = _DURATION.findall(text)
    if any(len(n) > 12 for n, _ in parts):  # int() of thousands of digits is slow, then refused
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ValueError(f"{shown!r} is too long; the limit is {_MAX_DURATION_DAYS}d")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    if seconds > _MAX_DURATION_DAYS * 86400:  # unbounded, timedelta/datetime arithmetic overflows
        raise ValueError(f"{text!r} is too long; the limit is {_MAX_DURATION_DAYS}d")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """timedelta -> '24h', '1h30m', '2d', '45s': the form parse_duration reads."""
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 date-time with an explicit offset -> aware datetime in UTC."""
    if _UTC_SECONDS.fullmatch(text):  # the usual form, "2026-11-23T12:00:00Z": read as it is
        return datetime.fromisoformat(text)  # Z: timezone.utc, the UTC the general path ends in
    if not _RFC3339.fullmatch(text.strip()):
        raise ValueError(f'{text!r} is not an RFC 3339 timestamp with a time zone; use e.g. "2026-11-23T12:00:00Z"')
    value = text.strip().replace("z", "Z").replace("t", "T")
    # Python's fromisoformat takes at most 6 fractional digits.
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    if value[-6] in "+-" and int(value[-5:-3]) > 23:
        raise ValueError(f"{text!r}: the offset from UTC must be at most 23:59")
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 is past the year 9999 in UTC
        raise ValueError(f"{text!r} is out of range: in UTC it falls outside the years 1 to 9999") from None


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

"""Freeze windows: a cron-started window with a duration and a time zone. Pure; no clock is read.

SPEC §1: `freeze` windows in which every confirm-* hook answers closed, "frozen until …".
Every moment below is an explicit, aware datetime.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitgate.freeze import active_until, in_force, validate_cron
from gitgate.model import FreezeWindow

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKEND = FreezeWindow("0 18 * * FRI", timedelta(hours=63), "Europe/Berlin", "No deploys over the weekend")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- the weekend window of the SPEC example, in winter (no DST change inside) ---------------------


def test_weekend_window_starts_friday_18_00_local_not_a_moment_before() -> None:
    # Friday 9 January 2026, CET (UTC+1).
    assert active_until(WEEKEND, berlin(2026, 1, 9, 17, 59)) is None
    assert active_until(WEEKEND, berlin(2026, 1, 9, 17, 59, 59, 999999)) is None
    assert active_until(WEEKEND, berlin(2026, 1, 9, 18, 0)) == berlin(2026, 1, 12, 9, 0)
    assert active_until(WEEKEND, berlin(2026, 1, 9, 18, 0, 0, 1)) == berlin(2026, 1, 12, 9, 0)


def test_weekend_window_lasts_until_monday_09_00_local() -> None:
    for moment in (berlin(2026, 1, 10, 3, 0), berlin(2026, 1, 11, 23, 59), berlin(2026, 1, 12, 8, 59, 59)):
        assert active_until(WEEKEND, moment) == berlin(2026, 1, 12, 9, 0), moment
    assert active_until(WEEKEND, berlin(2026, 1, 12, 9, 0)) is None
    assert active_until(WEEKEND, berlin(2026, 1, 14, 12, 0)) is None  # a Wednesday


def test_the_end_is_an_instant_in_utc_whatever_zone_now_is_given_in() -> None:
    end = active_until(WEEKEND, utc(2026, 1, 9, 17, 0))  # = Friday 18:00 in Berlin
    assert end == utc(2026, 1, 12, 8, 0)
    assert end is not None
    assert end.utcoffset() == timedelta(0)
    assert active_until(WEEKEND, datetime(2026, 1, 9, 11, 59, tzinfo=NEW_YORK)) is None  # 17:59 Berlin
    assert active_until(WEEKEND, datetime(2026, 1, 9, 12, 0, tzinfo=NEW_YORK)) == end


def test_the_window_is_evaluated_in_its_own_time_zone() -> None:
    in_utc = FreezeWindow("0 18 * * FRI", timedelta(hours=63))  # timezone defaults to UTC
    moment = utc(2026, 1, 9, 17, 30)  # 18:30 in Berlin, 17:30 in UTC
    assert active_until(WEEKEND, moment) == utc(2026, 1, 12, 8, 0)
    assert active_until(in_utc, moment) is None
    assert active_until(in_utc, utc(2026, 1, 9, 18, 0)) == utc(2026, 1, 12, 9, 0)


# --- durations are elapsed time across a DST change ----------------------------------------------


def test_across_the_spring_dst_change_63h_ends_monday_10_00_local() -> None:
    # Clocks go 02:00 -> 03:00 on Sunday 29 March 2026: 63 elapsed hours from Friday 18:00 CET end
    # at Monday 10:00 CEST, not 09:00. The code keeps durations as elapsed time; assert it.
    start = berlin(2026, 3, 27, 18, 0)
    end = active_until(WEEKEND, start)
    assert end == berlin(2026, 3, 30, 10, 0)
    assert end is not None
    assert end - start == timedelta(hours=63)
    assert active_until(WEEKEND, berlin(2026, 3, 30, 9, 30)) == end  # still frozen at 09:30 local
    assert active_until(WEEKEND, berlin(2026, 3, 30, 10, 0)) is None


def test_across_the_autumn_dst_change_63h_ends_monday_08_00_local() -> None:
    # Clocks go 03:00 -> 02:00 on Sunday 25 October 2026: the window ends an hour earlier, local.
    start = berlin(2026, 10, 23, 18, 0)
    end = active_until(WEEKEND, start)
    assert end == berlin(2026, 10, 26, 8, 0)
    assert end is not None
    assert end - start == timedelta(hours=63)
    assert active_until(WEEKEND, berlin(2026, 10, 26, 8, 0)) is None


def test_a_start_in_the_skipped_hour_happens_when_the_clock_jumps() -> None:
    # 02:30 does not exist in Berlin on 29 March 2026; like cron, the window starts at 03:00 CEST.
    night = FreezeWindow("30 2 * * *", timedelta(hours=1), "Europe/Berlin")
    assert active_until(night, utc(2026, 3, 29, 0, 59)) is None  # 01:59 CET
    assert active_until(night, utc(2026, 3, 29, 1, 0)) == utc(2026, 3, 29, 2, 0)  # 03:00 CEST
    assert active_until(night, utc(2026, 3, 29, 2, 0)) is None


def test_a_start_in_the_repeated_hour_happens_once() -> None:
    # 02:30 happens twice in Berlin on 25 October 2026; the window starts at the first one only.
    night = FreezeWindow("30 2 * * *", timedelta(minutes=30), "Europe/Berlin")
    assert active_until(night, utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 25, 1, 0)  # 02:30 CEST
    assert active_until(night, utc(2026, 10, 25, 1, 30)) is None  # 02:30 CET, the second time


# --- windows that chain into one "until" ---------------------------------------------------------


def test_back_to_back_starts_of_one_window_chain_into_one_until() -> None:
    weekdays = FreezeWindow("0 9 * * MON-FRI", timedelta(hours=24))
    # Monday 5 January 2026: each day's window begins as the previous one ends, through Saturday 09:00.
    assert active_until(weekdays, utc(2026, 1, 5, 9, 0)) == utc(2026, 1, 10, 9, 0)
    assert active_until(weekdays, utc(2026, 1, 8, 23, 0)) == utc(2026, 1, 10, 9, 0)
    assert active_until(weekdays, utc(2026, 1, 10, 9, 0)) is None


def test_overlapping_starts_of_one_window_chain_into_one_until() -> None:
    mornings = FreezeWindow("0 9,10 * * *", timedelta(hours=2))
    assert active_until(mornings, utc(2026, 1, 5, 9, 30)) == utc(2026, 1, 5, 12, 0)
    assert active_until(mornings, utc(2026, 1, 5, 11, 59)) == utc(2026, 1, 5, 12, 0)
    assert active_until(mornings, utc(2026, 1, 5, 12, 0)) is None


def test_a_gap_of_one_minute_does_not_chain() -> None:
    hourly = FreezeWindow("0 * * * *", timedelta(minutes=59))
    assert active_until(hourly, utc(2026, 1, 5, 9, 30)) == utc(2026, 1, 5, 9, 59)
    assert active_until(hourly, utc(2026, 1, 5, 9, 59)) is None


def test_different_windows_back_to_back_chain_into_one_until() -> None:
    monday = FreezeWindow("0 9 * * MON", timedelta(hours=8), "Europe/Berlin", "Monday release review")
    saturday = berlin(2026, 1, 10, 12, 0)
    assert in_force([WEEKEND, monday], saturday) == (WEEKEND, berlin(2026, 1, 12, 17, 0))
    assert in_force([monday, WEEKEND], saturday) == (WEEKEND, berlin(2026, 1, 12, 17, 0))
    # Once the weekend is over, Monday's window is the one in force.
    assert in_force([WEEKEND, monday], berlin(2026, 1, 12, 9, 0)) == (monday, berlin(2026, 1, 12, 17, 0))


def test_different_windows_overlapping_chain_and_a_gap_does_not() -> None:
    night = FreezeWindow("0 22 * * *", timedelta(hours=4), "UTC", "night")
    early = FreezeWindow("0 1 * * *", timedelta(hours=6), "UTC", "early")
    late = FreezeWindow("1 7 * * *", timedelta(hours=1), "UTC", "a minute after early ends")
    assert in_force([night, early, late], utc(2026, 1, 5, 23, 0)) == (night, utc(2026, 1, 6, 7, 0))
    assert in_force([night, early, late], utc(2026, 1, 6, 2, 0)) == (early, utc(2026, 1, 6, 7, 0))


def test_windows_that_always_overlap_say_frozen_far_ahead() -> None:
    # Every two hours for three hours: frozen for good. The answer names a moment weeks ahead (the
    # chain is followed for a bounded number of starts; the answer is given again at every check).
    now = utc(2026, 1, 5, 9, 0)
    forever = FreezeWindow("0 */2 * * *", timedelta(hours=3))
    end = active_until(forever, now)
    assert end is not None
    assert end > now + timedelta(days=30)
    evens = FreezeWindow("0 */2 * * *", timedelta(hours=1))
    odds = FreezeWindow("0 1-23/2 * * *", timedelta(hours=1))
    frozen = in_force([evens, odds], utc(2026, 1, 5, 9, 30))
    assert frozen is not None
    assert frozen[1] > now + timedelta(days=14)


def test_a_window_firing_every_minute_with_a_long_duration_is_in_force() -> None:
    always = FreezeWindow("* * * * *", timedelta(days=30), "UTC", "always")
    for now in (utc(2026, 1, 5, 9, 0), utc(2026, 1, 5, 9, 0, 30), utc(2030, 12, 31, 23, 59, 59)):
        frozen = in_force([always], now)
        assert frozen is not None, now
        assert frozen[0] == always
        assert frozen[1] >= now + timedelta(days=30)


def test_a_window_firing_every_minute_for_thirty_seconds_has_gaps() -> None:
    half = FreezeWindow("* * * * *", timedelta(seconds=30))
    assert active_until(half, utc(2026, 1, 5, 9, 0, 0)) == utc(2026, 1, 5, 9, 0, 30)
    assert active_until(half, utc(2026, 1, 5, 9, 0, 29, 999999)) == utc(2026, 1, 5, 9, 0, 30)
    assert active_until(half, utc(2026, 1, 5, 9, 0, 30)) is None
    assert active_until(half, utc(2026, 1, 5, 9, 0, 59)) is None


def test_the_longest_duration_does_not_overflow() -> None:
    decade = FreezeWindow("0 0 * * *", timedelta(days=3650))
    also = FreezeWindow("0 12 * * *", timedelta(days=3650))
    frozen = in_force([decade, also], utc(2026, 1, 5, 9, 0))
    assert frozen is not None
    assert frozen[1] > utc(2036, 1, 1)


# --- in_force over several windows ---------------------------------------------------------------


def test_in_force_with_no_windows_or_none_active() -> None:
    assert in_force([], utc(2026, 1, 10, 12, 0)) is None
    assert in_force([WEEKEND], berlin(2026, 1, 14, 12, 0)) is None
    assert in_force(iter([WEEKEND]), berlin(2026, 1, 10, 12, 0)) == (WEEKEND, berlin(2026, 1, 12, 9, 0))


def test_in_force_names_the_window_that_ends_last() -> None:
    short = FreezeWindow("0 18 * * FRI", timedelta(hours=1), "Europe/Berlin", "short")
    long = FreezeWindow("0 17 * * FRI", timedelta(hours=5), "Europe/Berlin", "long")
    friday = berlin(2026, 1, 9, 18, 30)
    assert in_force([short, long], friday) == (long, berlin(2026, 1, 9, 22, 0))
    assert in_force([long, short], friday) == (long, berlin(2026, 1, 9, 22, 0))
    assert in_force([short, long], berlin(2026, 1, 9, 19, 30)) == (long, berlin(2026, 1, 9, 22, 0))
    assert in_force([short, long], berlin(2026, 1, 9, 16, 59)) is None


def test_a_leap_day_window() -> None:
    leap = FreezeWindow("0 0 29 2 *", timedelta(days=1))
    assert active_until(leap, utc(2028, 2, 29, 12, 0)) == utc(2028, 3, 1, 0, 0)
    assert active_until(leap, utc(2027, 3, 1, 12, 0)) is None
    assert active_until(leap, utc(2028, 3, 1, 0, 0)) is None


@pytest.mark.parametrize("sunday", ["0", "7", "SUN"])
def test_weekday_names_and_numbers(sunday: str) -> None:
    window = FreezeWindow(f"0 0 * * {sunday}", timedelta(days=1))
    assert active_until(window, utc(2026, 1, 11, 12, 0)) == utc(2026, 1, 12, 0, 0)  # a Sunday
    assert active_until(window, utc(2026, 1, 12, 12, 0)) is None


# --- validate_cron ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr",
    ["0 18 * * FRI", "*/15 9-17 * * MON-FRI", "0 0 1 1 *", "0 0 L * *", "0 0 29 2 *", "0 0 * 2 5#5", "* * * * *"],
)
def test_valid_cron_expressions(expr: str) -> None:
    assert validate_cron(expr) == ""


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 0 30 2 *", "'0 0 30 2 *' is not a valid cron expression: Bad day-of-month"),  # never fires
        ("0 0 31 4,6,9,11 *", "'0 0 31 4,6,9,11 *' is not a valid cron expression: Bad day-of-month"),
        ("60 * * * *", "'60 * * * *' is not a valid cron expression: Bad minute"),
        ("0 24 * * *", "'0 24 * * *' is not a valid cron expression: Bad hour"),
        ("0 0 * 13 *", "'0 0 * 13 *' is not a valid cron expression: Bad month"),
        ("0 0 * * 8", "'0 0 * * 8' is not a valid cron expression: Bad day-of-week"),
        ("a b c d e", "'a b c d e' is not a valid cron expression: Bad minute"),
        ("0 18 * *", "'0 18 * *' is not a cron expression with 5 fields (minute hour day month weekday)"),
        ("0 0 18 * * FRI", "'0 0 18 * * FRI' is not a cron expression with 5 fields (minute hour day month weekday)"),
        ("@daily", "'@daily' is not a cron expression with 5 fields (minute hour day month weekday)"),
        ("   ", "'   ' is not a cron expression with 5 fields (minute hour day month weekday)"),
    ],
)
def test_malformed_or_never_firing_cron_expressions_are_refused(expr: str, message: str) -> None:
    assert validate_cron(expr) == message


@settings(max_examples=200, deadline=None)
@given(
    minutes=st.lists(st.integers(min_value=0, max_value=7 * 24 * 60), min_size=1, max_size=60),
    hours=st.sampled_from([1, 8, 24, 25, 63]),
)
def test_the_cached_answer_equals_a_fresh_computation_at_every_moment(minutes: list[int], hours: int) -> None:
    """Checks ask in_force again and again as time moves on; every answer must be the one a fresh
    computation gives at that moment (the cache only skips work, never changes an answer)."""
    from gitgate.freeze import compute_in_force

    windows = (
        FreezeWindow("0 18 * * FRI", timedelta(hours=hours), "Europe/Berlin", "weekend"),
        FreezeWindow("30 9 * * *", timedelta(hours=1), "UTC", "daily review"),
    )
    start = utc(2026, 3, 23, 0, 0)
    for offset in sorted(minutes):
        now = start + timedelta(minutes=offset, seconds=offset % 60)
        assert in_force(windows, now) == compute_in_force(windows, now)

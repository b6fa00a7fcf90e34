"""A venue's session window, from its run book, as Prometheus recording rules.

PromQL only knows UTC, so the venue's local time is `time()` plus a UTC offset that steps at every
daylight-saving transition; the transitions come from the IANA database (zoneinfo) for a horizon of
years, and `vcpl generate` rewrites them as the horizon moves. The window is 1 inside the weekly
or daily session and 0 outside it, during daily breaks and during maintenance windows, so every
session and feed alert can be gated on it and stays silent when the venue is closed.
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")  # PromQL day_of_week order
HORIZON_YEARS = (2025, 2036)
LOCAL_TIME = "vcpl:venue_local_time:seconds"
WEEK_MINUTE = "vcpl:venue_local_time:week_minute"
WINDOW = "vcpl:session_window:open"


def minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


@lru_cache(maxsize=None)  # pure in the zone, and the hourly scan is the costly part of `generate`
def offset_steps(zone: str) -> tuple[int, tuple[tuple[int, int], ...]]:
    """(UTC offset at the start of the horizon, [(unix time of a change, change in seconds)])."""
    tz = ZoneInfo(zone)
    start = dt.datetime(HORIZON_YEARS[0], 1, 1, tzinfo=dt.timezone.utc)
    end = dt.datetime(HORIZON_YEARS[1], 1, 1, tzinfo=dt.timezone.utc)

    def offset(moment: dt.datetime) -> int:
        return int(moment.astimezone(tz).utcoffset().total_seconds())  # type: ignore[union-attr]

    base = offset(start)
    steps = []
    moment, previous = start, base
    while moment < end:
        nxt = moment + dt.timedelta(hours=1)
        current = offset(nxt)
        if current != previous:
            steps.append((int(nxt.timestamp()), current - previous))
            previous = current
        moment = nxt
    return base, tuple(steps)


def local_time_expr(zone: str) -> str:
    base, steps = offset_steps(zone)
    terms = "".join(f" + {delta} * (time() >= bool {at})" for at, delta in steps)
    return f"vector(time() + {base}{terms})"


def _weekly_ranges(schedule: dict[str, Any]) -> list[tuple[int, int]]:
    """Open intervals in minutes of the week (Sunday 00:00 = 0), wrapping split in two."""
    week = 7 * 1440
    if schedule.get("continuous"):
        return [(0, week)]
    if "weekly" in schedule:
        open_ = DAYS.index(schedule["weekly"]["open"]["day"]) * 1440 + minutes(schedule["weekly"]["open"]["time"])
        close = DAYS.index(schedule["weekly"]["close"]["day"]) * 1440 + minutes(schedule["weekly"]["close"]["time"])
        return [(open_, close)] if open_ < close else [(open_, week), (0, close)]
    daily = schedule["daily"]
    return _daily_ranges(daily["days"], daily["open"], daily["close"])


def _daily_ranges(days: list[str], start: str, end: str) -> list[tuple[int, int]]:
    ranges = []
    for day in days:
        begin = DAYS.index(day) * 1440 + minutes(start)
        finish = DAYS.index(day) * 1440 + minutes(end)
        if finish <= begin:  # overnight: runs into the next day
            finish += 1440
        if finish > 7 * 1440:
            ranges += [(begin, 7 * 1440), (0, finish - 7 * 1440)]
        else:
            ranges.append((begin, finish))
    return ranges


def closed_ranges(schedule: dict[str, Any]) -> list[tuple[int, int]]:
    """Daily breaks and maintenance windows, in minutes of the week."""
    found = []
    for entry in schedule.get("dailyBreaks", []) + schedule.get("maintenance", []):
        found += _daily_ranges(entry["days"], entry["start"], entry["end"])
    return found


def _range_expr(ranges: list[tuple[int, int]], series: str) -> str:
    parts = [f"({series} >= bool {a}) * ({series} < bool {b})" for a, b in ranges]
    return "clamp_max(" + " + ".join(parts) + ", 1)" if len(parts) > 1 else parts[0]


def recording_rules(schedule: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
    local = f"{LOCAL_TIME}{{{selector}}}"
    week_minute = f"{WEEK_MINUTE}{{{selector}}}"
    opened = _range_expr(_weekly_ranges(schedule), week_minute)
    closed = closed_ranges(schedule)
    window = f"clamp_min({opened} - {_range_expr(closed, week_minute)}, 0)" if closed else opened
    return [
        {"record": LOCAL_TIME, "expr": local_time_expr(schedule["timeZone"]), "labels": dict(labels)},
        {"record": WEEK_MINUTE, "expr": f"day_of_week({local}) * 1440 + hour({local}) * 60 + minute({local})"},
        {"record": WINDOW, "expr": window},
    ]


def is_open(schedule: dict[str, Any], moment: dt.datetime) -> bool:
    """The same window computed directly with zoneinfo: what the tests hold the PromQL to."""
    local = moment.astimezone(ZoneInfo(schedule["timeZone"]))
    minute = DAYS.index(local.strftime("%A").lower()) * 1440 + local.hour * 60 + local.minute
    inside = any(a <= minute < b for a, b in _weekly_ranges(schedule))
    return inside and not any(a <= minute < b for a, b in closed_ranges(schedule))

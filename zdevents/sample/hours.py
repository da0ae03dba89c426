"""Time arithmetic of the sample account, in Unix seconds: ISO stamps and business hours.

The sample's business hours are Mon-Fri 08:00-18:00 UTC (the ``Standard`` policy and the
``Billing handoffs`` group policy count their targets in them).
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = [
    "BUSINESS_END",
    "BUSINESS_START",
    "DAY",
    "add_business",
    "advance",
    "business_seconds",
    "iso",
    "span",
]

DAY = 86400
"""Seconds in a day."""
BUSINESS_START, BUSINESS_END = 8 * 3600, 18 * 3600
"""Start and end of the business day, in seconds after midnight UTC."""

_DAY_PREFIX: dict[int, str] = {}


def iso(ts: int) -> str:
    """Unix seconds -> ``2024-03-01T12:53:12Z`` (fast, cached per day)."""
    day, rem = divmod(ts, DAY)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        prefix = datetime.fromtimestamp(day * DAY, tz=UTC).strftime("%Y-%m-%dT")
        _DAY_PREFIX[day] = prefix
    hour, rem = divmod(rem, 3600)
    minute, sec = divmod(rem, 60)
    return f"{prefix}{hour:02d}:{minute:02d}:{sec:02d}Z"


def _is_workday(day: int) -> bool:
    return (day + 3) % 7 < 5  # 1970-01-01 was a Thursday (weekday 3)


def business_seconds(a: int, b: int) -> int:
    """Seconds of business time (Mon-Fri 08:00-18:00 UTC) in ``[a, b)``."""
    total = 0
    t = a
    while t < b:
        day = t // DAY
        start = day * DAY
        if _is_workday(day):
            s = max(t, start + BUSINESS_START)
            e = min(b, start + BUSINESS_END)
            if e > s:
                total += e - s
        t = start + DAY
    return total


def add_business(t: int, seconds: int) -> int:
    """The time at which ``seconds`` of business time have elapsed after ``t``."""
    if seconds <= 0:
        return t
    while True:
        day = t // DAY
        start = day * DAY
        if _is_workday(day):
            s = max(t, start + BUSINESS_START)
            e = start + BUSINESS_END
            if s < e:
                if s + seconds <= e:
                    return s + seconds
                seconds -= e - s
        t = start + DAY


def span(a: int, b: int, business: bool) -> int:
    """Seconds from ``a`` to ``b``: business seconds, or calendar seconds (never negative)."""
    return business_seconds(a, b) if business else max(0, b - a)


def advance(t: int, seconds: int, business: bool) -> int:
    """``t`` plus ``seconds`` of business time, or of calendar time."""
    return add_business(t, seconds) if business else t + max(0, seconds)

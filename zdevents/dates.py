"""One place that turns every accepted date input into a tz-aware UTC timestamp."""

from __future__ import annotations

import datetime as dt
import numbers

import pandas as pd

__all__ = ["TimeLike", "time_range", "to_utc"]

TimeLike = str | dt.date | dt.datetime | pd.Timestamp | int | float | None

# Zendesk's exports start in 2007; anything outside these bounds is a typo, not a date.
_EARLIEST = pd.Timestamp("2000-01-01", tz="UTC")
_LATEST = pd.Timestamp("2200-01-01", tz="UTC")


def to_utc(value: TimeLike, *, name: str = "time") -> pd.Timestamp | None:
    """Read ``value`` as a tz-aware UTC :class:`pandas.Timestamp`.

    Parameters
    ----------
    value : str, date, datetime, Timestamp, int, float or None
        ISO-like strings (``"2024-01-01"``, ``"2024-01-01T08:00:00+02:00"``), dates
        (midnight UTC), datetimes and Timestamps (naive means UTC; aware ones are converted),
        or Unix epoch seconds. ``None`` stays ``None``.
    name : str
        Argument name used in error messages.

    Raises
    ------
    ValueError
        When the value cannot be read as a point in time, or lies outside 2000-2200.

    Examples
    --------
    >>> to_utc("2024-01-01")
    Timestamp('2024-01-01 00:00:00+0000', tz='UTC')
    >>> to_utc(1704067200)
    Timestamp('2024-01-01 00:00:00+0000', tz='UTC')
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name}={value!r} is not a date")
    try:
        if isinstance(value, numbers.Real):
            ts = pd.Timestamp(float(value), unit="s", tz="UTC")
        elif isinstance(value, str):
            text = value.strip()
            if not text or not text.isprintable():
                raise ValueError("empty or control characters")
            ts = pd.Timestamp(text)
        elif isinstance(value, dt.datetime | pd.Timestamp):
            ts = pd.Timestamp(value)
        elif isinstance(value, dt.date):
            ts = pd.Timestamp(value.year, value.month, value.day)
        else:
            raise TypeError(type(value).__name__)
    except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime):
        raise ValueError(
            f"{name}={value!r} is not a date: use e.g. '2024-01-01', '2024-01-01T08:00Z', "
            "a date/datetime/Timestamp, or Unix seconds"
        ) from None
    if ts is pd.NaT:
        raise ValueError(f"{name}={value!r} is not a date")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if not _EARLIEST <= ts < _LATEST:
        raise ValueError(f"{name}={value!r} is outside 2000-2200; is it in seconds?")
    return ts


def time_range(
    since: TimeLike = None, until: TimeLike = None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Normalise a half-open ``[since, until)`` range; ``since > until`` is an error.

    Examples
    --------
    >>> time_range("2024-01-01", "2024-02-01")[1]
    Timestamp('2024-02-01 00:00:00+0000', tz='UTC')
    """
    start = to_utc(since, name="since")
    end = to_utc(until, name="until")
    if start is not None and end is not None and start > end:
        raise ValueError(f"since ({start.isoformat()}) is after until ({end.isoformat()})")
    return start, end

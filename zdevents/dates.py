"""The one time parser: every ``since``, ``until`` and ``as_of`` of the API and the CLI.

One set of rules, for every function and flag that takes a time:

* Unix epoch **seconds**, as ``int`` or ``float`` (or a string of digits on the command
  line): ``1704067200`` is 2024-01-01. Milliseconds and nanoseconds are not accepted: they
  fall outside 2000-2200 and are refused, never read as another date.
* ISO 8601 strings: ``"2024-01-31"``, ``"2024-01-31T08:00"``, ``"2024-01-31 08:00:00"``,
  ``"2024-01-31T08:00:00.5Z"``, ``"2024-01-31T08:00:00+02:00"``. Anything else, such as
  ``"01/02/2024"`` (January or February?) or ``"last tuesday"``, is refused with a message
  that shows the accepted forms.
* ``datetime.date`` (midnight UTC), ``datetime.datetime``, :class:`pandas.Timestamp`,
  ``numpy.datetime64``.
* Naive values are UTC; aware ones are converted to UTC. Times outside 2000-2200 are refused.
* A ``since`` in the future is an error (:func:`time_range`), never clamped.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import re

import numpy as np
import pandas as pd

__all__ = ["ACCEPTED_FORMS", "TimeLike", "time_range", "to_epoch_ms", "to_utc"]

TimeLike = str | dt.date | dt.datetime | pd.Timestamp | np.datetime64 | int | float | None

ACCEPTED_FORMS = (
    "use an ISO date or time ('2024-01-31', '2024-01-31T08:00:00Z', "
    "'2024-01-31 08:00+02:00'; no offset means UTC), Unix seconds (1706659200), or a "
    "date/datetime/Timestamp"
)
"""The accepted forms, as every error message states them."""

# Zendesk's exports start in 2007; anything outside these bounds is a typo or another unit.
_EARLIEST = pd.Timestamp("2000-01-01", tz="UTC")
_LATEST = pd.Timestamp("2200-01-01", tz="UTC")
_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?)?"
)
_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def to_utc(value: TimeLike, *, name: str = "time") -> pd.Timestamp | None:
    """Read ``value`` as a tz-aware UTC :class:`pandas.Timestamp` (the module's rules).

    Parameters
    ----------
    value : str, date, datetime, Timestamp, numpy.datetime64, int, float or None
        ISO 8601 strings, dates (midnight UTC), datetimes and Timestamps (naive means UTC;
        aware ones are converted), or Unix epoch seconds. ``None`` stays ``None``.
    name : str
        Argument name used in error messages.

    Raises
    ------
    ValueError
        When the value is not one of the accepted forms (the message lists them), or lies
        outside 2000-2200.

    Examples
    --------
    >>> to_utc("2024-01-01")
    Timestamp('2024-01-01 00:00:00+0000', tz='UTC')
    >>> to_utc(1704067200)
    Timestamp('2024-01-01 00:00:00+0000', tz='UTC')
    >>> to_utc("01/02/2024")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: time='01/02/2024' is not a date: use an ISO date or time ('2024-01-31', ...
    """
    if value is None:
        return None
    refused = ValueError(f"{name}={value!r} is not a date: {ACCEPTED_FORMS}")
    seconds: float | None = None
    try:
        if isinstance(value, bool):
            raise refused
        if isinstance(value, numbers.Real):
            seconds = float(value)
        elif isinstance(value, str):
            text = value.strip()
            if _SECONDS.fullmatch(text):
                seconds = float(text)
            elif _ISO.fullmatch(text):
                ts = pd.Timestamp(text)
            else:
                raise refused
        elif isinstance(value, dt.datetime | pd.Timestamp | np.datetime64):
            ts = pd.Timestamp(value)
        elif isinstance(value, dt.date):
            ts = pd.Timestamp(value.year, value.month, value.day)
        else:
            raise refused
        if seconds is not None:
            if not math.isfinite(seconds):
                raise refused
            if not _EARLIEST.timestamp() <= seconds < _LATEST.timestamp():
                raise ValueError(
                    f"{name}={value!r} is outside 2000-2200 as Unix seconds (milliseconds and "
                    f"nanoseconds are not accepted): {ACCEPTED_FORMS}"
                )
            ts = pd.Timestamp(seconds, unit="s", tz="UTC")
    except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime) as exc:
        if exc is refused or str(exc).startswith(f"{name}="):
            raise exc from None
        raise refused from None
    if ts is pd.NaT:
        raise refused
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if not _EARLIEST <= ts < _LATEST:
        raise ValueError(f"{name}={value!r} is outside 2000-2200: {ACCEPTED_FORMS}")
    return ts


def time_range(
    since: TimeLike = None, until: TimeLike = None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Normalise a half-open ``[since, until)`` range.

    ``since > until`` is an error, and so is a ``since`` in the future (nothing was
    exported from there yet: it is never silently clamped to now).

    Examples
    --------
    >>> time_range("2024-01-01", "2024-02-01")[1]
    Timestamp('2024-02-01 00:00:00+0000', tz='UTC')
    """
    start = to_utc(since, name="since")
    end = to_utc(until, name="until")
    if start is not None and start > pd.Timestamp.now(tz="UTC"):
        raise ValueError(
            f"since={since!r} is in the future ({start.isoformat()}): Zendesk has exported "
            "nothing from there yet; use a past time"
        )
    if start is not None and end is not None and start > end:
        raise ValueError(f"since ({start.isoformat()}) is after until ({end.isoformat()})")
    return start, end


def to_epoch_ms(value: TimeLike, *, name: str = "time") -> int | None:
    """:func:`to_utc` as Unix milliseconds, rounded up (so ``time >= since`` stays exact).

    Examples
    --------
    >>> to_epoch_ms("2024-01-01T00:00:00.0001Z")
    1704067200001
    """
    ts = to_utc(value, name=name)
    if ts is None:
        return None
    return -((-ts.as_unit("ns").value) // 1_000_000)

"""Reading the inputs of the insight questions: required columns, the as-of time, UTC times.

Shared by :mod:`~zdevents.analysis.lateness`, :mod:`~zdevents.analysis.due`,
:mod:`~zdevents.analysis.trends`, :mod:`~zdevents.analysis.pairing` and
:mod:`~zdevents.analysis.funnel`: pandas frames only (what :func:`zdevents.sla_targets`
returns for pandas events).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..dates import TimeLike, to_utc
from .columns import AS_OF_ATTR

__all__ = ["group_keys", "require_columns", "resolve_as_of", "to_minutes", "utc_times"]


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str = "targets") -> None:
    """Raise TypeError unless ``frame`` is pandas, ValueError naming the missing ``columns``."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame (zd.sla_targets output)")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lack columns: {', '.join(missing)}")


def resolve_as_of(frame: Any, as_of: TimeLike) -> pd.Timestamp:
    """``as_of`` as UTC: the argument, else ``frame.attrs["zdevents_as_of"]``; else an error."""
    if as_of is None:
        as_of = getattr(frame, "attrs", {}).get(AS_OF_ATTR)
    ts = to_utc(as_of, name="as_of") if as_of is not None else None
    if ts is None:
        raise ValueError(
            "as_of is unknown: pass as_of=..., or targets from zd.sla_targets (they carry it)"
        )
    return ts


def utc_times(series: pd.Series) -> pd.Series:
    """A time column as tz-aware UTC (naive values read as UTC)."""
    values = pd.to_datetime(series)
    if values.dt.tz is None:
        return values.dt.tz_localize("UTC")
    return values.dt.tz_convert("UTC")


def group_keys(by: str | Sequence[str]) -> list[str]:
    """``by`` as a list of column names."""
    return [by] if isinstance(by, str) else list(by)


def to_minutes(delta: pd.Series) -> pd.Series:
    """A timedelta column as float minutes."""
    return delta.dt.total_seconds() / 60.0

"""Breach rates: breached, achieved and active SLA targets per group, with a Wilson interval.

:func:`breach_rates` counts the outcomes of :func:`zdevents.sla_targets` per group (and
per week or month of ``applied_at``) on any engine narwhals wraps: pandas in, pandas out.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any, Literal

import pandas as pd

from .columns import AS_OF_ATTR
from .engines import from_native, is_dask, nw

__all__ = ["breach_rates"]

_WEEKDAYS = range(1, 8)  # narwhals: Monday=1 .. Sunday=7


def _period_expr(frame: Any, column: str, freq: str) -> Any:
    """Start of the week (Monday 00:00 UTC) or month of ``column``, as an expression."""
    col = nw.col(column)
    if freq == "W":
        day = col.dt.truncate("1d")
        weekday = col.dt.weekday()
        expr = day
        for wd in _WEEKDAYS:
            if wd > 1:
                offset = dt.timedelta(days=wd - 1)
                hit = weekday.is_in([7, 0]) if wd == 7 else weekday == wd  # Spark: Sunday is 0
                expr = nw.when(hit).then(day - offset).otherwise(expr)
        return expr
    if is_dask(frame):  # narwhals cannot truncate by month on Dask
        return (
            col.dt.to_string("%Y-%m-01")  # the wall time of a UTC column is UTC
            .str.to_datetime("%Y-%m-%d")
            .dt.replace_time_zone("UTC")
        )
    return col.dt.truncate("1mo")


def _unify_period(frame: Any) -> Any:
    """Give ``period`` the cache's dtype (ms, UTC) where narwhals can cast it."""
    impl = frame.implementation
    if impl.is_pandas_like() or impl.is_polars():
        return frame.with_columns(nw.col("period").cast(nw.Datetime("ms", "UTC")))
    return frame


def _wilson(successes: Any, total: Any, z: float) -> tuple[Any, Any]:
    """Wilson score interval bounds as expressions (null where ``total`` is 0)."""
    n = total
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2.0 * n)) / denom
    half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom
    has = total > 0
    low = nw.when(has).then((center - half).clip(0.0, 1.0))
    high = nw.when(has).then((center + half).clip(0.0, 1.0))
    return low, high


def breach_rates(
    targets: Any,
    by: str | Sequence[str] = "metric",
    *,
    freq: Literal["W", "M"] | None = None,
    confidence: float = 0.95,
) -> Any:
    """Breached, achieved and active targets per group, with breach rate and Wilson interval.

    Parameters
    ----------
    targets : DataFrame-like
        Output of :func:`zdevents.sla_targets` (needs ``outcome`` and, with ``freq``,
        ``applied_at``), any engine :func:`zdevents.sla_targets` accepts.
    by : str or sequence of str, default "metric"
        Column(s) to group by, e.g. ``["metric_label", "policy_title"]``. Null keys form
        their own group.
    freq : {None, "W", "M"}
        Also group by the period of ``applied_at``: ``"W"`` weeks starting Monday 00:00
        UTC, ``"M"`` calendar months (UTC). Adds a ``period`` column holding the
        period's start as a UTC timestamp.
    confidence : float, default 0.95
        Confidence level of the Wilson score interval (two-sided).

    Returns
    -------
    DataFrame-like
        Same kind as ``targets``; columns ``*by, [period], targets, breached, achieved,
        active, breach_rate, achievement_rate, ci_low, ci_high``, sorted by the group
        keys (nulls last). ``breach_rate = breached / (breached + achieved)``;
        ``achievement_rate = 1 - breach_rate``; ``ci_low``/``ci_high`` bound the breach
        rate. Active targets are excluded from the rates, so the newest periods lean
        towards quick fulfilments (censoring). Groups without completed targets have
        missing (null/NaN) rates and bounds, never 0.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"metric": ["reply_time"] * 3,
    ...                   "outcome": ["breached", "achieved", "active"]})
    >>> breach_rates(t)[["metric", "targets", "breached", "breach_rate"]]
           metric  targets  breached  breach_rate
    0  reply_time        3         1          0.5
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    if freq not in (None, "W", "M"):
        raise ValueError(f'freq must be None, "W" or "M", got {freq!r}')
    keys = [by] if isinstance(by, str) else list(by)
    frame = from_native(targets)
    missing = [c for c in [*keys, "outcome"] if c not in frame.columns]
    if freq is not None and "applied_at" not in frame.columns:
        missing.append("applied_at")
    if missing:
        raise ValueError(f"targets lack columns: {', '.join(missing)}")
    if freq is not None:
        with warnings.catch_warnings():
            # narwhals truncates months on pandas through Series.values, which pandas 3.1
            # deprecates for tz-aware data (Pandas4Warning); the values it gets are UTC and
            # the result is right, so the warning only alarms the analyst.
            warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
            frame = frame.with_columns(_period_expr(frame, "applied_at", freq).alias("period"))
        frame = _unify_period(frame)
        keys = [*keys, "period"]

    outcome = nw.col("outcome").cast(nw.String)
    counts = (
        frame.select(
            *keys,
            (outcome == "breached").cast(nw.Int64).alias("breached"),
            (outcome == "achieved").cast(nw.Int64).alias("achieved"),
            (outcome == "active").cast(nw.Int64).alias("active"),
        )
        .group_by(keys)
        .agg(
            nw.len().alias("targets"),
            nw.col("breached").sum(),
            nw.col("achieved").sum(),
            nw.col("active").sum(),
        )
        .with_columns(
            nw.col("targets").cast(nw.Int64),
            nw.col("breached").cast(nw.Int64),
            nw.col("achieved").cast(nw.Int64),
            nw.col("active").cast(nw.Int64),
        )
    )
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    breached = nw.col("breached").cast(nw.Float64)
    completed = (nw.col("breached") + nw.col("achieved")).cast(nw.Float64)
    low, high = _wilson(breached, completed, z)
    rate = nw.when(completed > 0).then(breached / completed)
    result = counts.with_columns(
        rate.alias("breach_rate"),
        (1.0 - rate).alias("achievement_rate"),
        low.alias("ci_low"),
        high.alias("ci_high"),
    ).select(
        *keys,
        "targets",
        "breached",
        "achieved",
        "active",
        "breach_rate",
        "achievement_rate",
        "ci_low",
        "ci_high",
    )
    result = result.sort(keys, nulls_last=True)
    native = result.to_native()
    if isinstance(native, pd.DataFrame):
        native = native.reset_index(drop=True)
        as_of = getattr(targets, "attrs", {}).get(AS_OF_ATTR)
        if as_of is not None:
            native.attrs[AS_OF_ATTR] = as_of
    elif freq is not None and is_dask(frame):
        native = native.assign(period=native["period"].astype("datetime64[ms, UTC]"))
    return native

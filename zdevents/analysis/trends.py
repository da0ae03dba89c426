"""Is it really better: the latest complete period of breach rates against the previous ones.

:func:`trend_verdicts` compares the latest complete week (or month) with the previous ``k``
by a two-proportion z-test, with the effect size and a verdict in words (:data:`VERDICTS`).
Pure pandas, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import pandas as pd

from ..dates import TimeLike
from .columns import AS_OF_ATTR
from .inputs import group_keys, require_columns, resolve_as_of, utc_times

__all__ = ["VERDICTS", "trend_verdicts"]

#: The verdicts of :func:`trend_verdicts`.
VERDICTS: tuple[str, ...] = ("better", "worse", "no significant change", "not enough data")


def _two_sided_p(z: float) -> float:
    """Two-sided p-value of a standard normal statistic: ``erfc(|z| / sqrt 2)``."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def _period_start(times: pd.Series, freq: str) -> pd.Series:
    naive = times.dt.tz_convert("UTC").dt.tz_localize(None)
    if freq == "W":
        day = naive.dt.floor("D")
        start = day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    else:
        start = naive.dt.to_period("M").dt.start_time
    return start.dt.tz_localize("UTC")


def _period_end(start: pd.Timestamp, freq: str) -> pd.Timestamp:
    return start + (pd.Timedelta(days=7) if freq == "W" else pd.DateOffset(months=1))


def trend_verdicts(
    targets: pd.DataFrame,
    by: str | Sequence[str] = "metric_label",
    *,
    freq: Literal["W", "M"] = "W",
    k: int = 4,
    alpha: float = 0.05,
    as_of: TimeLike = None,
) -> pd.DataFrame:
    """Is it really getting better? The latest complete period against the previous ``k``.

    Method: per group, the breach rate of the latest complete period is compared with the
    pooled breach rate of the ``k`` complete periods before it by a two-sided
    two-proportion z-test (pooled standard error, normal approximation):
    ``z = (p1 - p0) / sqrt(p (1 - p) (1/n1 + 1/n0))`` with ``p`` the rate of both sides
    together and ``p-value = erfc(|z| / sqrt 2)``.

    A period (targets grouped by when their SLA applied, weeks from Monday 00:00 UTC or
    calendar months) is *complete* when it ended at or before ``as_of`` and none of its
    targets is still active; incomplete periods are never used (the newest periods are
    biased toward quick fulfilments until their slow targets finish).

    Parameters
    ----------
    targets : pandas.DataFrame
        Output of :func:`zdevents.sla_targets` (``outcome``, ``applied_at`` and ``by``).
    by : str or sequence of str, default "metric_label"
        One verdict per group.
    freq : {"W", "M"}, default "W"
    k : int, default 4
        Number of complete periods before the latest that form the baseline.
    alpha : float, default 0.05
        Significance level of the test.
    as_of : time, optional
        Default: ``targets.attrs["zdevents_as_of"]``.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``*by, latest_period, latest_breached, latest_completed,
        latest_rate, baseline_from, baseline_to, baseline_periods, baseline_breached,
        baseline_completed, baseline_rate, rate_change`` (latest - baseline, as a
        proportion: -0.05 is five percentage points fewer breaches), ``relative_change``
        (rate_change / baseline_rate), ``cohens_h`` (2 asin sqrt p1 - 2 asin sqrt p0), ``z``,
        ``p_value`` and ``verdict``: ``"better"`` (fewer breaches, p < alpha), ``"worse"``
        (more breaches, p < alpha), ``"no significant change"``, or ``"not enough data"``
        (no complete latest period, no complete baseline period, no completed target on a
        side, or a pooled rate of exactly 0 or 1, where the test is undefined).

    Examples
    --------
    >>> verdicts = trend_verdicts(zd.sla_targets(events), k=4)  # doctest: +SKIP
    >>> verdicts[["metric_label", "latest_rate", "baseline_rate", "p_value", "verdict"]]  # doctest: +SKIP
    """
    keys = group_keys(by)
    require_columns(targets, [*keys, "outcome", "applied_at"])
    if freq not in ("W", "M"):
        raise ValueError(f'freq must be "W" or "M", got {freq!r}')
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    cutoff = resolve_as_of(targets, as_of)
    frame = targets[[*keys, "outcome", "applied_at"]].copy()
    frame = frame[frame["applied_at"].notna()]
    outcome = frame["outcome"].astype("string")
    frame["_breached"] = outcome.eq("breached").fillna(False).astype("int64")
    frame["_achieved"] = outcome.eq("achieved").fillna(False).astype("int64")
    frame["_active"] = outcome.eq("active").fillna(False).astype("int64")
    frame["period"] = _period_start(utc_times(frame["applied_at"]), freq)
    for key in keys:
        frame[key] = frame[key].astype(object).where(frame[key].notna(), "(none)")
    counts = (
        frame.groupby([*keys, "period"], sort=True)
        .agg(
            breached=("_breached", "sum"), achieved=("_achieved", "sum"), active=("_active", "sum")
        )
        .reset_index()
    )
    ends = pd.Series([_period_end(p, freq) for p in counts["period"]], index=counts.index)
    counts["complete"] = (ends <= cutoff) & (counts["active"] == 0)

    rows = []
    for group_key, part in counts.groupby(keys, sort=True):
        values = group_key if isinstance(group_key, tuple) else (group_key,)
        row: dict[str, Any] = dict(zip(keys, values, strict=True))
        complete = part[part["complete"]].sort_values("period")
        row.update(_compare(complete, k, alpha))
        rows.append(row)
    columns = [
        *keys,
        "latest_period",
        "latest_breached",
        "latest_completed",
        "latest_rate",
        "baseline_from",
        "baseline_to",
        "baseline_periods",
        "baseline_breached",
        "baseline_completed",
        "baseline_rate",
        "rate_change",
        "relative_change",
        "cohens_h",
        "z",
        "p_value",
        "verdict",
    ]
    out = pd.DataFrame(rows, columns=columns)
    for col in ("latest_period", "baseline_from", "baseline_to"):
        out[col] = pd.to_datetime(out[col], utc=True).astype("datetime64[ms, UTC]")
    for col in (
        "latest_breached",
        "latest_completed",
        "baseline_periods",
        "baseline_breached",
        "baseline_completed",
    ):
        out[col] = out[col].astype("Int64")
    for col in (
        "latest_rate",
        "baseline_rate",
        "rate_change",
        "relative_change",
        "cohens_h",
        "z",
        "p_value",
    ):
        out[col] = out[col].astype("float64")
    out.attrs[AS_OF_ATTR] = cutoff
    out.attrs["zdevents_method"] = (
        f"two-sided two-proportion z-test (pooled), alpha={alpha}; latest complete "
        f"{'week' if freq == 'W' else 'month'} vs the {k} complete before it"
    )
    return out


def _compare(complete: pd.DataFrame, k: int, alpha: float) -> dict[str, Any]:
    """Test of one group's latest complete period against the k complete before it."""
    nan = float("nan")
    empty: dict[str, Any] = {
        "latest_period": pd.NaT,
        "latest_breached": pd.NA,
        "latest_completed": pd.NA,
        "latest_rate": nan,
        "baseline_from": pd.NaT,
        "baseline_to": pd.NaT,
        "baseline_periods": 0,
        "baseline_breached": pd.NA,
        "baseline_completed": pd.NA,
        "baseline_rate": nan,
        "rate_change": nan,
        "relative_change": nan,
        "cohens_h": nan,
        "z": nan,
        "p_value": nan,
        "verdict": VERDICTS[3],
    }
    if complete.empty:
        return empty
    latest = complete.iloc[-1]
    base = complete.iloc[-1 - k : -1]
    b1, n1 = int(latest["breached"]), int(latest["breached"] + latest["achieved"])
    out = dict(empty)
    out.update(
        latest_period=latest["period"],
        latest_breached=b1,
        latest_completed=n1,
        latest_rate=b1 / n1 if n1 else nan,
    )
    if base.empty:
        return out
    b0 = int(base["breached"].sum())
    n0 = int((base["breached"] + base["achieved"]).sum())
    out.update(
        baseline_from=base["period"].iloc[0],
        baseline_to=base["period"].iloc[-1],
        baseline_periods=len(base),
        baseline_breached=b0,
        baseline_completed=n0,
        baseline_rate=b0 / n0 if n0 else nan,
    )
    if not n0 or not n1:
        return out
    p1, p0 = b1 / n1, b0 / n0
    pooled = (b1 + b0) / (n1 + n0)
    out.update(
        rate_change=p1 - p0,
        relative_change=(p1 - p0) / p0 if p0 else nan,
        cohens_h=2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p0)),
    )
    if pooled in (0.0, 1.0):
        return out
    z = (p1 - p0) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    p_value = _two_sided_p(z)
    verdict = VERDICTS[2]
    if p_value < alpha:
        verdict = VERDICTS[0] if p1 < p0 else VERDICTS[1]
    out.update(z=z, p_value=p_value, verdict=verdict)
    return out

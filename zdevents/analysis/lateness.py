"""How late: minutes past the target for every breached SLA target, and their summary.

:func:`lateness` measures each breached target (open ones up to ``as_of``, and marked);
:func:`lateness_summary` gives the median and p90 per group. Pure pandas, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..dates import TimeLike
from .columns import AS_OF_ATTR
from .inputs import group_keys, require_columns, resolve_as_of, to_minutes, utc_times

__all__ = ["lateness", "lateness_summary"]


def lateness(targets: pd.DataFrame, *, as_of: TimeLike = None) -> pd.DataFrame:
    """Minutes past the target for every breached target.

    Parameters
    ----------
    targets : pandas.DataFrame
        Output of :func:`zdevents.sla_targets` (``breached_at``, ``fulfilled_at``,
        ``outcome`` and any dimension columns, which are kept).
    as_of : time, optional
        End of the measurement for targets still open. Default: ``targets.attrs
        ["zdevents_as_of"]`` (set by ``sla_targets``).

    Returns
    -------
    pandas.DataFrame
        The targets breached at or before ``as_of`` only, with ``late_until`` (the
        fulfilment, or ``as_of`` when
        still open), ``late_minutes = late_until - breached_at`` in calendar minutes (float),
        and ``open`` (True when not fulfilled by ``as_of``: the lateness is a lower bound
        that still grows). A breach at the fulfilment's timestamp is 0 minutes late.
        ``attrs["zdevents_as_of"]`` is set.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.Timestamp("2024-01-01", tz="UTC")
    >>> targets = pd.DataFrame({
    ...     "metric": ["reply_time", "reply_time"], "outcome": ["breached", "breached"],
    ...     "breached_at": [t, t], "fulfilled_at": [t + pd.Timedelta(minutes=45), pd.NaT],
    ... })
    >>> lateness(targets, as_of=t + pd.Timedelta(hours=2))[["late_minutes", "open"]]
       late_minutes   open
    0          45.0  False
    1         120.0   True
    """
    require_columns(targets, ["breached_at", "fulfilled_at", "outcome"])
    cutoff = resolve_as_of(targets, as_of)
    breached = targets["outcome"].astype("string").eq("breached").fillna(False)
    out = targets[breached.to_numpy(dtype=bool)].copy()
    out = out[(utc_times(out["breached_at"]) <= cutoff).to_numpy(dtype=bool)]
    breached_at = utc_times(out["breached_at"])
    fulfilled_at = utc_times(out["fulfilled_at"])
    is_open = fulfilled_at.isna() | (fulfilled_at > cutoff)
    until = fulfilled_at.where(~is_open, cutoff)
    out["late_until"] = until
    out["late_minutes"] = to_minutes(until - breached_at).astype("float64")
    out["open"] = is_open.astype(bool)
    out = out.reset_index(drop=True)
    out.attrs[AS_OF_ATTR] = cutoff
    return out


def lateness_summary(late: pd.DataFrame, by: str | Sequence[str] = "metric_label") -> pd.DataFrame:
    """Median and p90 lateness per group.

    Parameters
    ----------
    late : pandas.DataFrame
        Output of :func:`lateness`.
    by : str or sequence of str, default "metric_label"
        Any column(s) of ``late``: ``metric``, ``policy_title``, ``group_name``...

    Returns
    -------
    pandas.DataFrame
        ``*by, breached, open, median_minutes, p90_minutes, max_minutes``, sorted by
        ``by``. Quantiles interpolate linearly between the sorted values (pandas'
        default); open targets count with their lateness so far, so medians of groups with
        many open targets are lower bounds.

    Examples
    --------
    >>> import pandas as pd
    >>> late = pd.DataFrame({"metric": ["a"] * 5, "late_minutes": [0.0, 10, 20, 30, 40],
    ...                      "open": [False] * 4 + [True]})
    >>> lateness_summary(late, by="metric")
      metric  breached  open  median_minutes  p90_minutes  max_minutes
    0      a         5     1            20.0         36.0         40.0
    """
    keys = group_keys(by)
    require_columns(late, [*keys, "late_minutes", "open"], "lateness rows")
    grouped = late.groupby(keys, observed=True, dropna=False, sort=True)
    out = grouped.agg(
        breached=("late_minutes", "size"),
        open=("open", "sum"),
        median_minutes=("late_minutes", "median"),
        p90_minutes=("late_minutes", lambda s: s.quantile(0.9)),
        max_minutes=("late_minutes", "max"),
    ).reset_index()
    out["breached"] = out["breached"].astype("int64")
    out["open"] = out["open"].astype("int64")
    for col in ("median_minutes", "p90_minutes", "max_minutes"):
        out[col] = out[col].astype("float64")
    return out

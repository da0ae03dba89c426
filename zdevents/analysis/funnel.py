"""Fair league tables: breach rates per unit against control limits (a funnel plot's table).

:func:`funnel_table` sets each unit's (group, assignee...) breach rate against 95% and 99.8%
control limits around the overall rate, with optional empirically shrunk rates. Pure pandas,
no I/O.
"""

from __future__ import annotations

from statistics import NormalDist

import pandas as pd

from .columns import AS_OF_ATTR
from .inputs import require_columns

__all__ = ["funnel_table"]

_Z95 = NormalDist().inv_cdf(0.975)
_Z998 = NormalDist().inv_cdf(0.999)


def funnel_table(
    targets: pd.DataFrame,
    by: str = "group_name",
    *,
    min_targets: int = 30,
    shrink: bool = True,
) -> pd.DataFrame:
    """Breach rate per unit against funnel-plot control limits around the overall rate.

    Method: the overall rate ``p0`` is breached / completed over all units together. For a
    unit with ``n`` completed targets the limits are ``p0 +- z sqrt(p0 (1 - p0) / n)``
    (normal approximation to the binomial), with ``z = 1.96`` (95%) and ``z = 3.09``
    (99.8%), clipped to [0, 1]. A unit is outside a limit when its rate is strictly beyond
    it. Units with fewer than ``min_targets`` completed targets are shown but never ranked
    nor flagged. Rows without a unit (null ``by``, e.g. unassigned) are left out, of the
    overall rate too.

    Shrunk rates (``shrink=True``): empirical Bayes with a beta prior fitted by the method
    of moments. The between-unit variance is ``tau2 = max(0, var(rates) - mean(p0 (1 - p0)
    / n))`` over the ranked units; the prior weight is ``m = p0 (1 - p0) / tau2 - 1``
    targets, and ``shrunk_rate = (breached + p0 m) / (n + m)``. With ``tau2 = 0`` (no spread
    beyond chance) every shrunk rate is ``p0``.

    Parameters
    ----------
    targets : pandas.DataFrame
        Output of :func:`zdevents.sla_targets` with the unit column (``group_name``,
        ``group_id``, ``assignee_id``...), or a rates frame with ``breached`` and
        ``achieved`` per unit (``zd.breach_rates(targets, by=...)``).
    by : str, default "group_name"
        The unit column.
    min_targets : int, default 30
        Completed targets a unit needs to be ranked.
    shrink : bool, default True
        Add ``shrunk_rate``.

    Returns
    -------
    pandas.DataFrame
        ``by, completed, breached, breach_rate, overall_rate, lower_95, upper_95,
        lower_998, upper_998, position`` (``"above 99.8% limit"``, ``"above 95% limit"``,
        ``"within limits"``, ``"below 95% limit"``, ``"below 99.8% limit"`` or ``"too few
        targets"``), ``rank`` (1 = lowest breach rate among the ranked units; null for
        units with too few targets) and ``shrunk_rate``. Sorted by rank, then unit.

    Examples
    --------
    >>> import pandas as pd
    >>> rates = pd.DataFrame({"group": ["A", "B"], "breached": [30, 10],
    ...                       "achieved": [70, 90]})
    >>> funnel_table(rates, by="group", shrink=False)[["group", "breach_rate", "position"]]
      group  breach_rate         position
    0     B          0.1  below 95% limit
    1     A          0.3  above 95% limit
    """
    if min_targets < 1:
        raise ValueError(f"min_targets must be at least 1, got {min_targets!r}")
    if isinstance(targets, pd.DataFrame) and {"breached", "achieved"} <= set(targets.columns):
        require_columns(targets, [by], "rates")
        units = targets[[by, "breached", "achieved"]].copy()
        units["breached"] = units["breached"].fillna(0).astype("int64")
        units["achieved"] = units["achieved"].fillna(0).astype("int64")
    else:
        require_columns(targets, [by, "outcome"])
        outcome = targets["outcome"].astype("string")
        units = pd.DataFrame(
            {
                by: targets[by].to_numpy(),
                "breached": outcome.eq("breached").fillna(False).astype("int64").to_numpy(),
                "achieved": outcome.eq("achieved").fillna(False).astype("int64").to_numpy(),
            }
        )
    units = units[units[by].notna()]
    units = units.groupby(by, sort=True, observed=True).sum().reset_index()
    units["completed"] = units["breached"] + units["achieved"]
    units = units[units["completed"] > 0].reset_index(drop=True)
    total = int(units["completed"].sum())
    p0 = float(units["breached"].sum()) / total if total else float("nan")
    n = units["completed"].astype("float64")
    rate = units["breached"] / n
    se = (p0 * (1 - p0) / n) ** 0.5
    out = pd.DataFrame(
        {
            by: units[by],
            "completed": units["completed"].astype("int64"),
            "breached": units["breached"].astype("int64"),
            "breach_rate": rate.astype("float64"),
            "overall_rate": p0,
            "lower_95": (p0 - _Z95 * se).clip(0.0, 1.0),
            "upper_95": (p0 + _Z95 * se).clip(0.0, 1.0),
            "lower_998": (p0 - _Z998 * se).clip(0.0, 1.0),
            "upper_998": (p0 + _Z998 * se).clip(0.0, 1.0),
        }
    )
    ranked = out["completed"] >= min_targets
    position = pd.Series("within limits", index=out.index, dtype=object)
    position[rate > out["upper_95"]] = "above 95% limit"
    position[rate > out["upper_998"]] = "above 99.8% limit"
    position[rate < out["lower_95"]] = "below 95% limit"
    position[rate < out["lower_998"]] = "below 99.8% limit"
    position[~ranked] = "too few targets"
    out["position"] = position.astype("string")
    rank = rate.where(ranked).rank(method="min")
    out["rank"] = rank.astype("Int64")
    if shrink:
        out["shrunk_rate"] = _shrunk(out, p0, ranked)
    out = out.sort_values(["rank", by], na_position="last", kind="mergesort").reset_index(drop=True)
    out.attrs["zdevents_method"] = (
        "funnel limits: p0 +- z*sqrt(p0(1-p0)/n), z=1.96 (95%) and 3.09 (99.8%); "
        f"units with < {min_targets} completed targets not ranked"
        + ("; shrunk rates: empirical Bayes, beta prior by the method of moments" if shrink else "")
    )
    if isinstance(targets, pd.DataFrame) and AS_OF_ATTR in targets.attrs:
        out.attrs[AS_OF_ATTR] = targets.attrs[AS_OF_ATTR]
    return out


def _shrunk(table: pd.DataFrame, p0: float, ranked: pd.Series) -> pd.Series:
    n = table["completed"].astype("float64")
    b = table["breached"].astype("float64")
    if not 0.0 < p0 < 1.0:
        return pd.Series(p0, index=table.index, dtype="float64")
    rates = table.loc[ranked, "breach_rate"]
    if len(rates) >= 2:
        tau2 = max(0.0, float(rates.var(ddof=1)) - float((p0 * (1 - p0) / n[ranked]).mean()))
    else:
        tau2 = 0.0
    if tau2 == 0.0:
        return pd.Series(p0, index=table.index, dtype="float64")
    weight = max(p0 * (1 - p0) / tau2 - 1.0, 0.0)
    return ((b + p0 * weight) / (n + weight)).astype("float64")

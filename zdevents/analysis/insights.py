"""Questions past the breach rate: how late, what is due next, is it really better, fair tables.

Every function here is pure (DataFrame in, DataFrame out, no I/O) and builds on the targets
:func:`zdevents.sla_targets` returns:

- :func:`lateness` / :func:`lateness_summary`: minutes past the target for every breached
  target (open ones measured up to ``as_of`` and marked), with median and p90 per group.
- :func:`due_targets` / :func:`due_summary`: the active targets at ``as_of`` with their due
  time, and the queue of the next hours by group and assignee.
- :func:`trend_verdicts`: the latest complete week (or month) against the previous ``k``,
  with a two-proportion z-test, the effect size and a verdict in words.
- :func:`update_pairs` / :func:`update_pairing_summary`: ``periodic_update_time`` and
  ``pausable_update_time`` paired per ticket instance; how many periodic breaches the time
  spent waiting on the customer explains.
- :func:`funnel_table`: breach rates per unit (group, assignee...) against 95% and 99.8%
  control limits around the overall rate, with optional empirically shrunk rates.

Times are compared exactly as :func:`zdevents.sla_targets` compares them: a breach at the
fulfilment's timestamp counts, a breach at ``as_of`` counts, and a target whose breach is
scheduled strictly after ``as_of`` is still active.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any, Literal

import pandas as pd

from ..dates import TimeLike, to_utc

__all__ = [
    "DUE_SOURCES",
    "PAIRINGS",
    "VERDICTS",
    "due_summary",
    "due_targets",
    "format_due",
    "funnel_table",
    "lateness",
    "lateness_summary",
    "trend_verdicts",
    "update_pairing_summary",
    "update_pairs",
]

_AS_OF_ATTR = "zdevents_as_of"
_KEY = ["ticket_id", "metric", "instance_id"]

#: Where :func:`due_targets` took each due time from, in order of preference.
DUE_SOURCES: tuple[str, ...] = (
    "scheduled breach",
    "applied + target",
    "unknown (business hours)",
    "paused",
)
#: The verdicts of :func:`trend_verdicts`.
VERDICTS: tuple[str, ...] = ("better", "worse", "no significant change", "not enough data")
#: The categories of :func:`update_pairs`, in display order.
PAIRINGS: tuple[str, ...] = (
    "both achieved",
    "periodic only",
    "pausable only",
    "both breached",
    "open",
)
_PERIODIC = "periodic_update_time"
_PAUSABLE = "pausable_update_time"


# ---------------------------------------------------------------- shared helpers


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str = "targets") -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame (zd.sla_targets output)")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lack columns: {', '.join(missing)}")


def _as_of(frame: Any, as_of: TimeLike) -> pd.Timestamp:
    """``as_of`` as UTC: the argument, else ``frame.attrs["zdevents_as_of"]``; else an error."""
    if as_of is None:
        as_of = getattr(frame, "attrs", {}).get(_AS_OF_ATTR)
    ts = to_utc(as_of, name="as_of") if as_of is not None else None
    if ts is None:
        raise ValueError(
            "as_of is unknown: pass as_of=..., or targets from zd.sla_targets (they carry it)"
        )
    return ts


def _utc(series: pd.Series) -> pd.Series:
    """A time column as tz-aware UTC (naive values read as UTC)."""
    values = pd.to_datetime(series)
    if values.dt.tz is None:
        return values.dt.tz_localize("UTC")
    return values.dt.tz_convert("UTC")


def _keys(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def _minutes(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() / 60.0


def _two_sided_p(z: float) -> float:
    """Two-sided p-value of a standard normal statistic: ``erfc(|z| / sqrt 2)``."""
    return math.erfc(abs(z) / math.sqrt(2.0))


# ---------------------------------------------------------------- 1. how late


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
    _require(targets, ["breached_at", "fulfilled_at", "outcome"])
    cutoff = _as_of(targets, as_of)
    breached = targets["outcome"].astype("string").eq("breached").fillna(False)
    out = targets[breached.to_numpy(dtype=bool)].copy()
    out = out[(_utc(out["breached_at"]) <= cutoff).to_numpy(dtype=bool)]
    breached_at = _utc(out["breached_at"])
    fulfilled_at = _utc(out["fulfilled_at"])
    is_open = fulfilled_at.isna() | (fulfilled_at > cutoff)
    until = fulfilled_at.where(~is_open, cutoff)
    out["late_until"] = until
    out["late_minutes"] = _minutes(until - breached_at).astype("float64")
    out["open"] = is_open.astype(bool)
    out = out.reset_index(drop=True)
    out.attrs[_AS_OF_ATTR] = cutoff
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
    keys = _keys(by)
    _require(late, [*keys, "late_minutes", "open"], "lateness rows")
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


# ---------------------------------------------------------------- 2. what is due


def due_targets(
    events: pd.DataFrame,
    *,
    as_of: TimeLike = None,
    targets: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The targets active at ``as_of``, each with its due time and where it comes from.

    Parameters
    ----------
    events : pandas.DataFrame
        Metric events (``zd.load_frame``), including breach events scheduled after
        ``as_of``.
    as_of : time, optional
        The moment of the queue. Default: ``events.attrs["zdevents_as_of"]``.
    targets : pandas.DataFrame, optional
        ``zd.sla_targets(events, as_of=as_of)`` when already computed, at the same
        ``as_of`` (extra columns such as ``group_id`` are kept); computed otherwise.

    Returns
    -------
    pandas.DataFrame
        The active targets with every column of ``targets`` plus:

        - ``due_at``: the earliest non-deleted breach event later than ``as_of`` (Zendesk
          writes breach events ahead, at the expected breach time); otherwise, for a
          calendar-hour target, ``applied_at + target_minutes``; otherwise null.
        - ``due_source``: ``"scheduled breach"``, ``"applied + target"``, ``"unknown
          (business hours)"`` (also a calendar target without target minutes) or
          ``"paused"`` (the clock is stopped at ``as_of``, e.g. the ticket is pending, and
          no breach is scheduled: nothing is due until it runs again; ``due_at`` is null).
          See :data:`DUE_SOURCES`. ``applied + target`` ignores time the clock was paused
          earlier, so it can only be early: a cautious estimate.
        - ``minutes_to_due``: ``due_at - as_of`` in minutes (negative: the estimate is past,
          yet no breach is recorded, e.g. the clock was paused).
        - ``as_of``: the queue's moment, to take ticket attributes at it
          (``zd.attach_ticket_attributes(due, changes, at="as_of")``).

        Sorted by ``due_at`` (unknown last). A breach event exactly at ``as_of`` has
        already happened: that target is breached, not due.

    Examples
    --------
    >>> due = due_targets(events)  # doctest: +SKIP
    >>> due[due["minutes_to_due"] <= 240]  # doctest: +SKIP
    """
    from .sla import sla_targets

    _require(events, ["ticket_id", "metric", "instance_id", "type", "time"], "events")
    cutoff = _as_of(events, as_of)
    if targets is None:
        targets = sla_targets(events, as_of=cutoff)
    _require(targets, [*_KEY, "outcome", "applied_at", "target_minutes", "business_hours"])
    active = targets[targets["outcome"].astype("string").eq("active").fillna(False).to_numpy(bool)]
    active = active.copy()

    ev = events
    is_breach = ev["type"].astype("string").eq("breach").fillna(False)
    if "deleted" in ev.columns:
        is_breach &= ~ev["deleted"].astype("boolean").fillna(False)
    times = _utc(ev["time"])
    keyed_rows = _keyed(ev)
    ahead = is_breach & keyed_rows & (times > cutoff)
    scheduled = pd.DataFrame(
        {
            "ticket_id": ev.loc[ahead, "ticket_id"].astype("int64"),
            "metric": ev.loc[ahead, "metric"].astype(str),
            "instance_id": ev.loc[ahead, "instance_id"].astype("int64"),
            "_kind": (
                ev.loc[ahead, "sla_kind"].astype("string")
                if "sla_kind" in ev.columns
                else pd.Series(pd.NA, index=ev.index[ahead], dtype="string")
            ),
            "_scheduled": times[ahead],
        }
    )

    keyed = pd.DataFrame(
        {
            "_row": range(len(active)),
            "ticket_id": active["ticket_id"].astype("int64").to_numpy(),
            "metric": active["metric"].astype(str).to_numpy(),
            "instance_id": active["instance_id"].astype("int64").to_numpy(),
            "sla_kind": (
                active["sla_kind"].astype("string").to_numpy()
                if "sla_kind" in active.columns
                else pd.array(["sla"] * len(active), dtype="string")
            ),
        }
    )
    matched = keyed.merge(scheduled, on=_KEY, how="inner")
    matched = matched[matched["_kind"].isna() | (matched["_kind"] == matched["sla_kind"])]
    first = matched.groupby("_row")["_scheduled"].min()
    scheduled_at = pd.Series(pd.NaT, index=range(len(active)), dtype="datetime64[ms, UTC]")
    scheduled_at.loc[first.index] = first.astype("datetime64[ms, UTC]").to_numpy()

    paused = _paused(events, times, cutoff, keyed)
    applied = _utc(active["applied_at"]).reset_index(drop=True)
    minutes = pd.to_numeric(active["target_minutes"], errors="coerce").reset_index(drop=True)
    business = active["business_hours"].astype("boolean").reset_index(drop=True)
    calendar = business.eq(False).fillna(False) & minutes.notna() & ~paused
    estimate = applied + pd.to_timedelta(minutes.where(calendar), unit="m")

    due_at = scheduled_at.where(scheduled_at.notna(), estimate.where(calendar))
    source = pd.Series(DUE_SOURCES[2], index=range(len(active)), dtype=object)
    source[calendar.to_numpy()] = DUE_SOURCES[1]
    source[paused.to_numpy()] = DUE_SOURCES[3]
    source[scheduled_at.notna().to_numpy()] = DUE_SOURCES[0]

    active = active.reset_index(drop=True)
    active["due_at"] = due_at.astype("datetime64[ms, UTC]")
    active["due_source"] = source.astype("string")
    active["minutes_to_due"] = _minutes(active["due_at"] - cutoff).astype("float64")
    active["as_of"] = pd.Series(cutoff, index=active.index).astype("datetime64[ms, UTC]")
    active = active.sort_values(["due_at", *_KEY], na_position="last", kind="mergesort")
    active = active.reset_index(drop=True)
    active.attrs[_AS_OF_ATTR] = cutoff
    return active


def _keyed(events: pd.DataFrame) -> pd.Series:
    """Rows with a ticket, metric, instance and time (the others are ignored, as in
    :func:`zdevents.sla_targets`)."""
    return (
        events["ticket_id"].notna()
        & events["metric"].notna()
        & events["instance_id"].notna()
        & events["time"].notna()
    )


def _paused(
    events: pd.DataFrame, times: pd.Series, cutoff: pd.Timestamp, keyed: pd.DataFrame
) -> pd.Series:
    """Per row of ``keyed``: is the metric's clock stopped at ``cutoff``?

    The clock's state is its last ``activate`` or ``pause`` at or before ``cutoff`` (ties at
    one timestamp go to the larger event id).
    """
    kind = events["type"].astype("string")
    clock = kind.isin(["activate", "pause"]).fillna(False) & _keyed(events) & (times <= cutoff)
    if "deleted" in events.columns:
        clock &= ~events["deleted"].astype("boolean").fillna(False)
    moves = pd.DataFrame(
        {
            "ticket_id": events.loc[clock, "ticket_id"].astype("int64"),
            "metric": events.loc[clock, "metric"].astype(str),
            "instance_id": events.loc[clock, "instance_id"].astype("int64"),
            "_time": times[clock],
            "_id": events.loc[clock, "id"].astype("int64") if "id" in events.columns else 0,
            "_paused": kind[clock].eq("pause").to_numpy(bool),
        }
    ).sort_values(["_time", "_id"], kind="mergesort")
    last = moves.drop_duplicates(_KEY, keep="last")[[*_KEY, "_paused"]]
    state = keyed[["_row", *_KEY]].merge(last, on=_KEY, how="left").set_index("_row")
    return state["_paused"].reindex(range(len(keyed))).fillna(False).astype(bool)


def _pick(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    return next((n for n in names if n in frame.columns), None)


def due_summary(
    due: pd.DataFrame,
    within: str | pd.Timedelta = "4h",
    *,
    by: Sequence[str] | None = None,
    groups: Mapping[int, str] | None = None,
    assignees: Mapping[int, str] | None = None,
) -> pd.DataFrame:
    """The queue of the next hours: how many targets fall due, per group and assignee.

    Parameters
    ----------
    due : pandas.DataFrame
        Output of :func:`due_targets` (optionally with ticket attributes attached).
    within : str or Timedelta, default "4h"
        The horizon: targets with ``as_of <= due_at <= as_of + within`` are "due".
    by : sequence of str, optional
        Grouping columns. Default: the group (``group_name``, else ``group_id``) and the
        assignee (``assignee_name``, else ``assignee_id``) columns present; with neither,
        one row for everything.
    groups, assignees : mapping of int to str, optional
        Id -> name lookups; add ``group_name`` / ``assignee_name`` from ``group_id`` /
        ``assignee_id`` (unknown ids keep the id as text).

    Returns
    -------
    pandas.DataFrame
        ``*by, due, overdue_estimate, unknown_due, next_due_at``: targets due within the
        horizon, targets whose estimated due time is already past (``due_at < as_of``),
        targets whose due time is unknown (business-hour targets without a scheduled
        breach), and the earliest due time in the horizon. Sorted by ``next_due_at``;
        rows with nothing due or overdue and nothing unknown are left out.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.Timestamp("2024-01-01", tz="UTC")
    >>> due = pd.DataFrame({"group_id": [1, 1, 2],
    ...     "due_at": [t + pd.Timedelta(hours=1), t + pd.Timedelta(hours=9), pd.NaT],
    ...     "as_of": [t, t, t]})
    >>> due_summary(due, "4h")[["group_id", "due", "unknown_due"]]
      group_id  due  unknown_due
    0        1    1            0
    1        2    0            1
    """
    _require(due, ["due_at", "as_of"], "due targets")
    horizon = pd.Timedelta(within)
    if horizon < pd.Timedelta(0):
        raise ValueError(f"within must not be negative, got {within!r}")
    frame = due.copy()
    if groups is not None and "group_id" in frame.columns:
        frame["group_name"] = _names(frame["group_id"], groups)
    if assignees is not None and "assignee_id" in frame.columns:
        frame["assignee_name"] = _names(frame["assignee_id"], assignees)
    if by is None:
        keys = [
            c
            for c in (
                _pick(frame, ("group_name", "group_id")),
                _pick(frame, ("assignee_name", "assignee_id")),
            )
            if c
        ]
    else:
        keys = list(by)
        _require(frame, keys, "due targets")
    due_at = _utc(frame["due_at"])
    as_of = _utc(frame["as_of"])
    frame["_due"] = (due_at >= as_of) & (due_at <= as_of + horizon)
    frame["_overdue"] = due_at < as_of
    frame["_unknown"] = due_at.isna()
    frame["_next"] = due_at.where(frame["_due"])
    if not keys:
        frame["_all"] = "all"
        keys_used = ["_all"]
    else:
        keys_used = keys
    for key in keys_used:  # show missing ids/names as "(none)" rather than dropping the row
        frame[key] = frame[key].astype("string").fillna("(none)")
    out = (
        frame.groupby(keys_used, sort=True)
        .agg(
            due=("_due", "sum"),
            overdue_estimate=("_overdue", "sum"),
            unknown_due=("_unknown", "sum"),
            next_due_at=("_next", "min"),
        )
        .reset_index()
    )
    for col in ("due", "overdue_estimate", "unknown_due"):
        out[col] = out[col].astype("int64")
    out = out[(out["due"] + out["overdue_estimate"] + out["unknown_due"]) > 0]
    if not keys:
        out = out.drop(columns="_all")
    out = out.sort_values(["next_due_at", *keys], na_position="last", kind="mergesort")
    return out.reset_index(drop=True)


def _names(ids: pd.Series, lookup: Mapping[int, str]) -> pd.Series:
    def name(value: object) -> object:
        if value is None or pd.isna(value):
            return pd.NA
        return lookup.get(int(value), str(int(value)))

    return ids.astype(object).map(name).astype("string")


# ---------------------------------------------------------------- 3. is it really better


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
    keys = _keys(by)
    _require(targets, [*keys, "outcome", "applied_at"])
    if freq not in ("W", "M"):
        raise ValueError(f'freq must be "W" or "M", got {freq!r}')
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    cutoff = _as_of(targets, as_of)
    frame = targets[[*keys, "outcome", "applied_at"]].copy()
    frame = frame[frame["applied_at"].notna()]
    outcome = frame["outcome"].astype("string")
    frame["_breached"] = outcome.eq("breached").fillna(False).astype("int64")
    frame["_achieved"] = outcome.eq("achieved").fillna(False).astype("int64")
    frame["_active"] = outcome.eq("active").fillna(False).astype("int64")
    frame["period"] = _period_start(_utc(frame["applied_at"]), freq)
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
    out.attrs[_AS_OF_ATTR] = cutoff
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


# ---------------------------------------------------------------- 4. periodic vs pausable


def _pairing(periodic: str, pausable: str) -> str:
    if "active" in (periodic, pausable):
        return "open"
    if periodic == "breached":
        return "both breached" if pausable == "breached" else "periodic only"
    return "pausable only" if pausable == "breached" else "both achieved"


def update_pairs(targets: pd.DataFrame) -> pd.DataFrame:
    """``periodic_update_time`` and ``pausable_update_time`` paired per ticket instance.

    The two metrics time the same thing (time between public agent comments); pausable
    stops its clock while the ticket waits on the customer (pending). An instance whose
    periodic update breached while the pausable one was achieved is a breach that the
    customer's waiting explains.

    Parameters
    ----------
    targets : pandas.DataFrame
        Output of :func:`zdevents.sla_targets`, optionally with ticket attributes. Only
        ``sla_kind == "sla"`` targets are paired (when the column exists).

    Returns
    -------
    pandas.DataFrame
        One row per ``(ticket_id, instance_id)`` that has both targets: ``ticket_id,
        instance_id, periodic_outcome, pausable_outcome, pairing`` (one of
        :data:`PAIRINGS`: ``"both achieved"``, ``"periodic only"`` (periodic breached,
        pausable achieved), ``"pausable only"``, ``"both breached"``, ``"open"`` (either
        still active)), ``periodic_breached_at, pausable_breached_at``, and the other
        columns of the periodic target (``policy_title``, ``group_id``...).

    Examples
    --------
    >>> import pandas as pd
    >>> targets = pd.DataFrame({"ticket_id": [1, 1], "instance_id": [1, 1],
    ...     "metric": ["periodic_update_time", "pausable_update_time"],
    ...     "outcome": ["breached", "achieved"], "breached_at": [pd.NaT, pd.NaT]})
    >>> update_pairs(targets)[["ticket_id", "instance_id", "pairing"]]
       ticket_id  instance_id        pairing
    0          1            1  periodic only
    """
    _require(targets, ["ticket_id", "metric", "instance_id", "outcome", "breached_at"])
    frame = targets
    if "sla_kind" in frame.columns:
        frame = frame[frame["sla_kind"].astype("string").eq("sla").fillna(False).to_numpy(bool)]
    metric = frame["metric"].astype("string")
    periodic = frame[metric.eq(_PERIODIC).fillna(False).to_numpy(bool)]
    pausable = frame[metric.eq(_PAUSABLE).fillna(False).to_numpy(bool)]
    pair_key = ["ticket_id", "instance_id"]
    right = pausable[[*pair_key, "outcome", "breached_at"]].rename(
        columns={"outcome": "pausable_outcome", "breached_at": "pausable_breached_at"}
    )
    left = periodic.rename(
        columns={"outcome": "periodic_outcome", "breached_at": "periodic_breached_at"}
    ).drop(columns=[c for c in ("metric", "metric_label", "reply_kind") if c in periodic])
    pairs = left.merge(right, on=pair_key, how="inner")
    pairs["periodic_outcome"] = pairs["periodic_outcome"].astype("string")
    pairs["pausable_outcome"] = pairs["pausable_outcome"].astype("string")
    pairs["pairing"] = pd.Series(
        [
            _pairing(a, b)
            for a, b in zip(pairs["periodic_outcome"], pairs["pausable_outcome"], strict=True)
        ],
        index=pairs.index,
        dtype="string",
    )
    first = [
        *pair_key,
        "periodic_outcome",
        "pausable_outcome",
        "pairing",
        "periodic_breached_at",
        "pausable_breached_at",
    ]
    rest = [c for c in pairs.columns if c not in first]
    out = pairs[first + rest].sort_values(pair_key, kind="mergesort").reset_index(drop=True)
    out.attrs = dict(getattr(targets, "attrs", {}))
    return out


def update_pairing_summary(
    pairs: pd.DataFrame, by: str | Sequence[str] | None = "policy_title"
) -> pd.DataFrame:
    """Counts of each pairing per group, and the share of periodic breaches pending explains.

    Parameters
    ----------
    pairs : pandas.DataFrame
        Output of :func:`update_pairs`.
    by : str, sequence of str or None, default "policy_title"
        Group column(s) (e.g. ``"group_name"``); None for one overall row.

    Returns
    -------
    pandas.DataFrame
        ``*by, pairs``, one count column per :data:`PAIRINGS` category, then
        ``periodic_breached`` (periodic only + both breached) and ``explained_by_waiting``
        = periodic only / periodic_breached (NaN when no periodic breach).

    Examples
    --------
    >>> import pandas as pd
    >>> pairs = pd.DataFrame({"policy_title": ["A", "A", "A"],
    ...     "pairing": ["periodic only", "both breached", "both achieved"]})
    >>> update_pairing_summary(pairs)[["policy_title", "pairs", "periodic only",
    ...                                "explained_by_waiting"]]
      policy_title  pairs  periodic only  explained_by_waiting
    0            A      3              1                   0.5
    """
    keys = [] if by is None else _keys(by)
    _require(pairs, [*keys, "pairing"], "pairs")
    frame = pairs[[*keys, "pairing"]].copy()
    if not keys:
        frame["_all"] = "all"
    group = keys or ["_all"]
    for key in group:
        frame[key] = frame[key].astype(object).where(frame[key].notna(), "(none)")
    table = pd.crosstab([frame[k] for k in group], frame["pairing"].astype(str))
    table = table.reindex(columns=list(PAIRINGS), fill_value=0).astype("int64")
    table.columns.name = None
    out = table.reset_index()
    out.insert(len(group), "pairs", table.sum(axis=1).to_numpy().astype("int64"))
    out["periodic_breached"] = (out["periodic only"] + out["both breached"]).astype("int64")
    explained = out["periodic only"] / out["periodic_breached"].where(out["periodic_breached"] > 0)
    out["explained_by_waiting"] = explained.astype("float64")
    if not keys:
        out = out.drop(columns="_all")
    return out


# ---------------------------------------------------------------- 5. fair league tables

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
        _require(targets, [by], "rates")
        units = targets[[by, "breached", "achieved"]].copy()
        units["breached"] = units["breached"].fillna(0).astype("int64")
        units["achieved"] = units["achieved"].fillna(0).astype("int64")
    else:
        _require(targets, [by, "outcome"])
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
    if isinstance(targets, pd.DataFrame) and _AS_OF_ATTR in targets.attrs:
        out.attrs[_AS_OF_ATTR] = targets.attrs[_AS_OF_ATTR]
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


def format_due(due: pd.DataFrame, within: str | pd.Timedelta = "4h", *, limit: int = 15) -> str:
    """The at-risk queue as plain text: a headline, the table by group and assignee, the
    soonest targets.

    Parameters
    ----------
    due : pandas.DataFrame
        Output of :func:`due_targets` (optionally with ticket attributes).
    within : str or Timedelta, default "4h"
    limit : int, default 15
        How many of the soonest targets to list.

    Examples
    --------
    >>> print(format_due(due_targets(events), "4h"))  # doctest: +SKIP
    """
    horizon = pd.Timedelta(within)
    as_of = due.attrs.get(_AS_OF_ATTR)
    if as_of is None and len(due):
        as_of = due["as_of"].iloc[0]
    when = f"{as_of:%Y-%m-%d %H:%M} UTC" if as_of is not None else "now"
    if due.empty:
        return f"no active SLA targets at {when}"
    due_at = _utc(due["due_at"])
    cutoff = _utc(due["as_of"])
    soon = due[((due_at >= cutoff) & (due_at <= cutoff + horizon)).to_numpy(bool)]
    source = due["due_source"].astype(str)
    head = (
        f"{len(soon):,} SLA targets due within {_span(horizon)} of {when} "
        f"({len(due):,} active: {int((due_at < cutoff).sum()):,} past their estimated due time, "
        f"{int((due_at > cutoff + horizon).sum()):,} due later, "
        f"{int((source == DUE_SOURCES[2]).sum()):,} business-hour targets with no scheduled "
        f"breach, {int((source == DUE_SOURCES[3]).sum()):,} paused)"
    )
    lines = [head]
    summary = due_summary(due, horizon)
    summary = summary[summary["due"] > 0]
    if not summary.empty:
        table = (
            summary.drop(columns=["unknown_due"])
            .assign(next_due_at=summary["next_due_at"].dt.strftime("%m-%d %H:%M"))
            .rename(
                columns={
                    "group_name": "group",
                    "group_id": "group id",
                    "assignee_name": "assignee",
                    "assignee_id": "assignee id",
                    "due": f"due within {_span(horizon)}",
                    "overdue_estimate": "past estimated due",
                    "next_due_at": "next due (UTC)",
                }
            )
        )
        lines += ["", table.to_string(index=False)]
    if not soon.empty:
        shown = soon.head(limit)
        label = shown["metric_label"] if "metric_label" in shown else shown["metric"]
        listing = pd.DataFrame(
            {
                "due (UTC)": _utc(shown["due_at"]).dt.strftime("%m-%d %H:%M").to_numpy(),
                "in": [f"{m:.0f} min" for m in shown["minutes_to_due"]],
                "ticket": shown["ticket_id"].to_numpy(),
                "metric": label.astype(str).to_numpy(),
                "from": shown["due_source"].astype(str).to_numpy(),
            }
        )
        more = f" (first {limit} of {len(soon):,})" if len(soon) > limit else ""
        lines += ["", f"soonest{more}:", listing.to_string(index=False)]
    return "\n".join(lines)


def _span(delta: pd.Timedelta) -> str:
    minutes = delta.total_seconds() / 60
    if minutes % 60 == 0:
        return f"{minutes / 60:g}h"
    return f"{minutes:g} min"

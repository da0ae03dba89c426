"""What is due: the active SLA targets at ``as_of`` with their due time, and the queue.

:func:`due_targets` gives every active target its due time (and where it came from, see
:data:`DUE_SOURCES`); :func:`due_summary` counts the queue of the next hours by group and
assignee; :func:`format_due` renders it as plain text for the command line. Pure pandas,
no I/O.

Times are compared exactly as :func:`zdevents.sla_targets` compares them: a breach at the
fulfilment's timestamp counts, a breach at ``as_of`` counts, and a target whose breach is
scheduled strictly after ``as_of`` is still active.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from ..dates import TimeLike
from .columns import AS_OF_ATTR, INSTANCE_KEY
from .inputs import require_columns, resolve_as_of, to_minutes, utc_times
from .sla import sla_targets
from .tickets import id_names

__all__ = ["DUE_SOURCES", "due_summary", "due_targets", "format_due"]

#: Where :func:`due_targets` took each due time from, in order of preference.
DUE_SOURCES: tuple[str, ...] = (
    "scheduled breach",
    "applied + target",
    "unknown (business hours)",
    "paused",
)


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
    require_columns(events, ["ticket_id", "metric", "instance_id", "type", "time"], "events")
    cutoff = resolve_as_of(events, as_of)
    if targets is None:
        targets = sla_targets(events, as_of=cutoff)
    require_columns(
        targets, [*INSTANCE_KEY, "outcome", "applied_at", "target_minutes", "business_hours"]
    )
    active = targets[targets["outcome"].astype("string").eq("active").fillna(False).to_numpy(bool)]
    active = active.copy()

    ev = events
    is_breach = ev["type"].astype("string").eq("breach").fillna(False)
    if "deleted" in ev.columns:
        is_breach &= ~ev["deleted"].astype("boolean").fillna(False)
    times = utc_times(ev["time"])
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
    matched = keyed.merge(scheduled, on=INSTANCE_KEY, how="inner")
    matched = matched[matched["_kind"].isna() | (matched["_kind"] == matched["sla_kind"])]
    first = matched.groupby("_row")["_scheduled"].min()
    scheduled_at = pd.Series(pd.NaT, index=range(len(active)), dtype="datetime64[ms, UTC]")
    scheduled_at.loc[first.index] = first.astype("datetime64[ms, UTC]").to_numpy()

    paused = _paused(events, times, cutoff, keyed)
    applied = utc_times(active["applied_at"]).reset_index(drop=True)
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
    active["minutes_to_due"] = to_minutes(active["due_at"] - cutoff).astype("float64")
    active["as_of"] = pd.Series(cutoff, index=active.index).astype("datetime64[ms, UTC]")
    active = active.sort_values(["due_at", *INSTANCE_KEY], na_position="last", kind="mergesort")
    active = active.reset_index(drop=True)
    active.attrs[AS_OF_ATTR] = cutoff
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
    last = moves.drop_duplicates(INSTANCE_KEY, keep="last")[[*INSTANCE_KEY, "_paused"]]
    state = (
        keyed[["_row", *INSTANCE_KEY]].merge(last, on=INSTANCE_KEY, how="left").set_index("_row")
    )
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
    require_columns(due, ["due_at", "as_of"], "due targets")
    horizon = pd.Timedelta(within)
    if horizon < pd.Timedelta(0):
        raise ValueError(f"within must not be negative, got {within!r}")
    frame = due.copy()
    if groups is not None and "group_id" in frame.columns:
        frame["group_name"] = id_names(frame["group_id"], groups)
    if assignees is not None and "assignee_id" in frame.columns:
        frame["assignee_name"] = id_names(frame["assignee_id"], assignees)
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
        require_columns(frame, keys, "due targets")
    due_at = utc_times(frame["due_at"])
    as_of = utc_times(frame["as_of"])
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
    as_of = due.attrs.get(AS_OF_ATTR)
    if as_of is None and len(due):
        as_of = due["as_of"].iloc[0]
    when = f"{as_of:%Y-%m-%d %H:%M} UTC" if as_of is not None else "now"
    if due.empty:
        return f"no active SLA targets at {when}"
    due_at = utc_times(due["due_at"])
    cutoff = utc_times(due["as_of"])
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
                "due (UTC)": utc_times(shown["due_at"]).dt.strftime("%m-%d %H:%M").to_numpy(),
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

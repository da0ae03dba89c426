"""SLA targets and breach rates from ticket metric events, written once for every engine.

The unit of every breach rate is one *SLA target*: a ``(ticket_id, metric, instance_id)``
that an SLA policy applied to (see "SLA outcome of one target" in the Zendesk notes).
:func:`sla_targets` turns metric events into one row per target, :func:`breach_rates`
(:mod:`zdevents.analysis.rates`) counts outcomes per group with a Wilson score interval, and
:func:`applied_between` selects the targets of a window.

Both functions return the same kind of frame they were given: pandas in, pandas out.
:func:`sla_targets` runs the rules in one of two implementations of the same rules, which
the tests compare row for row:

* pandas frames, pyarrow Tables, polars frames (eager or lazy) and DuckDB relations: one
  DuckDB query (:mod:`zdevents.analysis.targets_sql`) (DuckDB is a dependency; pandas data goes in and out through Arrow). A DuckDB
  relation stays lazy and runs out of core (DuckDB spills to disk); a polars LazyFrame is
  read once and its targets come back as a LazyFrame.
* Dask and Spark DataFrames (and any other narwhals engine): a `narwhals
  <https://narwhals-dev.github.io/narwhals/>`_ plan (:mod:`zdevents.analysis.targets_frame`) of group-bys, joins and filters that
  distributes. Nothing depends on row order, so they compute exactly what pandas computes.

Engine notes
------------
* pandas, polars ``DataFrame``/``LazyFrame``, Dask ``DataFrame``: tested, identical results.
* DuckDB relations: work; timestamps come back in microseconds, and day/week/month
  truncation follows the connection's ``TimeZone`` setting (set it to ``UTC``).
* Lazy inputs give lazy outputs (``collect()`` / ``.compute()`` them); only eager results
  are sorted by :func:`sla_targets`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..dates import time_range, to_utc
from ..schema import empty_table, to_pandas
from .columns import AS_OF_ATTR, OPTIONAL_EVENT_COLUMNS, TARGET_COLUMNS, WINDOW_ATTR
from .engines import from_native, nw
from .labels import METRIC_LABELS, metric_label
from .rates import breach_rates
from .targets_frame import targets_narwhals
from .targets_sql import targets_duckdb

__all__ = [
    "METRIC_LABELS",
    "TARGET_COLUMNS",
    "WindowedEventsWarning",
    "applied_between",
    "breach_rates",
    "metric_label",
    "sla_targets",
]


class WindowedEventsWarning(UserWarning):
    """:func:`sla_targets` was given events loaded for a window of a longer history."""


def _resolve_as_of(events: Any, as_of: Any) -> pd.Timestamp:
    """The as-of time as a UTC Timestamp: argument, else the frame's attrs, else now."""
    if as_of is None:
        attrs = getattr(events, "attrs", None)
        if isinstance(attrs, Mapping) and attrs.get(AS_OF_ATTR) is not None:
            as_of = attrs[AS_OF_ATTR]
        else:
            return pd.Timestamp.now(tz="UTC")
    ts = to_utc(as_of, name="as_of")  # the one time parser: numbers are Unix seconds
    assert ts is not None
    return ts


def _warn_if_windowed(events: Any) -> None:
    """Say so when ``events`` is a window of a longer cached history (see rule 8)."""
    attrs = getattr(events, "attrs", None)
    window = attrs.get(WINDOW_ATTR) if isinstance(attrs, Mapping) else None
    if not window:
        return
    since, until = (t.isoformat() if t is not None else None for t in window)
    bounds = ", ".join(f"{k}={v!r}" for k, v in (("since", since), ("until", until)) if v)
    warnings.warn(
        f"sla_targets: these events were loaded with {bounds}, a window of a longer cached "
        "history, so the events outside it are missing: targets fulfilled or breached after "
        "the window count as active and the breach rate leans towards quick fulfilments. "
        "Compute targets on the whole history and select them instead: "
        "zd.applied_between(zd.sla_targets(zd.load_frame()), since, until)",
        WindowedEventsWarning,
        stacklevel=3,
    )


def sla_targets(events: Any, *, as_of: Any = None) -> Any:
    """One row per SLA target, with its policy, fulfilment, breach and outcome.

    Implements "SLA outcome of one target" of the Zendesk notes. Every choice below is
    deliberate; tests pin each one.

    Parameters
    ----------
    events : DataFrame-like
        Metric events with the columns of the cache contract (``id, ticket_id, metric,
        instance_id, type, time, sla_kind, sla_target_minutes, sla_business_hours,
        policy_id, policy_title, status_calendar_minutes, status_business_minutes,
        deleted``). A pandas frame may lack the columns after ``time`` (read as null);
        other engines need them all. pandas, pyarrow Table, polars (eager or lazy), DuckDB
        relation, Dask or Spark DataFrame; lazy frames need no materializing first.
    as_of : str, date, datetime, Timestamp or Unix seconds, optional
        The time the data describes, read by :func:`zdevents.to_utc` (``1704067200`` is
        2024-01-01; naive values are UTC). Default: ``events.attrs["zdevents_as_of"]`` (set
        by ``load_frame``: the cache cursor) when present, else the current UTC time.

    Returns
    -------
    DataFrame-like
        Same kind as ``events`` with the columns of :data:`TARGET_COLUMNS`:

        - ``ticket_id, metric, instance_id, sla_kind``: the target's key. ``sla_kind`` is
          ``"sla"`` for targets from ``apply_sla`` and ``"group_sla"`` for targets from
          ``apply_group_sla``: a group SLA is a separate target even on the same metric
          instance.
        - ``reply_kind``: ``"first_reply"`` (``reply_time`` instance 1), ``"next_reply"``
          (instance > 1), null for other metrics: the column to split first from next
          replies. ``metric_label``: the human label of :func:`metric_label` ("First
          reply", "Next reply", "Periodic update", ...), handy as a ``by`` of
          :func:`breach_rates` and for charts.
        - ``policy_id, policy_title, target_minutes, business_hours, applied_at``: from the
          apply event in force.
        - ``fulfilled_at``: the fulfilment (null when open), ``breached_at``: the earliest
          counted breach (null when none), ``outcome``: ``"breached"``, ``"achieved"`` or
          ``"active"``.
        - ``status_calendar_minutes, status_business_minutes``: from ``update_status``
          (null when Zendesk sent none or the target is open).
        - ``elapsed_minutes``: time to fulfilment in the target's own clock: business
          minutes when ``business_hours`` is true, else calendar minutes, from
          ``update_status``; when that is missing, calendar minutes from the first
          ``activate`` to ``fulfilled_at`` (this fallback includes paused time). Null for
          open targets. ``elapsed_ratio = elapsed_minutes / target_minutes`` (null when the
          target is not positive): 1.0 is the target line.

        Eager results (pandas, polars DataFrame) are sorted by the key; pandas results get
        a fresh RangeIndex and ``attrs["zdevents_as_of"]`` set to the as-of used. Lazy
        results have no defined row order.

    Notes
    -----
    Rules, all evaluated per ``(ticket_id, metric, instance_id)``:

    1. Events whose ``deleted`` is true are ignored before anything else, whatever their
       type (Zendesk's guidance): a deleted ``apply_sla`` applies no policy (a target whose
       only apply is deleted is not a target), a deleted ``fulfill`` fulfils nothing, a
       deleted ``activate`` reopens nothing, a deleted breach does not count. Events later
       than ``as_of`` are ignored, whatever their type: the result is the state as of
       ``as_of``. (For the default as-of only future-scheduled breaches are affected; an
       earlier ``as_of`` gives a point-in-time view.) Rows with a null ticket_id, metric,
       instance_id or time are ignored.
    2. Fulfilment: the last ``fulfill``, unless an ``activate`` is strictly later (the
       ticket was reopened: the target is open again). At equal timestamps ``activate``
       counts as earlier than ``fulfill`` (Zendesk writes both at ticket creation when
       the creating comment fulfils the metric).
    3. Target in force: the last apply (``apply_sla`` for ``sla``, ``apply_group_sla`` for
       ``group_sla``) at or before the fulfilment; for an open target the last apply at or
       before ``as_of``. Ties at one timestamp go to the larger event ``id``. An apply at
       the same timestamp as the fulfilment is in force (apply sorts before fulfil). No
       such apply (e.g. fulfilled before any SLA applied, or applied only after the
       fulfilment) -> not a target.
    4. A (not deleted) breach counts when its time <= ``fulfilled_at`` (if
       fulfilled; a breach at the fulfilment's timestamp counts) and <= ``as_of``. It
       counts for every target of the instance; if the breach event carries an
       ``sla_kind`` it counts only for targets of that kind. The time of the apply is not
       a condition (the spec names none).
    5. ``outcome``: ``breached`` if a counted breach exists (a breached target that is
       fulfilled later stays breached), else ``achieved`` if fulfilled, else ``active``.
    6. ``update_status``: the latest one at or after ``fulfilled_at`` (ties: larger id).
    7. Metrics and event types the rules do not know pass through: an unknown metric with
       an ``apply_sla`` is a target like any other; unknown types are ignored.
    8. A target's outcome needs all of its events. Events loaded for a window
       (``load_frame(since, until)`` that leaves cached events out, marked in
       ``attrs["zdevents_window"]``) give a :class:`WindowedEventsWarning`: a target
       fulfilled or breached after the window would count as active, biasing the rate
       towards quick fulfilments. Compute targets on the whole history and select them with
       :func:`applied_between` (what :func:`zdevents.build_report` does).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.Timestamp("2024-01-01", tz="UTC")
    >>> ev = pd.DataFrame({
    ...     "id": [1, 2, 3], "ticket_id": 7, "metric": "reply_time", "instance_id": 1,
    ...     "type": ["activate", "apply_sla", "fulfill"],
    ...     "time": [t, t, t + pd.Timedelta(minutes=30)],
    ...     "sla_target_minutes": [None, 60, None], "sla_business_hours": [None, False, None],
    ... })
    >>> sla_targets(ev, as_of="2024-02-01")[["metric", "reply_kind", "outcome"]]
           metric   reply_kind   outcome
    0  reply_time  first_reply  achieved
    """
    as_of_ts = _resolve_as_of(events, as_of)
    _warn_if_windowed(events)
    if isinstance(events, pd.DataFrame):
        absent = [c for c in OPTIONAL_EVENT_COLUMNS if c not in events.columns]
        if absent:
            typed = to_pandas(empty_table("metric_events"))  # no rows, load_frame's dtypes
            events = events.assign(
                **{c: pd.Series(pd.NA, index=events.index, dtype=typed[c].dtype) for c in absent}
            )
    fast = targets_duckdb(events, as_of_ts)
    if fast is not None:
        return fast
    return targets_narwhals(events, as_of_ts)


def applied_between(targets: Any, since: Any = None, until: Any = None) -> Any:
    """Targets whose SLA applied in the half-open range ``[since, until)``.

    Works on any frame :func:`sla_targets` returns (pandas in, pandas out; lazy stays lazy).
    ``since``/``until`` take every input :func:`zdevents.to_utc` reads (naive = UTC). This
    is how to study a window: compute the targets on the whole history, then select them
    (events loaded for the window alone miss the fulfilments and breaches after it).

    Examples
    --------
    >>> recent = applied_between(targets, since="2024-06-01")  # doctest: +SKIP
    """
    start, end = time_range(since, until)
    frame = from_native(targets)
    if start is not None:
        frame = frame.filter(nw.col("applied_at") >= start.to_pydatetime())
    if end is not None:
        frame = frame.filter(nw.col("applied_at") < end.to_pydatetime())
    return frame.to_native()

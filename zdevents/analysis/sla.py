"""SLA targets and breach rates from ticket metric events, written once for every engine.

The unit of every breach rate is one *SLA target*: a ``(ticket_id, metric, instance_id)``
that an SLA policy applied to (see "SLA outcome of one target" in the Zendesk notes).
:func:`sla_targets` turns metric events into one row per target, :func:`breach_rates`
counts outcomes per group with a Wilson score interval.

Both functions return the same kind of frame they were given: pandas in, pandas out.
:func:`sla_targets` runs the rules in one of two implementations of the same rules, which
the tests compare row for row:

* pandas frames, pyarrow Tables, polars frames (eager or lazy) and DuckDB relations: one
  DuckDB query (DuckDB is a dependency; pandas data goes in and out through Arrow). A DuckDB
  relation stays lazy and runs out of core (DuckDB spills to disk); a polars LazyFrame is
  read once and its targets come back as a LazyFrame.
* Dask and Spark DataFrames (and any other narwhals engine): a `narwhals
  <https://narwhals-dev.github.io/narwhals/>`_ plan of group-bys, joins and filters that
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

import datetime as dt
import logging
import warnings
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any, Literal

import pandas as pd
import pyarrow as pa

try:  # narwhals >= 2 has the v2 stable API; fall back to v1 on older installs
    import narwhals.stable.v2 as nw
except ImportError:  # pragma: no cover - depends on the installed narwhals
    import narwhals.stable.v1 as nw  # type: ignore[no-redef]

from ..dates import time_range, to_utc
from ..schema import METRIC_EVENTS_SCHEMA, empty_table, to_pandas
from .labels import (
    FIRST_REPLY,
    METRIC_LABELS,
    NEXT_REPLY,
    REPLY_METRIC,
    metric_label,
    metric_label_sql,
)

__all__ = [
    "METRIC_LABELS",
    "TARGET_COLUMNS",
    "WindowedEventsWarning",
    "applied_between",
    "breach_rates",
    "metric_label",
    "sla_targets",
]

logger = logging.getLogger(__name__)


class WindowedEventsWarning(UserWarning):
    """:func:`sla_targets` was given events loaded for a window of a longer history."""


#: Columns of the frame :func:`sla_targets` returns, in order.
TARGET_COLUMNS: tuple[str, ...] = (
    "ticket_id",
    "metric",
    "instance_id",
    "sla_kind",
    "reply_kind",
    "metric_label",
    "policy_id",
    "policy_title",
    "target_minutes",
    "business_hours",
    "applied_at",
    "fulfilled_at",
    "breached_at",
    "outcome",
    "status_calendar_minutes",
    "status_business_minutes",
    "elapsed_minutes",
    "elapsed_ratio",
)

_KEY = ["ticket_id", "metric", "instance_id"]
_TARGET_KEY = [*_KEY, "sla_kind"]
_REQUIRED = ("id", "ticket_id", "metric", "instance_id", "type", "time")
# The columns after ``time``: a pandas frame may lack them (read as null, typed as load_frame's).
_OPTIONAL = tuple(METRIC_EVENTS_SCHEMA.names[METRIC_EVENTS_SCHEMA.names.index("time") + 1 :])
_APPLY_TYPES = ("apply_sla", "apply_group_sla")
_AS_OF_ATTR = "zdevents_as_of"
_WINDOW_ATTR = "zdevents_window"  # (since, until) of a load_frame that left events out
_WEEKDAYS = range(1, 8)  # narwhals: Monday=1 .. Sunday=7


def _decode_categories(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Categorical string columns as Arrow-backed strings, decoded by pyarrow.

    The casts to strings below would otherwise go through Python objects in pandas
    (about 1 s per column per 5 million rows; this takes about 0.06 s).
    """
    decoded = {}
    for name in columns:
        column = frame[name] if name in frame.columns else None
        if column is None or not isinstance(column.dtype, pd.CategoricalDtype):
            continue
        if not pd.api.types.is_string_dtype(column.cat.categories.dtype):
            continue
        values = pa.array(column).cast(pa.string())  # a DictionaryArray, decoded
        decoded[name] = pd.Series(pd.arrays.ArrowStringArray(values), index=frame.index)
    return frame.assign(**decoded) if decoded else frame


def _resolve_as_of(events: Any, as_of: Any) -> pd.Timestamp:
    """The as-of time as a UTC Timestamp: argument, else the frame's attrs, else now."""
    if as_of is None:
        attrs = getattr(events, "attrs", None)
        if isinstance(attrs, Mapping) and attrs.get(_AS_OF_ATTR) is not None:
            as_of = attrs[_AS_OF_ATTR]
        else:
            return pd.Timestamp.now(tz="UTC")
    ts = to_utc(as_of, name="as_of")  # the one time parser: numbers are Unix seconds
    assert ts is not None
    return ts


def _warn_if_windowed(events: Any) -> None:
    """Say so when ``events`` is a window of a longer cached history (see rule 8)."""
    attrs = getattr(events, "attrs", None)
    window = attrs.get(_WINDOW_ATTR) if isinstance(attrs, Mapping) else None
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


def _is_dask(frame: Any) -> bool:
    return frame.implementation.is_dask()


def _from_native(frame: Any) -> Any:
    """``nw.from_native``, without narwhals' notice that Dask support moves to ``narwhals-dask``.

    That package is not published yet, so there is nothing a user could install; the
    notice would only reach analysts as noise on every Dask analysis.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Dask support is moving out of Narwhals", category=FutureWarning
        )
        return nw.from_native(frame)


def _identity(df: Any) -> Any:
    return df


def _agg(frame: Any, keys: list[str], *aggs: Any) -> Any:
    """``frame.group_by(keys).agg(*aggs)``, safe to join on ``keys`` on Dask.

    dask 2026.8: a merge on the keys of a named-aggregation group-by whose automatic
    ``split_out`` is > 1 (input of more than 10 / (len(keys) - 1) partitions: 6+ for three
    keys, 4+ for four) raises KeyError while optimising
    (RenameFrame.unique_partition_mapping_columns_from_shuffle). An identity
    map_partitions hides the partitioning info; the merge then shuffles as usual.
    """
    out = frame.group_by(keys).agg(*aggs)
    if _is_dask(out):
        native = out.to_native()
        out = _from_native(native.map_partitions(_identity, meta=native._meta))
    return out


def _pick_last(frame: Any, keys: list[str], time_col: str, out: str) -> Any:
    """Keep one row per ``keys``: the latest ``time_col``, ties broken by the larger ``id``.

    Two group-bys and two joins instead of a window, so it runs lazily on every engine.
    """
    latest = _agg(frame, keys, nw.col(time_col).max().alias(out))
    frame = frame.join(latest, on=keys, how="inner").filter(nw.col(time_col) == nw.col(out))
    top = _agg(frame, keys, nw.col("id").max().alias("_top_id"))
    return (
        frame.join(top, on=keys, how="inner")
        .filter(nw.col("id") == nw.col("_top_id"))
        .drop("_top_id")
    )


def _label_expr() -> Any:
    """narwhals expression equal to :func:`metric_label` on ``metric``/``instance_id``."""
    metric = nw.col("metric")
    expr = metric.str.replace_all("_", " ").str.to_titlecase()
    for name, label in METRIC_LABELS.items():
        expr = nw.when(metric == name).then(nw.lit(label)).otherwise(expr)
    reply = metric == REPLY_METRIC
    first, later = METRIC_LABELS[FIRST_REPLY], METRIC_LABELS[NEXT_REPLY]
    expr = nw.when(reply & (nw.col("instance_id") > 1)).then(nw.lit(later)).otherwise(expr)
    return nw.when(reply & (nw.col("instance_id") == 1)).then(nw.lit(first)).otherwise(expr)


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
        absent = [c for c in _OPTIONAL if c not in events.columns]
        if absent:
            typed = to_pandas(empty_table("metric_events"))  # no rows, load_frame's dtypes
            events = events.assign(
                **{c: pd.Series(pd.NA, index=events.index, dtype=typed[c].dtype) for c in absent}
            )
    fast = _targets_duckdb(events, as_of_ts)
    if fast is not None:
        return fast
    return _targets_narwhals(events, as_of_ts)


def _targets_narwhals(events: Any, as_of_ts: pd.Timestamp) -> Any:
    """:func:`sla_targets` as one narwhals plan: Dask, Spark and any other narwhals engine."""
    as_of_dt = as_of_ts.to_pydatetime()
    if isinstance(events, pd.DataFrame):
        events = _decode_categories(events, ("metric", "type", "sla_kind"))
    frame = _from_native(events)
    missing = [c for c in (*_REQUIRED, *_OPTIONAL) if c not in frame.columns]
    if missing:
        raise ValueError(f"metric events lack required columns: {', '.join(missing)}")
    ev = frame.select([*_REQUIRED, *_OPTIONAL])
    # Cast categoricals to strings before any group-by or join (narwhals' pandas path
    # and Dask both prefer plain strings as keys).
    ev = ev.with_columns(
        nw.col("metric").cast(nw.String),
        nw.col("type").cast(nw.String),
        nw.col("sla_kind").cast(nw.String),
    ).filter(
        ~nw.col("ticket_id").is_null(),
        ~nw.col("metric").is_null(),
        ~nw.col("instance_id").is_null(),
        ~nw.col("time").is_null(),
        nw.col("time") <= as_of_dt,
        ~nw.col("deleted").fill_null(False),  # rule 1: deleted events, whatever their type
    )
    etype = nw.col("type")

    # Clock per metric instance: fulfilment (rule 2) and first activation.
    clock = (
        ev.filter(etype.is_in(["fulfill", "activate"]))
        .with_columns(
            nw.when(etype == "fulfill").then(nw.col("time")).alias("_fulfill"),
            nw.when(etype == "activate").then(nw.col("time")).alias("_activate"),
        )
        .pipe(
            _agg,
            _KEY,
            nw.col("_fulfill").max().alias("_last_fulfill"),
            nw.col("_activate").max().alias("_last_activate"),
            nw.col("_activate").min().alias("_first_activate"),
        )
        .with_columns(
            nw.when(
                ~nw.col("_last_fulfill").is_null()
                & (
                    nw.col("_last_activate").is_null()
                    | (nw.col("_last_activate") <= nw.col("_last_fulfill"))
                )
            )
            .then(nw.col("_last_fulfill"))
            .alias("fulfilled_at")
        )
        .select([*_KEY, "fulfilled_at", "_first_activate"])
    )
    fulfilment = clock.select([*_KEY, "fulfilled_at"])
    before_fulfilment = nw.col("fulfilled_at").is_null() | (
        nw.col("time") <= nw.col("fulfilled_at")
    )

    # Target in force (rule 3).
    applies = (
        ev.filter(etype.is_in(list(_APPLY_TYPES)))
        .with_columns(
            nw.when(etype == "apply_group_sla")
            .then(nw.lit("group_sla"))
            .otherwise(nw.lit("sla"))
            .alias("sla_kind")
        )
        .join(fulfilment, on=_KEY, how="left")
        .filter(before_fulfilment)
        .select(
            [
                *_TARGET_KEY,
                "id",
                "time",
                "policy_id",
                "policy_title",
                nw.col("sla_target_minutes").alias("target_minutes"),
                nw.col("sla_business_hours").alias("business_hours"),
            ]
        )
    )
    targets = _pick_last(applies, _TARGET_KEY, "time", "applied_at").drop("id", "time")

    # Counted breaches (rule 4), matched to targets by instance and optional kind.
    breaches = (
        ev.filter(etype == "breach")
        .join(fulfilment, on=_KEY, how="left")
        .filter(before_fulfilment)
        .select([*_KEY, "time", nw.col("sla_kind").alias("_breach_kind")])
        .join(targets.select(_TARGET_KEY), on=_KEY, how="inner")
        .filter(nw.col("_breach_kind").is_null() | (nw.col("_breach_kind") == nw.col("sla_kind")))
        .pipe(_agg, _TARGET_KEY, nw.col("time").min().alias("breached_at"))
    )

    # Elapsed minutes reported at fulfilment (rule 6).
    statuses = (
        ev.filter(etype == "update_status")
        .join(fulfilment, on=_KEY, how="inner")
        .filter(~nw.col("fulfilled_at").is_null(), nw.col("time") >= nw.col("fulfilled_at"))
        .select([*_KEY, "id", "time", "status_calendar_minutes", "status_business_minutes"])
    )
    statuses = _pick_last(statuses, _KEY, "time", "_status_at").drop("id", "time", "_status_at")

    result = (
        targets.join(clock, on=_KEY, how="left")
        .join(breaches, on=_TARGET_KEY, how="left")
        .join(statuses, on=_KEY, how="left")
    )
    fulfilled = ~nw.col("fulfilled_at").is_null()
    reported = (
        nw.when(nw.col("business_hours").fill_null(False))
        .then(nw.col("status_business_minutes"))
        .otherwise(nw.col("status_calendar_minutes"))
        .cast(nw.Float64)
    )
    if result.implementation.is_spark_like():  # no dt.total_seconds on Spark (narwhals 2.29)
        fallback = (
            nw.col("fulfilled_at").cast(nw.Int64) - nw.col("_first_activate").cast(nw.Int64)
        ) / 60.0  # Spark casts a timestamp to whole epoch seconds
    else:
        fallback = (nw.col("fulfilled_at") - nw.col("_first_activate")).dt.total_seconds() / 60.0
    result = result.with_columns(
        nw.when(~nw.col("breached_at").is_null())
        .then(nw.lit("breached"))
        .otherwise(nw.when(fulfilled).then(nw.lit("achieved")).otherwise(nw.lit("active")))
        .alias("outcome"),
        nw.when((nw.col("metric") == REPLY_METRIC) & (nw.col("instance_id") == 1))
        .then(nw.lit(FIRST_REPLY))
        .otherwise(
            nw.when((nw.col("metric") == REPLY_METRIC) & (nw.col("instance_id") > 1)).then(
                nw.lit(NEXT_REPLY)
            )
        )
        .alias("reply_kind"),
        _label_expr().alias("metric_label"),
        nw.when(fulfilled)
        .then(nw.when(~reported.is_null()).then(reported).otherwise(fallback))
        .alias("elapsed_minutes"),
    ).with_columns(
        nw.when(nw.col("target_minutes") > 0)
        .then(nw.col("elapsed_minutes") / nw.col("target_minutes").cast(nw.Float64))
        .alias("elapsed_ratio")
    )
    result = result.select(list(TARGET_COLUMNS))
    if isinstance(result, nw.DataFrame):
        result = result.sort(_TARGET_KEY)
    native = result.to_native()
    if isinstance(native, pd.DataFrame):
        native = native.reset_index(drop=True)
        native.attrs[_AS_OF_ATTR] = as_of_ts
    return native


# ------------------------------------------------------------------ the columnar engine path
# pandas, pyarrow and polars inputs, and DuckDB relations, run the rules as one DuckDB query:
# two passes over the events (the clock per metric instance, then one grouped pass over the
# applies, breaches and statuses joined to it), where the engine-agnostic plan above needs
# nine joins and group-bys. Both implement the same rules; the tests compare them row for
# row. Dask and Spark keep the narwhals plan (it distributes).
_SQL_SOURCE = "zd_events"
_KNOWN_TYPES = ("fulfill", "activate", "apply_sla", "apply_group_sla", "breach", "update_status")


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(map(_sql_text, values)) + "]"


#: Event types the rules read, as small integer codes (group-bys and filters on integers).
_TYPE_CODES = {name: i for i, name in enumerate(_KNOWN_TYPES, start=1)}
_MAX_METRIC_CODES = 1000  # more distinct metric names than this: group by the names


def _targets_sql(
    as_of: pd.Timestamp, metrics: Sequence[str] | None, *, order: bool, coded: bool = False
) -> str:
    """The rules of :func:`sla_targets` as one DuckDB query over the table ``zd_events``.

    ``metrics``: every metric name in the events, sorted: the query then keys metric
    instances by the name's position (an integer), which makes its group-bys, join and sort
    several times cheaper than on the names; ordering by the position is ordering by name.
    None keys them by name. ``coded``: ``metric``, ``type`` and ``sla_kind`` already hold
    those codes (see :func:`_coded_pandas`).
    """
    as_of_sql = f"CAST({_sql_text(as_of.isoformat())} AS TIMESTAMPTZ)"
    metric = "CAST(metric AS VARCHAR)"
    types = " ".join(f"WHEN {_sql_text(n)} THEN {c}" for n, c in _TYPE_CODES.items())
    if metrics is not None:
        codes = " ".join(f"WHEN {_sql_text(m)} THEN {i}" for i, m in enumerate(metrics))
        metric_key = f"CASE {metric} {codes} END"
        metric_name = f"{_sql_list(metrics)}[mk + 1]"
        labels = [metric_label(m) for m in metrics]
        label = f"{_sql_list(labels)}[mk + 1]"
    else:
        metric_key, metric_name = metric, "mk"
        label = metric_label_sql("mk")
    reply = "mk = " + (
        str(list(metrics).index(REPLY_METRIC))
        if metrics and REPLY_METRIC in metrics
        else ("-1" if metrics is not None else _sql_text(REPLY_METRIC))
    )
    type_code = f'CASE CAST("type" AS VARCHAR) {types} END'
    kind_code = (
        "CASE WHEN sla_kind IS NULL THEN 0 WHEN CAST(sla_kind AS VARCHAR) = 'sla' THEN 1 "
        "WHEN CAST(sla_kind AS VARCHAR) = 'group_sla' THEN 2 ELSE 3 END"
    )
    if coded:
        metric_key, type_code, kind_code = "NULLIF(metric, -1)", 'NULLIF("type", -1)', "sla_kind"
    fulfill, activate = _TYPE_CODES["fulfill"], _TYPE_CODES["activate"]
    sla, group_sla = _TYPE_CODES["apply_sla"], _TYPE_CODES["apply_group_sla"]
    breach, status = _TYPE_CODES["breach"], _TYPE_CODES["update_status"]
    apply = (
        "struct_pack(policy_id := e.policy_id, policy_title := e.policy_title, "
        "target_minutes := e.sla_target_minutes, business_hours := e.sla_business_hours, "
        "t := e.t)"
    )
    before = "(c.fulfilled_at IS NULL OR e.t <= c.fulfilled_at)"
    # The latest event, ties to the larger id, as one number (much faster than a row key).
    latest = "(CAST(epoch_us(e.t) AS HUGEINT) * 18446744073709551616 + e.id)"
    if metrics is not None:
        # One 128-bit number per metric instance, exact for every int64 ticket and int32
        # instance, ordered as (ticket_id, metric, instance_id): a hash key several times
        # cheaper than the three columns.
        key = "k"
        key_expr = (
            "CAST(ticket_id AS HUGEINT) * 18446744073709551616 + CAST(mk AS HUGEINT) * "
            "4294967296 + (CAST(instance_id AS HUGEINT) + 2147483648)"
        )
        decoded = (
            "CAST(k >> 64 AS BIGINT) AS ticket_id, CAST((k >> 32) & 4294967295 AS INTEGER) AS mk,"
            " CAST((k & 4294967295) - 2147483648 AS INTEGER) AS instance_id"
        )
    else:
        key = "ticket_id, mk, instance_id"
        key_expr = "NULL"
        decoded = key
    ekey = ", ".join(f"e.{c.strip()}" for c in key.split(","))
    join = " AND ".join(f"c.{c.strip()} = e.{c.strip()}" for c in key.split(","))

    def on(alias: str) -> str:
        return " AND ".join(f"{alias}.{c.strip()} = e.{c.strip()}" for c in key.split(","))

    sql = f"""
WITH ev AS (  -- rule 1: no deleted event, nothing after as_of, no null key or time
    SELECT *, {key_expr} AS k FROM (
        SELECT CAST(id AS BIGINT) AS id, CAST(ticket_id AS BIGINT) AS ticket_id,
               {metric_key} AS mk, CAST(instance_id AS INTEGER) AS instance_id,
               {type_code} AS ty,
               CAST("time" AS TIMESTAMPTZ) AS t,
               {kind_code} AS bk,
               CAST(sla_target_minutes AS INTEGER) AS sla_target_minutes,
               CAST(sla_business_hours AS BOOLEAN) AS sla_business_hours,
               CAST(policy_id AS BIGINT) AS policy_id,
               CAST(policy_title AS VARCHAR) AS policy_title,
               CAST(status_calendar_minutes AS INTEGER) AS status_calendar_minutes,
               CAST(status_business_minutes AS INTEGER) AS status_business_minutes
        FROM {_SQL_SOURCE}
        WHERE ticket_id IS NOT NULL AND {metric_key} IS NOT NULL AND instance_id IS NOT NULL
          AND "time" IS NOT NULL AND CAST("time" AS TIMESTAMPTZ) <= {as_of_sql}
          AND NOT coalesce(CAST(deleted AS BOOLEAN), false)
    ) WHERE ty IS NOT NULL
),
clock AS (  -- rule 2: the last fulfil unless an activate is strictly later
    SELECT {key},
           CASE WHEN last_fulfill IS NOT NULL
                     AND (last_activate IS NULL OR last_activate <= last_fulfill)
                THEN last_fulfill END AS fulfilled_at,
           first_activate
    FROM (
        SELECT {key},
               max(t) FILTER (WHERE ty = {fulfill}) AS last_fulfill,
               max(t) FILTER (WHERE ty = {activate}) AS last_activate,
               min(t) FILTER (WHERE ty = {activate}) AS first_activate
        FROM ev WHERE ty IN ({fulfill}, {activate})
        GROUP BY {key}
    )
),
applies AS (  -- rule 3: the last apply of each kind at or before the fulfilment
    SELECT {ekey}, CAST(e.ty = {sla} AS INTEGER) AS kind,
           arg_max({apply}, {latest}) AS a
    FROM ev e LEFT JOIN clock c ON {join}
    WHERE e.ty IN ({sla}, {group_sla}) AND {before}
    GROUP BY {ekey}, kind
),
breaches AS (  -- rule 4: the earliest counted breach, by the kind the breach names
    SELECT {ekey},
           min(e.t) FILTER (WHERE e.bk = 0) AS b_any,
           min(e.t) FILTER (WHERE e.bk = 1) AS b_sla,
           min(e.t) FILTER (WHERE e.bk = 2) AS b_group
    FROM ev e LEFT JOIN clock c ON {join}
    WHERE e.ty = {breach} AND {before}
    GROUP BY {ekey}
),
statuses AS (  -- rule 6: the latest update_status at or after the fulfilment
    SELECT {ekey},
           arg_max(struct_pack(cal := e.status_calendar_minutes,
                               bus := e.status_business_minutes), {latest}) AS st
    FROM ev e JOIN clock c ON {join}
    WHERE e.ty = {status} AND c.fulfilled_at IS NOT NULL AND e.t >= c.fulfilled_at
    GROUP BY {ekey}
),
targets AS (
    SELECT {ekey}, e.kind, e.a, c.fulfilled_at, c.first_activate,
           s.st, least(b.b_any, CASE WHEN e.kind = 1 THEN b.b_sla ELSE b.b_group END)
               AS breached_at
    FROM applies e
    LEFT JOIN clock c ON {join}
    LEFT JOIN breaches b ON {on("b")}
    LEFT JOIN statuses s ON {on("s")}
),
rows AS (
    SELECT {key}, {decoded + "," if metrics is not None else ""} kind,
           CASE WHEN {reply} AND instance_id = 1 THEN {_sql_text(FIRST_REPLY)}
                WHEN {reply} AND instance_id > 1 THEN {_sql_text(NEXT_REPLY)} END AS reply_kind,
           CASE WHEN {reply} AND instance_id = 1 THEN {_sql_text(METRIC_LABELS[FIRST_REPLY])}
                WHEN {reply} AND instance_id > 1 THEN {_sql_text(METRIC_LABELS[NEXT_REPLY])}
                ELSE {label} END AS metric_label,
           a.policy_id AS policy_id, a.policy_title AS policy_title,
           a.target_minutes AS target_minutes, a.business_hours AS business_hours,
           a.t AS applied_at, fulfilled_at, breached_at,
           CASE WHEN breached_at IS NOT NULL THEN 'breached'
                WHEN fulfilled_at IS NOT NULL THEN 'achieved' ELSE 'active' END AS outcome,
           st.cal AS status_calendar_minutes, st.bus AS status_business_minutes,
           CASE WHEN fulfilled_at IS NOT NULL THEN coalesce(
               CAST(CASE WHEN coalesce(a.business_hours, false) THEN st.bus ELSE st.cal END
                    AS DOUBLE),
               trunc((epoch_ms(fulfilled_at) - epoch_ms(first_activate)) / 1000.0) / 60.0)
           END AS elapsed_minutes
    FROM targets
)
SELECT ticket_id, {metric_name} AS metric, instance_id,
       CASE WHEN kind = 1 THEN 'sla' ELSE 'group_sla' END AS sla_kind,
       {", ".join(TARGET_COLUMNS[4:-1])},
       CASE WHEN target_minutes > 0 THEN elapsed_minutes / CAST(target_minutes AS DOUBLE) END
           AS elapsed_ratio
FROM rows
"""
    if order:
        sql += f"ORDER BY {key}, kind\n"
    return sql


def _columns_of(events: Any, kind: str) -> list[str]:
    if kind == "pandas":
        return [str(c) for c in events.columns]
    if kind == "arrow":
        return list(events.schema.names)
    if kind == "polars":
        return list(events.collect_schema().names())
    return list(events.columns)  # DuckDB relation


def _input_kind(events: Any) -> str | None:
    """Which inputs the DuckDB path takes: ``pandas``, ``arrow``, ``polars``, ``duckdb``."""
    if isinstance(events, pd.DataFrame):
        return "pandas"
    if isinstance(events, pa.Table):
        return "arrow"
    module = type(events).__module__.split(".")[0]
    if module == "polars" and type(events).__name__ in ("DataFrame", "LazyFrame"):
        return "polars"
    if module in ("duckdb", "_duckdb") and type(events).__name__ == "DuckDBPyRelation":
        return "duckdb"
    return None


_BATCH_ROWS = 1 << 17
_STRING_NA = ("metric", "policy_title")  # string dtype with pd.NA, as load_frame's columns
_PANDAS_INTS = {
    pa.int64(): pd.Int64Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.bool_(): pd.BooleanDtype(),
    pa.float64(): pd.Float64Dtype(),
}


def _str_dtype(na_value: Any) -> Any:
    try:
        return pd.StringDtype("pyarrow", na_value=na_value)
    except TypeError:  # pragma: no cover - pandas < 2.3 has no NaN-valued string dtype
        return pd.StringDtype("pyarrow")


def _ms_times(table: pa.Table) -> pa.Table:
    """Timestamps as ``timestamp[ms, UTC]`` (the cache's unit; DuckDB gives microseconds)."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            table = table.set_column(
                i, field.name, table.column(i).cast(pa.timestamp("ms", tz="UTC"))
            )
    return table


def _arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """Target rows as pandas with nullable dtypes (what the narwhals plan gives on pandas)."""
    table = _ms_times(table)
    strings = [f.name for f in table.schema if pa.types.is_string(f.type)]
    rest = table.drop_columns(strings)
    frame = rest.to_pandas(types_mapper=_PANDAS_INTS.get)
    na_string, nan_string = _str_dtype(pd.NA), _str_dtype(float("nan"))
    for name in strings:
        dtype = na_string if name in _STRING_NA else nan_string
        frame[name] = pd.Series(dtype.__from_arrow__(table.column(name)), index=frame.index)
    return frame[list(table.schema.names)]


_METRICS_SQL = (
    f"SELECT DISTINCT CAST(metric AS VARCHAR) FROM {_SQL_SOURCE} WHERE metric IS NOT NULL"
)


def _metric_names(source: Any) -> list[str] | None:
    """The sorted metric names of ``zd_events`` (a connection) or of a relation's query."""
    rows = (source.sql(_METRICS_SQL) if hasattr(source, "register") else source).fetchall()
    names = sorted(str(r[0]) for r in rows)
    return names if len(names) <= _MAX_METRIC_CODES else None


def _category_codes(column: pd.Series, lookup: Mapping[str, int], default: int | None) -> Any:
    """Codes of a categorical column through ``lookup`` (nulls and misses: ``default``,
    else -1)."""
    import numpy as np

    fill = -1 if default is None else default
    lookup_table = np.array(
        [lookup.get(str(c), fill) for c in column.cat.categories] + [fill], dtype="int32"
    )
    # code -1 (null) picks the last entry; the query reads -1 as null (NULLIF)
    return pa.array(np.take(lookup_table, column.cat.codes.to_numpy()))


def _coded_pandas(events: pd.DataFrame, wanted: list[str]) -> tuple[pa.Table, list[str]] | None:
    """The events as Arrow with ``metric``/``type``/``sla_kind`` as the query's integer codes.

    Only for load_frame's categorical columns: their codes come without reading a string,
    where DuckDB would otherwise decode 3 strings per event. None for other frames.
    """
    columns = {}
    for name in ("metric", "type", "sla_kind"):
        column = events[name]
        if not isinstance(column.dtype, pd.CategoricalDtype) or not all(
            isinstance(c, str) for c in column.cat.categories
        ):
            return None
        columns[name] = column
    metrics = sorted(set(map(str, columns["metric"].cat.categories)))
    if len(metrics) > _MAX_METRIC_CODES:
        return None
    rest = events[[c for c in wanted if c not in columns]]
    rest.attrs = {}  # the as-of Timestamp is not Arrow metadata
    try:
        table = pa.Table.from_pandas(rest, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return None
    codes = {
        "metric": _category_codes(columns["metric"], {m: i for i, m in enumerate(metrics)}, None),
        "type": _category_codes(columns["type"], _TYPE_CODES, None),
        "sla_kind": _category_codes(columns["sla_kind"], {"sla": 1, "group_sla": 2}, 0),
    }
    if columns["sla_kind"].cat.categories.size:  # any other kind: 3 (matches no target)
        other = [
            str(c) for c in columns["sla_kind"].cat.categories if c not in ("sla", "group_sla")
        ]
        if other:
            lookup = {"sla": 1, "group_sla": 2, **dict.fromkeys(other, 3)}
            codes["sla_kind"] = _category_codes(columns["sla_kind"], lookup, 0)
    for name, array in codes.items():
        table = table.append_column(name, array)
    return table, metrics


def _targets_duckdb(events: Any, as_of_ts: pd.Timestamp) -> Any:
    """:func:`sla_targets` as one DuckDB query, or None for inputs it does not take."""
    kind = _input_kind(events)
    if kind is None:
        return None
    import duckdb

    names = _columns_of(events, kind)
    missing = [c for c in (*_REQUIRED, *_OPTIONAL) if c not in names]
    if missing:
        raise ValueError(f"metric events lack required columns: {', '.join(missing)}")
    wanted = [*_REQUIRED, *_OPTIONAL]
    if kind == "duckdb":  # stays lazy, on the relation's own connection
        columns = [duckdb.ColumnExpression(c) for c in wanted]
        relation = events.select(*columns)
        metrics = _metric_names(relation.query(_SQL_SOURCE, _METRICS_SQL))
        return relation.query(_SQL_SOURCE, _targets_sql(as_of_ts, metrics, order=False))
    coded = _coded_pandas(events, wanted) if kind == "pandas" else None
    if coded is not None:
        source, metrics = coded
    elif kind == "pandas":
        try:
            columns = events[wanted]
            columns.attrs = {}  # the as-of Timestamp is not Arrow metadata
            source: Any = pa.Table.from_pandas(columns, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            return None  # mixed-type object columns: the narwhals plan reads them as pandas
    elif kind == "arrow":
        source = events.select(wanted)
    else:
        source = events.select(wanted)
    if kind == "pandas":  # Arrow's pool keeps what reading the frame freed: hand it back
        pa.default_memory_pool().release_unused()
    if isinstance(source, pa.Table):  # batches DuckDB's threads can share (one chunk: one)
        source = pa.Table.from_batches(source.to_batches(max_chunksize=_BATCH_ROWS), source.schema)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # naive times are UTC, as everywhere in zdevents
        con.register(_SQL_SOURCE, source)
        if coded is None:
            metrics = _metric_names(con)
        sql = _targets_sql(as_of_ts, metrics, order=True, coded=coded is not None)
        table = con.sql(sql).to_arrow_table()
    finally:
        con.close()
    if kind == "arrow":
        return _ms_times(table)
    if kind == "polars":
        import polars as pl

        out = pl.from_arrow(_ms_times(table))
        return out.lazy() if type(events).__name__ == "LazyFrame" else out
    native = _arrow_to_pandas(table)
    native.attrs[_AS_OF_ATTR] = as_of_ts
    return native


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
    if _is_dask(frame):  # narwhals cannot truncate by month on Dask
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
        Output of :func:`sla_targets` (needs ``outcome`` and, with ``freq``,
        ``applied_at``), any engine :func:`sla_targets` accepts.
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
    frame = _from_native(targets)
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
        as_of = getattr(targets, "attrs", {}).get(_AS_OF_ATTR)
        if as_of is not None:
            native.attrs[_AS_OF_ATTR] = as_of
    elif freq is not None and _is_dask(frame):
        native = native.assign(period=native["period"].astype("datetime64[ms, UTC]"))
    return native


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
    frame = _from_native(targets)
    if start is not None:
        frame = frame.filter(nw.col("applied_at") >= start.to_pydatetime())
    if end is not None:
        frame = frame.filter(nw.col("applied_at") < end.to_pydatetime())
    return frame.to_native()

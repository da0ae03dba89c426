"""SLA targets as one DuckDB query: the rules of :func:`zdevents.sla_targets` for pandas,
pyarrow and polars inputs and DuckDB relations.

Two passes over the events (the clock per metric instance, then one grouped pass over the
applies, breaches and statuses joined to it), where the engine-agnostic plan of
:mod:`zdevents.analysis.targets_frame` needs nine joins and group-bys. Both implement the same
rules; the tests compare them row for row. pandas data goes in and out through Arrow; a
DuckDB relation stays lazy on its own connection. pandas, Arrow and polars inputs carry row
numbers through the query instead of the apply and status columns, which are taken for the
targets afterwards, and large inputs run once per range of ticket ids (less memory).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_frames import ms_times, targets_to_pandas
from .columns import AS_OF_ATTR, OPTIONAL_EVENT_COLUMNS, REQUIRED_EVENT_COLUMNS, TARGET_COLUMNS
from .labels import (
    FIRST_REPLY,
    METRIC_LABELS,
    NEXT_REPLY,
    REPLY_METRIC,
    metric_label,
    metric_label_sql,
    sql_text,
)

__all__ = ["targets_duckdb"]

_SQL_SOURCE = "zd_events"
_KNOWN_TYPES = ("fulfill", "activate", "apply_sla", "apply_group_sla", "breach", "update_status")


def _sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(map(sql_text, values)) + "]"


#: Event types the rules read, as small integer codes (group-bys and filters on integers).
_TYPE_CODES = {name: i for i, name in enumerate(_KNOWN_TYPES, start=1)}
_MAX_METRIC_CODES = 1000  # more distinct metric names than this: group by the names


def _metric_sql(metrics: Sequence[str] | None) -> tuple[str, str, str, str]:
    """SQL of the metric key ``mk`` (from ``metric``), of its name and label, and of the
    test for the reply metric (see :func:`_targets_sql`)."""
    metric = "CAST(metric AS VARCHAR)"
    if metrics is not None:
        codes = " ".join(f"WHEN {sql_text(m)} THEN {i}" for i, m in enumerate(metrics))
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
        else ("-1" if metrics is not None else sql_text(REPLY_METRIC))
    )
    return metric_key, metric_name, label, reply


def _targets_sql(
    as_of: pd.Timestamp,
    metrics: Sequence[str] | None,
    *,
    order: bool,
    coded: bool = False,
    indexed: bool = False,
    tickets: tuple[int, int] | None = None,
) -> str:
    """The rules of :func:`zdevents.sla_targets` as one DuckDB query over the table ``zd_events``.

    ``metrics``: every metric name in the events, sorted: the query then keys metric
    instances by the name's position (an integer), which makes its group-bys, join and sort
    several times cheaper than on the names; ordering by the position is ordering by name.
    None keys them by name. ``coded``: ``metric``, ``type`` and ``sla_kind`` already hold
    those codes (see :func:`_coded_pandas`). ``indexed``: ``zd_events`` has a ``zd_row``
    column (the row number) and the query returns the targets with the rows of their apply
    and status events (``apply_row``, ``status_row``) in place of those events' policy and
    status columns, which :func:`_with_payload` then takes from the events and
    :func:`_rows_sql` turns into the targets: the query's group-bys then carry two integers
    per event instead of six columns and a string. ``tickets``: only the tickets with
    ``lo <= ticket_id < hi`` (a target's events are all of one ticket).
    """
    as_of_sql = f"CAST({sql_text(as_of.isoformat())} AS TIMESTAMPTZ)"
    metric_key, _, _, _ = _metric_sql(metrics)
    types = " ".join(f"WHEN {sql_text(n)} THEN {c}" for n, c in _TYPE_CODES.items())
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
    if indexed:
        payload = "CAST(zd_row AS BIGINT) AS r"
        apply, status_of = "struct_pack(r := e.r, t := e.t)", "e.r"
        flat = "struct_extract(e.a, 'r') AS apply_row, s.st AS status_row"
    else:
        payload = ",\n               ".join(
            f"CAST({name} AS {kind}) AS {name}" for name, kind in _PAYLOAD_SQL.items()
        )
        apply = (
            "struct_pack(policy_id := e.policy_id, policy_title := e.policy_title, "
            "target_minutes := e.sla_target_minutes, business_hours := e.sla_business_hours, "
            "t := e.t)"
        )
        status_of = (
            "struct_pack(cal := e.status_calendar_minutes, bus := e.status_business_minutes)"
        )
        flat = ", ".join(
            [
                *(
                    f"struct_extract(e.a, '{field}') AS {name}"
                    for field, name in (
                        ("policy_id", "policy_id"),
                        ("policy_title", "policy_title"),
                        ("target_minutes", "sla_target_minutes"),
                        ("business_hours", "sla_business_hours"),
                    )
                ),
                "struct_extract(s.st, 'cal') AS status_calendar_minutes",
                "struct_extract(s.st, 'bus') AS status_business_minutes",
            ]
        )
    span = "ticket_id IS NOT NULL"
    if tickets is not None:
        span = f"ticket_id >= {int(tickets[0])} AND ticket_id < {int(tickets[1])}"
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
               {payload}
        FROM {_SQL_SOURCE}
        WHERE {span} AND {metric_key} IS NOT NULL AND instance_id IS NOT NULL
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
    SELECT {ekey}, arg_max({status_of}, {latest}) AS st
    FROM ev e JOIN clock c ON {join}
    WHERE e.ty = {status} AND c.fulfilled_at IS NOT NULL AND e.t >= c.fulfilled_at
    GROUP BY {ekey}
),
targets AS (
    SELECT {ekey}, e.kind, {flat}, struct_extract(e.a, 't') AS applied_at,
           c.fulfilled_at, c.first_activate,
           least(b.b_any, CASE WHEN e.kind = 1 THEN b.b_sla ELSE b.b_group END) AS breached_at
    FROM applies e
    LEFT JOIN clock c ON {join}
    LEFT JOIN breaches b ON {on("b")}
    LEFT JOIN statuses s ON {on("s")}
)"""
    if indexed:  # the targets with their event rows: _with_payload, then _rows_sql
        sql += f"\nSELECT {decoded}, * EXCLUDE ({key}) FROM targets\n"
        return sql + ("ORDER BY ticket_id, mk, instance_id, kind\n" if order else "")
    return sql + ",\n" + _rows_sql(metrics, key, decoded if metrics is not None else "", order)


_PAYLOAD_SQL = {
    "sla_target_minutes": "INTEGER",
    "sla_business_hours": "BOOLEAN",
    "policy_id": "BIGINT",
    "policy_title": "VARCHAR",
    "status_calendar_minutes": "INTEGER",
    "status_business_minutes": "INTEGER",
}
"""The event columns a target takes from its apply and status events, and their SQL types."""


def _rows_sql(metrics: Sequence[str] | None, key: str, decoded: str, order: bool) -> str:
    """The target rows (:data:`TARGET_COLUMNS`) from the table ``targets`` of
    :func:`_targets_sql` (rule 5 and the derived columns), a query's last part."""
    _, metric_name, label, reply = _metric_sql(metrics)
    sql = f"""rows AS (
    SELECT {key}, {decoded + "," if decoded else ""} kind,
           CASE WHEN {reply} AND instance_id = 1 THEN {sql_text(FIRST_REPLY)}
                WHEN {reply} AND instance_id > 1 THEN {sql_text(NEXT_REPLY)} END AS reply_kind,
           CASE WHEN {reply} AND instance_id = 1 THEN {sql_text(METRIC_LABELS[FIRST_REPLY])}
                WHEN {reply} AND instance_id > 1 THEN {sql_text(METRIC_LABELS[NEXT_REPLY])}
                ELSE {label} END AS metric_label,
           CAST(policy_id AS BIGINT) AS policy_id, CAST(policy_title AS VARCHAR) AS policy_title,
           CAST(sla_target_minutes AS INTEGER) AS target_minutes,
           CAST(sla_business_hours AS BOOLEAN) AS business_hours,
           applied_at, fulfilled_at, breached_at,
           CASE WHEN breached_at IS NOT NULL THEN 'breached'
                WHEN fulfilled_at IS NOT NULL THEN 'achieved' ELSE 'active' END AS outcome,
           CAST(status_calendar_minutes AS INTEGER) AS status_calendar_minutes,
           CAST(status_business_minutes AS INTEGER) AS status_business_minutes,
           CASE WHEN fulfilled_at IS NOT NULL THEN coalesce(
               CAST(CASE WHEN coalesce(sla_business_hours, false) THEN status_business_minutes
                         ELSE status_calendar_minutes END AS DOUBLE),
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
    # sla_kind: null 0, sla 1, group_sla 2, any other kind 3 (matches no target)
    kinds = {
        str(c): {"sla": 1, "group_sla": 2}.get(str(c), 3)
        for c in columns["sla_kind"].cat.categories
    }
    codes = {
        "metric": _category_codes(columns["metric"], {m: i for i, m in enumerate(metrics)}, None),
        "type": _category_codes(columns["type"], _TYPE_CODES, None),
        "sla_kind": _category_codes(columns["sla_kind"], kinds, 0),
    }
    for name, array in codes.items():
        table = table.append_column(name, array)
    return table, metrics


_SPAN_ROWS = 1_500_000


def _ticket_spans(events: pa.Table) -> list[tuple[int, int] | None]:
    """``[lo, hi)`` ranges of ``ticket_id`` splitting ``events`` in parts of about
    :data:`_SPAN_ROWS` rows (even ranges of ids; ``[None]``: one part): one query each keeps
    DuckDB's hash tables small (peak memory); a target's events are all of one ticket."""
    parts = -(-events.num_rows // _SPAN_ROWS)
    if parts <= 1 or not pa.types.is_integer(events.schema.field("ticket_id").type):
        return [None]
    bounds = pc.min_max(events.column("ticket_id"))
    lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
    if lo is None:
        return [None]
    edges = [lo + (hi + 1 - lo) * i // parts for i in range(parts + 1)]
    return [(a, b) for a, b in zip(edges, edges[1:], strict=False) if a < b]


def _with_payload(targets: pa.Table, events: pa.Table) -> pa.Table:
    """``targets`` of an ``indexed`` :func:`_targets_sql` with the policy and status columns
    of the event rows they name (null where a target has no status event)."""
    out = targets.drop_columns(["apply_row", "status_row"])
    for name in _PAYLOAD_SQL:
        row = "status_row" if name.startswith("status_") else "apply_row"
        out = out.append_column(name, events.column(name).take(targets.column(row)))
    return out


def targets_duckdb(events: Any, as_of_ts: pd.Timestamp) -> Any:
    """:func:`zdevents.sla_targets` as one DuckDB query, or None for inputs it does not take."""
    kind = _input_kind(events)
    if kind is None:
        return None
    import duckdb

    names = _columns_of(events, kind)
    missing = [c for c in (*REQUIRED_EVENT_COLUMNS, *OPTIONAL_EVENT_COLUMNS) if c not in names]
    if missing:
        raise ValueError(f"metric events lack required columns: {', '.join(missing)}")
    wanted = [*REQUIRED_EVENT_COLUMNS, *OPTIONAL_EVENT_COLUMNS]
    if kind == "duckdb":  # stays lazy, on the relation's own connection
        columns = [duckdb.ColumnExpression(c) for c in wanted]
        relation = events.select(*columns)
        metrics = _metric_names(relation.query(_SQL_SOURCE, _METRICS_SQL))
        return relation.query(_SQL_SOURCE, _targets_sql(as_of_ts, metrics, order=False))
    found_codes = _coded_pandas(events, wanted) if kind == "pandas" else None
    coded = found_codes is not None
    if found_codes is not None:
        source, metrics = found_codes
        del found_codes  # the table is freed with ``source``
    elif kind == "pandas":
        try:
            columns = events[wanted]
            columns.attrs = {}  # the as-of Timestamp is not Arrow metadata
            source: Any = pa.Table.from_pandas(columns, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            return None  # mixed-type object columns: the narwhals plan reads them as pandas
    else:  # a pyarrow Table or a polars frame (as Arrow: DuckDB would collect it anyway)
        source = events.select(wanted)
        if kind == "polars":
            lazy = type(source).__name__ == "LazyFrame"
            source = (source.collect() if lazy else source).to_arrow()
    if kind == "pandas":  # Arrow's pool keeps what reading the frame freed: hand it back
        pa.default_memory_pool().release_unused()
    indexed = isinstance(source, pa.Table)
    if indexed:  # batches DuckDB's threads can share (one chunk: one), and the row numbers
        rows = pa.array(np.arange(source.num_rows, dtype=np.int64))
        source = source.append_column("zd_row", rows)
        source = pa.Table.from_batches(source.to_batches(max_chunksize=_BATCH_ROWS), source.schema)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # naive times are UTC, as everywhere in zdevents
        con.register(_SQL_SOURCE, source)
        if not coded:
            metrics = _metric_names(con)
        if not indexed:
            sql = _targets_sql(as_of_ts, metrics, order=True, coded=coded)
            table = con.sql(sql).to_arrow_table()
        else:  # by ranges of tickets (a quarter of the memory at 5M events), then the rows
            found = [
                con.sql(
                    _targets_sql(
                        as_of_ts,
                        metrics,
                        order=True,
                        coded=coded,
                        indexed=True,
                        tickets=span,
                    )
                ).to_arrow_table()
                for span in _ticket_spans(source)
            ]
    finally:
        con.close()  # frees what the big query held before the rows are built
    if indexed:
        targets = _with_payload(pa.concat_tables(found), source)
        del source, found
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            # the ranges are in ticket order and each is sorted: keep that order (no sort
            # of the wide rows; insertion order is kept by a query without ORDER BY)
            con.execute("SET preserve_insertion_order = true")
            con.register("targets", targets)
            key = "ticket_id, mk, instance_id"
            table = con.sql("WITH " + _rows_sql(metrics, key, "", order=False)).to_arrow_table()
        finally:
            con.close()
        del targets
        pa.default_memory_pool().release_unused()  # the events' codes, the taken columns
    if kind == "arrow":
        return ms_times(table)
    if kind == "polars":
        import polars as pl

        out = pl.from_arrow(ms_times(table))
        return out.lazy() if type(events).__name__ == "LazyFrame" else out
    native = targets_to_pandas(table)
    native.attrs[AS_OF_ATTR] = as_of_ts
    return native

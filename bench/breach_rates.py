"""Benchmark 3: ``breach_rates(sla_targets(events))`` per engine vs a DuckDB SQL reference.

Input: the whole sample export in the zdevents cache (coherent SLA sequences: every event of
every ticket is there). The as-of time is the cache's cursor for every engine.

* **duckdb SQL (reference)** - the rules of :func:`zdevents.sla_targets` written here as one
  SQL query over ``read_parquet(files)``; it is the reference for speed and for the result:
  every engine's counts per metric (targets, breached, achieved, active) must equal it.
* **pandas (default)** - ``zd.load_frame(refresh="never")`` then ``breach_rates(sla_targets(
  events))``: the default path; also by metric and week (``freq="W"``) and by two dimensions
  (``["metric", "policy_title"]``), whose counts are summed per metric for the comparison.
* the same zdevents calls on **polars** (``pl.read_parquet(files)`` eager, and
  ``zd.scan(engine="polars")`` lazy), a **DuckDB relation** (``zd.scan(engine="duckdb")``),
  a **pyarrow Table** (``cache.read()``) and **Dask** (``zd.scan(engine="dask")`` on local
  threads: its counts, not a speed figure).
* size ``xl``: the 5M-event cache copied ten times under other ticket and event ids (50M
  events; :func:`bench.data.xl_cache`), through the reference and the out-of-core path
  (a DuckDB relation from ``zd.scan``) only.

Every engine reads the Parquet cache; the engines with a goal (and the reference) also read
the Delta table it migrates to (:func:`bench.data.delta_cache`), the default store of local
caches. Each engine runs in its own fresh process (best of ``repeat``; "read" is loading the data into
the engine's frame, "compute" the two zdevents calls; lazy engines only have a total).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench import data
from bench.common import Result, Size, Table, fmt_mb, fmt_s, run_isolated, table_format_of

NAME = "breach_rates"
TITLE = "breach_rates(sla_targets(events)) per engine vs DuckDB SQL"
COUNTS = ("targets", "breached", "achieved", "active")

# The rules of zdevents.analysis.sla.sla_targets (its docstring, "Notes"), for the counts per metric.
# A target is a (ticket_id, metric, instance_id, sla_kind) with an apply at or before the
# fulfilment (or, when open, at or before as_of); which apply is in force does not change
# the outcome, so the reference only needs whether one exists.
REFERENCE_SQL = """
WITH ev AS (
    SELECT id, ticket_id, CAST(metric AS VARCHAR) AS metric, instance_id,
           CAST("type" AS VARCHAR) AS etype, "time" AS t,
           CAST(sla_kind AS VARCHAR) AS sla_kind
    FROM read_parquet($files)
    WHERE ticket_id IS NOT NULL AND metric IS NOT NULL AND instance_id IS NOT NULL
      AND "time" IS NOT NULL AND "time" <= CAST($as_of AS TIMESTAMPTZ)
      AND NOT coalesce(deleted, false)  -- rule 1: deleted events, whatever their type
),
fulfilment AS (  -- rule 2: the last fulfil unless an activate is strictly later
    SELECT ticket_id, metric, instance_id,
           CASE WHEN last_fulfill IS NOT NULL
                     AND (last_activate IS NULL OR last_activate <= last_fulfill)
                THEN last_fulfill END AS fulfilled_at
    FROM (
        SELECT ticket_id, metric, instance_id,
               max(t) FILTER (WHERE etype = 'fulfill') AS last_fulfill,
               max(t) FILTER (WHERE etype = 'activate') AS last_activate
        FROM ev WHERE etype IN ('fulfill', 'activate')
        GROUP BY ticket_id, metric, instance_id
    )
),
targets AS (  -- rule 3: an apply of the kind at or before the fulfilment
    SELECT DISTINCT a.ticket_id, a.metric, a.instance_id,
           CASE WHEN a.etype = 'apply_group_sla' THEN 'group_sla' ELSE 'sla' END AS kind
    FROM ev a
    LEFT JOIN fulfilment f
      ON f.ticket_id = a.ticket_id AND f.metric = a.metric AND f.instance_id = a.instance_id
    WHERE a.etype IN ('apply_sla', 'apply_group_sla')
      AND (f.fulfilled_at IS NULL OR a.t <= f.fulfilled_at)
),
breaches AS (  -- rule 4: at or before the fulfilment, of the target's kind
    SELECT tg.ticket_id, tg.metric, tg.instance_id, tg.kind, min(b.t) AS breached_at
    FROM ev b
    LEFT JOIN fulfilment f
      ON f.ticket_id = b.ticket_id AND f.metric = b.metric AND f.instance_id = b.instance_id
    JOIN targets tg
      ON tg.ticket_id = b.ticket_id AND tg.metric = b.metric AND tg.instance_id = b.instance_id
    WHERE b.etype = 'breach'
      AND (f.fulfilled_at IS NULL OR b.t <= f.fulfilled_at)
      AND (b.sla_kind IS NULL OR b.sla_kind = tg.kind)
    GROUP BY tg.ticket_id, tg.metric, tg.instance_id, tg.kind
)
SELECT tg.metric,  -- rule 5: breached, else achieved if fulfilled, else active
       count(*) AS targets,
       count(*) FILTER (WHERE br.breached_at IS NOT NULL) AS breached,
       count(*) FILTER (WHERE br.breached_at IS NULL AND f.fulfilled_at IS NOT NULL) AS achieved,
       count(*) FILTER (WHERE br.breached_at IS NULL AND f.fulfilled_at IS NULL) AS active
FROM targets tg
LEFT JOIN fulfilment f
  ON f.ticket_id = tg.ticket_id AND f.metric = tg.metric AND f.instance_id = tg.instance_id
LEFT JOIN breaches br
  ON br.ticket_id = tg.ticket_id AND br.metric = tg.metric
 AND br.instance_id = tg.instance_id AND br.kind = tg.kind
GROUP BY tg.metric
ORDER BY tg.metric
"""

ENGINES = (
    "duckdb-sql",
    "pandas",
    "pandas-weekly",
    "pandas-2-dims",
    "polars",
    "polars-lazy",
    "duckdb-relation",
    "pyarrow",
    "dask",
)
XL_ENGINES = ("duckdb-sql", "duckdb-relation")
"""What the ``xl`` size (50M events) runs: the reference and the out-of-core path."""
LABELS = {
    "duckdb-sql": "DuckDB SQL (reference)",
    "pandas": "pandas, load_frame (default)",
    "pandas-weekly": 'pandas, load_frame, by metric and freq="W"',
    "pandas-2-dims": "pandas, load_frame, by [metric, policy_title]",
    "polars": "polars eager, pl.read_parquet(files)",
    "polars-lazy": 'polars lazy, zd.scan(engine="polars")',
    "duckdb-relation": 'DuckDB relation, zd.scan(engine="duckdb")',
    "pyarrow": "pyarrow Table, Cache.read()",
    "dask": 'Dask, zd.scan(engine="dask"), local threads',
}
GROUPING = {"pandas-weekly": (["metric"], "W"), "pandas-2-dims": (["metric", "policy_title"], None)}
"""Engines whose ``breach_rates`` groups by more than the metric (their counts are summed
per metric to compare them with the reference)."""
GOAL_ENGINES = ("pandas", "pandas-weekly", "pandas-2-dims", "polars-lazy", "duckdb-relation")
"""Engines with a goal of 1.5x the reference (issue: the default path, freq= and several
dimensions, lazy frames from zd.scan without materializing)."""


def _counts_from_rows(rows: list[tuple]) -> dict[str, list[int]]:
    return {str(r[0]): [int(v) for v in r[1:5]] for r in rows}


def _native_counts(rates: Any) -> dict[str, list[int]]:
    """Counts per metric of a ``breach_rates`` result (finer groups summed per metric)."""
    import narwhals.stable.v2 as nw

    if hasattr(rates, "compute"):  # Dask
        rates = rates.compute()
    frame = nw.from_native(rates)
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect()
    rows = frame.select("metric", *COUNTS).rows()
    counts: dict[str, list[int]] = {}
    for metric, *values in rows:
        total = counts.setdefault(str(metric), [0, 0, 0, 0])
        for i, v in enumerate(values):
            total[i] += int(v)
    return counts


def run_engine(data_dir: str, engine: str, as_of: str, repeat: int) -> dict[str, Any]:
    """Time one engine (best of ``repeat``) and return its counts per metric."""
    import duckdb

    import zdevents as zd
    from zdevents.store import open_store

    fmt = table_format_of(data_dir)  # a Parquet cache stays one (no conversion on use)
    cache = open_store(data_dir, data.ACCOUNT, "metric_events", table_format=fmt)
    files = [str(p) for p in cache.files()]
    from bench.load_frame import settings_for

    settings = settings_for(data_dir)
    if engine == "dask":
        import dask

        dask.config.set(scheduler="threads")  # no cluster start-up: counts, not speed

    def once() -> tuple[float | None, float, dict[str, list[int]], int]:
        start = time.perf_counter()
        if engine == "duckdb-sql":
            con = duckdb.connect()
            con.execute("SET TimeZone = 'UTC'")
            rows = con.execute(REFERENCE_SQL, {"files": files, "as_of": as_of}).fetchall()
            con.close()
            return None, time.perf_counter() - start, _counts_from_rows(rows), -1
        if engine.startswith("pandas"):
            events = zd.load_frame(refresh="never", settings=settings)
        elif engine == "polars":
            import polars as pl

            events = pl.read_parquet(files)
        elif engine in ("polars-lazy", "duckdb-relation", "dask"):
            scan_engine = {"polars-lazy": "polars", "duckdb-relation": "duckdb"}.get(engine, engine)
            events = zd.scan(engine=scan_engine, settings=settings)
        elif engine == "pyarrow":
            events = cache.read()
        else:
            raise ValueError(f"unknown engine {engine!r}")
        read_done = time.perf_counter()
        by, freq = GROUPING.get(engine, ("metric", None))
        rates = zd.breach_rates(zd.sla_targets(events, as_of=as_of), by=by, freq=freq)
        counts = _native_counts(rates)
        end = time.perf_counter()
        eager = engine.startswith("pandas") or engine in ("polars", "pyarrow")
        rows = len(events) if eager else -1
        return (read_done - start if eager else None), end - start, counts, rows

    best: tuple[float | None, float, dict[str, list[int]], int] | None = None
    totals: list[float] = []
    for _ in range(max(1, repeat)):
        outcome = once()
        totals.append(outcome[1])
        if best is None or outcome[1] < best[1]:
            best = outcome
    assert best is not None
    read_s, total_s, counts, rows = best
    return {
        "read_seconds": read_s,
        "seconds": total_s,
        "times": totals,
        "counts": counts,
        "rows": rows,
    }


def _try_engine(data_dir: Path, engine: str, as_of: str, repeat: int) -> dict[str, Any]:
    from bench.common import BenchError

    try:
        return run_isolated(
            "bench.breach_rates:run_engine",
            data_dir=str(data_dir),
            engine=engine,
            as_of=as_of,
            repeat=repeat,
        )
    except BenchError as exc:
        last = str(exc).strip().splitlines()[-1]
        return {"error": last[:300]}


def run(size: Size, folder: Path) -> Result:
    from zdevents.store import open_store

    result = Result(NAME, TITLE)
    pages = data.export_pages(folder, size.tickets)
    data_dir = data.events_cache(folder, pages, batch_pages=size.batch_pages)
    fmt = table_format_of(data_dir)
    state = open_store(data_dir, data.ACCOUNT, "metric_events", table_format=fmt).state()
    import pandas as pd

    as_of = pd.Timestamp(state.cursor, unit="s", tz="UTC").isoformat()
    stores = {"Parquet cache": data_dir}
    if size.name == "xl":
        stores = {"Parquet cache": data.xl_cache(folder, data_dir, copies=10)}
    else:  # the default store of local caches: every engine with a goal, on the Delta table
        stores["Delta table"] = data.delta_cache(folder, data_dir)
    raw: dict[str, Any] = {"as_of": as_of, "rows": state.rows}
    reference_counts = None
    for store, where in stores.items():
        engines = (
            XL_ENGINES
            if size.name == "xl"
            else ENGINES
            if store == "Parquet cache"
            else ("duckdb-sql", *GOAL_ENGINES)
        )
        runs = {
            engine: _try_engine(where, engine, as_of, 1 if engine == "dask" else size.repeat)
            for engine in engines
        }  # Dask: its counts, once
        raw[store] = runs
        reference = runs["duckdb-sql"]
        if "error" in reference:
            result.failures.append(
                f"{store}: the DuckDB SQL reference failed: {reference['error']}"
            )
            continue
        if reference_counts is None:
            reference_counts = reference["counts"]
        elif reference["counts"] != reference_counts:
            result.failures.append(f"{store}: the DuckDB SQL reference counts differ")
        _compare(store, runs, reference, size, result)
    if reference_counts is not None:
        counts = Table(
            "Counts per metric (every engine that ran gave exactly these)",
            ["metric", *COUNTS, "breach rate"],
        )
        for metric, values in sorted(reference_counts.items()):
            done = values[1] + values[2]
            rate = f"{values[1] / done:.3f}" if done else "-"
            counts.rows.append([metric, *(f"{v:,}" for v in values), rate])
        result.tables.append(counts)
    rows = state.rows * (10 if size.name == "xl" else 1)
    result.notes.append(
        f"{rows:,} events, as_of = cache cursor {as_of}; best of {size.repeat} "
        "per engine, each engine in a fresh process; ratios against the DuckDB SQL "
        "reference over the same store's files, measured in the same run"
    )
    result.raw = raw
    return result


def _compare(
    store: str, runs: dict[str, Any], reference: dict[str, Any], size: Size, result: Result
) -> None:
    """The table and ratios of one store's runs against its DuckDB SQL reference."""
    table = Table(
        f"{store}: breach_rates(sla_targets(events)), by metric",
        [
            "engine",
            "read",
            "compute",
            "read + compute",
            "x DuckDB SQL",
            "peak RSS",
            "counts = reference",
        ],
    )
    for engine, run_ in runs.items():
        if "error" in run_:
            table.rows.append(
                [LABELS[engine], "-", "-", "-", "-", "-", f"not accepted: {run_['error'][:120]}"]
            )
            continue
        equal = run_["counts"] == reference["counts"]
        if not equal:
            result.failures.append(
                f"{store}, {LABELS[engine]}: counts differ from the DuckDB SQL "
                f"reference: {run_['counts']} vs {reference['counts']}"
            )
        read_s = run_["read_seconds"]
        compute = run_["seconds"] - read_s if read_s is not None else None
        ratio = run_["seconds"] / reference["seconds"]
        table.rows.append(
            [
                LABELS[engine],
                fmt_s(read_s),
                fmt_s(compute),
                fmt_s(run_["seconds"]),
                f"{ratio:.2f}x",
                fmt_mb(run_["peak_rss_mb"]),
                "yes" if equal else "**NO**",
            ]
        )
        if engine != "duckdb-sql":
            goal = engine in GOAL_ENGINES
            result.ratio(
                f"{store}: {LABELS[engine]} / DuckDB SQL, read + compute",
                ratio,
                "<= 1.50x" if goal else "",
                (ratio <= 1.5) if goal else None,
            )
    if "peak_rss_mb" in runs.get("pandas", {}):
        rss = runs["pandas"]["peak_rss_mb"] / reference["peak_rss_mb"]
        result.ratio(
            f"{store}: peak RSS, pandas default path / DuckDB SQL", rss, "<= 1.50x", rss <= 1.5
        )
    if size.name == "xl" and "peak_rss_mb" in runs.get("duckdb-relation", {}):
        gb = runs["duckdb-relation"]["peak_rss_mb"] / 1000
        result.ratio(
            "peak RSS of the out-of-core path (DuckDB relation) @50M",
            gb,
            "< 8 GB",
            gb < 8,
            unit=" GB",
        )
    result.tables.append(table)

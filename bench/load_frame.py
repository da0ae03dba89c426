"""Benchmark 2: ``zd.load_frame`` vs the pyarrow read floor on the same cache files.

The cache is the whole sample export ingested by zdevents (:func:`bench.data.events_cache`),
read as the Parquet cache and as the Delta table it migrates to
(:func:`bench.data.delta_cache`: Delta stores strings and microsecond times, so the floor
there reads strings where load_frame gives categories).
Three reads, each against ``pyarrow.parquet.read_table(files).to_pandas()`` on the same
files (``files`` = what the cache's manifest lists for the range, so the floor reads exactly
the files ``load_frame`` reads):

* **full** - every column, every row;
* **projected** - the 7 columns ``breach_rates(sla_targets(...))`` needs on pandas
  (:data:`SLA_COLUMNS`);
* **one month** - one calendar month (the cache's month partitions).

Each variant runs in its own fresh process (best of ``repeat`` runs; peak RSS of that
process). The frame's memory is ``DataFrame.memory_usage(deep=True).sum()``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench import data
from bench.common import Result, Size, Table, fmt_mb, fmt_s, run_isolated, table_format_of

NAME = "load_frame"
TITLE = "zd.load_frame vs pyarrow.parquet.read_table(files).to_pandas()"
SLA_COLUMNS = ["id", "ticket_id", "metric", "instance_id", "type", "time", "deleted"]
"""What sla_targets + breach_rates read on pandas (the other columns are optional there)."""
SPEED_GOAL = 1.5
MEMORY_GOAL_MB_PER_M = 110.0


def settings_for(data_dir: str) -> Any:
    """Settings of the benchmark account's cache in ``data_dir`` (a folder or an ``s3://`` URL)."""
    from zdevents.config import Settings

    return Settings(
        subdomain=data.ACCOUNT, data_dir=data_dir, table_format=table_format_of(data_dir)
    )


def floor_read(files: list[str], columns: list[str] | None = None) -> Any:
    """``pyarrow.parquet.read_table(files).to_pandas()``: the floor of a read of these files.

    ``files`` are local paths or URLs of one object store (``s3://...``), as the cache's
    ``files()`` lists them.
    """
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    filesystem, first = pafs.FileSystem.from_uri(files[0]) if files else (None, "")
    prefix = files[0][: len(files[0]) - len(first)] if files else ""
    paths = [f[len(prefix) :] for f in files]
    # partitioning=None: the file list sits under month=YYYY-MM folders, which pyarrow
    # would otherwise add as an extra "month" column that load_frame does not have.
    table = pq.read_table(paths, columns=columns, partitioning=None, filesystem=filesystem)
    return table.to_pandas()


def read_variant(
    data_dir: str,
    reader: str,
    repeat: int,
    columns: list[str] | None = None,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, Any]:
    """Read the cache with ``reader`` (``zdevents`` or ``floor``), best of ``repeat``.

    The cache is the store :func:`zdevents.store.open_store` opens in ``data_dir`` (the
    Parquet folder, or a Delta table there or at an ``s3://`` URL); the floor reads the data
    files it lists for the range (a Delta table: those of its current version).
    """
    import zdevents as zd
    from zdevents.store import open_store

    settings = settings_for(data_dir)
    files = [
        str(p)
        for p in open_store(
            data_dir, data.ACCOUNT, "metric_events", table_format=settings.table_format
        ).files(since, until)
    ]

    def read() -> Any:
        if reader == "zdevents":
            return zd.load_frame(since, until, refresh="never", columns=columns, settings=settings)
        return floor_read(files, columns)

    times: list[float] = []
    frame = None
    for _ in range(max(1, repeat)):
        frame = None
        start = time.perf_counter()
        frame = read()
        times.append(time.perf_counter() - start)
    assert frame is not None
    memory = int(frame.memory_usage(deep=True).sum())
    return {
        "seconds": min(times),
        "times": times,
        "rows": len(frame),
        "columns": len(frame.columns),
        "files": len(files),
        "memory_bytes": memory,
        "dtypes": {name: str(dtype) for name, dtype in frame.dtypes.items()},
    }


def compare_reads(
    data_dir: str, repeat: int, label: str, result: Result, **options: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`read_variant` by zdevents, then by the floor, each in a fresh process.

    A different row count is recorded as a failure of ``result``.
    """
    zd = run_isolated(
        "bench.load_frame:read_variant",
        data_dir=data_dir,
        reader="zdevents",
        repeat=repeat,
        **options,
    )
    floor = run_isolated(
        "bench.load_frame:read_variant", data_dir=data_dir, reader="floor", repeat=repeat, **options
    )
    if zd["rows"] != floor["rows"]:
        result.failures.append(
            f"{label}: load_frame read {zd['rows']:,} rows, the floor {floor['rows']:,}"
        )
    return zd, floor


def pick_month(data_dir: Path) -> tuple[str, str]:
    """[since, until) of the cache month with the most rows."""
    from zdevents.store import open_store

    fmt = table_format_of(data_dir)  # a Parquet cache stays one (no conversion on use)
    state = open_store(data_dir, data.ACCOUNT, "metric_events", table_format=fmt).state()
    rows: dict[str, int] = {}
    for part in state.files:
        rows[part.month] = rows.get(part.month, 0) + part.rows
    month = max(rows, key=lambda m: (rows[m], m))
    year, number = (int(x) for x in month.split("-"))
    following = f"{year + number // 12:04d}-{number % 12 + 1:02d}"
    return f"{month}-01", f"{following}-01"


def run(size: Size, folder: Path) -> Result:
    result = Result(NAME, TITLE)
    pages = data.export_pages(folder, size.tickets)
    data_dir = data.events_cache(folder, pages, batch_pages=size.batch_pages)
    since, until = pick_month(data_dir)
    reads: list[tuple[str, dict[str, Any]]] = [
        ("full", {}),
        (f"projected ({len(SLA_COLUMNS)} columns)", {"columns": SLA_COLUMNS}),
        (f"one month ({since[:7]})", {"since": since, "until": until}),
    ]
    stores = {"Parquet cache": data_dir, "Delta table": data.delta_cache(folder, data_dir)}
    variants = [
        (f"{store}, {label}", where, options)
        for store, where in stores.items()
        for label, options in reads
    ]
    table = Table(
        "load_frame",
        [
            "read",
            "rows",
            "files",
            "zdevents",
            "floor",
            "zdevents / floor",
            "frame MB/M rows",
            "floor frame MB/M rows",
            "peak RSS zdevents",
            "peak RSS floor",
        ],
    )
    raw: dict[str, Any] = {}
    for label, where, options in variants:
        zd, floor = compare_reads(str(where), size.repeat, label, result, **options)
        ratio = zd["seconds"] / floor["seconds"]
        per_m = zd["memory_bytes"] / zd["rows"] if zd["rows"] else 0.0  # bytes/row = MB/M rows
        floor_per_m = floor["memory_bytes"] / floor["rows"] if floor["rows"] else 0.0
        table.rows.append(
            [
                label,
                f"{zd['rows']:,}",
                str(zd["files"]),
                fmt_s(zd["seconds"]),
                fmt_s(floor["seconds"]),
                f"{ratio:.2f}x",
                f"{per_m:.1f}",
                f"{floor_per_m:.1f}",
                fmt_mb(zd["peak_rss_mb"]),
                fmt_mb(floor["peak_rss_mb"]),
            ]
        )
        result.ratio(
            f"load_frame / floor, {label}", ratio, f"<= {SPEED_GOAL:.2f}x", ratio <= SPEED_GOAL
        )
        if label.endswith(", full"):
            result.ratio(
                f"load_frame memory, {label.split(',')[0]}, all columns (MB per million rows)",
                per_m,
                f"<= {MEMORY_GOAL_MB_PER_M:.0f}",
                per_m <= MEMORY_GOAL_MB_PER_M,
                unit=" MB/M",
            )
            result.notes.append(
                f"load_frame dtypes ({label}): "
                + ", ".join(f"{name} {dtype}" for name, dtype in zd["dtypes"].items())
            )
            result.notes.append(
                f"floor dtypes ({label}): "
                + ", ".join(f"{name} {dtype}" for name, dtype in floor["dtypes"].items())
            )
        raw[label] = {"zdevents": zd, "floor": floor}
    result.notes.append(
        f"best of {size.repeat} reads per variant, each variant in a fresh "
        "process; the OS file cache is warm (the files were just written/read)"
    )
    result.tables.append(table)
    result.raw = raw
    return result

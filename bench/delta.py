"""Benchmark 5: the cache as a Delta Lake table - ingest, load_frame, refresh, S3 stand-in.

The store is :class:`zdevents.store.DeltaCache`, which :func:`zdevents.store.open_store` opens
for an ``s3://`` data dir or a folder holding ``_delta_log``. Each figure is compared with a
baseline measured in the same run, each measurement in a fresh process (peak RSS of the
whole process):

* **ingest** - the sample export's page bodies (:mod:`bench.data`) through zdevents' page
  writer into a Delta table, against the ``json.loads`` floor and the same writer into the
  Parquet cache (the paths of :mod:`bench.ingest`), at 1M and 5M events;
* **load_frame** - ``zd.load_frame`` of the 5M table just ingested, all columns and
  projected, against ``pyarrow.parquet.read_table(files).to_pandas()`` of the data files of
  the table's current version (:func:`bench.load_frame.compare_reads`);
* **refresh** - ``zd.fetch`` into that table, already up to date, from the local server
  serving the same export: the requests it sends, and its wall time beyond one plain HTTP
  request (``requests``) for the same page, sent from the same process just before;
* **S3 stand-in** - moto's S3 server on 127.0.0.1 (:func:`zdevents.testing.s3_stand_in`, run
  by this process, which sets the ``AWS_*`` variables the measured processes inherit): ``zd.fetch`` of a ~1M-event export from the local server into a Delta table
  there and into one on local disk, then ``load_frame`` of each with its floor, and the
  up-to-date refresh of each.
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from bench import data, ingest
from bench.common import (
    Result,
    Size,
    Table,
    fmt_mb,
    fmt_rate,
    fmt_s,
    interleaved,
    peak_rss_ratios,
    run_isolated,
    spread,
)
from bench.fetch import UNLIMITED_RPM
from bench.load_frame import SLA_COLUMNS, SPEED_GOAL, compare_reads
from bench.server import SERVER_EMAIL, SERVER_TOKEN, local_server, server_settings

NAME = "delta"
TITLE = "the cache as a Delta Lake table (ingest, load_frame, up-to-date refresh, S3 stand-in)"
RSS_GOAL_MB = ingest.RSS_GOAL_MB
REFRESH_REQUESTS_GOAL = 1
REFRESH_OVERHEAD_GOAL = 0.5
BUCKET = "zdevents-bench"

FLOOR = "json.loads floor"
PARQUET = "zdevents, Parquet cache"
DELTA = "zdevents, Delta table"
DELTA_ARENAS = "zdevents, Delta table, MALLOC_ARENA_MAX=2"
INGEST_PATHS: dict[str, tuple[str | None, dict[str, str] | None]] = {
    FLOOR: (None, None),
    PARQUET: ("parquet", None),
    DELTA: ("delta", None),
    DELTA_ARENAS: ("delta", {"MALLOC_ARENA_MAX": "2"}),
}
"""The ingest paths (names as :func:`bench.ingest.measure` takes them): (store, environment).

The last one is a diagnosis, not a product path: the same Delta ingest with glibc's
allocator limited to two arenas, which shows how much of its RSS is memory that the
allocator keeps in per-thread arenas after it was freed.
"""
READS: list[tuple[str, dict[str, Any]]] = [
    ("full", {}),
    (f"projected ({len(SLA_COLUMNS)} columns)", {"columns": SLA_COLUMNS}),
]


# ---------------------------------------------------------------------------- measured paths
def refresh_worker(base_url: str, data_dir: str, repeat: int) -> dict[str, Any]:
    """``zd.fetch`` of an up-to-date table, each after one plain request for the same page.

    The plain request (a fresh ``requests.Session``, the body read whole) asks for the page
    at the table's cursor, which is the one request an up-to-date fetch needs; the fetch's
    wall time beyond it is zdevents' own overhead. Best of ``repeat`` rounds for each.
    """
    import requests

    import zdevents as zd
    from zdevents.store import open_store
    from zdevents.streams import METRIC_EVENTS

    settings = server_settings(base_url, data_dir, timeout=600)
    store = open_store(data_dir, data.ACCOUNT, METRIC_EVENTS.name)
    before = store.state()
    runs: list[dict[str, Any]] = []
    for _ in range(max(1, repeat)):
        cursor = store.state().cursor
        start = time.perf_counter()
        with requests.Session() as session:
            response = session.get(
                f"{base_url}{METRIC_EVENTS.path}",
                params={"start_time": cursor},
                auth=(f"{SERVER_EMAIL}/token", SERVER_TOKEN),
                timeout=600,
            )
            response.raise_for_status()
            body = len(response.content)
        request = time.perf_counter() - start
        start = time.perf_counter()
        fetched = zd.fetch(METRIC_EVENTS.name, settings=settings, progress=False)
        runs.append(
            {
                "request_seconds": request,
                "seconds": time.perf_counter() - start,
                "body_bytes": body,
                "requests": fetched.requests,
                "pages": fetched.pages,
                "events_received": fetched.events_received,
                "new_events": fetched.new_events,
            }
        )
    after = store.state()
    return {
        "seconds": min(r["seconds"] for r in runs),
        "request_seconds": min(r["request_seconds"] for r in runs),
        "requests": max(r["requests"] for r in runs),
        "runs": runs,
        "rows": after.rows,
        "files": len(after.files),
        "version_before": getattr(before, "version", None),
        "version_after": getattr(after, "version", None),
    }


# ---------------------------------------------------------------------------- parts
def _ingest(size: Size, folder: Path, pages: data.PagesFile, result: Result) -> Path | None:
    """Ingest at each size; the data dir of the fastest Delta ingest of the whole export."""
    from zdevents.export.fetch import BATCH_PAGES

    per_batch = size.batch_pages or BATCH_PAGES
    work = folder / "delta-ingest-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    table = Table(
        "Ingest: page bodies -> the store",
        [
            "size",
            "path",
            "events",
            "seconds",
            "events/s",
            "x floor",
            "CPU s",
            "commits s",
            "peak RSS",
            "data files",
            "table version",
        ],
    )
    rss: dict[str, float] = {}
    arenas: dict[str, float] = {}
    kept: Path | None = None
    raw: dict[str, Any] = {}
    for label, wanted in size.ingest_events:
        count = pages.pages_for(wanted)
        every, best, peak = interleaved(
            list(INGEST_PATHS),
            size.repeat,
            lambda name, label=label, count=count: ingest.measure(
                label,
                name,
                pages,
                count,
                work,
                per_batch,
                size.batch_pages,
                store=INGEST_PATHS[name][0] or "parquet",
                env=INGEST_PATHS[name][1],
            ),
        )
        floor, delta = best[FLOOR], best[DELTA]
        for name, run_ in best.items():
            stored = INGEST_PATHS[name][0] is not None
            version = run_.get("version")
            table.rows.append(
                [
                    label,
                    name,
                    f"{run_['events']:,}",
                    fmt_s(run_["seconds"]),
                    fmt_rate(run_["events"], run_["seconds"]),
                    f"{floor['seconds'] / run_['seconds']:.2f}x",
                    f"{run_['cpu_seconds']:.2f}",
                    f"{run_['commit_seconds']:.2f}" if stored else "-",
                    fmt_mb(peak[name]),
                    str(run_["files"]) if stored else "-",
                    "-" if version is None else str(version),
                ]
            )
        speed = floor["seconds"] / delta["seconds"]
        result.ratio(
            f"Delta ingest / json.loads floor, events/s @{label}", speed, ">= 1.00x", speed >= 1.0
        )
        result.ratio(
            f"Delta ingest / Parquet cache ingest, events/s @{label}",
            best[PARQUET]["seconds"] / delta["seconds"],
        )
        result.notes.append(
            f"Delta ingest @{label} (best run): {delta['batches']} commits of "
            f"{delta['batch_pages']} pages; {delta['rows']:,} unique rows in {delta['files']} "
            f"data files ({delta['bytes'] / 1e6:,.1f} MB); RSS after batches (pages: MB) "
            + ", ".join(f"{p}: {m:.0f}" for p, m in spread(delta["rss_trace"], 6))
        )
        rss[label] = peak[DELTA]
        arenas[label] = peak[DELTA_ARENAS]
        if label == size.ingest_events[-1][0] and count == pages.pages:
            kept = folder / "delta-table"
            shutil.rmtree(kept, ignore_errors=True)
            Path(delta["data_dir"]).replace(kept)
        for tries in every.values():
            for try_ in tries:
                try_.pop("rss_trace", None)
        raw[label] = every
        for name in (PARQUET, DELTA, DELTA_ARENAS):
            for try_ in every[name]:
                shutil.rmtree(try_["data_dir"], ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    largest = size.ingest_events[-1][0]
    peak_rss_ratios(result, "the Delta ingest", rss, RSS_GOAL_MB)
    result.ratio(
        f"peak RSS of the Delta ingest @{largest}, MALLOC_ARENA_MAX=2 (diagnosis)",
        arenas[largest],
        unit=" MB",
    )
    result.tables.append(table)
    result.raw["ingest"] = raw
    return kept


def _reads(size: Size, data_dir: str, where: str, result: Result) -> dict[str, Any]:
    """load_frame and its floor for each of :data:`READS`: {label: (zdevents, floor)}."""
    return {
        label: compare_reads(data_dir, size.repeat, f"{where}, {label}", result, **options)
        for label, options in READS
    }


def _load_frame(size: Size, data_dir: Path, result: Result) -> None:
    table = Table(
        "load_frame from the Delta table vs pyarrow.parquet.read_table(files).to_pandas()",
        ["read", "rows", "data files", "zdevents", "floor", "x floor", "peak RSS zdevents"],
    )
    reads = _reads(size, str(data_dir), "Delta table", result)
    for label, (zd, floor) in reads.items():
        ratio = zd["seconds"] / floor["seconds"]
        table.rows.append(
            [
                label,
                f"{zd['rows']:,}",
                str(zd["files"]),
                fmt_s(zd["seconds"]),
                fmt_s(floor["seconds"]),
                f"{ratio:.2f}x",
                fmt_mb(zd["peak_rss_mb"]),
            ]
        )
        result.ratio(
            f"load_frame / floor from the Delta table, {label}",
            ratio,
            f"<= {SPEED_GOAL:.2f}x",
            ratio <= SPEED_GOAL,
        )
    result.tables.append(table)
    result.raw["load_frame"] = reads


def _refresh_row(where: str, run_: dict[str, Any]) -> list[str]:
    overhead = run_["seconds"] - run_["request_seconds"]
    return [
        where,
        f"{run_['rows']:,}",
        str(run_["requests"]),
        fmt_s(run_["request_seconds"]),
        fmt_s(run_["seconds"]),
        fmt_s(overhead),
        f"{run_['version_before']} -> {run_['version_after']}",
    ]


def _refresh_ratios(where: str, run_: dict[str, Any], result: Result) -> None:
    result.ratio(
        f"requests of an up-to-date refresh, {where}",
        run_["requests"],
        f"<= {REFRESH_REQUESTS_GOAL}",
        run_["requests"] <= REFRESH_REQUESTS_GOAL,
        unit="",
    )
    overhead = run_["seconds"] - run_["request_seconds"]
    result.ratio(
        f"up-to-date refresh beyond its one request, {where}",
        overhead,
        f"< {REFRESH_OVERHEAD_GOAL:.1f} s",
        overhead < REFRESH_OVERHEAD_GOAL,
        unit=" s",
    )


def _s3(size: Size, folder: Path, result: Result, refresh: Table) -> None:
    """Fetch, load_frame and refresh ~1M events on local disk and on the S3 stand-in."""
    from zdevents.store import DeltaCache
    from zdevents.testing import s3_stand_in

    local = folder / "delta-s3-local"
    shutil.rmtree(local, ignore_errors=True)
    table = Table(
        f"Delta table on local disk and on the S3 stand-in ({size.s3_tickets:,} sample "
        "tickets fetched from the local server)",
        [
            "store",
            "events received",
            "unique rows",
            "fetch",
            "events/s",
            "fetch peak RSS",
            *[f"load_frame {label.split()[0]}" for label, _ in READS],
            *[f"floor {label.split()[0]}" for label, _ in READS],
        ],
    )
    raw: dict[str, Any] = {}
    with local_server(size.s3_tickets) as server, s3_stand_in(BUCKET) as s3:
        build = server.warm_up()
        DeltaCache(local, data.ACCOUNT, "metric_events").create()
        places = {"local disk": str(local), "S3 stand-in": f"{s3.url}/{uuid.uuid4().hex[:8]}"}
        for where, data_dir in places.items():
            fetched = run_isolated(
                "bench.fetch:fetch_worker",
                base_url=server.url,
                data_dir=data_dir,
                requests_per_minute=UNLIMITED_RPM,
            )
            fetched.pop("rss_trace", None)
            reads = _reads(size, data_dir, where, result)
            again = run_isolated(
                "bench.delta:refresh_worker",
                base_url=server.url,
                data_dir=data_dir,
                repeat=size.repeat,
            )
            events = fetched["events_received"]
            table.rows.append(
                [
                    where,
                    f"{events:,}",
                    f"{fetched['rows']:,}",
                    fmt_s(fetched["seconds"]),
                    fmt_rate(events, fetched["seconds"]),
                    fmt_mb(fetched["peak_rss_mb"]),
                    *[fmt_s(zd["seconds"]) for zd, _ in reads.values()],
                    *[fmt_s(floor["seconds"]) for _, floor in reads.values()],
                ]
            )
            label = f"{events / 1e6:.1f}M" if events >= 1e6 else f"{events / 1e3:.0f}k"
            refresh.rows.append(_refresh_row(f"{label}, {where}", again))
            raw[where] = {"fetch": fetched, "reads": reads, "refresh": again}
    shutil.rmtree(local, ignore_errors=True)
    disk, s3 = raw["local disk"], raw["S3 stand-in"]
    result.ratio(
        "fetch wall, S3 stand-in / local disk", s3["fetch"]["seconds"] / disk["fetch"]["seconds"]
    )
    for label, _ in READS:
        zd_s3, floor_s3 = s3["reads"][label]
        result.ratio(
            f"load_frame, S3 stand-in / local disk, {label}",
            zd_s3["seconds"] / disk["reads"][label][0]["seconds"],
        )
        result.ratio(
            f"load_frame / floor on the S3 stand-in, {label}",
            zd_s3["seconds"] / floor_s3["seconds"],
        )
    result.notes.append(
        f"S3 stand-in: zdevents.testing.s3_stand_in (moto's S3 server) on 127.0.0.1, in the "
        "benchmark's process "
        f"(the fetch and reads run in their own); the local server built its "
        f"{size.s3_tickets:,}-ticket dataset in {build:.1f} s on a warm-up request (not timed)"
    )
    result.tables.append(table)
    result.raw["s3"] = raw


def run(size: Size, folder: Path) -> Result:
    result = Result(NAME, TITLE)
    pages = data.export_pages(folder, size.tickets)
    result.notes.append(ingest.input_note(pages))
    result.notes.append(
        f"ingest: each path ran {size.repeat} times, interleaved, each run in a fresh process: "
        "seconds = best run, CPU s = CPU time (all threads) of that run, peak RSS = largest "
        f"of the runs, commits s = wall time of the store's commits in the writer thread "
        "(they overlap the parsing of the next batch: near the ingest's seconds, the commits "
        f"set its pace); load_frame: best of {size.repeat} reads, each variant in a fresh "
        "process"
    )
    refresh = Table(
        "Up-to-date refresh: zd.fetch when the table already holds the whole export",
        [
            "table",
            "rows",
            "requests",
            "one plain request",
            "refresh",
            "refresh - request",
            "table version",
        ],
    )
    table_dir = _ingest(size, folder, pages, result)
    if table_dir is None:
        result.failures.append("no ingest of the whole export: nothing to read or refresh")
        return result
    try:
        _load_frame(size, table_dir, result)
        with local_server(size.tickets) as server:
            build = server.warm_up()
            again = run_isolated(
                "bench.delta:refresh_worker",
                base_url=server.url,
                data_dir=str(table_dir),
                repeat=size.repeat,
            )
        refresh.rows.append(_refresh_row("ingested export, local disk", again))
        _refresh_ratios("local disk", again, result)
        result.raw["refresh"] = again
        result.notes.append(
            f"refresh: best of {size.repeat} rounds of (one plain request, then zd.fetch) in "
            f"one fresh process; the local server built its {size.tickets:,}-ticket dataset "
            f"in {build:.1f} s on a warm-up request (not timed)"
        )
    finally:
        shutil.rmtree(table_dir, ignore_errors=True)
    _s3(size, folder, result, refresh)
    result.tables.insert(2, refresh)
    return result

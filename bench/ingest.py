"""Benchmark 1: raw page bodies -> typed Parquet, zdevents vs the naive baseline vs json.loads.

Input: the sample account's metric-event export as the local server serves it (see
:mod:`bench.data`), streamed page by page from an ``.ndjson`` file on disk. Three paths, each
in its own fresh process (peak RSS of the whole process):

* **floor** - ``json.loads`` of every page, nothing else (no frame, no file);
* **naive** - ``json.loads`` + ``pandas.json_normalize`` + ``DataFrame.to_parquet``, one file
  per batch of pages (batched like zdevents so its memory stays bounded; a whole-export
  variant, one frame for everything, runs at the smaller size);
* **zdevents** - what :func:`zdevents.fetch` runs after its HTTP client: the pages go
  through :class:`zdevents.export.fetch.PageWriter` (batches of ``BATCH_PAGES`` pages parsed by
  :func:`zdevents.export.parse.metric_events_table`, each committed by
  :meth:`zdevents.store.parquet.Cache.commit` - dedupe, month split, zstd Parquet, manifest - in the
  writer thread while the next batch is parsed), inside :func:`zdevents.export.fetch.memory_pool`.

Events/s count every record in the pages read (page-boundary repeats included), the same
number for every path.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from bench import data
from bench.common import (
    Result,
    Size,
    Table,
    cpu_seconds,
    current_rss_mb,
    fmt_mb,
    fmt_rate,
    fmt_s,
    interleaved,
    peak_rss_ratios,
    run_isolated,
    spread,
)

NAME = "ingest"
TITLE = "page bodies -> typed Parquet (events/s, peak RSS)"
RSS_GOAL_MB = 400.0


# ---------------------------------------------------------------------------- measured paths
def _lines(path: str, pages: int):
    with open(path, "rb") as fh:
        for i, line in enumerate(fh):
            if i >= pages:
                return
            yield line.rstrip(b"\n")


def json_floor(path: str, pages: int) -> dict[str, Any]:
    """``json.loads`` of each page body (the floor: no frame, nothing written)."""
    events = 0
    cpu, start = cpu_seconds(), time.perf_counter()
    for body in _lines(path, pages):
        events += len(json.loads(body)["ticket_metric_events"])
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": cpu_seconds() - cpu,
        "events": events,
        "pages": pages,
    }


def naive_ingest(
    path: str, pages: int, out_dir: str, batch_pages: int, whole: bool = False
) -> dict[str, Any]:
    """``json.loads`` + ``pandas.json_normalize`` + ``to_parquet`` (per batch, or whole)."""
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    events = files = 0
    records: list[dict] = []
    in_batch = 0

    def flush() -> None:
        nonlocal records, files, in_batch
        frame = pd.json_normalize(records)
        frame.to_parquet(out / f"part-{files:05d}.parquet")
        files += 1
        records, in_batch = [], 0

    cpu, start = cpu_seconds(), time.perf_counter()
    for body in _lines(path, pages):
        batch = json.loads(body)["ticket_metric_events"]
        events += len(batch)
        records.extend(batch)
        in_batch += 1
        if not whole and in_batch >= batch_pages:
            flush()
    if records:
        flush()
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds() - cpu,
        "events": events,
        "pages": pages,
        "files": files,
    }


def zdevents_ingest(
    path: str,
    pages: int,
    data_dir: str,
    batch_pages: int | None,
    end_times: list[int],
    counts: list[int],
    store: str = "parquet",
) -> dict[str, Any]:
    """zdevents' path, exactly as :func:`zdevents.fetch` runs it after the HTTP client.

    Pages go through :class:`zdevents.export.fetch.PageWriter`: parsed ``BATCH_PAGES`` at a time
    (:func:`zdevents.export.parse.metric_events_table`), committed by its writer thread while
    the next batch is read and parsed, inside :func:`zdevents.export.fetch.memory_pool`.
    ``store`` is ``"parquet"`` (the Parquet cache folder) or ``"delta"`` (a Delta Lake table,
    created empty first, which is what :func:`zdevents.store.open_store` then opens).
    """
    from zdevents.export import fetch as ingest
    from zdevents.export.client import Page
    from zdevents.store import DeltaCache, open_store
    from zdevents.streams import METRIC_EVENTS

    if store == "delta":
        DeltaCache(data_dir, data.ACCOUNT, "metric_events").create()
    elif store != "parquet":
        raise ValueError(f"store must be 'parquet' or 'delta', not {store!r}")
    cache = open_store(data_dir, data.ACCOUNT, "metric_events", table_format=store)
    commit_seconds = 0.0
    commit = cache.commit

    def timed_commit(*args: Any, **kwargs: Any) -> Any:
        """The store's commit, its wall time added up (the writer thread's busy time)."""
        nonlocal commit_seconds
        begin = time.perf_counter()
        try:
            return commit(*args, **kwargs)
        finally:
            commit_seconds += time.perf_counter() - begin

    cache.commit = timed_commit  # type: ignore[method-assign]
    per_batch = ingest.BATCH_PAGES if batch_pages is None else batch_pages
    events = 0
    trace: list[tuple[int, float]] = []  # (pages done, current RSS MB) after each batch
    cpu, start = cpu_seconds(), time.perf_counter()
    with ingest.memory_pool(), cache.lock():
        writer = ingest.PageWriter(cache, METRIC_EVENTS, covered_since=0, batch_pages=per_batch)
        for i, body in enumerate(_lines(path, pages)):
            events += counts[i]
            writer.add(
                Page(
                    url=f"bench://metric_events/page/{i + 1}",
                    start_time=0,
                    body=body,
                    records_key="ticket_metric_events",
                    count=counts[i],
                    end_time=end_times[i],
                    end_of_stream=None,
                    next_page=None,
                    last=i == pages - 1,
                )
            )
            if (i + 1) % per_batch == 0:
                trace.append((i + 1, round(current_rss_mb(), 1)))
        writer.close()
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    trace.append((pages, round(current_rss_mb(), 1)))
    state = cache.state()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "events": events,
        "pages": pages,
        "batches": -(-pages // per_batch),
        "batch_pages": per_batch,
        "rows": state.rows,
        "files": len(state.files),
        "bytes": sum(
            (Path(data_dir) / data.ACCOUNT / "metric_events" / p.path).stat().st_size
            for p in state.files
        ),
        "rss_trace": trace,
        "commit_seconds": commit_seconds,
        "version": getattr(state, "version", None),
    }


def zdevents_ingest_args(
    pages: data.PagesFile,
    count: int,
    data_dir: Path,
    batch_pages: int | None,
    store: str = "parquet",
) -> dict[str, Any]:
    """Keyword arguments of :func:`zdevents_ingest` for the first ``count`` pages of ``pages``."""
    return {
        "path": str(pages.path),
        "pages": count,
        "data_dir": str(data_dir),
        "batch_pages": batch_pages,
        "end_times": pages.end_times[:count],
        "counts": pages.counts[:count],
        "store": store,
    }


# ---------------------------------------------------------------------------- the benchmark
def measure(
    label: str,
    path_name: str,
    pages: data.PagesFile,
    count: int,
    work: Path,
    per_batch: int,
    batch_pages: int | None,
    store: str = "parquet",
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One isolated run of one path on the first ``count`` pages.

    ``path_name`` is ``"json.loads floor"``, ``"naive (batched)"``, ``"naive (whole
    export)"`` or any other name for zdevents' path, which writes into ``store``
    (``"parquet"`` or ``"delta"``) under ``work``; its result's ``data_dir`` says where.
    ``env``: environment variables added to zdevents' process.
    """
    if path_name == "json.loads floor":
        return run_isolated("bench.ingest:json_floor", path=str(pages.path), pages=count)
    if path_name.startswith("naive"):
        out = work / f"{path_name.split()[1].strip('()')}-{label}"
        try:
            return run_isolated(
                "bench.ingest:naive_ingest",
                path=str(pages.path),
                pages=count,
                out_dir=str(out),
                batch_pages=per_batch,
                whole="whole" in path_name,
            )
        finally:
            shutil.rmtree(out, ignore_errors=True)
    out = work / f"zdevents-{store}-{label}{'-env' if env else ''}"
    shutil.rmtree(out, ignore_errors=True)
    run_ = run_isolated(
        "bench.ingest:zdevents_ingest",
        env=env,
        **zdevents_ingest_args(pages, count, out, batch_pages, store),
    )
    run_["data_dir"] = str(out)
    return run_


def input_note(pages: data.PagesFile) -> str:
    """The note that describes the ingested export."""
    return (
        f"input: {pages.events:,} metric events of {pages.tickets:,} sample tickets in "
        f"{pages.pages:,} pages ({pages.path.stat().st_size / 1e6:,.0f} MB of JSON, "
        f"{pages.path.stat().st_size / max(1, pages.events):.0f} B/event), fetched once from "
        f"the local server in {pages.seconds:.0f} s; every path streams them from that file "
        "(events counted include the page-boundary repeats the export sends)"
    )


def run(size: Size, folder: Path) -> Result:
    result = Result(NAME, TITLE)
    pages = data.export_pages(folder, size.tickets)
    result.notes.append(input_note(pages))
    result.notes.append(
        f"each path ran {size.repeat} times, interleaved, each run in a fresh process: "
        "seconds = best run (wall time), CPU s = CPU time (all threads) of that run, "
        "peak RSS = largest of the runs. CPU time is less sensitive than wall time to "
        "other work on the machine; zdevents uses both cores (2 parse threads and a writer "
        "thread), the others use one"
    )
    batch_pages = size.batch_pages
    from zdevents.export.fetch import BATCH_PAGES

    per_batch = batch_pages or BATCH_PAGES
    table = Table(
        "Ingest",
        [
            "size",
            "path",
            "events",
            "seconds",
            "events/s",
            "x floor",
            "x naive",
            "CPU s",
            "CPU x floor",
            "peak RSS",
        ],
    )
    work = folder / "ingest-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    runs: dict[str, Any] = {}
    zd_rss: dict[str, float] = {}
    for label, wanted in size.ingest_events:
        count = pages.pages_for(wanted)
        names = ["json.loads floor", "naive (batched)"]
        if (
            size.naive_whole_events is not None
            and wanted is not None
            and (wanted <= size.naive_whole_events)
        ):
            names.append("naive (whole export)")
        names.append("zdevents")
        every, best, peak = interleaved(
            names,
            size.repeat,
            lambda name, label=label, count=count: measure(
                label, name, pages, count, work, per_batch, batch_pages
            ),
        )
        floor, naive, zd = (best[k] for k in ("json.loads floor", "naive (batched)", "zdevents"))
        for name in names:
            run_ = best[name]
            rate = run_["events"] / run_["seconds"]
            table.rows.append(
                [
                    label,
                    name,
                    f"{run_['events']:,}",
                    fmt_s(run_["seconds"]),
                    fmt_rate(run_["events"], run_["seconds"]),
                    f"{rate / (floor['events'] / floor['seconds']):.2f}x",
                    f"{rate / (naive['events'] / naive['seconds']):.2f}x",
                    f"{run_['cpu_seconds']:.2f}",
                    f"{floor['cpu_seconds'] / run_['cpu_seconds']:.2f}x",
                    fmt_mb(peak[name]),
                ]
            )
        speed_floor = floor["seconds"] / zd["seconds"]
        speed_naive = naive["seconds"] / zd["seconds"]
        result.ratio(
            f"zdevents / json.loads floor, events/s @{label}",
            speed_floor,
            ">= 1.00x",
            speed_floor >= 1.0,
        )
        result.ratio(
            f"zdevents / naive (batched), events/s @{label}",
            speed_naive,
            ">= 7.00x",
            speed_naive >= 7.0,
        )
        if "naive (whole export)" in best:
            speed_whole = best["naive (whole export)"]["seconds"] / zd["seconds"]
            result.ratio(
                f"zdevents / naive (whole export), events/s @{label}",
                speed_whole,
                ">= 7.00x",
                speed_whole >= 7.0,
            )
        result.ratio(
            f"zdevents / json.loads floor, events per CPU second @{label}",
            floor["cpu_seconds"] / zd["cpu_seconds"],
        )
        result.notes.append(
            f"zdevents @{label} (best run): {zd['batches']} batches of {zd['batch_pages']} "
            "pages, each parsed in chunks on the parse threads and committed by the writer thread "
            f"while the next one was parsed; {zd['rows']:,} unique rows in {zd['files']} "
            f"Parquet files ({zd['bytes'] / 1e6:,.1f} MB); RSS after batches (pages: MB) "
            + ", ".join(f"{p}: {m:.0f}" for p, m in spread(zd["rss_trace"], 6))
        )
        zd_rss[label] = peak["zdevents"]
        runs[label] = every
        for name in names:  # keep the figures, not the traces of every try
            for try_ in every[name]:
                try_.pop("rss_trace", None)
        zd_dirs = {Path(r["data_dir"]) for r in every["zdevents"]}
        if label == size.ingest_events[-1][0] and count == pages.pages:
            data.adopt_cache(folder, pages, Path(zd["data_dir"]))
        for zd_dir in zd_dirs:
            shutil.rmtree(zd_dir, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    labels = [label for label, _ in size.ingest_events]
    peak_rss_ratios(
        result,
        "zdevents ingest",
        zd_rss,
        RSS_GOAL_MB,
        f"peak RSS @{labels[-1]} / @{labels[0]} (flat: does not grow with pages)",
    )
    result.tables.append(table)
    result.raw = {"pages": pages.pages, "events": pages.events, "runs": runs}
    return result

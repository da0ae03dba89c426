"""Whole jobs built from the public pieces: cache status, the report, the offline demo.

The demo's sample cache comes from :func:`zdevents.sample.demo.prepare_sample`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .config import Settings, holds_cache
from .dates import TimeLike, time_range
from .errors import CacheError
from .store import DeltaState, open_store
from .streams import STREAMS

__all__ = [
    "ReportRun",
    "StreamStatus",
    "build_report",
    "cache_status",
    "format_status",
    "run_demo",
]


@dataclass(frozen=True)
class StreamStatus:
    """What the cache holds for one stream of one account."""

    account: str
    stream: str
    rows: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    cursor: pd.Timestamp | None
    bytes: int
    files: int = 0
    """Data files of the current state (Parquet part files or the Delta version's files)."""
    version: int | None = None
    """The Delta table version read (None for a Parquet cache, or no table yet)."""


def _ts(seconds: int | float | None) -> pd.Timestamp | None:
    return None if seconds is None else pd.Timestamp(seconds, unit="s", tz="UTC")


def cache_status(*, settings: Settings | None = None) -> list[StreamStatus]:
    """Rows, time range, cursor, size and file count of every cached stream.

    Lists the configured account, or every account in the cache folder when none is set.
    For a Delta table the figures are those of one table version (``version``).

    Examples
    --------
    >>> for s in cache_status():  # doctest: +SKIP
    ...     print(s.stream, s.rows)
    """
    settings = settings if settings is not None else Settings.from_env()
    root = Path(settings.data_dir)
    if settings.has_account:
        accounts = [settings.account]
    else:
        accounts = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    out = []
    for account in accounts:
        for stream in STREAMS:
            cache = open_store(
                settings.data_dir if settings.has_account else root,
                account,
                stream,
                table_format=settings.table_format,
            )
            state = cache.state()
            version = state.version if isinstance(state, DeltaState) else None
            first = min((f.min_time for f in state.files), default=None)
            last = max((f.max_time for f in state.files), default=None)
            out.append(
                StreamStatus(
                    account=account,
                    stream=stream,
                    rows=state.rows,
                    first=_file_time(first),
                    last=_file_time(last),
                    cursor=_ts(state.cursor),
                    # a Delta table: the size of the version read, not of a later one
                    bytes=sum(p.size or 0 for p in state.files)
                    if isinstance(state, DeltaState)
                    else cache.size_bytes(),
                    files=len(state.files),
                    version=version,
                )
            )
    return out


def _file_time(millis: int | None) -> pd.Timestamp | None:
    """A data file's event time (Unix milliseconds in both stores) as a UTC Timestamp."""
    return None if millis is None else pd.Timestamp(millis, unit="ms", tz="UTC")


def format_status(statuses: list[StreamStatus]) -> str:
    """A plain-text table of :func:`cache_status`.

    One line per stream: rows, first and last event, cursor, size, file count and the Delta
    table version (``-`` for a Parquet cache).

    Examples
    --------
    >>> print(format_status(cache_status()))  # doctest: +SKIP
    """
    if not statuses:
        return "the cache is empty: run `zdevents fetch` (or `zdevents demo` for the sample)"
    day = "%Y-%m-%d %H:%M"

    def fmt(ts: pd.Timestamp | None) -> str:
        return ts.strftime(day) if ts is not None else "-"

    rows = [
        (
            "account",
            "stream",
            "rows",
            "first event (UTC)",
            "last event (UTC)",
            "cursor (UTC)",
            "on disk",
            "files",
            "version",
        )
    ]
    for s in statuses:
        rows.append(
            (
                s.account,
                s.stream,
                f"{s.rows:,}",
                fmt(s.first),
                fmt(s.last),
                fmt(s.cursor),
                _size(s.bytes),
                f"{s.files:,}",
                "-" if s.version is None else str(s.version),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    return "\n".join(lines)


def _size(n: float) -> str:
    """Bytes in the largest unit below 1024 (GB at most): "512 B", "3.4 MB"."""
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KB", "MB", "GB"):
        n /= 1024
        if n < 1024 or unit == "GB":
            break
    return f"{n:.1f} {unit}"


@dataclass(frozen=True)
class ReportRun:
    """Where :func:`build_report` wrote the report, and the breach rate by metric."""

    out_dir: Path
    index: Path
    files: list[Path]
    by_metric: pd.DataFrame
    summary: str
    table_version: int | None = None
    """The Delta table version the report read (None for a Parquet cache)."""


def build_report(
    out_dir: str | Path,
    *,
    since: TimeLike = None,
    until: TimeLike = None,
    settings: Settings | None = None,
) -> ReportRun:
    """Read the cache, compute SLA targets with ticket attributes, write charts and HTML.

    Targets are selected by when their SLA applied, in ``[since, until)``.

    Raises
    ------
    CacheError
        When the cache holds no metric events (the message says to run ``zdevents fetch``).

    Examples
    --------
    >>> run = build_report("reports", since="2024-01-01")  # doctest: +SKIP
    >>> print(run.summary)  # doctest: +SKIP
    """
    from .analysis.insights import due_targets
    from .analysis.sla import sla_targets
    from .analysis.tickets import attach_ticket_attributes
    from .errors import ZdEventsError
    from .export.names import Names, load_names
    from .read.frame import load_changes, load_frame, open_cache
    from .viz.report import format_rates_table, write_report

    settings = settings if settings is not None else Settings.from_env()
    start, end = time_range(since, until)
    root = Path(settings.data_dir).absolute()
    nothing = (
        "run `zdevents fetch` first (or `zdevents demo` for the sample account), or point "
        "ZDEVENTS_DATA_DIR / --data-dir at the folder that holds the cache"
    )
    if not settings.has_account and not holds_cache(root):
        raise CacheError(f"no zdevents cache in {root}: {nothing}", path=str(root))
    cache = open_cache("metric_events", settings=settings)
    if not cache.state().rows:
        raise CacheError(
            f"no SLA metric events cached for {cache.account} in {root}: {nothing}",
            path=str(cache.dir),
        )
    events = load_frame(refresh="never", settings=settings)
    as_of = events.attrs.get("zdevents_as_of")
    targets = sla_targets(events, as_of=as_of)
    due = due_targets(events, as_of=as_of, targets=targets) if as_of is not None else None
    # Ticket attributes (priority, group, channel) need the ticket events; without them the
    # report still has metric and policy.
    if open_cache("ticket_events", settings=settings).state().rows:
        changes = load_changes(refresh="never", settings=settings)
        try:  # group and brand names: cached beside the exports, fetched when missing
            names = load_names(settings=settings)
        except ZdEventsError as exc:
            logging.getLogger(__name__).warning("group and brand names unavailable: %s", exc)
            names = Names()
        targets = attach_ticket_attributes(
            targets, changes, groups=names.groups or None, brands=names.brands or None
        )
        if due is not None:  # the queue's group and assignee now, not when the SLA applied
            due = attach_ticket_attributes(
                due,
                changes,
                at="as_of",
                groups=names.groups or None,
                fields=["group_id", "assignee_id"],
            )
    account = cache.account  # the configured account, or the only one in the cache folder
    result = write_report(
        targets,
        out_dir,
        as_of=as_of,
        since=start,
        until=end,
        account=account,
        due=due,
        table_version=events.attrs.get("zdevents_table_version"),
    )
    by_metric = result.by_metric  # first and next replies apart
    return ReportRun(
        out_dir=Path(out_dir),
        index=Path(result.index),
        files=list(result.files),
        by_metric=by_metric,
        summary=format_rates_table(by_metric),
        table_version=result.table_version,
    )


def run_demo(
    *,
    out_dir: str | Path = "reports/demo",
    data_dir: str | Path = "data",
    tickets: int = 3000,
    seed: int = 7,
    progress: bool = True,
    echo: Callable[[str], object] = print,
    table_format: str = "delta",
) -> ReportRun:
    """Generate the sample account, serve it on 127.0.0.1, fetch both streams, report.

    The real pipeline end to end (HTTP, pacing, normalisation, the cache in ``table_format``,
    analysis, charts) with no Zendesk account.

    Examples
    --------
    >>> run = run_demo(out_dir="reports/demo", data_dir="data")  # doctest: +SKIP
    """
    from .sample.demo import prepare_sample  # the sample generator and server, on first use

    started = time.monotonic()
    settings = prepare_sample(
        data_dir,
        tickets=tickets,
        seed=seed,
        progress=progress,
        echo=echo,
        table_format=table_format,
    )
    echo("")
    echo(format_status(cache_status(settings=settings)))
    echo("")
    run = build_report(out_dir, settings=settings)
    from .insight_pipeline import build_deck
    from .sample.account import GROUPS

    echo(f"deck: {build_deck(Path(out_dir) / 'sla.pptx', settings=settings, groups=GROUPS)}")
    echo("breach rate by metric:")
    echo(run.summary)
    echo("")
    echo(
        f"charts and report in {Path(out_dir).resolve()} (open {run.index.name}); "
        f"{time.monotonic() - started:.0f} s"
    )
    return run

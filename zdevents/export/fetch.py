"""Fetch one export stream into the store: client pages -> stream parsers -> store commits.

:func:`fetch` reads the ranges of :func:`~zdevents.export.plan.fetch_plan` through a
:class:`~zdevents.export.client.Client` and hands the pages to a
:class:`~zdevents.export.writer.PageWriter`. The cursor moves only in the store's commit,
after the data it covers is durable, so a fetch can be interrupted at any point (Ctrl-C,
SIGTERM, SIGHUP) and resumed by running it again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from ..config import Settings
from ..dates import TimeLike, time_range
from ..errors import ConfigError
from ..store import is_object_store, open_store
from ..store.parquet import Cache, CacheState
from ..streams import (
    METRIC_EVENTS,
    PAGINATION_MODES,
    SUPPORT_TYPE_SCOPES,
    TICKET_EVENTS,
    Stream,
    get_stream,
)
from .client import Client
from .plan import FetchResult, fetch_plan
from .progress import FetchProgress
from .writer import BATCH_PAGES, PageWriter

if TYPE_CHECKING:
    import requests

__all__ = [
    "BATCH_PAGES",
    "FetchResult",
    "PageWriter",
    "Terminated",
    "fetch",
    "memory_pool",
    "signals_as_interrupt",
]

log = logging.getLogger(__name__)

_pool_lock = threading.Lock()
_pool_users = 0
_pool_before: pa.MemoryPool | None = None


@contextlib.contextmanager
def memory_pool() -> Iterator[None]:
    """Allocate Arrow memory from the system allocator inside the ``with`` block.

    pyarrow's default pool (mimalloc or jemalloc) keeps the memory of freed batches for
    reuse, so a long fetch's resident memory creeps up to several batches; the system
    allocator hands it back. Buffers remember their pool, so switching is safe. The previous
    pool comes back when the last of overlapping blocks (fetches in several threads) exits.
    :func:`fetch` runs inside it.

    Examples
    --------
    >>> with memory_pool():
    ...     pass
    """
    global _pool_users, _pool_before
    with _pool_lock:
        if _pool_users == 0:
            _pool_before = pa.default_memory_pool()
            pa.set_memory_pool(pa.system_memory_pool())
        _pool_users += 1
    try:
        yield
    finally:
        with _pool_lock:
            _pool_users -= 1
            if _pool_users == 0 and _pool_before is not None:
                pa.set_memory_pool(_pool_before)
                _pool_before = None


def fetch(
    stream: str | Stream = "metric_events",
    since: TimeLike = None,
    *,
    until: TimeLike = None,
    settings: Settings | None = None,
    progress: bool = True,
    include_comments: bool = False,
    force: bool = False,
    session: requests.Session | None = None,
    lock_timeout: float = 0,
    pagination: str = "time",
    support_type_scope: str | None = None,
    exclude_deleted: bool = False,
) -> FetchResult:
    """Fetch what is new in one stream into the local Parquet cache.

    Parameters
    ----------
    stream : {"metric_events", "ticket_events"}
        Which incremental export to fetch.
    since : str, date, datetime, Timestamp or epoch seconds, optional
        Where a first fetch starts (default: the beginning of the account's history).
        Later fetches read only what the cache lacks: from ``since`` to the start of what
        it covers (a backfill), any gap inside it, then on from the cursor.
    until : str, date, datetime, Timestamp or epoch seconds, optional
        Stop requesting once the pages pass this time (default: read up to the present).
        With ``force``, ``[since, until)`` is exactly the range refetched.
    settings : Settings, optional
        Account, credentials and cache folder (default: ``Settings.from_env()``).
    progress : bool
        Show a progress bar on stderr.
    include_comments : bool
        ``ticket_events`` only: ask for full comment objects (``include=comment_events``).
    force : bool
        Refetch ``[since, until)`` (``since`` defaults to the start of what the cache covers)
        even if it is cached, after dropping damaged cache files there. Nothing outside it
        is fetched: a gap it leaves (a ``since`` later than the cursor, a damaged file before
        ``since``) is not counted as covered, and the next fetch without ``force`` fills it.
    session : requests.Session, optional
        HTTP session to use (tests and proxies).
    lock_timeout : float
        Seconds to wait for another fetch of the same stream to finish (0: refuse at once).
    pagination : {"time", "cursor"}
        ``metric_events`` only. ``time`` (default): pages of up to 1000 events, the fewest
        requests under the rate limit. ``cursor``: Zendesk's cursor pagination, pages of up
        to 100; the position (``after_cursor``) is saved with the cache state and a later
        cursor fetch resumes from it. Switching modes on an existing cache resumes by time
        (the cursor both modes keep), losing and duplicating nothing.
    support_type_scope : {"agent", "ai_agent", "all"}, optional
        ``ticket_events`` only: which tickets' events Zendesk sends. Default: the scope the
        cache was fetched with, else Zendesk's default ``agent``. It is stored with the cache
        state and reused by later refreshes; another scope on an existing cache raises
        :class:`ConfigError` unless ``force`` is true (rows fetched with the old scope stay).
    exclude_deleted : bool
        ``metric_events`` only: ask Zendesk to leave out the events of deleted tickets
        (``exclude_deleted=true``).

    Returns
    -------
    FetchResult
        Its ``state`` is the store's state after the last commit of this fetch.

    Raises
    ------
    ConfigError, ApiError, PageError, CacheError
        Each with a message saying what to do (``ConfigError`` also for a
        ``support_type_scope`` other than the cache's). The cache keeps every page received
        before the error (the cursor never passes a page that is not stored); a page that cannot be
        read is kept in ``<stream dir>/rejected/`` for inspection (the newest
        ``MAX_REJECTED_PAGES``, credentials masked) and its path is in the message.

    Examples
    --------
    >>> result = fetch("metric_events", since="2024-01-01")  # doctest: +SKIP
    >>> print(result)  # doctest: +SKIP
    metric_events: 12 pages, 11,804 events received, 11,790 new, ...
    """
    stream = get_stream(stream)
    _check_options(stream, pagination, support_type_scope, exclude_deleted)
    settings = settings if settings is not None else Settings.from_env()
    settings.require_credentials()
    since_ts, until_ts = time_range(since, until)  # a since in the future is an error
    started = time.monotonic()
    cache = open_store(
        settings.data_dir, settings.account, stream.name, table_format=settings.table_format
    )
    with (
        signals_as_interrupt(),
        _no_trace_on_failure(cache),
        memory_pool(),
        cache.lock(timeout=lock_timeout),
        Client(settings, session=session) as client,
    ):
        if force:
            dropped = cache.repair(since_ts, until_ts)
            if dropped:
                log.warning("dropped %d damaged cache files; refetching them", len(dropped))
        before = cache.state()
        scope = _scope(cache, before, stream, support_type_scope, force)
        plan = fetch_plan(before, since_ts, until_ts, force)
        pages = events = new = other_new = 0
        state = before  # the store's state: the last commit's, or the one read before
        first = plan[0][0] if plan else 0
        bar = FetchProgress(stream.name, first, settings.requests_per_minute, enabled=progress)
        client.on_wait = bar.waiting  # long waits (rate limit, Retry-After) show in the bar
        try:
            for start, end in plan:
                # the saved cursor-mode position is only valid where the last run stopped
                resume_after = (
                    before.after_cursor
                    if pagination == "cursor" and not force and start == before.cursor
                    else None
                )
                writer = PageWriter(
                    cache, stream, covered_since=start, settings=settings, scope=scope
                )
                paged = client.pages(
                    stream,
                    start,
                    include_comments=include_comments,
                    exclude_deleted=exclude_deleted,
                    # agent is Zendesk's default: asked for by leaving the parameter out
                    support_type_scope=scope if scope not in (None, "agent") else None,
                    pagination=pagination,
                    after_cursor=resume_after,
                )
                try:
                    for page in paged:
                        pages += 1
                        events += page.count or 0
                        bar.update(page, client.stats)
                        writer.add(page)
                        if end is not None and page.end_time is not None and page.end_time >= end:
                            break  # the range is read: the next pages lie beyond it
                    writer.close()
                except BaseException:
                    # keep the pages that did arrive: at 10 requests a minute a batch is
                    # minutes of the export budget, and Ctrl-C promises to keep them (and to
                    # stop soon)
                    writer.abort()
                    raise
                finally:
                    new += writer.new_events
                    other_new += writer.other_stream_events
                    if writer.last_commit is not None:
                        state = writer.last_commit.state
        finally:
            bar.close()
    stats = client.stats
    cursor = pd.Timestamp(state.cursor, unit="s", tz="UTC") if state.cursor is not None else None
    return FetchResult(
        stream=stream.name,
        pages=pages,
        events_received=events,
        new_events=new,
        requests=stats.requests,
        rate_limited=stats.rate_limited,
        seconds_waited=stats.seconds_waited,
        cursor=cursor,
        rows=state.rows,
        seconds=time.monotonic() - started,
        other_stream_events=other_new,
        state=state,
    )


def _check_options(
    stream: Stream,
    pagination: str,
    scope: str | None,
    exclude_deleted: bool,
) -> None:
    """One-line ValueErrors for options the stream does not have."""
    if pagination not in PAGINATION_MODES:
        raise ValueError(
            f"unknown pagination {pagination!r}; choose one of: {', '.join(PAGINATION_MODES)}"
        )
    if pagination == "cursor" and stream.cursor_page_size is None:
        raise ValueError(f"{stream.name} has no cursor pagination; use pagination='time'")
    if scope is not None:
        if scope not in SUPPORT_TYPE_SCOPES:
            raise ValueError(
                f"unknown support_type_scope {scope!r}; choose one of: "
                f"{', '.join(SUPPORT_TYPE_SCOPES)}"
            )
        if stream is not TICKET_EVENTS:
            raise ValueError("support_type_scope applies to ticket_events only")
    if exclude_deleted and stream is not METRIC_EVENTS:
        raise ValueError("exclude_deleted applies to metric_events only")


def _scope(
    cache: Cache, state: CacheState, stream: Stream, asked: str | None, force: bool
) -> str | None:
    """The ticket_events scope of this fetch: the one asked for, else the cache's."""
    if stream is not TICKET_EVENTS:
        return None
    # a cache written before scopes were stored was fetched with Zendesk's default
    held = state.support_type_scope or (None if state.empty else "agent")
    if asked is None:
        return held or "agent"
    if held is not None and asked != held and not force:
        raise ConfigError(
            f"the ticket_events cache in {cache.dir} holds support_type_scope {held!r}, not "
            f"{asked!r}: fetch with {held!r}, or force a refetch with {asked!r} (--force; rows "
            f"fetched with {held!r} stay), or use another ZDEVENTS_DATA_DIR"
        )
    return asked


# ---------------------------------------------------------------------------- stopping cleanly


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP during a fetch: handled like Ctrl-C (what arrived is kept).

    Attributes
    ----------
    signum : int
        The signal received.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def signals_as_interrupt(*, resend: bool = True) -> Iterator[None]:
    """Inside the block, SIGTERM and SIGHUP raise :class:`Terminated` (a KeyboardInterrupt).

    A fetch then keeps the pages received before the signal, as it does on Ctrl-C, when
    ``timeout``, ``docker stop`` or a closed terminal ends it. Only signals whose handler is
    the default are taken over (an ignored SIGHUP, as under ``nohup``, stays ignored), only
    in the main thread, and the previous handlers come back afterwards.

    Parameters
    ----------
    resend : bool
        When :class:`Terminated` leaves the block, restore the default handler and send the
        signal again, so the process still ends as the signal asked (once the pages are
        kept). The command line passes False: it prints a line and exits 128 + signal.

    Examples
    --------
    >>> with signals_as_interrupt():
    ...     pass
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise Terminated(signum)

    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is signal.SIG_DFL:
            previous[number] = signal.signal(number, stop)
    try:
        yield
    except Terminated as stopped:
        for number, handler in previous.items():
            signal.signal(number, handler)
        previous = {}
        if resend and signal.getsignal(stopped.signum) is signal.SIG_DFL:
            os.kill(os.getpid(), stopped.signum)  # ends the process now
        raise
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def _no_trace_on_failure(cache: Cache) -> Iterator[None]:
    """A fetch that fails before storing anything leaves no folder or lock file behind.

    Only folders this fetch created are removed, and only when they hold nothing but the lock
    file and, for a Delta table, its empty first version (the table the lock created).
    """
    if is_object_store(cache.data_dir):
        yield
        return
    created = [p for p in (cache.data_dir / cache.account, cache.dir) if not p.exists()]
    try:
        yield
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                log_dir = cache.dir / "_delta_log"
                names = {p.name for p in cache.dir.iterdir()}
                empty_table = not log_dir.exists() or [p.name for p in log_dir.iterdir()] == [
                    f"{0:020d}.json"
                ]
                if names <= {".lock", ".zdevents.lock", "_delta_log"} and empty_table:
                    for name in (".lock", ".zdevents.lock", f"_delta_log/{0:020d}.json"):
                        (cache.dir / name).unlink(missing_ok=True)
                    if log_dir.exists():
                        log_dir.rmdir()
                    for folder in reversed(created):
                        folder.rmdir()  # only empty folders: anything else stays
        raise

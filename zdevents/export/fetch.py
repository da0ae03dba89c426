"""Fetch one export stream into the cache: client pages -> normalize -> cache commits.

The cursor moves only in :meth:`Cache.commit`, after the data it covers is durable, so a
fetch can be interrupted at any point and resumed by running it again.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from ..config import Settings
from ..dates import TimeLike, time_range
from ..errors import ConfigError, PageError, ZdEventsError
from ..store import open_store
from ..store.parquet import Cache, CacheState
from ..streams import (
    METRIC_EVENTS,
    PAGINATION_MODES,
    SUPPORT_TYPE_SCOPES,
    TICKET_EVENTS,
    Stream,
    get_stream,
)
from . import parse as normalize
from .client import Client, Page
from .progress import FetchProgress

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

#: Pages normalised and committed together: ~100k metric events, ~15 MB of JSON.
BATCH_PAGES = 100
#: Rejected pages kept in ``<stream dir>/rejected/`` (the oldest are deleted beyond this).
MAX_REJECTED_PAGES = 20
#: Bytes kept of one rejected page (a longer body is cut, and its .txt file says so).
MAX_REJECTED_BYTES = 64 * 1024 * 1024
_REJECTED_NAME = re.compile(r"^\d{8}T\d{6}Z-start_time-\d+-[0-9a-f]{8}\.json$")


@dataclass(frozen=True)
class FetchResult:
    """What one :func:`fetch` did.

    Attributes
    ----------
    stream : str
    pages : int
        Pages received.
    events_received : int
        Records received, duplicates at page boundaries included.
    new_events : int
        Records stored that the cache did not hold before.
    requests : int
        HTTP requests sent (retries included).
    rate_limited : int
        HTTP 429 answers received.
    seconds_waited : float
        Time spent waiting for the rate limit, Retry-After and backoff.
    cursor : pandas.Timestamp or None
        Where the next fetch starts (UTC).
    rows : int
        Rows in the cache after the fetch.
    seconds : float
        Wall time of the fetch.
    other_stream_events : int
        Records of the other stream that arrived in this export (metric events under the
        ``ticket_events`` key) and were stored in that stream's cache, new there.
    """

    stream: str
    pages: int
    events_received: int
    new_events: int
    requests: int
    rate_limited: int
    seconds_waited: float
    cursor: pd.Timestamp | None
    rows: int
    seconds: float
    other_stream_events: int = 0

    def __str__(self) -> str:
        cursor = self.cursor.strftime("%Y-%m-%d %H:%M UTC") if self.cursor is not None else "-"
        other = ""
        if self.other_stream_events:
            other = (
                f" (+{self.other_stream_events:,} new metric events that arrived in this "
                "export, stored with metric_events)"
            )
        return (
            f"{self.stream}: {_count(self.pages, 'page')}, "
            f"{_count(self.events_received, 'event')} received, "
            f"{self.new_events:,} new{other}, {self.rows:,} cached; {self.requests:,} requests, "
            f"{self.rate_limited} rate-limited, caught up to {cursor} ({self.seconds:.1f} s)"
        )


def _count(n: int, noun: str) -> str:
    """``"1 page"``, ``"2 pages"``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


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


Segment = tuple[int, int | None]
"""A range of the export to read: ``start_time`` and where to stop (None: the present)."""


def _plan(
    state: CacheState, since: pd.Timestamp | None, until: pd.Timestamp | None, force: bool
) -> list[Segment]:
    """The ranges one fetch reads, in order: only what the cache lacks, or what was forced.

    A forced fetch reads exactly ``[since, until)`` (``since`` defaults to the start of the
    coverage). Otherwise: ``[since, start of the coverage)`` when ``since`` is earlier (a
    backfill), then every gap inside the coverage (left by a forced range or a repair), then
    on from the cursor. ``until`` ends every range.
    """
    lo = int(since.timestamp()) if since is not None else None
    hi = int(-(-until.value // 1_000_000_000)) if until is not None else None
    coverage = state.coverage
    if force:
        start = lo if lo is not None else (coverage[0][0] if coverage else 0)
        wanted: list[Segment] = [(start, hi)]
    elif not coverage and state.cursor is None:
        wanted = [(lo if lo is not None else 0, hi)]
    else:
        wanted = []
        known = [
            x for x in (state.covered_since, coverage[0][0] if coverage else None) if x is not None
        ]
        if known and lo is not None and lo < min(known):
            wanted.append((lo, min(known)))
        tail = state.cursor if state.cursor is not None else coverage[-1][1]
        wanted += state.gaps(state.covered_since, tail)
        wanted.append((tail, hi))
    plan: list[Segment] = []
    for start, end in wanted:
        if end is not None and hi is not None:
            end = min(end, hi)
        if end is not None and start >= end:
            continue
        if plan and plan[-1][1] == start:  # back to back: one continuous read
            plan[-1] = (plan[-1][0], end)
        else:
            plan.append((start, end))
    return plan


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
    cache = open_store(settings.data_dir, settings.account, stream.name)
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
        plan = _plan(before, since_ts, until_ts, force)
        pages = events = new = other_new = 0
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
        finally:
            bar.close()
        state = cache.state()
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


class PageWriter:
    """Pages -> normalised batches -> cache commits, with the commit of one batch overlapping
    the download and parsing of the next.

    Pages are parsed ``BATCH_PAGES`` at a time in the caller's thread; each batch is then
    committed by one writer thread while the next batch arrives (pyarrow releases the GIL
    while parsing and writing, so both cores work). Commits run one at a time and in order,
    so the cursor only moves forward. Memory stays at about two batches.

    The caller holds ``cache.lock()``. :meth:`abort` keeps the pages received before a
    failure (the cursor never passes a page that is not stored).

    Parameters
    ----------
    cache : Cache
    stream : Stream
    covered_since : int, optional
        Unix seconds: where this fetch began (see :meth:`Cache.commit`).
    settings : Settings, optional
        Used to mask credentials in rejected pages and to find the metric-events cache
        for metric events that arrive in the ticket-events export.
    batch_pages : int, optional
        Pages per batch (default: ``BATCH_PAGES``).
    scope : str, optional
        ticket_events: the ``support_type_scope`` stored with each commit.

    Attributes
    ----------
    new_events : int
        Rows stored that the cache did not hold before (commits finished so far).
    other_stream_events : int
        Metric events that arrived in a ticket_events export and were new in the
        metric_events cache.
    """

    def __init__(
        self,
        cache: Cache,
        stream: Stream,
        *,
        covered_since: int | None = None,
        settings: Settings | None = None,
        batch_pages: int | None = None,
        scope: str | None = None,
    ) -> None:
        self.cache = cache
        self.scope = scope
        self.other_stream_events = 0
        self.batch_pages = BATCH_PAGES if batch_pages is None else batch_pages
        self.stream = stream
        self.covered_since = covered_since
        self.settings = settings
        self.new_events = 0
        self._batch: list[Page] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zdevents-commit")
        self._pending: Future[None] | None = None
        self._done = False

    def add(self, page: Page) -> None:
        """Take one page; a full batch (or the last page) is parsed and handed to the writer."""
        self._batch.append(page)
        if len(self._batch) >= self.batch_pages or page.last:
            self._submit()

    def close(self) -> None:
        """Commit what is left and wait for the writer."""
        if self._batch:
            self._submit()
        self._wait()
        self._shutdown()

    def abort(self) -> None:
        """After a failure: finish the pending commit, keep the pages received, stop.

        Errors here are logged, not raised: the caller re-raises the original one.
        """
        if self._done:
            return
        try:
            self._wait()
        except Exception as exc:  # logged: the caller raises the first error
            log.warning("the last commit before the error failed: %s", exc)
        if self._batch:
            batch, self._batch = self._batch, []
            try:
                self._commit(self._parse(batch), batch)
            except ZdEventsError as exc:
                log.warning(
                    "could not keep the %d pages received before the error: %s", len(batch), exc
                )
            else:
                log.info("kept the %d pages received before the error", len(batch))
        self._shutdown()

    # ---------------------------------------------------------------------------- internals
    def _submit(self) -> None:
        batch = self._batch  # stays in self._batch until handed over: abort() keeps it
        try:
            parsed = self._parse(batch)
        except PageError as exc:
            bad = next((i for i, p in enumerate(batch) if exc.url and p.url == exc.url), 0)
            self._batch = batch[:bad]  # the good pages before the bad one; the cursor stops there
            self.abort()
            raise _rejected(exc, batch, self.cache, self.settings) from None
        self._wait()
        self._batch = []
        self._pending = self._pool.submit(self._commit, parsed, batch)

    def _wait(self) -> None:
        """Wait for the pending commit and raise its error.

        After a failed commit the pages not yet handed over are dropped: storing them would
        move the cursor past the failed ones. A wait interrupted by Ctrl-C keeps the commit
        pending, so :meth:`abort` still waits for it.
        """
        pending = self._pending
        if pending is None:
            return
        try:
            pending.result()
        except BaseException:
            if pending.done():
                self._pending = None
                if pending.exception() is not None:
                    self._batch = []
            raise
        self._pending = None

    def _parse(self, batch: list[Page]) -> tuple[pa.Table, pa.Table | None]:
        bodies = [p.body for p in batch]
        urls = [p.url for p in batch]
        if self.stream is METRIC_EVENTS:
            return normalize.metric_events_table(bodies, urls), None
        assert self.stream is TICKET_EVENTS
        return normalize.ticket_events_table(bodies, urls)

    def _commit(self, parsed: tuple[pa.Table, pa.Table | None], batch: list[Page]) -> None:
        table, stray_metric_events = parsed
        if stray_metric_events is not None and stray_metric_events.num_rows:
            # Zendesk's reference shows metric events under the ticket_events key: keep them,
            # in the metric events cache, without moving that stream's cursor.
            log.warning(
                "%d metric events arrived in the ticket_events export; stored with metric_events",
                stray_metric_events.num_rows,
            )
            other = open_store(self.cache.data_dir, self.cache.account, METRIC_EVENTS.name)
            with other.lock(timeout=60):
                # rows only: that stream's cursor, coverage and after_cursor stay
                stored = other.commit(stray_metric_events)
            self.other_stream_events += stored.new_rows
        result = self.cache.commit(
            table,
            cursor=_cursor(batch),
            covered_since=self.covered_since,
            after_cursor=_after_cursor(batch),
            support_type_scope=self.scope,
        )
        self.new_events += result.new_rows

    def _shutdown(self) -> None:
        self._done = True
        self._pool.shutdown(wait=True)


def _cursor(batch: list[Page]) -> int:
    """The cursor after a batch: its last page's end_time (or the last one known)."""
    cursor = batch[-1].end_time
    if cursor is None:  # an empty final page carries no end_time: keep the last known one
        cursor = next((p.end_time for p in reversed(batch) if p.end_time is not None), None)
    return cursor if cursor is not None else batch[-1].start_time


def _after_cursor(batch: list[Page]) -> str | None:
    """Cursor pagination: the position after a batch (None for time-based pages)."""
    return next((p.after_cursor for p in reversed(batch) if p.after_cursor), None)


def _rejected(
    error: PageError, batch: list[Page], cache: Cache, settings: Settings | None
) -> PageError:
    """Keep the page that failed in ``<stream dir>/rejected/`` and say where in the error.

    The body is saved as Zendesk sent it (cut at ``MAX_REJECTED_BYTES``, credentials masked),
    with a ``.txt`` note holding the URL and the error; only the newest
    ``MAX_REJECTED_PAGES`` are kept.
    """
    page = next((p for p in batch if error.url and p.url == error.url), None)
    if page is None:
        return error
    folder = cache.dir / "rejected"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}-start_time-{page.start_time}-{uuid.uuid4().hex[:8]}"
    body = page.body[:MAX_REJECTED_BYTES]
    for secret in _secret_bytes(settings) if settings is not None else ():
        body = body.replace(secret, b"***")
    note = (
        f"url: {page.url}\nreceived: {len(page.body)} bytes"
        + (f" (cut to the first {len(body)})" if len(page.body) > MAX_REJECTED_BYTES else "")
        + f"\nerror: {error}\n"
    )
    try:
        folder.mkdir(exist_ok=True)
        (folder / f"{name}.json").write_bytes(body)
        (folder / f"{name}.txt").write_text(note, encoding="utf-8")
        ours = sorted(p for p in folder.glob("*.json") if _REJECTED_NAME.match(p.name))
        for old in ours[:-MAX_REJECTED_PAGES]:  # only pages it kept: never a file of yours
            for path in (old, old.with_suffix(".txt")):
                with contextlib.suppress(OSError):
                    path.unlink()
    except OSError as exc:
        log.warning("could not keep the rejected page in %s: %s", folder, exc.strerror or exc)
        return error
    saved = folder / f"{name}.json"
    return PageError(f"{error}. What Zendesk sent is kept in {saved}", url=error.url)


def _secret_bytes(settings: Settings) -> list[bytes]:
    secrets = [s.encode() for s in settings.secrets()]
    pair = settings.auth()
    if pair is not None:
        secrets.append(base64.b64encode(f"{pair[0]}:{pair[1]}".encode()))
    return sorted(secrets, key=len, reverse=True)


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
    """A fetch that fails before storing anything leaves no folder or lock file behind."""
    created = [p for p in (cache.data_dir / cache.account, cache.dir) if not p.exists()]
    try:
        yield
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                if {p.name for p in cache.dir.iterdir()} <= {".lock"}:
                    (cache.dir / ".lock").unlink(missing_ok=True)
                    for folder in reversed(created):
                        folder.rmdir()  # only empty folders: anything else stays
        raise

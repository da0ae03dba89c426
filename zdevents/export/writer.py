"""Pages -> parsed batches -> store commits: :class:`PageWriter`, and the pages it rejects.

The cursor moves only in the store's ``commit``, after the data it covers is durable, so a
fetch can be interrupted at any point and resumed by running it again. A page that cannot be
read is kept in ``<stream dir>/rejected/`` (credentials masked) for inspection.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

import pyarrow as pa

from ..config import Settings
from ..errors import PageError, ZdEventsError
from ..store import open_store
from ..store.parquet import Cache, CommitResult
from ..streams import METRIC_EVENTS, TICKET_EVENTS, Stream
from .envelope import Page
from .metric_events import metric_events_table
from .redact import secret_bytes
from .ticket_events import ticket_events_table

__all__ = ["BATCH_PAGES", "MAX_REJECTED_BYTES", "MAX_REJECTED_PAGES", "PageWriter"]

log = logging.getLogger(__name__)

#: Pages normalised and committed together: ~100k metric events, ~15 MB of JSON.
BATCH_PAGES = 100
#: Rejected pages kept in ``<stream dir>/rejected/`` (the oldest are deleted beyond this).
MAX_REJECTED_PAGES = 20
#: Bytes kept of one rejected page (a longer body is cut, and its .txt file says so).
MAX_REJECTED_BYTES = 64 * 1024 * 1024
_REJECTED_NAME = re.compile(r"^\d{8}T\d{6}Z-start_time-\d+-[0-9a-f]{8}\.json$")


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
    last_commit : CommitResult or None
        What the last commit of this writer's stream changed (None before the first).
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
        self.last_commit: CommitResult | None = None
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
            return metric_events_table(bodies, urls), None
        assert self.stream is TICKET_EVENTS
        return ticket_events_table(bodies, urls)

    def _commit(self, parsed: tuple[pa.Table, pa.Table | None], batch: list[Page]) -> None:
        table, stray_metric_events = parsed
        if stray_metric_events is not None and stray_metric_events.num_rows:
            # Zendesk's reference shows metric events under the ticket_events key: keep them,
            # in the metric events cache, without moving that stream's cursor.
            log.warning(
                "%d metric events arrived in the ticket_events export; stored with metric_events",
                stray_metric_events.num_rows,
            )
            form = "parquet" if isinstance(self.cache, Cache) else "delta"
            other = open_store(
                self.cache.data_dir, self.cache.account, METRIC_EVENTS.name, table_format=form
            )
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
        self.last_commit = result

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
    for secret in secret_bytes(settings) if settings is not None else ():
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

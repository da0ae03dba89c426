"""The local cache: one Parquet dataset and one JSON state file per account and stream.

Layout::

    <data_dir>/<account>/<stream>/
        state.json                      the snapshot: cursor, coverage, the list of part files
        .lock                           held by the process that writes (see Cache.lock)
        month=YYYY-MM/part-<uuid>.parquet   zstd, sorted by time then id, ~128k-row groups

``state.json`` is the snapshot: readers read only the files it lists, so a writer can add
files, replace ``state.json`` atomically, and only then delete the files it no longer lists.
A crash at any point leaves the previous snapshot readable; unlisted (orphan) files are
ignored and removed by the next commit. Rows with the same ``id`` resolve keep-last.
Times in the manifest (``min_time``/``max_time``) are Unix milliseconds; the cursor, the
coverage and the horizon are Unix seconds, like Zendesk's ``start_time``.

Coverage is the truth: ``state.json`` lists the half-open intervals of event time that were
read from the export completely (each commit adds exactly what its pages spanned; a repair
removes what it drops). The horizon (``as_of``) is the end of the interval it lies in: it
only moves forward, so a forced refetch or a backfill running elsewhere never lowers it, and
it is never later than the clock. ``state.json`` is written before the first part file, so
part files without it mean the state was lost: an error, and :meth:`Cache.rebuild` restores
it from the files. zdevents deletes only files whose names it writes.

:class:`Cache` is the entry point; its parts live beside it: :mod:`.manifest` (the state and
``state.json``, checksums), :mod:`.lock`, :mod:`.parts` (part files), :mod:`.compaction`
(compaction and sweep), :mod:`.recovery` (repair and rebuild), :mod:`.snapshot` (reads of
one state).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from ..errors import ConfigError
from . import manifest
from .compaction import compact, remove_own_files, sweep
from .layout import check_name, part_paths
from .lock import WriteLock
from .manifest import (
    SCHEMA_VERSION,
    STATE,
    CacheState,
    CommitResult,
    Interval,
    PartFile,
    RebuildResult,
)
from .parts import PartFolder, Vanished
from .ranges import Window, covering, rebuilt_state, without_damaged
from .recovery import find_damaged, log_dropped, scan_part_files
from .rows import (
    ORDER,
    STORAGE_SCHEMAS,
    Merged,
    conform,
    dedupe_keep_last,
    is_time_ordered,
    merge_rows,
)
from .snapshot import Snapshot, SnapshotGone, StoreReads, read_current

__all__ = [
    "SCHEMA_VERSION",
    "Cache",
    "CacheState",
    "CommitResult",
    "Interval",
    "PartFile",
    "RebuildResult",
]

log = logging.getLogger(__name__)


class Cache(StoreReads):
    """The Parquet cache of one account's stream.

    Parameters
    ----------
    data_dir : path
        Cache root (``Settings.data_dir``).
    account : str
        Account folder name (``Settings.account``).
    stream : str
        ``"metric_events"`` or ``"ticket_events"`` (other safe names work with any schema).

    Raises
    ------
    ConfigError
        When ``account`` or ``stream`` could escape ``data_dir``.

    Examples
    --------
    >>> import tempfile, pyarrow as pa
    >>> from zdevents.export.parse import metric_events_table
    >>> cache = Cache(Path(tempfile.mkdtemp()), "acme", "metric_events")
    >>> body = (b'{"ticket_metric_events": [{"id": 1, "ticket_id": 7, "metric": "reply_time",'
    ...         b' "instance_id": 1, "type": "activate", "time": "2024-01-02T03:04:05Z"}]}')
    >>> with cache.lock():
    ...     cache.commit(metric_events_table([body]), cursor=1704164645)
    CommitResult(new_rows=1, replaced_rows=0, rows_total=1)
    >>> cache.state().cursor, cache.read(columns=["id"]).num_rows
    (1704164645, 1)
    """

    def __init__(self, data_dir: str | os.PathLike[str], account: str, stream: str) -> None:
        self.account = check_name(account, "account")
        self.stream = check_name(stream, "stream")
        self.data_dir = Path(data_dir)
        self.dir = self.data_dir / account / stream
        self.state_path = self.dir / STATE
        released = " (the lock is released when that process exits)"
        self._lock = WriteLock(self.dir, ".lock", stream, released)
        self._schema = STORAGE_SCHEMAS.get(stream)
        self._parts = PartFolder(self.dir, stream, self._schema)

    def __repr__(self) -> str:
        return f"Cache({str(self.dir)!r})"

    @property
    def schema(self) -> pa.Schema | None:
        """The Arrow storage schema of this stream (None for a stream zdevents does not know)."""
        return self._schema

    # ------------------------------------------------------------------ state
    def state(self) -> CacheState:
        """Read ``state.json`` (no file and no data file is an empty cache).

        Raises
        ------
        CacheError
            When the file is unreadable, truncated, or of an unknown schema version, or
            missing while part files are present; the message gives the command that
            rebuilds it from the files (:meth:`rebuild`).

        Examples
        --------
        >>> import tempfile
        >>> Cache(Path(tempfile.mkdtemp()), "acme", "metric_events").state().rows
        0
        """
        return manifest.read_state(self.state_path, self.stream, lambda: part_paths(self.dir))

    def _write_state(self, state: CacheState) -> None:
        manifest.write_state(self.state_path, state)

    def snapshot(self, *, version: int | None = None, as_of_commit: object = None) -> Snapshot:
        """The current state and reads bound to it (``state.json`` is read once).

        ``version``/``as_of_commit`` are for Delta tables: a Parquet folder keeps only its
        latest state (ConfigError).

        Examples
        --------
        >>> import tempfile
        >>> Cache(Path(tempfile.mkdtemp()), "acme", "metric_events").snapshot().state.rows
        0
        """
        if version is not None or as_of_commit is not None:
            raise ConfigError(
                f"version= and as_of_commit= read an earlier version of a Delta table; the "
                f"{self.stream} cache in {self.dir} is a Parquet folder, which keeps only its "
                "latest state"
            )
        return Snapshot(self, self.state())

    # ------------------------------------------------------------------ lock
    @contextlib.contextmanager
    def lock(self, timeout: float | None = 0) -> Iterator[Cache]:
        """Hold this stream's write lock (``<stream dir>/.lock``) for the ``with`` block.

        Parameters
        ----------
        timeout : float or None
            Seconds to wait for another writer; 0 (default) fails at once, None waits forever.

        Raises
        ------
        CacheLocked
            When another process (or another :class:`Cache` object) holds the lock.

        Examples
        --------
        >>> import tempfile
        >>> cache = Cache(Path(tempfile.mkdtemp()), "acme", "metric_events")
        >>> with cache.lock():
        ...     pass
        """
        hint = (
            'read it with refresh="never" (or `zdevents status`/`report`), or point '
            "ZDEVENTS_DATA_DIR at a writable folder to fetch"
        )
        with self._lock.held(timeout, readonly_hint=hint):
            yield self

    def _require_lock(self) -> None:
        if not self._lock.is_locked:
            raise RuntimeError("Cache.commit() must run inside `with cache.lock(): ...`")

    # ------------------------------------------------------------------ commit
    def commit(
        self,
        table: pa.Table,
        *,
        cursor: int | None = None,
        covered_since: int | None = None,
        after_cursor: str | None = None,
        support_type_scope: str | None = None,
    ) -> CommitResult:
        """Store ``table`` (deduped keep-last by ``id``) and what it covers, atomically.

        New part files are written and fsynced first, then ``state.json`` is replaced, then the
        files no longer listed are deleted. A crash at any point leaves the previous snapshot
        intact. Only parts of the same month whose time range overlaps the new rows are read
        (an event's time never changes, so only they can hold the same ids). A month with more
        than ``MAX_PARTS_PER_MONTH`` small parts is compacted (see :mod:`zdevents.store.compaction`).

        Parameters
        ----------
        table : pyarrow.Table
            Rows in the stream's storage schema (needs ``id`` and ``time``); may be empty.
        cursor : int, optional
            Unix seconds: the last page's ``end_time``. The cursor becomes the later of it
            and the current one (never later than the clock). None: rows only, the cursor
            and the coverage stay as they are.
        covered_since : int, optional
            Unix seconds: the ``start_time`` these pages were read from without a break (a
            fetch passes where it began). ``[covered_since, cursor)`` joins the coverage,
            cut at the clock: never more than the pages spanned. Without it, a commit that
            continues from the current cursor covers ``[cursor before, cursor)``.
        after_cursor : str, optional
            Cursor pagination: where the next page starts (None: the cursor is time only).
            Stored when the commit reaches the cursor (a gap filled behind it keeps the
            stored one).
        support_type_scope : str, optional
            ticket_events: the scope the rows were fetched with (None keeps the stored one).

        Returns
        -------
        CommitResult

        Raises
        ------
        RuntimeError
            When not called inside :meth:`lock`.
        CacheError
            When a file cannot be written (disk full...) or an overlapping part is damaged;
            the previous snapshot stays intact.

        Examples
        --------
        See :class:`Cache`.
        """
        self._require_lock()
        state = self.state()
        if not self.state_path.exists():
            # the state exists before any part file: part files without it mean a lost state
            self._write_state(state)
        table = self._conform(table)
        incoming = table.num_rows
        table = dedupe_keep_last(table)
        if table.num_rows < incoming:
            log.debug("%d duplicate rows within the batch", incoming - table.num_rows)
        if not is_time_ordered(table):  # the export arrives in order: usually nothing to do
            table = table.sort_by(ORDER)
        merged = Merged(files=list(state.files))
        try:
            merge_rows(merged, table, self._parts.recent, self._parts.write)
            files = merged.files
            for month in sorted({p.month for p in merged.written}):
                files, merged_in, merged_out = compact(self._parts, files, month, self._conform)
                merged.written += merged_out
                merged.removed += merged_in
            files.sort(key=lambda p: (p.min_time, p.max_time, p.path))
            new_state = covering(
                state,
                cursor,
                covered_since,
                tuple(files),
                after_cursor=after_cursor,
                support_type_scope=support_type_scope,
            )
            self._write_state(new_state)
        except BaseException:
            for part in merged.written:  # never listed: remove now (else the next commit sweeps)
                with contextlib.suppress(OSError):
                    (self.dir / part.path).unlink()
            raise
        sweep(self.dir, new_state, merged.removed)
        return CommitResult(
            new_rows=table.num_rows - merged.replaced_rows,
            replaced_rows=merged.replaced_rows,
            rows_total=new_state.rows,
            state=new_state,
        )

    def _conform(self, table: pa.Table) -> pa.Table:
        return conform(table, self._schema, self.stream)

    # ------------------------------------------------------------------ repair
    def repair(self, since: object = None, until: object = None) -> list[PartFile]:
        """Drop damaged part files and the coverage of their time span.

        Must run inside :meth:`lock`. Every listed part that may hold rows in ``[since, until)``
        is read in full; unreadable ones are removed from the snapshot, and the seconds from
        their first to their last row leave the coverage, so reads of that span say it is
        not cached and the next fetch (plain or forced over it) fetches it again. The
        cursor and the horizon stay where they are.

        Parameters
        ----------
        since, until : time, optional
            Check only parts with rows in ``[since, until)`` (default: all).

        Returns
        -------
        list of PartFile
            The parts dropped.

        Examples
        --------
        >>> import tempfile
        >>> cache = Cache(Path(tempfile.mkdtemp()), "acme", "metric_events")
        >>> with cache.lock():
        ...     cache.repair()
        []
        """
        self._require_lock()
        state = self.state()
        damaged = find_damaged(
            Snapshot(self, state).parts(Window.of(since, until)), self._parts.read
        )
        if not damaged:
            return []
        self._write_state(without_damaged(state, damaged))
        sweep(self.dir, self.state(), damaged)
        log_dropped(damaged)
        return damaged

    def rebuild(self) -> RebuildResult:
        """Write a new ``state.json`` from the part files on disk (the old one is ignored).

        Must run inside :meth:`lock`. For a state file that was deleted or damaged while the
        data files are intact. Each part file (``month=YYYY-MM/part-<hex>.parquet``) is read
        in full, one at a time; files that are damaged, of another stream or holding rows of
        another month are left unlisted (and named in the result). When several files hold the
        same ``id`` (orphans of an interrupted commit), the most recently written copy wins:
        older files keep only their other rows, rewritten as new parts. The coverage becomes
        the seconds from the first event to the last, the cursor and horizon the last
        event's second; no file is deleted.

        Returns
        -------
        RebuildResult

        Examples
        --------
        >>> import tempfile
        >>> cache = Cache(Path(tempfile.mkdtemp()), "acme", "metric_events")
        >>> with cache.lock():
        ...     cache.rebuild().files
        0
        """
        self._require_lock()
        files, skipped = scan_part_files(self._parts, self._conform)
        state = rebuilt_state(self.stream, files)
        self._write_state(state)
        log.warning(
            "rebuilt %s from %d part files (%d rows); %d left unlisted",
            self.state_path,
            len(state.files),
            state.rows,
            len(skipped),
        )
        return RebuildResult(len(state.files), state.rows, tuple(sorted(skipped)), state.coverage)

    # ------------------------------------------------------------------ read
    def files(self, since: object = None, until: object = None) -> list[Path]:
        """Absolute paths of the listed part files that may hold rows in ``[since, until)``.

        Parameters
        ----------
        since, until : pandas.Timestamp, datetime, str or Unix seconds, optional
            Naive values are UTC.

        Examples
        --------
        >>> import tempfile
        >>> Cache(Path(tempfile.mkdtemp()), "acme", "metric_events").files()
        []
        """
        return [self.dir / p.path for p in self.parts(since, until)]

    def read(
        self,
        columns: list[str] | None = None,
        since: object = None,
        until: object = None,
        *,
        state: CacheState | None = None,
    ) -> pa.Table:
        """Read the cached rows with ``since <= time < until``, ordered by time.

        Parameters
        ----------
        columns : list of str, optional
            Project to these columns (default: all).
        since, until : pandas.Timestamp, datetime, str or Unix seconds, optional
            Half-open range; naive values are UTC.
        state : CacheState, optional
            Read the files of this snapshot (default: the current one; a file of the
            current one that a concurrent commit replaced is read from the newer one).

        Raises
        ------
        CacheError
            When a part file is damaged or missing; the message names the file, its month
            and the command that refetches it.

        Examples
        --------
        >>> import tempfile
        >>> Cache(Path(tempfile.mkdtemp()), "acme", "metric_events").read().num_rows
        0
        """
        window = Window.of(since, until)
        if state is not None:
            return self.read_parts(state, columns, window)
        return read_current(self, columns, window)[1]

    def read_parts(self, state: CacheState, columns: list[str] | None, window: Window) -> pa.Table:
        """The rows in ``window`` of the files ``state`` lists (see :meth:`Snapshot.read`)."""
        try:
            return self._parts.read_many(Snapshot(self, state).parts(window), columns, window)
        except Vanished as gone:
            error = self._parts.error(gone.part, "is listed but missing")
            raise SnapshotGone(str(error), path=error.path) from None

    # ------------------------------------------------------------------ housekeeping
    def size_bytes(self) -> int:
        """Bytes on disk of the listed files and ``state.json``.

        Examples
        --------
        >>> import tempfile
        >>> Cache(Path(tempfile.mkdtemp()), "acme", "metric_events").size_bytes()
        0
        """
        total = 0
        paths = [self.state_path, *(self.dir / p.path for p in self.state().files)]
        for path in paths:
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total

    def clear(self) -> None:
        """Delete this stream's cache (waits for no one: fails if a fetch holds the lock).

        Examples
        --------
        >>> import tempfile
        >>> cache = Cache(Path(tempfile.mkdtemp()), "acme", "metric_events")
        >>> cache.clear(); cache.state().empty
        True
        """
        if not self.dir.exists():
            return
        with self.lock():
            # an empty snapshot first: readers never see part files without a state
            self._write_state(CacheState(schema_version=SCHEMA_VERSION, stream=self.stream))
            remove_own_files(self.dir)

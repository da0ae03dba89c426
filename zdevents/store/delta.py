"""The cache as a Delta Lake table: one table per account and stream, local or on object storage.

Layout (``<data_dir>`` a local folder or ``s3://bucket/prefix``)::

    <data_dir>/<account>/<stream>/
        _delta_log/000...N.json                 the table's commits (its snapshots)
        month=YYYY-MM/part-<uuid>.parquet       zstd, sorted by time then id, page CRC32s
        .zdevents.lock                          local disk only: held by the writer

Every commit is one Delta transaction: the Parquet files it adds and removes, and in the
commit's ``zdevents`` metadata the cursor, coverage, horizon, ticket-events scope, cursor-mode
position and each data file's footer CRC32 (never a setting or a credential). A reader opens
one table version and reads only its files, so it never waits and never sees half a commit;
files a later commit removes stay on storage until :meth:`DeltaCache.vacuum` (default
retention 7 days). A crash leaves the old version or the new one; files a crashed writer left
unreferenced are never read and ``vacuum`` removes them.

Rows are deduplicated by ``id``, keep-last, against the rows of the affected months that the
table already holds (an event's time never changes, so only files of its month whose time
range holds it can hold its ``id``). Identical repeats (Zendesk repeats rows at page
boundaries) are dropped; a changed row replaces the old one in the same commit.

One writer at a time: on local disk a lock file; on object storage the table's commit
protocol (a conditional put of the next log entry), so a second concurrent writer fails with
:class:`~zdevents.errors.CacheLocked` and writes nothing into the table.

Data files are written by pyarrow with page checksums (verified on every read) and their
sizes and footer CRC32s are recorded, so a damaged file is an error, never a wrong number.
Other engines read the table directly: polars ``scan_delta``, DuckDB ``delta_scan``,
``deltalake.DeltaTable(uri).to_pandas()``, Spark's Delta reader.

:class:`DeltaCache` is the entry point; its parts live beside it: :mod:`.delta_log` (versions
and the state commits carry), :mod:`.delta_files` (data files), :mod:`.location`,
:mod:`.migration` (:func:`migrate` from a Parquet folder).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import CacheError
from .delta_log import META_KEY, DeltaState, files_of, meta_json
from .delta_read import DeltaReader
from .location import is_object_store, table_uri
from .lock import WriteLock
from .manifest import CacheState, CommitResult, PartFile, RebuildResult
from .ranges import Window, covering, rebuilt_state, without_damaged
from .recovery import find_damaged, log_dropped
from .rows import (
    ORDER,
    Merged,
    dedupe_keep_last,
    is_time_ordered,
    merge_rows,
)
from .snapshot import Snapshot

__all__ = [
    "DeltaCache",
    "DeltaState",
    "is_object_store",
    "table_uri",
]

log = logging.getLogger(__name__)

VACUUM_RETENTION_HOURS = 168
"""Files a commit removed stay this long before :meth:`DeltaCache.vacuum` deletes them."""


class DeltaCache(DeltaReader):
    """The cache of one account's stream as a Delta Lake table.

    The same methods as :class:`zdevents.store.parquet.Cache`; reads also take ``version=`` (a
    table version) or ``as_of_commit=`` (a time: the version current then).

    Parameters
    ----------
    data_dir : path or URL
        Cache root: a local folder or ``s3://bucket/prefix`` (``gs://``, ``az://``...).
        Object-store credentials come from the store's standard environment variables
        (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``...), read by the store's client; zdevents
        never prints or records them.
    account, stream : str
        Folder names.

    Raises
    ------
    ConfigError
        When ``account`` or ``stream`` could escape ``data_dir``.

    Examples
    --------
    >>> import tempfile
    >>> from zdevents.export.parse import metric_events_table
    >>> cache = DeltaCache(tempfile.mkdtemp(), "acme", "metric_events")
    >>> body = (b'{"ticket_metric_events": [{"id": 1, "ticket_id": 7, "metric": "reply_time",'
    ...         b' "instance_id": 1, "type": "activate", "time": "2024-01-02T03:04:05Z"}]}')
    >>> with cache.lock():
    ...     cache.commit(metric_events_table([body]), cursor=1704164645)
    CommitResult(new_rows=1, replaced_rows=0, rows_total=1)
    >>> state = cache.state()
    >>> state.version, state.cursor, cache.read(columns=["id"]).num_rows
    (1, 1704164645, 1)
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        account: str,
        stream: str,
        *,
        folder: str | None = None,
    ) -> None:
        super().__init__(data_dir, account, stream, folder=folder)
        self._lock = None if self.remote else WriteLock(Path(self.uri), ".zdevents.lock", stream)
        self._held = False
        self._base: int | None = None
        # this writer's session (inside lock()): the table object at ``_base`` and, once it
        # committed, the state it committed, so a commit neither reopens the table nor
        # re-reads the state its previous commit wrote
        self._delta: Any = None
        self._known: DeltaState | None = None

    def __repr__(self) -> str:
        return f"DeltaCache({self.uri!r})"

    def create(self) -> int:
        """Create the (empty) table if there is none; return the latest version.

        Examples
        --------
        >>> import tempfile
        >>> DeltaCache(tempfile.mkdtemp(), "acme", "metric_events").create()
        0
        """
        return self._log.create()

    # ------------------------------------------------------------------ lock
    @contextlib.contextmanager
    def lock(self, timeout: float | None = 0) -> Iterator[DeltaCache]:
        """Hold the writer's lock for the ``with`` block.

        On local disk a lock file (``.zdevents.lock``, which Delta readers ignore); on object
        storage nothing is held: the commit protocol refuses a second concurrent writer at
        its commit (:class:`CacheLocked`, nothing written into the table).

        Raises
        ------
        CacheLocked
            When another process holds the local lock.

        Examples
        --------
        >>> import tempfile
        >>> with DeltaCache(tempfile.mkdtemp(), "acme", "metric_events").lock():
        ...     pass
        """
        if self._lock is not None:
            hint = (
                'read it with refresh="never", or point ZDEVENTS_DATA_DIR at a writable '
                "folder to fetch"
            )
            self._lock.acquire(timeout, readonly_hint=hint)
        try:
            # the version this writer continues: a commit by anyone else after it makes this
            # writer's next commit fail (object storage has no lock file)
            self._delta = self._log.open()
            self._base = self._delta.version()
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        self._held = True
        try:
            yield self
        finally:
            self._held = False
            self._forget(None)
            if self._lock is not None:
                self._lock.release()

    def _forget(self, base: int | None) -> None:
        """Continue from version ``base`` with nothing of the table kept in memory."""
        self._base = base
        self._delta = None
        self._known = None
        self._files.forget()

    def _locked_state(self) -> tuple[Any, DeltaState]:
        """The table at the version this writer continues, and its state (inside the lock)."""
        if not self._held:
            raise RuntimeError("DeltaCache.commit() must run inside `with cache.lock(): ...`")
        delta = self._delta
        if delta is not None and delta.version() != self._base:
            try:  # reads only the log entries after the version it holds
                delta.load_as_version(self._base)
            except Exception:  # delta-rs raises several kinds; reopen (errors named there)
                delta = None
        if delta is None:
            delta = self._log.table(self._base)
        self._delta = delta
        if self._known is None or self._known.version != self._base:
            self._known = self._log.state_of(delta)
        return delta, self._known

    def _transact(
        self,
        delta: Any,
        adds: list[PartFile],
        removes: list[PartFile],
        state: CacheState,
        footers: dict,
    ) -> int:
        """Commit as the next version; return it (this writer's next commit continues it)."""
        live = {p.path for p in state.files}
        footers = {k: v for k, v in footers.items() if k in live}
        version = self._log.transact(
            delta, adds=adds, removes=removes, state=state, footers=footers
        )
        self._base = version
        self._known = None
        return version

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
        """Append ``table`` (deduped keep-last by ``id``) and what it covers, in one commit.

        Same parameters and meaning as :meth:`zdevents.store.parquet.Cache.commit`. Data files are
        written first; the commit (files added and removed, the state in its metadata) is
        one Delta transaction, so a crash leaves the previous version intact. A month whose
        small files exceed ``MAX_PARTS_PER_MONTH`` is compacted in the same commit. When
        nothing would change but the state's ``updated_at`` (only identical repeats, the
        cursor where it was: an up-to-date refresh), nothing is committed and the table
        stays at its version.

        Raises
        ------
        RuntimeError
            When not called inside :meth:`lock`.
        CacheLocked
            When another writer committed since this one read the table (object storage).
        CacheError
            When a file cannot be written or an overlapping file is damaged; the table is
            unchanged.

        Examples
        --------
        See :class:`DeltaCache`.
        """
        delta, state = self._locked_state()
        table = dedupe_keep_last(self._conform(table))
        if not is_time_ordered(table):
            table = table.sort_by(ORDER)
        footers = dict(state.footers)
        merged = Merged(files=list(state.files))

        def write(rows: pa.Table, month: str) -> PartFile:
            # kept in memory: the next commit's first rows usually repeat the last ones
            return self._files.write(rows, month, footers, keep=True)

        try:
            merge_rows(merged, table, self._files.recent, write)
            for month in sorted({p.month for p in merged.written}):
                self._files.compact(merged, month, footers)
            new_state = covering(
                state,
                cursor,
                covered_since,
                tuple(merged.files),
                after_cursor=after_cursor,
                support_type_scope=support_type_scope,
            )
            live = {p.path for p in merged.files}
            adds = [p for p in merged.written if p.path in live]
            removes = [p for p in merged.removed if p.path not in live]
            if not (adds or removes) and replace(new_state, updated_at=state.updated_at) == state:
                # nothing but the time of the commit would change (an up-to-date refresh:
                # only repeats, the cursor where it was): no new version
                return CommitResult(
                    new_rows=table.num_rows - merged.replaced_rows,
                    replaced_rows=merged.replaced_rows,
                    rows_total=state.rows,
                    state=state,
                )
            version = self._transact(delta, adds, removes, new_state, footers)
        except BaseException:
            self._files.discard(merged.written)
            raise
        # the state just committed, kept for this writer's next commit (no table reopened)
        self._files.settle(live)
        self._known = committed = self._log.committed_state(new_state.files, version)
        return CommitResult(
            new_rows=table.num_rows - merged.replaced_rows,
            replaced_rows=merged.replaced_rows,
            rows_total=committed.rows,
            state=committed,  # with the version and commit time the transaction got
        )

    def adopt(self, state: CacheState) -> None:
        """Commit ``state``'s cursor, coverage, horizon, scope and position over this table's
        files, no rows changed (a migration carries a Parquet cache's state so).

        Must run inside :meth:`lock`.
        """
        delta, built = self._locked_state()
        moved = replace(state, files=built.files, rows=built.rows)
        self._transact(delta, [], [], moved, built.footers)

    # ------------------------------------------------------------------ repair
    def repair(self, since: object = None, until: object = None) -> list[PartFile]:
        """Drop damaged data files (one commit) and the coverage of their time span.

        Must run inside :meth:`lock`; as :meth:`zdevents.store.parquet.Cache.repair`.

        Examples
        --------
        >>> import tempfile
        >>> cache = DeltaCache(tempfile.mkdtemp(), "acme", "metric_events")
        >>> with cache.lock():
        ...     cache.repair()
        []
        """
        delta, state = self._locked_state()
        damaged = find_damaged(
            Snapshot(self, state).parts(Window.of(since, until)), self._files.read
        )
        if not damaged:
            return []
        self._transact(delta, [], damaged, without_damaged(state, damaged), state.footers)
        log_dropped(damaged)
        return damaged

    def rebuild(self) -> RebuildResult:
        """Commit a state rebuilt from the table's data files (after its state was lost).

        Must run inside :meth:`lock`. Damaged files are removed from the table (not deleted);
        the coverage becomes the seconds from the first event to the last, the cursor and
        horizon the last event's second.

        Examples
        --------
        >>> import tempfile
        >>> cache = DeltaCache(tempfile.mkdtemp(), "acme", "metric_events")
        >>> with cache.lock():
        ...     cache.rebuild().files
        0
        """
        if not self._held:
            raise RuntimeError("DeltaCache.rebuild() must run inside `with cache.lock(): ...`")
        delta = self._log.table(self._base)
        files = list(files_of(delta))
        skipped = []
        for part in list(files):
            try:
                self._files.read(part, ["id"])
            except CacheError as exc:
                log.warning("rebuild: leaving %s out: %s", part.path, exc)
                skipped.append(part)
                files.remove(part)
        state = rebuilt_state(self.stream, files)
        self._transact(delta, [], skipped, state, {})
        return RebuildResult(len(files), state.rows, tuple(p.path for p in skipped), state.coverage)

    # ------------------------------------------------------------------ maintenance
    def optimize(self) -> dict:
        """Compact small data files (one commit that carries the state forward).

        Examples
        --------
        >>> import tempfile
        >>> cache = DeltaCache(tempfile.mkdtemp(), "acme", "metric_events")
        >>> with cache.lock():
        ...     cache.optimize()["numFilesRemoved"]
        0
        """
        from deltalake import CommitProperties

        delta, state = self._locked_state()
        result = delta.optimize.compact(
            commit_properties=CommitProperties(
                custom_metadata={META_KEY: meta_json(state, state.footers)}, max_commit_retries=0
            )
        )
        self._forget(self._log.table().version())
        return result

    def vacuum(
        self, retention_hours: int = VACUUM_RETENTION_HOURS, *, dry_run: bool = False
    ) -> list[str]:
        """Delete data files no version within ``retention_hours`` references.

        The default (7 days) keeps every file a running reader or a recent ``version=``
        read can use; a shorter retention is refused below 1 hour.

        Examples
        --------
        >>> import tempfile
        >>> cache = DeltaCache(tempfile.mkdtemp(), "acme", "metric_events")
        >>> with cache.lock():
        ...     cache.vacuum()
        []
        """
        from deltalake import CommitProperties

        if not self._held:
            raise RuntimeError("DeltaCache.vacuum() must run inside `with cache.lock(): ...`")
        if retention_hours < 1:
            raise ValueError("vacuum retention must be at least 1 hour (running readers)")
        delta = self._log.table()
        if delta is None:
            return []
        state = self._log.state_of(delta)
        removed = delta.vacuum(
            retention_hours=retention_hours,
            dry_run=dry_run,
            enforce_retention_duration=False,
            commit_properties=CommitProperties(
                custom_metadata={META_KEY: meta_json(state, state.footers)}
            ),
        )
        self._forget(self._log.table().version())
        return removed

    def clear(self) -> None:
        """Delete this stream's table: its log and the data files zdevents wrote.

        Local disk only (on object storage, delete the prefix with the store's tools).
        Files zdevents did not write stay.

        Examples
        --------
        >>> import tempfile
        >>> cache = DeltaCache(tempfile.mkdtemp(), "acme", "metric_events")
        >>> cache.clear(); cache.state().empty
        True
        """
        if self.remote:
            raise CacheError(f"clearing a table on object storage is not supported: {self.uri}")
        folder = Path(self.uri)
        if not folder.is_dir():
            return
        with self.lock():
            shutil.rmtree(folder / "_delta_log", ignore_errors=True)
            for month in folder.glob("month=*"):
                for path in month.iterdir():
                    if re.match(r"^part-[0-9a-f]{32}\.parquet$", path.name):
                        path.unlink()
                with contextlib.suppress(OSError):
                    month.rmdir()


def __getattr__(name: str) -> Any:
    """``migrate`` and ``MigrationResult`` live in :mod:`zdevents.store.migration`."""
    if name in ("migrate", "MigrationResult"):
        from . import migration

        return getattr(migration, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

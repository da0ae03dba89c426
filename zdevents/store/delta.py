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
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ..errors import CacheError, CacheLocked
from . import parquet as _c
from .parquet import (
    MAX_PARTS_PER_MONTH,
    ROW_GROUP_ROWS,
    SCHEMA_VERSION,
    SMALL_PART_ROWS,
    Cache,
    CacheState,
    CommitResult,
    PartFile,
    RebuildResult,
)

__all__ = ["DeltaCache", "DeltaState", "MigrationResult", "is_object_store", "migrate", "table_uri"]

log = logging.getLogger(__name__)

META_KEY = "zdevents"
"""The key of the commit metadata that holds the cache state (a JSON text)."""
VACUUM_RETENTION_HOURS = 168
"""Files a commit removed stay this long before :meth:`DeltaCache.vacuum` deletes them."""

_URL = re.compile(r"^(s3|s3a|gs|gcs|az|abfs|abfss)://?(?P<rest>.+)$")
_PART_NAME = re.compile(r"^month=(\d{4}-\d{2})/part-[0-9a-f]{32}\.parquet$")
_STATE_FIELDS = (
    "cursor",
    "covered_since",
    "covered_until",
    "horizon",
    "support_type_scope",
    "after_cursor",
    "updated_at",
)


def is_object_store(data_dir: object) -> bool:
    """True when ``data_dir`` names an object store (``s3://``, ``gs://``, ``az://``...).

    ``Path("s3://b/x")`` prints as ``s3:/b/x``; both spellings count.

    Examples
    --------
    >>> is_object_store("s3://bucket/zd"), is_object_store("/data/zd")
    (True, False)
    """
    return bool(_URL.match(str(data_dir).replace(os.sep, "/")))


def table_uri(data_dir: str | os.PathLike[str], account: str, stream: str) -> str:
    """The table location of one account's stream: a URL or an absolute local path.

    Examples
    --------
    >>> table_uri("s3://bucket/zd/", "acme", "metric_events")
    's3://bucket/zd/acme/metric_events'
    """
    text = str(data_dir).replace(os.sep, "/")
    match = _URL.match(text)
    if match:
        scheme = text.split(":", 1)[0]
        return f"{scheme}://{match.group('rest').strip('/')}/{account}/{stream}"
    return str(Path(data_dir).expanduser().absolute() / account / stream)


class _Location(str):
    """An object-store location shown as its URL; ``/`` joins like a path."""

    def __truediv__(self, other: str) -> _Location:
        return _Location(f"{self.rstrip('/')}/{other}")

    def is_dir(self) -> bool:
        return True

    def exists(self) -> bool:
        return True

    def mkdir(self, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, "only a local cache keeps files beside the table")


@dataclass(frozen=True)
class DeltaState(CacheState):
    """A :class:`~zdevents.store.parquet.CacheState` read from one table version.

    Attributes
    ----------
    version : int or None
        The Delta table version (None: no table yet).
    committed_at : pandas.Timestamp or None
        When that version was committed (UTC).
    footers : dict
        ``{path: CRC32 of its footer}`` of the data files zdevents wrote.
    """

    version: int | None = None
    committed_at: pd.Timestamp | None = None
    footers: dict = dataclass_field(default_factory=dict, compare=False, repr=False)


class DeltaCache:
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
        self.account = _c._check_name(account, "account")
        self.stream = _c._check_name(stream, "stream")
        self.data_dir = data_dir
        # folder: the table under another folder name of the account (a migration builds
        # the table beside the Parquet folder, then swaps the two)
        self.uri = table_uri(data_dir, account, _c._check_name(folder or stream, "folder"))
        self.remote = is_object_store(data_dir)
        self.dir: Path | _Location = _Location(self.uri) if self.remote else Path(self.uri)
        self._schema = _c._STORAGE_SCHEMAS.get(stream)
        self._lock = (
            None
            if self.remote
            else filelock.FileLock(str(Path(self.uri) / ".zdevents.lock"), thread_local=False)
        )
        self._held = False
        self._base: int | None = None
        self._fs: tuple[pafs.FileSystem, str] | None = None

    def __repr__(self) -> str:
        return f"DeltaCache({self.uri!r})"

    @property
    def schema(self) -> pa.Schema | None:
        """The Arrow storage schema of this stream (what :meth:`read` returns)."""
        return self._schema

    # ------------------------------------------------------------------ storage
    def _filesystem(self) -> tuple[pafs.FileSystem, str]:
        if self._fs is None:
            try:
                self._fs = pafs.FileSystem.from_uri(self.uri)
            except (OSError, pa.ArrowException, ValueError) as exc:
                raise CacheError(
                    f"cannot open {self.uri}: {_short(exc)}; check ZDEVENTS_DATA_DIR and the "
                    "object store's environment variables",
                    path=self.uri,
                ) from None
        return self._fs

    def _delta_schema(self) -> pa.Schema:
        """The table schema: the storage schema in Delta's types, plus the ``month`` column."""
        fields = [pa.field(f.name, _delta_type(f.type), f.nullable) for f in self._arrow_schema()]
        return pa.schema([*fields, pa.field("month", pa.string(), False)])

    def _arrow_schema(self) -> pa.Schema:
        if self._schema is None:
            raise CacheError(f"a Delta table needs a known stream, not {self.stream!r}")
        return self._schema

    def _table(self, version: int | None = None, as_of_commit: object = None) -> Any:
        """The DeltaTable at a version (latest by default); None when there is no table."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            table = DeltaTable(self.uri, version=version)
        except TableNotFoundError:
            if version is not None or as_of_commit is not None:
                raise CacheError(f"there is no table at {self.uri}", path=self.uri) from None
            return None
        except Exception as exc:  # delta-rs raises several kinds (DeltaError, OSError...)
            if version is not None and "version" in str(exc).lower():
                raise CacheError(
                    f"the table {self.uri} has no version {version}: {_short(exc)}",
                    path=self.uri,
                ) from None
            raise CacheError(
                f"cannot read the table {self.uri}: {_short(exc)}", path=self.uri
            ) from None
        if as_of_commit is not None:
            # the commit times recorded in the log (object stores' file times have 1 s steps)
            when = pd.Timestamp(as_of_commit)
            when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
            limit = when.value // 1_000_000
            at = table.version()
            while at >= 0:
                stamp = (self._commit_info(at) or {}).get("timestamp")
                if stamp is None:
                    at = -1
                elif stamp <= limit:
                    break
                else:
                    at -= 1
            if at < 0:
                raise CacheError(
                    f"the table {self.uri} has no version committed at or before "
                    f"{when.isoformat()} (that the log still records)",
                    path=self.uri,
                )
            if at != table.version():
                table = DeltaTable(self.uri, version=at)
        return table

    def _commit_info(self, version: int) -> dict | None:
        """The ``commitInfo`` of one log entry (None: gone, or written without one)."""
        fs, root = self._filesystem()
        try:
            with fs.open_input_stream(f"{root}/_delta_log/{version:020d}.json") as fh:
                raw = fh.read()
        except (FileNotFoundError, OSError):
            return None
        for line in raw.splitlines():
            try:
                action = json.loads(line)
            except json.JSONDecodeError:
                continue
            info = action.get("commitInfo") if isinstance(action, dict) else None
            if isinstance(info, dict):
                return info
        return None

    def _commit_metadata(self, version: int) -> dict | None:
        """The ``zdevents`` metadata of one commit (None: a commit without it, or gone)."""
        info = self._commit_info(version)
        if info is None or META_KEY not in info:
            return None
        try:
            meta = json.loads(info[META_KEY])
        except (TypeError, json.JSONDecodeError):
            return None
        if not isinstance(meta, dict):
            return None
        meta["_timestamp"] = info.get("timestamp")
        return meta

    # ------------------------------------------------------------------ state
    def create(self) -> int:
        """Create the (empty) table if there is none; return the latest version.

        Examples
        --------
        >>> import tempfile
        >>> DeltaCache(tempfile.mkdtemp(), "acme", "metric_events").create()
        0
        """
        from deltalake import CommitProperties, DeltaTable

        table = self._table()
        if table is not None:
            return table.version()
        meta = _meta(CacheState(schema_version=SCHEMA_VERSION, stream=self.stream), {})
        try:
            created = DeltaTable.create(
                self.uri,
                self._delta_schema(),
                mode="ignore",
                partition_by=["month"],
                name=f"zdevents_{self.stream}",
                commit_properties=CommitProperties(custom_metadata={META_KEY: meta}),
            )
        except Exception as exc:
            raise CacheError(_write_message(exc, self.uri), path=self.uri) from None
        return created.version()

    def state(self, *, version: int | None = None, as_of_commit: object = None) -> DeltaState:
        """The cache state at the latest table version (or at ``version`` / ``as_of_commit``).

        Raises
        ------
        CacheError
            When the table holds data files but no commit carries zdevents' state (written
            by another tool, or the log was truncated); the message gives the rebuild command.

        Examples
        --------
        >>> import tempfile
        >>> DeltaCache(tempfile.mkdtemp(), "acme", "metric_events").state().rows
        0
        """
        table = self._table(version, as_of_commit)
        if table is None:
            return DeltaState(schema_version=SCHEMA_VERSION, stream=self.stream, footers={})
        return self._state_of(table)

    def _state_of(self, table: Any) -> DeltaState:
        version = table.version()
        files = self._files_of(table)
        meta = None
        at = version
        while at >= 0 and meta is None:
            meta = self._commit_metadata(at)
            at -= 1
        committed = self._commit_metadata(version) if meta is not None else None
        stamp = (committed or meta or {}).get("_timestamp")
        if meta is None:
            if files:
                raise self._state_error(
                    f"holds {len(files)} data file(s) but no commit of it records zdevents' state"
                )
            meta = {}
        try:
            coverage = _c._coverage_from_json(meta.get("coverage", []))
            values = {k: meta.get(k) for k in _STATE_FIELDS}
            for key in ("cursor", "covered_since", "covered_until", "horizon"):
                values[key] = _c._opt_int(values[key])
            footers = meta.get("footers") or {}
            if not isinstance(footers, dict):
                raise TypeError("footers must be an object")
        except (TypeError, ValueError) as exc:
            raise self._state_error(f"records a damaged state ({exc})") from None
        live = {p.path for p in files}
        files = tuple(
            replace(p, footer_crc32=footers.get(p.path)) if p.path in footers else p for p in files
        )
        return DeltaState(
            schema_version=SCHEMA_VERSION,
            stream=self.stream,
            rows=sum(p.rows for p in files),
            files=files,
            coverage=coverage,
            version=version,
            committed_at=pd.Timestamp(stamp, unit="ms", tz="UTC") if stamp else None,
            footers={k: v for k, v in footers.items() if k in live},
            **values,
        )

    def _files_of(self, table: Any) -> tuple[PartFile, ...]:
        actions = pa.table(table.get_add_actions(flatten=True))
        found = []
        for row in actions.to_pylist():
            month = row.get("partition.month") or ""
            lo, hi = row.get("min.time"), row.get("max.time")
            found.append(
                PartFile(
                    path=row["path"],
                    month=month,
                    rows=int(row.get("num_records") or 0),
                    min_time=_ms(lo) if lo is not None else _month_ms(month)[0],
                    max_time=_ms(hi) if hi is not None else _month_ms(month)[1],
                    size=int(row["size_bytes"]),
                )
            )
        return tuple(sorted(found, key=lambda p: (p.min_time, p.max_time, p.path)))

    def _state_error(self, problem: str) -> CacheError:
        return CacheError(
            f"the table {self.uri} {problem}. The {self.stream} cache cannot be read until its "
            f"state is rebuilt from its data files: zdevents cache rebuild --stream "
            f"{self.stream} (no file is deleted; then `zdevents fetch` fetches what the files "
            "do not hold)",
            path=self.uri,
        )

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
            try:
                Path(self.uri).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CacheError(
                    f"cannot create the cache folder {self.uri} ({exc.strerror or exc}): check "
                    "ZDEVENTS_DATA_DIR",
                    path=self.uri,
                ) from exc
            try:
                self._lock.acquire(timeout=-1 if timeout is None else timeout)
            except filelock.Timeout:
                raise CacheLocked(
                    f"another zdevents fetch is writing {self.stream} in {self.uri}; wait for "
                    "it to finish and try again, or use `zdevents fetch --wait SECONDS`",
                    path=str(Path(self.uri) / ".zdevents.lock"),
                ) from None
            except OSError as exc:
                raise CacheError(
                    f"cannot write the cache folder {self.uri} ({exc.strerror or exc}): it is "
                    'read-only for this user; read it with refresh="never", or point '
                    "ZDEVENTS_DATA_DIR at a writable folder to fetch",
                    path=self.uri,
                ) from None
        try:
            # the version this writer continues: a commit by anyone else after it makes this
            # writer's next commit fail (object storage has no lock file)
            self._base = self.create()
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        self._held = True
        try:
            yield self
        finally:
            self._held = False
            self._base = None
            if self._lock is not None:
                self._lock.release()

    def _require_lock(self) -> None:
        if not self._held:
            raise RuntimeError("DeltaCache.commit() must run inside `with cache.lock(): ...`")

    # ------------------------------------------------------------------ commit
    _conform = Cache._conform

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
        small files exceed ``MAX_PARTS_PER_MONTH`` is compacted in the same commit.

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
        self._require_lock()
        delta = self._table(self._base)
        state = self._state_of(delta)
        table = self._conform(table)
        table = _c._dedupe_keep_last(table)
        if not _c._is_time_ordered(table):
            table = table.sort_by(_c._ORDER)
        files = list(state.files)
        footers = dict(state.footers)
        written: list[PartFile] = []
        removed: list[PartFile] = []
        replaced_rows = 0
        try:
            for month, chunk in _c._split_by_month(table):
                lo, hi = _c._time_range(chunk)
                ids = chunk["id"].combine_chunks()
                for part in [
                    p for p in files if p.month == month and p.max_time >= lo and p.min_time <= hi
                ]:
                    # the ids first (one column): a whole file only when it holds a repeat
                    hits = pc.is_in(self._read_part(part, ["id"])["id"], value_set=ids)
                    replaced = pc.sum(hits).as_py() or 0
                    if not replaced:
                        continue
                    replaced_rows += replaced
                    old = self._read_part(part)
                    old_dups = old.filter(hits)
                    in_old = pc.is_in(chunk["id"], value_set=old_dups["id"].combine_chunks())
                    if _c._same_rows(old_dups, chunk.filter(in_old)):
                        chunk = chunk.filter(pc.invert(in_old))  # identical repeats: drop
                        ids = chunk["id"].combine_chunks()
                        continue
                    removed.append(part)
                    kept = old.filter(pc.invert(hits))
                    if kept.num_rows:
                        written.append(self._write_part(kept, month, footers))
                if chunk.num_rows:
                    written.append(self._write_part(chunk, month, footers))
            files = [p for p in files if p not in removed] + written
            for month in sorted({p.month for p in written}):
                files, merged_in, merged_out = self._compact(files, month, footers)
                written += merged_out
                removed += merged_in
            new_state = _c._covering(
                state,
                cursor,
                covered_since,
                tuple(files),
                after_cursor=after_cursor,
                support_type_scope=support_type_scope,
            )
            live = {p.path for p in files}
            self._transact(
                delta,
                adds=[p for p in written if p.path in live],
                removes=[p for p in removed if p.path not in live],
                meta=_meta(new_state, {k: v for k, v in footers.items() if k in live}),
            )
        except BaseException:
            self._discard(written)
            raise
        return CommitResult(
            new_rows=table.num_rows - replaced_rows,
            replaced_rows=replaced_rows,
            rows_total=new_state.rows,
        )

    def _transact(
        self, delta: Any, *, adds: list[PartFile], removes: list[PartFile], meta: str
    ) -> None:
        from deltalake import CommitProperties
        from deltalake.exceptions import CommitFailedError
        from deltalake.transaction import AddAction, RemoveAction

        now = int(time.time() * 1000)
        actions: list[Any] = [
            RemoveAction(p.path, True, now, p.size, {"month": p.month}) for p in removes
        ]
        actions += [
            AddAction(p.path, int(p.size or 0), {"month": p.month}, now, True, _stats(p))
            for p in adds
        ]
        try:
            delta.create_write_transaction(
                actions,
                "append",
                self._delta_schema(),
                partition_by=["month"],
                commit_properties=CommitProperties(
                    custom_metadata={META_KEY: meta}, max_commit_retries=0
                ),
            )
        except CommitFailedError as exc:
            raise CacheLocked(
                f"another writer committed to {self.uri} while this fetch ran (table version "
                f"{delta.version() + 1} exists): nothing of this commit was written. Run one "
                f"fetch of {self.stream} at a time; run it again to continue ({_short(exc)})",
                path=self.uri,
            ) from None
        except Exception as exc:
            raise CacheError(_write_message(exc, self.uri), path=self.uri) from None
        if self._base is not None:
            self._base += 1

    def _discard(self, parts: list[PartFile]) -> None:
        """Delete data files this writer made but never committed (best effort)."""
        fs, root = self._filesystem()
        for part in parts:
            with contextlib.suppress(Exception):
                fs.delete_file(f"{root}/{part.path}")

    def _write_part(self, table: pa.Table, month: str, footers: dict) -> PartFile:
        """Write one data file (pyarrow, page checksums) and record its footer CRC32."""
        fs, root = self._filesystem()
        path = f"month={month}/part-{uuid.uuid4().hex}.parquet"
        table = self._conform(table)
        if not _c._is_time_ordered(table):
            table = table.sort_by(_c._ORDER)
        sink = pa.BufferOutputStream()
        pq.write_table(
            _to_delta_types(table),
            sink,
            compression="zstd",
            row_group_size=ROW_GROUP_ROWS,
            use_dictionary=_c._dictionary_columns(table.schema),
            write_page_checksum=True,
            write_statistics=True,
        )
        data = sink.getvalue()
        try:
            if not self.remote:
                fs.create_dir(f"{root}/month={month}", recursive=True)
            with fs.open_output_stream(f"{root}/{path}") as out:
                out.write(data)
        except (OSError, pa.ArrowException) as exc:
            with contextlib.suppress(Exception):
                fs.delete_file(f"{root}/{path}")
            raise CacheError(_write_message(exc, f"{self.uri}/{path}"), path=self.uri) from None
        size = data.size
        length = int.from_bytes(data[size - 8 : size - 4].to_pybytes(), "little")
        crc = zlib.crc32(data[size - 8 - length :].to_pybytes())
        footers[path] = crc
        lo, hi = _c._time_range(table)
        return PartFile(path, month, table.num_rows, lo, hi, size, crc)

    def _compact(
        self, files: list[PartFile], month: str, footers: dict
    ) -> tuple[list[PartFile], list[PartFile], list[PartFile]]:
        """Merge the small files of ``month`` into one when it holds too many of them."""
        small = [p for p in files if p.month == month and p.rows < SMALL_PART_ROWS]
        if len(small) <= MAX_PARTS_PER_MONTH:
            return files, [], []
        merged = pa.concat_tables([self._read_part(p) for p in small]).sort_by(_c._ORDER)
        made = self._write_part(merged, month, footers)
        log.debug("compacted %d files of %s into 1", len(small), month)
        return [p for p in files if p not in small] + [made], small, [made]

    # ------------------------------------------------------------------ read
    parts = Cache.parts
    uncovered = Cache.uncovered
    warn_uncovered = Cache.warn_uncovered

    def files(
        self, since: object = None, until: object = None, *, version: int | None = None
    ) -> list[str]:
        """URIs (local: paths) of the data files of a version that may hold ``[since, until)``.

        Examples
        --------
        >>> import tempfile
        >>> DeltaCache(tempfile.mkdtemp(), "acme", "metric_events").files()
        []
        """
        state = self.state(version=version)
        return [f"{self.uri}/{p.path}" for p in self.parts(since, until, state=state)]

    def read(
        self,
        columns: list[str] | None = None,
        since: object = None,
        until: object = None,
        *,
        version: int | None = None,
        as_of_commit: object = None,
        state: DeltaState | None = None,
    ) -> pa.Table:
        """Read the rows with ``since <= time < until`` of one table version, ordered by time.

        Parameters
        ----------
        columns : list of str, optional
        since, until : time, optional
            Half-open range; naive values are UTC.
        version : int, optional
            The table version to read (default: the latest).
        as_of_commit : time, optional
            Read the version that was current at this time (naive: UTC).
        state : DeltaState, optional
            A snapshot already read (its version is read; overrides the two above).

        Raises
        ------
        CacheError
            When a data file is damaged or missing (named, with the refetch command).

        Examples
        --------
        >>> import tempfile
        >>> DeltaCache(tempfile.mkdtemp(), "acme", "metric_events").read().num_rows
        0
        """
        if state is None:
            state = self.state(version=version, as_of_commit=as_of_commit)
        parts = self.parts(since, until, state=state)
        lo, hi = _c._to_ms(since, "since"), _c._to_ms(until, "until")
        schema = self._schema
        if not parts:
            base = schema.empty_table() if schema is not None else pa.table({})
            return base.select(columns) if columns is not None else base
        for part in parts:
            self._verify_part(part)
        if lo is not None and all(p.min_time >= lo for p in parts):
            lo = None
        if hi is not None and all(p.max_time < hi for p in parts):
            hi = None
        condition = None
        if lo is not None:
            condition = ds.field("time") >= pa.scalar(lo, pa.timestamp("ms", "UTC"))
        if hi is not None:
            upper = ds.field("time") < pa.scalar(hi, pa.timestamp("ms", "UTC"))
            condition = upper if condition is None else condition & upper
        overlapping = any(b.min_time < a.max_time for a, b in zip(parts, parts[1:], strict=False))
        fs, root = self._filesystem()
        try:
            dataset = ds.dataset(
                [f"{root}/{p.path}" for p in parts],
                format=_c._PARQUET_FORMAT,
                schema=schema,
                filesystem=fs,
            )
            table = dataset.to_table(columns=columns, filter=condition)
        except (OSError, pa.ArrowException) as exc:
            for part in parts:
                self._read_part(part)  # names the damaged file
            raise CacheError(f"could not read the table {self.uri}: {_short(exc)}") from None
        if overlapping:
            if columns is None or {"time", "id"} <= set(columns):
                table = table.sort_by(_c._ORDER)
        return table.replace_schema_metadata(None)

    def _read_part(self, part: PartFile, columns: list[str] | None = None) -> pa.Table:
        fs, root = self._filesystem()
        self._verify_part(part)
        try:
            with fs.open_input_file(f"{root}/{part.path}") as fh:
                table = pq.read_table(fh, columns=columns, page_checksum_verification=True)
            if self._schema is not None:
                wanted = (
                    self._schema
                    if columns is None
                    else pa.schema([self._schema.field(c) for c in columns])
                )
                table = table.select(wanted.names).cast(wanted)
            return table
        except FileNotFoundError:
            raise self._part_error(part, "is missing") from None
        except (OSError, pa.ArrowException) as exc:
            raise self._part_error(part, f"is damaged ({_short(exc)})") from None

    def _verify_part(self, part: PartFile) -> None:
        """Check the file's size (and footer CRC32 when recorded) against the table's log."""
        fs, root = self._filesystem()
        try:
            with fs.open_input_file(f"{root}/{part.path}") as fh:
                size = fh.size()
                if part.footer_crc32 is None or size != part.size:
                    found = (size, None)
                else:
                    fh.seek(size - 8)
                    tail = fh.read(8)
                    length = int.from_bytes(tail[:4], "little")
                    if tail[4:] != b"PAR1" or length + 12 > size:
                        raise ValueError("no Parquet footer at its end (truncated?)")
                    fh.seek(size - 8 - length)
                    found = (size, zlib.crc32(fh.read(length + 8)))
        except FileNotFoundError:
            raise self._part_error(part, "is listed but missing") from None
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise self._part_error(part, f"is damaged ({_short(exc)})") from None
        if part.size is not None and found[0] != part.size:
            raise self._part_error(
                part, f"is damaged: {found[0]} bytes, but the table recorded {part.size}"
            )
        if part.footer_crc32 is not None and found[1] != part.footer_crc32:
            raise self._part_error(
                part,
                f"is damaged: footer CRC32 {found[1]:08x}, but the table recorded "
                f"{part.footer_crc32:08x}",
            )

    def _part_error(self, part: PartFile, problem: str) -> CacheError:
        return CacheError(
            f"the cache file {self.uri}/{part.path} (month {part.month}) {problem}. Refetch "
            f"that month: zdevents fetch --stream {self.stream} --since {part.month}-01 --force",
            path=f"{self.uri}/{part.path}",
        )

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
        self._require_lock()
        delta = self._table(self._base)
        state = self._state_of(delta)
        damaged = []
        for part in self.parts(since, until, state=state):
            try:
                self._read_part(part)
            except CacheError:
                damaged.append(part)
        if not damaged:
            return []
        files = tuple(p for p in state.files if p not in damaged)
        coverage = state.coverage
        for part in damaged:
            coverage = _c._subtract(coverage, (part.min_time // 1000, part.max_time // 1000 + 1))
        new_state = replace(state, files=files, rows=sum(p.rows for p in files), coverage=coverage)
        live = {p.path for p in files}
        self._transact(
            delta,
            adds=[],
            removes=damaged,
            meta=_meta(new_state, {k: v for k, v in state.footers.items() if k in live}),
        )
        log.warning(
            "dropped %d damaged cache files; %s no longer cached until fetched again",
            len(damaged),
            ", ".join(
                f"{_c._iso(p.min_time // 1000)}..{_c._iso(p.max_time // 1000 + 1)}" for p in damaged
            ),
        )
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
        self._require_lock()
        delta = self._table(self._base)
        files = list(self._files_of(delta))
        skipped = []
        for part in list(files):
            try:
                self._read_part(part, ["id"])
            except CacheError as exc:
                log.warning("rebuild: leaving %s out: %s", part.path, exc)
                skipped.append(part)
                files.remove(part)
        coverage: tuple[_c.Interval, ...] = ()
        cursor = None
        if files:
            first = min(p.min_time for p in files) // 1000
            cursor = max(p.max_time for p in files) // 1000
            coverage = _c._merge([(first, cursor)])
        state = CacheState(
            schema_version=SCHEMA_VERSION,
            stream=self.stream,
            cursor=cursor,
            covered_since=coverage[0][0] if coverage else None,
            covered_until=cursor,
            rows=sum(p.rows for p in files),
            files=tuple(files),
            updated_at=_now_iso(),
            coverage=coverage,
            horizon=cursor,
        )
        self._transact(delta, adds=[], removes=skipped, meta=_meta(state, {}))
        return RebuildResult(len(files), state.rows, tuple(p.path for p in skipped), coverage)

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

        self._require_lock()
        delta = self._table(self._base)
        state = self._state_of(delta)
        result = delta.optimize.compact(
            commit_properties=CommitProperties(
                custom_metadata={META_KEY: _meta(state, state.footers)}, max_commit_retries=0
            )
        )
        self._base = self._table().version()
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

        self._require_lock()
        if retention_hours < 1:
            raise ValueError("vacuum retention must be at least 1 hour (running readers)")
        delta = self._table()
        if delta is None:
            return []
        state = self._state_of(delta)
        removed = delta.vacuum(
            retention_hours=retention_hours,
            dry_run=dry_run,
            enforce_retention_duration=False,
            commit_properties=CommitProperties(
                custom_metadata={META_KEY: _meta(state, state.footers)}
            ),
        )
        self._base = self._table().version()
        return removed

    def size_bytes(self) -> int:
        """Bytes of the latest version's data files.

        Examples
        --------
        >>> import tempfile
        >>> DeltaCache(tempfile.mkdtemp(), "acme", "metric_events").size_bytes()
        0
        """
        return sum(p.size or 0 for p in self.state().files)

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


# ---------------------------------------------------------------------------------- helpers
def _delta_type(kind: pa.DataType) -> pa.DataType:
    """Arrow types as Delta stores them: strings for dictionaries, microsecond timestamps."""
    if pa.types.is_dictionary(kind):
        return kind.value_type
    if pa.types.is_timestamp(kind):
        return pa.timestamp("us", "UTC")
    if pa.types.is_list(kind):
        return pa.list_(pa.field(kind.value_field.name, _delta_type(kind.value_type)))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _delta_type(f.type), f.nullable) for f in kind])
    return kind


def _to_delta_types(table: pa.Table) -> pa.Table:
    schema = pa.schema([pa.field(f.name, _delta_type(f.type), f.nullable) for f in table.schema])
    return table.cast(schema).replace_schema_metadata(None)


def _stats(part: PartFile) -> str:
    """Delta file statistics: rows, and the time range (lets engines skip files)."""

    def iso(ms: int) -> str:
        return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    return json.dumps(
        {
            "numRecords": part.rows,
            "minValues": {"time": iso(part.min_time)},
            "maxValues": {"time": iso(part.max_time)},
            "nullCount": {"time": 0, "id": 0},
        }
    )


def _meta(state: CacheState, footers: dict) -> str:
    """The commit metadata of a state: what is needed to continue, nothing else."""
    return json.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "stream": state.stream,
            "cursor": state.cursor,
            "covered_since": state.covered_since,
            "covered_until": state.covered_until,
            "coverage": [list(pair) for pair in state.coverage],
            "horizon": state.horizon,
            "support_type_scope": state.support_type_scope,
            "after_cursor": state.after_cursor,
            "updated_at": state.updated_at or _now_iso(),
            "footers": footers,
        }
    )


def _ms(value: object) -> int:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return int(stamp.value // 1_000_000)


def _month_ms(month: str) -> tuple[int, int]:
    if not month:
        return 0, 2**62
    start = pd.Timestamp(f"{month}-01", tz="UTC")
    end = start + pd.offsets.MonthBegin(1)
    return int(start.value // 1_000_000), int(end.value // 1_000_000) - 1


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _short(exc: BaseException) -> str:
    """The first line of an error, without the tracebacks delta-rs appends."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else exc.__class__.__name__


def _write_message(exc: BaseException, what: str) -> str:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return _c._write_error(exc, what)
    text = str(exc)
    if "No space left" in text or "ENOSPC" in text:
        return _c._write_error(OSError(errno.ENOSPC, "No space left on device"), what)
    return f"could not write {what} ({_short(exc)}); the table and its cursor are unchanged"


@dataclass(frozen=True)
class MigrationResult:
    """What :func:`migrate` did.

    Attributes
    ----------
    rows : int
        Rows in the new table (the same as in the Parquet cache, with the same ids).
    files : int
        Data files of the new table.
    version : int
        The new table's version.
    removed_old : bool
        True when the old folder is gone (False: files zdevents did not write kept it).
    """

    rows: int
    files: int
    version: int
    removed_old: bool


def migrate(data_dir: str | os.PathLike[str], account: str, stream: str) -> MigrationResult:
    """Convert a stream's Parquet cache folder into a Delta table, once, keeping nothing lost.

    The table is built beside the folder (one commit per month, then the Parquet cache's
    cursor, coverage, horizon, scope and cursor-mode position in one commit), checked to hold
    the same row count and the same id set, and only then swapped in; the old folder's files
    zdevents wrote are deleted after the swap (anything else in it stays, under
    ``<stream>.parquet-old``). The Parquet cache's lock is held throughout.

    Raises
    ------
    CacheError
        When the folder is not a Parquet cache, its state is lost (rebuild it first), a file
        is damaged, or the new table does not match (the old folder then stays untouched).
    CacheLocked
        When a fetch of the stream is running.

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> from zdevents.export.parse import metric_events_table
    >>> old = Cache(root, "acme", "metric_events")
    >>> body = (b'{"ticket_metric_events": [{"id": 1, "ticket_id": 7, "metric": "reply_time",'
    ...         b' "instance_id": 1, "type": "activate", "time": "2024-01-02T03:04:05Z"}]}')
    >>> with old.lock():
    ...     _ = old.commit(metric_events_table([body]), cursor=1704164645)
    >>> migrate(root, "acme", "metric_events").rows
    1
    >>> DeltaCache(root, "acme", "metric_events").state().cursor
    1704164645
    """
    if is_object_store(data_dir):
        raise CacheError("a Parquet cache lives on local disk: there is nothing to migrate here")
    old = Cache(data_dir, account, stream)
    if (old.dir / "_delta_log").is_dir():
        raise CacheError(f"{old.dir} is a Delta table already", path=str(old.dir))
    if not old.state_path.exists():
        raise CacheError(f"{old.dir} holds no Parquet cache to migrate", path=str(old.dir))
    staging = f"{stream}.delta-{uuid.uuid4().hex[:8]}"
    new = DeltaCache(data_dir, account, stream, folder=staging)
    with old.lock():
        state = old.state()
        try:
            with new.lock():
                for month in sorted({p.month for p in state.files}):
                    start = pd.Timestamp(f"{month}-01", tz="UTC")
                    rows = old.read(since=start, until=start + pd.offsets.MonthBegin(1))
                    new.commit(rows)  # rows only: the state follows in one commit
                delta = new._table(new._base)
                built = new._state_of(delta)
                moved = replace(state, files=built.files, rows=built.rows)
                new._transact(delta, adds=[], removes=[], meta=_meta(moved, built.footers))
            _same_ids(old, new)
        except BaseException:
            shutil.rmtree(new.uri, ignore_errors=True)  # only the staging table it built
            raise
        parked = old.dir.with_name(f"{stream}.parquet-old")
        os.replace(old.dir, parked)
        os.replace(new.uri, old.dir)
    leftover = Cache(data_dir, account, parked.name)
    leftover.clear()
    for name in ("state.json", ".lock", ".zdevents.lock"):
        with contextlib.suppress(OSError):
            (parked / name).unlink()
    removed = True
    try:
        parked.rmdir()
    except OSError:
        removed = False
        log.warning("migrate: %s keeps files zdevents did not write; left in place", parked)
    final = DeltaCache(data_dir, account, stream).state()
    return MigrationResult(final.rows, len(final.files), int(final.version or 0), removed)


def _same_ids(old: Cache, new: DeltaCache) -> None:
    before = np.sort(old.read(columns=["id"])["id"].to_numpy())
    after = np.sort(new.read(columns=["id"])["id"].to_numpy())
    if len(before) != len(after) or not (before == after).all():
        raise CacheError(
            f"the migrated table holds {len(after)} rows, the Parquet cache {len(before)} (or "
            f"other ids): the Parquet cache in {old.dir} is kept unchanged",
            path=str(old.dir),
        )

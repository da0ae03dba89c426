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
Every data page carries a CRC32 (verified on read) and the manifest records each file's size
and the CRC32 of its footer, so a damaged file is an error, never a wrong number. Part
files carry only ``{"zdevents_schema_version": "1", "stream": ...}`` as metadata - no settings.
Times in the manifest (``min_time``/``max_time``) are Unix milliseconds; the cursor, the
coverage and the horizon are Unix seconds, like Zendesk's ``start_time``.

Coverage is the truth: ``state.json`` lists the half-open intervals of event time that were
read from the export completely (each commit adds exactly what its pages spanned; a repair
removes what it drops). The horizon (``as_of``) is the end of the interval it lies in: it
only moves forward, so a forced refetch or a backfill running elsewhere never lowers it, and
it is never later than the clock. ``state.json`` is written before the first part file, so
part files without it mean the state was lost: an error, and :meth:`Cache.rebuild` restores
it from the files. zdevents deletes only files whose names it writes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import time
import uuid
import warnings
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from pathlib import Path

import filelock
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..errors import CacheError, CacheLocked, ConfigError
from ..schema import METRIC_EVENTS_SCHEMA, TICKET_EVENTS_SCHEMA

__all__ = ["SCHEMA_VERSION", "Cache", "CacheState", "CommitResult", "PartFile", "RebuildResult"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
ROW_GROUP_ROWS = 128 * 1024
MAX_PARTS_PER_MONTH = 8
"""A month with more small parts than this is compacted."""
SMALL_PART_ROWS = ROW_GROUP_ROWS // 2
"""Parts with fewer rows are small: compaction merges them; larger ones are never rewritten."""
COMPACT_ROWS = 1_000_000
"""A compaction merges time-adjacent small parts into files of at most this many rows."""

_STORAGE_SCHEMAS = {"metric_events": METRIC_EVENTS_SCHEMA, "ticket_events": TICKET_EVENTS_SCHEMA}
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$")
_PART_PATH = re.compile(r"^month=(\d{4}-\d{2})/part-[0-9a-f]{32}\.parquet$")
_MONTH_DIR = re.compile(r"^month=\d{4}-\d{2}$")
_PART_NAME = re.compile(r"^part-[0-9a-f]{32}\.parquet$")
_PART_TMP_NAME = re.compile(r"^\.part-[0-9a-f]{32}\.parquet\.tmp$")
_STATE = "state.json"
_STATE_TMP_NAME = re.compile(r"^\.state\.json\.[0-9a-f]{32}\.tmp$")
_REJECTED_NAME = re.compile(r"^\d{8}T\d{6}Z-start_time-\d+-[0-9a-f]{8}\.(json|txt)$")
_ORDER = [("time", "ascending"), ("id", "ascending")]  # of the rows in every part file


@dataclass(frozen=True)
class PartFile:
    """One Parquet file of the cache as listed in ``state.json``.

    Attributes
    ----------
    path : str
        Relative to the stream folder, e.g. ``month=2024-01/part-<uuid>.parquet``.
    month : str
        ``YYYY-MM`` (UTC) of every row in the file.
    rows : int
    min_time, max_time : int
        Unix milliseconds of the oldest and newest row.
    size : int or None
        Bytes of the file (None in manifests written before it was recorded).
    footer_crc32 : int or None
        CRC32 of the file's footer (Parquet metadata, its length and the magic bytes).
    """

    path: str
    month: str
    rows: int
    min_time: int
    max_time: int
    size: int | None = None
    footer_crc32: int | None = None


Interval = tuple[int, int]
"""A half-open range ``[start, end)`` of event time in Unix seconds."""


@dataclass(frozen=True)
class CacheState:
    """The snapshot of one stream's cache (the content of ``state.json``).

    Attributes
    ----------
    schema_version : int
    stream : str
    cursor : int or None
        Unix seconds: where an incremental fetch continues (the furthest ``end_time`` read,
        never later than the clock at that commit; None: never fetched). It never moves back.
    covered_since : int or None
        Unix seconds: the earliest time ever covered (a gap after it, left by a repair say,
        is fetched by the next refresh).
    covered_until : int or None
        Unix seconds: the furthest cursor ever reached.
    rows : int
        Rows in all listed files (unique ids).
    files : tuple of PartFile
        The snapshot, ordered by time.
    updated_at : str or None
        ISO-8601 UTC time of the last commit.
    support_type_scope : str or None
        ticket_events: the ``support_type_scope`` the rows were fetched with.
    after_cursor : str or None
        Metric events fetched with cursor pagination: where the next page starts (None
        after a time-based fetch).
    coverage : tuple of (int, int)
        The half-open intervals ``[start, end)`` of event time (Unix seconds) read from the
        export completely, sorted and disjoint. Only these are what the cache knows.
    horizon : int or None
        Unix seconds: the end of the covered interval the horizon lies in (see
        :attr:`as_of`). It only moves forward.
    extra : dict
        Keys of ``state.json`` this version does not know; written back unchanged.
    """

    schema_version: int
    stream: str
    cursor: int | None = None
    covered_since: int | None = None
    covered_until: int | None = None
    rows: int = 0
    files: tuple[PartFile, ...] = ()
    updated_at: str | None = None
    support_type_scope: str | None = None
    after_cursor: str | None = None
    coverage: tuple[Interval, ...] = ()
    horizon: int | None = None
    extra: dict = dataclass_field(default_factory=dict, compare=False, repr=False)

    @property
    def empty(self) -> bool:
        """True when nothing was ever committed."""
        return self.cursor is None and not self.files

    @property
    def as_of(self) -> pd.Timestamp | None:
        """The horizon as a UTC Timestamp, never later than now (None: nothing covered).

        Every event before it in the covered interval it ends is cached: the default
        ``as_of`` of :func:`zdevents.sla_targets`.
        """
        if self.horizon is None:
            return None
        return pd.Timestamp(min(self.horizon, int(time.time())), unit="s", tz="UTC")

    def gaps(self, since: int | None = None, until: int | None = None) -> list[Interval]:
        """The parts of ``[since, until)`` (Unix seconds) that the coverage does not hold.

        ``since`` defaults to the start of the coverage, ``until`` to its end.

        Examples
        --------
        >>> CacheState(1, "metric_events", coverage=((0, 10), (20, 30))).gaps()
        [(10, 20)]
        >>> CacheState(1, "metric_events", coverage=((0, 10),)).gaps(5, 15)
        [(10, 15)]
        """
        if not self.coverage:
            return [] if since is None or until is None or since >= until else [(since, until)]
        lo = self.coverage[0][0] if since is None else since
        hi = self.coverage[-1][1] if until is None else until
        found: list[Interval] = []
        at = lo
        for a, b in self.coverage:
            if b <= at:
                continue
            if a >= hi:
                break
            if a > at:
                found.append((at, a))
            at = max(at, b)
        if at < hi:
            found.append((at, hi))
        return found


def _merge(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """Sorted, disjoint intervals; touching ones are joined, empty ones dropped."""
    out: list[Interval] = []
    for a, b in sorted((int(a), int(b)) for a, b in intervals if a < b):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return tuple(out)


def _subtract(intervals: tuple[Interval, ...], cut: Interval) -> tuple[Interval, ...]:
    lo, hi = cut
    out: list[Interval] = []
    for a, b in intervals:
        if b <= lo or a >= hi:
            out.append((a, b))
            continue
        if a < lo:
            out.append((a, lo))
        if b > hi:
            out.append((hi, b))
    return tuple(out)


def _advance_horizon(
    horizon: int | None, coverage: tuple[Interval, ...], claim: Interval | None
) -> int | None:
    """The horizon after a commit: the end of the interval it lies in, never lower.

    Before any coverage, the first claim's interval sets it. A claim elsewhere (a backfill
    before the horizon's interval, a forced range after a gap) moves it only once it joins
    the horizon's interval.
    """
    if horizon is None:
        if claim is None:
            return None
        return next((b for a, b in coverage if a <= claim[0] < b), None)
    for a, b in coverage:
        if a <= horizon <= b:
            return max(horizon, b)
    return horizon


@dataclass(frozen=True)
class CommitResult:
    """What one :meth:`Cache.commit` changed.

    Attributes
    ----------
    new_rows : int
        Rows whose ``id`` was not in the cache before.
    replaced_rows : int
        Cached rows replaced by a newer copy (same ``id``).
    rows_total : int
        Rows in the cache after the commit.
    """

    new_rows: int
    replaced_rows: int
    rows_total: int


@dataclass(frozen=True)
class RebuildResult:
    """What :meth:`Cache.rebuild` found.

    Attributes
    ----------
    files : int
        Part files listed in the rebuilt state.
    rows : int
        Rows they hold (unique ids).
    skipped : tuple of str
        Part files left unlisted (damaged, of another stream or month, or wholly superseded
        by newer copies of their rows); none is deleted here.
    coverage : tuple of (int, int)
        The interval now covered: from the first event's second to the last one's (that
        second itself is fetched again by the next fetch).
    """

    files: int
    rows: int
    skipped: tuple[str, ...]
    coverage: tuple[Interval, ...]


def _check_name(value: str, what: str) -> str:
    if (
        not isinstance(value, str)
        or not _NAME.match(value)
        or ".." in value
        or os.path.isabs(value)
    ):
        raise ConfigError(
            f"{what} name {value!r} cannot be a cache folder: use letters, digits, '.', '_' "
            "and '-' only (no path separators, no '..')"
        )
    return value


def _to_ms(value: object, what: str) -> int | None:
    """A point in time as Unix ms, rounded up (so ``time >= since`` stays exact)."""
    from ..dates import to_epoch_ms  # the one time parser

    return to_epoch_ms(value, name=what)  # type: ignore[arg-type]


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


class Cache:
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
        self.account = _check_name(account, "account")
        self.stream = _check_name(stream, "stream")
        self.data_dir = Path(data_dir)
        self.dir = self.data_dir / account / stream
        self.state_path = self.dir / _STATE
        # not thread-local: fetch() holds the lock and commits from its writer thread
        self._lock = filelock.FileLock(str(self.dir / ".lock"), thread_local=False)
        self._schema = _STORAGE_SCHEMAS.get(stream)
        # the last part this object wrote, as (path, table): the next commit's overlap check
        # and compaction read it from memory (part files never change once written)
        self._written: tuple[str, pa.Table | None] | None = None

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
        try:
            raw = self.state_path.read_bytes()
        except FileNotFoundError:
            found = self._part_paths()
            if found:
                raise self._state_error(
                    f"is missing, but {len(found)} data file(s) of this cache are present",
                ) from None
            return CacheState(schema_version=SCHEMA_VERSION, stream=self.stream)
        except OSError as exc:
            raise self._state_error(f"cannot be read ({exc.strerror})") from None
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise self._state_error("is damaged (not valid JSON; truncated?)") from None
        if not isinstance(data, dict):
            raise self._state_error("is damaged (not a JSON object)")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise self._state_error(
                f"has schema version {version!r}, which this zdevents (version "
                f"{SCHEMA_VERSION}) does not read"
            )
        try:
            files = tuple(self._part_from_json(item) for item in data["files"])
            cursor = _opt_int(data.get("cursor"))
            covered_since = _opt_int(data.get("covered_since"))
            if "coverage" in data:
                coverage = _coverage_from_json(data["coverage"])
                horizon = _opt_int(data.get("horizon"))
            else:  # written before coverage was kept: one interval up to the cursor
                legacy = [(covered_since, cursor)] if None not in (covered_since, cursor) else []
                coverage = _merge(legacy)
                horizon = cursor
            known = {f.name for f in fields(CacheState)}
            state = CacheState(
                schema_version=version,
                stream=str(data["stream"]),
                cursor=cursor,
                covered_since=covered_since,
                covered_until=_opt_int(data.get("covered_until")),
                rows=int(data["rows"]),
                files=files,
                updated_at=data.get("updated_at"),
                support_type_scope=data.get("support_type_scope"),
                after_cursor=data.get("after_cursor"),
                coverage=coverage,
                horizon=horizon,
                extra={k: v for k, v in data.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self._state_error(f"is damaged ({exc.__class__.__name__}: {exc})") from None
        if state.stream != self.stream:
            raise self._state_error(f"belongs to stream {state.stream!r}, not {self.stream!r}")
        if state.rows != sum(p.rows for p in files):
            raise self._state_error(
                f"is damaged (rows {state.rows} but its files hold {sum(p.rows for p in files)})"
            )
        return state

    def _part_paths(self) -> list[Path]:
        """Part files on disk (names zdevents writes), listed in ``state.json`` or not."""
        if not self.dir.is_dir():
            return []
        found = []
        for folder in self.dir.iterdir():
            if not _MONTH_DIR.match(folder.name) or not folder.is_dir():
                continue
            found += [p for p in folder.iterdir() if _PART_NAME.match(p.name) and p.is_file()]
        return sorted(found)

    @staticmethod
    def _part_from_json(item: dict) -> PartFile:
        path = item["path"]
        match = _PART_PATH.match(path) if isinstance(path, str) else None
        if not match or match.group(1) != item["month"]:
            raise ValueError(f"bad file entry {path!r}")
        part = PartFile(
            path=path,
            month=item["month"],
            rows=int(item["rows"]),
            min_time=int(item["min_time"]),
            max_time=int(item["max_time"]),
            size=_opt_int(item.get("size")),
            footer_crc32=_opt_int(item.get("footer_crc32")),
        )
        if part.rows < 0 or part.min_time > part.max_time:
            raise ValueError(f"bad file entry {path!r}")
        return part

    def _state_error(self, problem: str) -> CacheError:
        return CacheError(
            f"the cache state file {self.state_path} {problem}. The {self.stream} cache cannot "
            f"be read until its state is rebuilt from its data files: zdevents cache rebuild "
            f"--stream {self.stream} (no file is deleted; then `zdevents fetch` fetches what "
            "the files do not hold)",
            path=str(self.state_path),
        )

    def _write_state(self, state: CacheState) -> None:
        payload = {**state.extra, **asdict(state)}
        del payload["extra"]
        payload["files"] = [asdict(p) for p in state.files]
        payload["coverage"] = [list(pair) for pair in state.coverage]
        text = json.dumps(payload, indent=1, sort_keys=False).encode()
        tmp = self.dir / f".{_STATE}.{uuid.uuid4().hex}.tmp"
        try:
            with open(tmp, "wb") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.state_path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise CacheError(
                _write_error(exc, str(self.state_path)), path=str(self.state_path)
            ) from exc
        _fsync_dir(self.dir)

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
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(
                f"cannot create the cache folder {self.dir} ({exc.strerror or exc}): check "
                "ZDEVENTS_DATA_DIR",
                path=str(self.dir),
            ) from exc
        try:
            self._lock.acquire(timeout=-1 if timeout is None else timeout)
        except filelock.Timeout:
            raise CacheLocked(
                f"another zdevents fetch is writing {self.stream} in {self.dir}; wait for it to "
                "finish and try again, or use `zdevents fetch --wait SECONDS` (the lock is "
                "released when that process exits)",
                path=str(self.dir / ".lock"),
            ) from None
        except OSError as exc:  # a read-only folder or file system: filelock cannot open .lock
            raise CacheError(
                f"cannot write the cache folder {self.dir} ({exc.strerror or exc}): it is "
                'read-only for this user; read it with refresh="never" (or `zdevents '
                "status`/`report`), or point ZDEVENTS_DATA_DIR at a writable folder to fetch",
                path=str(self.dir),
            ) from None
        try:
            yield self
        finally:
            self._lock.release()

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
        than ``MAX_PARTS_PER_MONTH`` small parts is compacted (see :meth:`_compact`).

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
        table = _dedupe_keep_last(table)
        if table.num_rows < incoming:
            log.debug("%d duplicate rows within the batch", incoming - table.num_rows)
        if not _is_time_ordered(table):  # the export arrives in order: usually nothing to do
            table = table.sort_by(_ORDER)
        files = list(state.files)
        written: list[PartFile] = []
        removed: list[PartFile] = []
        replaced_rows = 0
        try:
            for month, chunk in _split_by_month(table):
                lo, hi = _time_range(chunk)
                ids = chunk["id"].combine_chunks()
                for part in [
                    p for p in files
                    if p.month == month and p.max_time >= lo and p.min_time <= hi
                ]:  # fmt: skip
                    hits = pc.is_in(self._recent_part(part, ["id"])["id"], value_set=ids)
                    replaced = pc.sum(hits).as_py() or 0
                    if not replaced:
                        continue
                    replaced_rows += replaced
                    old = self._recent_part(part)
                    old_dups = old.filter(hits)
                    in_old = pc.is_in(chunk["id"], value_set=old_dups["id"].combine_chunks())
                    if _same_rows(old_dups, chunk.filter(in_old)):
                        # the usual page-boundary repeat: identical rows, keep the old file
                        chunk = chunk.filter(pc.invert(in_old))
                        ids = chunk["id"].combine_chunks()
                        continue
                    kept = old.filter(pc.invert(hits))
                    removed.append(part)
                    if kept.num_rows:
                        written.append(self._write_part(kept, month))
                if chunk.num_rows:
                    written.append(self._write_part(chunk, month))
            files = [p for p in files if p not in removed] + [
                p for p in written if p not in removed
            ]
            for month in sorted({p.month for p in written}):
                files, merged_in, merged_out = self._compact(files, month)
                written += merged_out
                removed += merged_in
            files.sort(key=lambda p: (p.min_time, p.max_time, p.path))
            new_state = _covering(
                state,
                cursor,
                covered_since,
                tuple(files),
                after_cursor=after_cursor,
                support_type_scope=support_type_scope,
            )
            self._write_state(new_state)
        except BaseException:
            for part in written:  # never listed: remove now (else the next commit sweeps them)
                with contextlib.suppress(OSError):
                    (self.dir / part.path).unlink()
            raise
        self._sweep(new_state, removed)
        return CommitResult(
            new_rows=table.num_rows - replaced_rows,
            replaced_rows=replaced_rows,
            rows_total=new_state.rows,
        )

    def _conform(self, table: pa.Table) -> pa.Table:
        if not isinstance(table, pa.Table):
            raise TypeError(f"commit() needs a pyarrow.Table, not {type(table).__name__}")
        missing = {"id", "time"} - set(table.column_names)
        if missing:
            raise ValueError(f"the table has no {', '.join(sorted(missing))} column")
        if self._schema is not None:
            try:
                table = table.select(self._schema.names).cast(self._schema)
            except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
                raise ValueError(f"the table does not fit the {self.stream} schema: {exc}") from exc
        for name in ("id", "time"):
            if table[name].null_count:
                raise ValueError(f"the table has rows without {name!r}")
        if not pa.types.is_timestamp(table.schema.field("time").type):
            raise ValueError("the table's time column is not a timestamp")
        metadata = {"zdevents_schema_version": str(SCHEMA_VERSION), "stream": self.stream}
        return table.replace_schema_metadata(metadata)

    def _write_part(self, table: pa.Table | Iterator[pa.Table], month: str) -> PartFile:
        """Write one part file from a table, or from a stream of time-ordered tables."""
        folder = self.dir / f"month={month}"
        name = f"part-{uuid.uuid4().hex}.parquet"
        tmp = folder / f".{name}.tmp"
        whole = table if isinstance(table, pa.Table) else None
        tables = iter([table]) if whole is not None else table
        rows, lo, hi = 0, None, None
        try:
            if not folder.exists():
                folder.mkdir(parents=True, exist_ok=True)
                _fsync_dir(self.dir)
            with open(tmp, "w+b") as fh:
                writer = None
                try:
                    for piece in tables:
                        if writer is None:
                            writer = pq.ParquetWriter(
                                fh,
                                piece.schema,
                                compression="zstd",
                                use_dictionary=_dictionary_columns(piece.schema),
                                write_page_checksum=True,
                            )
                        if not piece.num_rows:
                            continue
                        writer.write_table(piece, row_group_size=ROW_GROUP_ROWS)
                        first, last = _time_range(piece)
                        rows += piece.num_rows
                        lo = first if lo is None else min(lo, first)
                        hi = last if hi is None else max(hi, last)
                finally:
                    if writer is not None:
                        writer.close()
                if writer is None or not rows:
                    raise ValueError("a part file needs at least one row")
                fh.flush()
                os.fsync(fh.fileno())
                size, footer_crc32 = _footer_crc32(fh)
            os.replace(tmp, folder / name)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, OSError):
                raise CacheError(
                    _write_error(exc, f"a cache file in {folder}"), path=str(folder)
                ) from exc
            raise
        _fsync_dir(folder)
        path = f"month={month}/{name}"
        self._written = (path, whole)
        return PartFile(path, month, rows, lo, hi, size, footer_crc32)

    def _recent_part(self, part: PartFile, columns: list[str] | None = None) -> pa.Table:
        """:meth:`_read_part`, served from memory when this object just wrote the file."""
        path, table = self._written or (None, None)
        if path == part.path and table is not None:
            return table if columns is None else table.select(columns)
        return self._read_part(part, columns)

    def _read_part(self, part: PartFile, columns: list[str] | None = None) -> pa.Table:
        path = self.dir / part.path
        try:
            self._verify_part(part)
            return pq.read_table(
                path, columns=columns, schema=self._schema, page_checksum_verification=True
            )
        except FileNotFoundError:
            raise self._part_error(part, "is missing") from None
        except (OSError, pa.ArrowException) as exc:
            raise self._part_error(part, f"is damaged ({exc})") from None

    def _verify_part(self, part: PartFile) -> None:
        """Check the file's size and footer against the manifest (FileNotFoundError if gone)."""
        if part.size is None or part.footer_crc32 is None:
            return  # written before the manifest recorded them: page checksums only
        try:
            with open(self.dir / part.path, "rb") as fh:
                found = _footer_crc32(fh)
        except ValueError as exc:
            raise self._part_error(part, f"is damaged ({exc})") from None
        if found != (part.size, part.footer_crc32):
            raise self._part_error(
                part,
                f"is damaged: {found[0]} bytes and footer CRC32 {found[1]:08x}, but state.json "
                f"recorded {part.size} bytes and {part.footer_crc32:08x}",
            )

    def _part_error(self, part: PartFile, problem: str) -> CacheError:
        path = self.dir / part.path
        return CacheError(
            f"the cache file {path} (month {part.month}) {problem}. Refetch that month: "
            f"zdevents fetch --stream {self.stream} --since {part.month}-01 --force",
            path=str(path),
        )

    def _compact(
        self, files: list[PartFile], month: str
    ) -> tuple[list[PartFile], list[PartFile], list[PartFile]]:
        """Merge runs of small parts of ``month`` when it has too many of them.

        A part of at least ``SMALL_PART_ROWS`` rows (what one batch of a bulk fetch makes) is
        never rewritten, so a bulk fetch writes each row once. Small parts (incremental
        fetches, month edges, the end of a fetch) are merged when the month holds more than
        ``MAX_PARTS_PER_MONTH`` of them: each run of time-adjacent small parts becomes files
        of up to ``COMPACT_ROWS`` rows, written as a stream (one part in memory at a time).
        """
        parts = sorted((p for p in files if p.month == month), key=lambda p: (p.min_time, p.path))
        if sum(p.rows < SMALL_PART_ROWS for p in parts) <= MAX_PARTS_PER_MONTH:
            return files, [], []
        groups: list[list[PartFile]] = [[]]
        for part in parts:
            if part.rows >= SMALL_PART_ROWS:
                groups.append([])  # a full part ends a run of small ones
                continue
            if groups[-1] and sum(p.rows for p in groups[-1]) + part.rows > COMPACT_ROWS:
                groups.append([])
            groups[-1].append(part)
        merged_in: list[PartFile] = []
        merged_out: list[PartFile] = []
        for group in groups:
            if len(group) < 2:
                continue
            if any(b.min_time < a.max_time for a, b in zip(group, group[1:], strict=False)):
                # parts that really overlap (a backfill): merge them in memory
                table = pa.concat_tables([self._recent_part(p) for p in group])
                table = table.sort_by(_ORDER)
                made = self._write_part(self._conform(table), month)
            else:
                made = self._write_part(self._in_order(group), month)
            merged_out.append(made)
            merged_in += group
        if merged_in:
            log.debug("compacted %d parts of %s into %d", len(merged_in), month, len(merged_out))
        kept = [p for p in files if p not in merged_in]
        return kept + merged_out, merged_in, merged_out

    def _in_order(self, group: list[PartFile]) -> Iterator[pa.Table]:
        """The rows of time-adjacent parts, one part at a time, in (time, id) order.

        Consecutive parts may share their boundary second (Zendesk repeats it at page
        boundaries); those few rows are held back and merged with the next part.
        """
        held: pa.Table | None = None
        for part in group:
            table = self._conform(self._recent_part(part))
            if held is None:
                held = table
                continue
            held_ms = _time_ms(held)
            if _time_ms(table.slice(0, 1))[0] == held_ms[-1]:
                cut = int(np.searchsorted(held_ms, held_ms[-1], side="left"))
                yield held.slice(0, cut)
                table = pa.concat_tables([held.slice(cut), table])
                if not _is_time_ordered(table):
                    table = table.sort_by(_ORDER)
            else:
                yield held
            held = table
        if held is not None:
            yield held

    def _sweep(self, state: CacheState, removed: list[PartFile]) -> None:
        """Delete files the snapshot no longer lists, plus orphans of crashed commits.

        Only names zdevents writes are touched (``month=YYYY-MM/part-<hex>.parquet``, their
        temp files, ``.state.json.<hex>.tmp``): anything else in the folder is left alone.
        """
        listed = {p.path for p in state.files}
        for part in removed:
            if part.path not in listed:
                with contextlib.suppress(OSError):
                    (self.dir / part.path).unlink()
        for path in self._own_files(listed):
            log.debug("removing orphan %s", path)
            with contextlib.suppress(OSError):
                path.unlink()
        for folder in self._month_dirs():
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds when empty

    def _month_dirs(self) -> list[Path]:
        try:
            return [p for p in self.dir.iterdir() if _MONTH_DIR.match(p.name) and p.is_dir()]
        except OSError:
            return []

    def _own_files(self, keep: set[str]) -> list[Path]:
        """Files with names zdevents writes (parts, temp files) that ``keep`` does not list."""
        found = []
        with contextlib.suppress(OSError):
            found += [p for p in self.dir.iterdir() if _STATE_TMP_NAME.match(p.name)]
        for folder in self._month_dirs():
            for path in folder.iterdir():
                own = _PART_NAME.match(path.name) or _PART_TMP_NAME.match(path.name)
                if own and f"{folder.name}/{path.name}" not in keep and path.is_file():
                    found.append(path)
        return found

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
            coverage = _subtract(coverage, (part.min_time // 1000, part.max_time // 1000 + 1))
        self._write_state(
            replace(state, files=files, rows=sum(p.rows for p in files), coverage=coverage)
        )
        self._sweep(self.state(), damaged)
        spans = ", ".join(
            f"{_iso(p.min_time // 1000)}..{_iso(p.max_time // 1000 + 1)}" for p in damaged
        )
        log.warning(
            "dropped %d damaged cache files; %s no longer cached until fetched again",
            len(damaged),
            spans,
        )
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
        found: list[tuple[float, PartFile, pa.Table]] = []  # (mtime, part, id+time)
        skipped: list[str] = []
        for path in self._part_paths():
            relative = f"{path.parent.name}/{path.name}"
            month = path.parent.name.removeprefix("month=")
            try:
                with open(path, "rb") as fh:
                    size, crc = _footer_crc32(fh)
                metadata = pq.read_schema(path).metadata or {}
                if metadata.get(b"stream", self.stream.encode()) != self.stream.encode():
                    raise ValueError("a file of another stream")
                table = self._conform(
                    pq.read_table(path, schema=self._schema, page_checksum_verification=True)
                )
                if not table.num_rows:
                    raise ValueError("no rows")
                lo, hi = _time_range(table)
                months = {m for m, _ in _split_by_month(table.select(["time"]).sort_by("time"))}
                if months != {month}:
                    raise ValueError(f"rows of {', '.join(sorted(months))} in month={month}")
                mtime = path.stat().st_mtime
            except (OSError, ValueError, pa.ArrowException) as exc:
                log.warning("rebuild: leaving %s unlisted: %s", path, exc)
                skipped.append(relative)
                continue
            part = PartFile(relative, month, table.num_rows, lo, hi, size, crc)
            found.append((mtime, part, table.select(["id", "time"])))
            del table
        found.sort(key=lambda item: (item[0], item[1].path))
        seen: set[int] = set()
        files: list[PartFile] = []
        for _, part, keys in reversed(found):  # newest first: its copy of an id wins
            ids = keys["id"].to_numpy()
            stale = np.isin(ids, np.fromiter(seen, dtype=ids.dtype, count=len(seen)))
            seen.update(ids.tolist())
            if not stale.any():
                files.append(part)
            elif stale.all():
                skipped.append(part.path)
            else:
                kept = self._read_part(part).filter(pa.array(~stale))
                files.append(self._write_part(self._conform(kept), part.month))
                skipped.append(part.path)
        files.sort(key=lambda p: (p.min_time, p.max_time, p.path))
        coverage: tuple[Interval, ...] = ()
        cursor = None
        if files:
            first = min(p.min_time for p in files) // 1000
            cursor = max(p.max_time for p in files) // 1000
            coverage = _merge([(first, cursor)])
        state = CacheState(
            schema_version=SCHEMA_VERSION,
            stream=self.stream,
            cursor=cursor,
            covered_since=coverage[0][0] if coverage else None,
            covered_until=cursor,
            rows=sum(p.rows for p in files),
            files=tuple(files),
            updated_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            coverage=coverage,
            horizon=cursor,
        )
        self._write_state(state)
        log.warning(
            "rebuilt %s from %d part files (%d rows); %d left unlisted",
            self.state_path,
            len(files),
            state.rows,
            len(skipped),
        )
        return RebuildResult(len(files), state.rows, tuple(sorted(skipped)), coverage)

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

    def parts(
        self, since: object = None, until: object = None, *, state: CacheState | None = None
    ) -> list[PartFile]:
        """The listed parts that may hold rows in ``[since, until)``, ordered by time.

        Parameters
        ----------
        since, until : pandas.Timestamp, datetime, str or Unix seconds, optional
            Naive values are UTC.
        state : CacheState, optional
            The snapshot to select from (default: read ``state.json`` now). Pass the one you
            already hold to keep several reads on one snapshot.

        Examples
        --------
        >>> import tempfile
        >>> Cache(Path(tempfile.mkdtemp()), "acme", "metric_events").parts(since="2024-01-01")
        []
        """
        state = self.state() if state is None else state
        lo, hi = _to_ms(since, "since"), _to_ms(until, "until")
        return [
            p
            for p in state.files
            if (lo is None or p.max_time >= lo) and (hi is None or p.min_time < hi)
        ]

    def uncovered(
        self, since: object = None, until: object = None, *, state: CacheState | None = None
    ) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """The parts of ``[since, until)`` that were never fetched (or were dropped as damaged).

        Looked at up to the cursor (what lies beyond it is simply not fetched yet: see
        :attr:`CacheState.as_of`); ``since`` defaults to the earliest time ever covered.
        Empty for a cache that never recorded its coverage.

        Examples
        --------
        >>> import tempfile
        >>> Cache(Path(tempfile.mkdtemp()), "acme", "metric_events").uncovered("2024-01-01")
        []
        """
        state = self.state() if state is None else state
        if not state.coverage or state.cursor is None:
            return []
        lo_ms, hi_ms = _to_ms(since, "since"), _to_ms(until, "until")
        lo = state.covered_since if lo_ms is None else lo_ms // 1000
        hi = state.cursor if hi_ms is None else min(-(-hi_ms // 1000), state.cursor)
        if lo is None or lo >= hi:
            return []
        return [
            (pd.Timestamp(a, unit="s", tz="UTC"), pd.Timestamp(b, unit="s", tz="UTC"))
            for a, b in state.gaps(lo, hi)
        ]

    def warn_uncovered(
        self,
        since: object = None,
        until: object = None,
        *,
        state: CacheState | None = None,
        stacklevel: int = 2,
    ) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """Warn (once per call) when :meth:`uncovered` finds a part of the range not cached.

        Returns what :meth:`uncovered` found.
        """
        gaps = self.uncovered(since, until, state=state)
        if gaps:
            fmt = "%Y-%m-%d %H:%M:%S"
            spans = ", ".join(f"{a.strftime(fmt)}..{b.strftime(fmt)}" for a, b in gaps[:3])
            more = f" and {len(gaps) - 3} more" if len(gaps) > 3 else ""
            warnings.warn(
                f"the {self.stream} cache in {self.dir} does not hold {spans} UTC{more} (never "
                "fetched, or dropped as damaged): events of that time are missing from this "
                f"read. `zdevents fetch --stream {self.stream}` fetches them (so does a "
                'refresh="auto" read with credentials)',
                stacklevel=stacklevel + 1,
            )
        return gaps

    def read(
        self,
        columns: list[str] | None = None,
        since: object = None,
        until: object = None,
    ) -> pa.Table:
        """Read the cached rows with ``since <= time < until``, ordered by time.

        Parameters
        ----------
        columns : list of str, optional
            Project to these columns (default: all).
        since, until : pandas.Timestamp, datetime, str or Unix seconds, optional
            Half-open range; naive values are UTC.

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
        lo, hi = _to_ms(since, "since"), _to_ms(until, "until")
        previous: tuple[PartFile, ...] | None = None
        while True:
            state = self.state()
            parts = self.parts(since, until, state=state)
            try:
                return self._read_parts(parts, columns, lo, hi)
            except _Vanished as gone:
                if previous is not None and previous == state.files:
                    raise self._part_error(gone.part, "is listed but missing") from None
                previous = state.files  # a concurrent commit replaced it: read the new snapshot

    def _read_parts(
        self, parts: list[PartFile], columns: list[str] | None, lo: int | None, hi: int | None
    ) -> pa.Table:
        schema = self._schema
        if not parts:
            base = schema.empty_table() if schema is not None else pa.table({})
            return base.select(columns) if columns is not None else base
        overlapping = any(b.min_time < a.max_time for a, b in zip(parts, parts[1:], strict=False))
        wanted = columns
        if overlapping and columns is not None:
            wanted = list(dict.fromkeys([*columns, "time", "id"]))
        for part in parts:
            try:
                self._verify_part(part)
            except FileNotFoundError:
                raise _Vanished(part) from None
        paths = [str(self.dir / p.path) for p in parts]
        # a bound every listed file lies inside needs no row filter (a whole month, say)
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
        try:
            dataset = ds.dataset(paths, format=_PARQUET_FORMAT, schema=schema)
            table = dataset.to_table(columns=wanted, filter=condition)
        except (OSError, pa.ArrowException) as exc:
            self._diagnose(parts, exc)
            raise
        if overlapping:
            table = table.sort_by(_ORDER)
            if columns is not None:
                table = table.select(columns)
        return table.replace_schema_metadata(None)

    def _diagnose(self, parts: list[PartFile], exc: BaseException) -> None:
        for part in parts:
            if not (self.dir / part.path).exists():
                raise _Vanished(part) from None
        for part in parts:
            self._read_part(part)  # raises CacheError naming the damaged file
        raise CacheError(f"could not read the cache in {self.dir}: {exc}", path=str(self.dir))

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
            for path in self._own_files(set()):
                with contextlib.suppress(OSError):
                    path.unlink()
            rejected = self.dir / "rejected"
            if rejected.is_dir():
                for path in rejected.iterdir():
                    if _REJECTED_NAME.match(path.name):
                        with contextlib.suppress(OSError):
                            path.unlink()
            for folder in [*self._month_dirs(), rejected]:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only when empty: files zdevents did not write stay


class _Vanished(Exception):
    def __init__(self, part: PartFile) -> None:
        super().__init__(part.path)
        self.part = part


_PARQUET_FORMAT = ds.ParquetFileFormat(
    default_fragment_scan_options=ds.ParquetFragmentScanOptions(page_checksum_verification=True)
)


def _footer_crc32(fh) -> tuple[int, int]:
    """(size, CRC32 of the footer) of an open Parquet file; ValueError when it has none."""
    size = fh.seek(0, os.SEEK_END)
    if size < 12:
        raise ValueError(f"only {size} bytes, too short for Parquet")
    fh.seek(size - 8)
    tail = fh.read(8)
    length = int.from_bytes(tail[:4], "little")
    if tail[4:] != b"PAR1" or length + 12 > size:
        raise ValueError("no Parquet footer at its end (truncated?)")
    fh.seek(size - 8 - length)
    return size, zlib.crc32(fh.read(length + 8))


def _write_error(exc: OSError, what: str) -> str:
    """The message of a failed cache write; a full disk says so and names the folder."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        full = "the disk is full" if exc.errno == errno.ENOSPC else "the disk quota is exceeded"
        return (
            f"could not write {what}: {full} ({reason}). The cache and its cursor are "
            "unchanged; free some space on that disk (or point ZDEVENTS_DATA_DIR elsewhere) "
            "and run the fetch again"
        )
    return f"could not write {what} ({reason}); the cache and its cursor are unchanged"


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _now() -> int:
    return int(time.time())


def _covering(
    state: CacheState,
    cursor: int | None,
    covered_since: int | None,
    files: tuple[PartFile, ...],
    *,
    after_cursor: str | None = None,
    support_type_scope: str | None = None,
) -> CacheState:
    """``state`` with ``files``, the new cursor and what the commit covers."""
    coverage, horizon, claim = state.coverage, state.horizon, None
    new_cursor, new_after = state.cursor, state.after_cursor
    if cursor is not None:
        now = _now()
        end = min(int(cursor), now)  # an end_time in the future covers nothing beyond now
        start = covered_since if covered_since is not None else state.cursor
        if start is not None and start < end:
            claim = (int(start), end)
            coverage = _merge([*coverage, claim])
        if state.cursor is None or end >= state.cursor:  # the commit reaches the cursor
            new_after = after_cursor
        new_cursor = end if state.cursor is None else max(state.cursor, end)
        horizon = _advance_horizon(horizon, coverage, claim)
        if horizon is None and not coverage:
            horizon = new_cursor  # commits that never said where they began: as before
        horizon = None if horizon is None else min(horizon, now)
    reached = [x for x in (state.covered_until, new_cursor) if x is not None]
    return replace(
        state,
        schema_version=SCHEMA_VERSION,
        cursor=new_cursor,
        covered_since=min(x for x in (coverage[0][0], state.covered_since) if x is not None)
        if coverage
        else state.covered_since,
        covered_until=max(reached) if reached else None,
        rows=sum(p.rows for p in files),
        files=files,
        updated_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        coverage=coverage,
        horizon=horizon,
        support_type_scope=support_type_scope or state.support_type_scope,
        after_cursor=new_after,
    )


def _coverage_from_json(value: object) -> tuple[Interval, ...]:
    if not isinstance(value, list):
        raise TypeError(f"coverage must be a list, not {value!r}")
    pairs = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise ValueError(f"bad coverage interval {item!r}")
        a, b = (_opt_int(x) for x in item)
        if a is None or b is None or a >= b:
            raise ValueError(f"bad coverage interval {item!r}")
        pairs.append((a, b))
    return _merge(pairs)


def _opt_int(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _dedupe_keep_last(table: pa.Table) -> pa.Table:
    """Keep the last row of each ``id`` (hash-based, order kept)."""
    if table.num_rows < 2:
        return table
    repeated = pd.Index(table["id"].to_numpy()).duplicated(keep="last")
    if not repeated.any():
        return table
    return table.take(pa.array(np.flatnonzero(~repeated)))  # also joins the chunks


def _time_ms(table: pa.Table) -> np.ndarray:
    return table["time"].cast(pa.timestamp("ms", "UTC")).cast(pa.int64()).to_numpy()


def _is_time_ordered(table: pa.Table) -> bool:
    """True when the rows are in (time, id) order already."""
    if table.num_rows < 2:
        return True
    ms = _time_ms(table)
    ids = table["id"].to_numpy()
    step = np.diff(ms)
    return bool(np.all((step > 0) | ((step == 0) & (np.diff(ids) > 0))))


def _time_range(table: pa.Table) -> tuple[int, int]:
    ms = _time_ms(table)
    return int(ms.min()), int(ms.max())


def _split_by_month(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """Consecutive slices of a time-sorted table, one per UTC month."""
    if table.num_rows == 0:
        return
    months = _time_ms(table).astype("datetime64[ms]").astype("datetime64[M]")
    edges = [0, *(np.flatnonzero(months[1:] != months[:-1]) + 1).tolist(), len(months)]
    for start, stop in zip(edges, edges[1:], strict=False):
        yield str(months[start]), table.slice(start, stop - start)


def _same_rows(old: pa.Table, new: pa.Table) -> bool:
    """True when two small tables hold the same rows (any order, dictionaries decoded)."""
    if old.num_rows != new.num_rows:
        return False

    def plain(table: pa.Table) -> pa.Table:
        table = table.sort_by("id").replace_schema_metadata(None)
        for i, field in enumerate(table.schema):
            if pa.types.is_dictionary(field.type):
                table = table.set_column(i, field.name, table[i].cast(field.type.value_type))
        return table.combine_chunks()

    return plain(old).equals(plain(new))


def _dictionary_columns(schema: pa.Schema) -> list[str] | bool:
    """Parquet dictionary encoding only where values repeat (not ids and times): smaller, faster."""
    if any(pa.types.is_nested(f.type) for f in schema):
        return True
    return [f.name for f in schema if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type)]

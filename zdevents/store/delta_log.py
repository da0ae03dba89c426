"""The log of a Delta table as zdevents uses it: versions, commits and the state they carry.

Every zdevents commit records the cache state (cursor, coverage, horizon, ticket-events
scope, cursor-mode position, the footer CRC32 of each data file) as JSON in the commit's
``zdevents`` metadata - never a setting or a credential. :class:`DeltaLog` opens a version,
reads the state it carries (:class:`DeltaState`) and commits file actions with a new state.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import sys
import time
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs

from ..errors import CacheError, CacheLocked
from .manifest import SCHEMA_VERSION, CacheState, PartFile, coverage_from_json, opt_int, write_error
from .ranges import now_iso

__all__ = [
    "MALLOC_ARENAS",
    "META_KEY",
    "DeltaLog",
    "DeltaState",
    "delta_type",
    "few_malloc_arenas",
    "files_of",
    "meta_json",
    "short",
    "to_delta_types",
    "write_message",
]

META_KEY = "zdevents"
"""The key of the commit metadata that holds the cache state (a JSON text)."""

_STATE_FIELDS = (
    "cursor",
    "covered_since",
    "covered_until",
    "horizon",
    "support_type_scope",
    "after_cursor",
    "updated_at",
)


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


class DeltaLog:
    """Versions and commits of the table at ``uri`` (local path or object-store URL).

    Parameters
    ----------
    uri : str
    stream : str
    schema : pyarrow.Schema or None
        The stream's storage schema (None: a stream zdevents does not know, no table).
    """

    def __init__(self, uri: str, stream: str, schema: pa.Schema | None) -> None:
        self.uri = uri
        self.stream = stream
        self.schema = schema
        self._fs: tuple[pafs.FileSystem, str] | None = None

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """The table's pyarrow file system and its root path on it (opened once)."""
        if self._fs is None:
            try:
                self._fs = _quick_puts(*pafs.FileSystem.from_uri(self.uri))
            except (OSError, pa.ArrowException, ValueError) as exc:
                raise CacheError(
                    f"cannot open {self.uri}: {short(exc)}; check ZDEVENTS_DATA_DIR and the "
                    "object store's environment variables",
                    path=self.uri,
                ) from None
        return self._fs

    def delta_schema(self) -> pa.Schema:
        """The table schema: the storage schema in Delta's types, plus the ``month`` column."""
        if self.schema is None:
            raise CacheError(f"a Delta table needs a known stream, not {self.stream!r}")
        fields = [pa.field(f.name, delta_type(f.type), f.nullable) for f in self.schema]
        return pa.schema([*fields, pa.field("month", pa.string(), False)])

    def table(self, version: int | None = None, as_of_commit: object = None) -> Any:
        """The DeltaTable at a version (latest by default); None when there is no table."""
        few_malloc_arenas()
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
                    f"the table {self.uri} has no version {version}: {short(exc)}",
                    path=self.uri,
                ) from None
            raise CacheError(
                f"cannot read the table {self.uri}: {short(exc)}", path=self.uri
            ) from None
        if as_of_commit is not None:
            at = self._version_at(table, as_of_commit)
            if at != table.version():
                table = DeltaTable(self.uri, version=at)
        return table

    def _version_at(self, table: Any, as_of_commit: object) -> int:
        # the commit times recorded in the log (object stores' file times have 1 s steps)
        when = pd.Timestamp(as_of_commit)
        when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
        limit = when.value // 1_000_000
        at = table.version()
        while at >= 0:
            stamp = (self.commit_info(at) or {}).get("timestamp")
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
        return at

    def commit_info(self, version: int) -> dict | None:
        """The ``commitInfo`` of one log entry (None: gone, or written without one)."""
        fs, root = self.filesystem()
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

    def commit_metadata(self, version: int) -> dict | None:
        """The ``zdevents`` metadata of one commit (None: a commit without it, or gone)."""
        info = self.commit_info(version)
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

    def create(self) -> int:
        """Create the (empty) table if there is none; return the latest version."""
        return self.open().version()

    def open(self) -> Any:
        """The DeltaTable at the latest version, created (empty) first if there is none."""
        few_malloc_arenas()
        from deltalake import CommitProperties, DeltaTable

        table = self.table()
        if table is not None:
            return table
        meta = meta_json(CacheState(schema_version=SCHEMA_VERSION, stream=self.stream), {})
        try:
            created = DeltaTable.create(
                self.uri,
                self.delta_schema(),
                mode="ignore",
                partition_by=["month"],
                name=f"zdevents_{self.stream}",
                commit_properties=CommitProperties(custom_metadata={META_KEY: meta}),
            )
        except Exception as exc:
            raise CacheError(write_message(exc, self.uri), path=self.uri) from None
        return created

    def state_of(self, table: Any) -> DeltaState:
        """The state a table version carries (the latest zdevents metadata up to it)."""
        version = table.version()
        files = files_of(table)
        meta = None
        at = version
        while at >= 0 and meta is None:
            meta = self.commit_metadata(at)
            at -= 1
        committed = self.commit_metadata(version) if meta is not None else None
        stamp = (committed or meta or {}).get("_timestamp")
        if meta is None:
            if files:
                raise self.state_error(
                    f"holds {len(files)} data file(s) but no commit of it records zdevents' state"
                )
            meta = {}
        return self._state(meta, files, version, stamp)

    def committed_state(self, files: tuple[PartFile, ...], version: int) -> DeltaState:
        """The state of ``version``, which this writer just committed with ``files`` live.

        What :meth:`state_of` gives for that version, without opening the table again: the
        files are the ones the commit left live, the rest is read from that one log entry.
        """
        meta = self.commit_metadata(version)
        if meta is None:  # not expected: the entry was just written with the metadata
            return self.state_of(self.table(version))
        return self._state(meta, files, version, meta.get("_timestamp"))

    def _state(
        self, meta: dict, files: tuple[PartFile, ...], version: int, stamp: object
    ) -> DeltaState:
        try:
            coverage = coverage_from_json(meta.get("coverage", []))
            values = {k: meta.get(k) for k in _STATE_FIELDS}
            for key in ("cursor", "covered_since", "covered_until", "horizon"):
                values[key] = opt_int(values[key])
            footers = meta.get("footers") or {}
            if not isinstance(footers, dict):
                raise TypeError("footers must be an object")
        except (TypeError, ValueError) as exc:
            raise self.state_error(f"records a damaged state ({exc})") from None
        live = {p.path for p in files}
        files = tuple(
            sorted(
                (
                    replace(p, footer_crc32=footers.get(p.path)) if p.path in footers else p
                    for p in files
                ),
                key=lambda p: (p.min_time, p.max_time, p.path),
            )
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

    def state_error(self, problem: str) -> CacheError:
        """The error of a table whose state cannot be read, with the rebuild command."""
        return CacheError(
            f"the table {self.uri} {problem}. The {self.stream} cache cannot be read until its "
            f"state is rebuilt from its data files: zdevents cache rebuild --stream "
            f"{self.stream} (no file is deleted; then `zdevents fetch` fetches what the files "
            "do not hold)",
            path=self.uri,
        )

    def transact(
        self,
        table: Any,
        *,
        adds: list[PartFile],
        removes: list[PartFile],
        state: CacheState,
        footers: dict,
    ) -> int:
        """Commit file actions and ``state`` (with the ``footers`` of live files) as one version.

        Returns the version committed: the one after ``table``'s (no retry on a conflict).

        Raises
        ------
        CacheLocked
            When another writer committed after ``table``'s version (nothing written).
        CacheError
            When the commit cannot be written.
        """
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
            table.create_write_transaction(
                actions,
                "append",
                self.delta_schema(),
                partition_by=["month"],
                commit_properties=CommitProperties(
                    custom_metadata={META_KEY: meta_json(state, footers)}, max_commit_retries=0
                ),
            )
        except CommitFailedError as exc:
            raise CacheLocked(
                f"another writer committed to {self.uri} while this fetch ran (table version "
                f"{table.version() + 1} exists): nothing of this commit was written. Run one "
                f"fetch of {self.stream} at a time; run it again to continue ({short(exc)})",
                path=self.uri,
            ) from None
        except Exception as exc:
            raise CacheError(write_message(exc, self.uri), path=self.uri) from None
        return table.version() + 1


MALLOC_ARENAS = 2
"""The malloc arenas :func:`few_malloc_arenas` allows (glibc's default: 8 per core)."""
_arenas_set: list[bool] = []


def few_malloc_arenas() -> bool:
    """Limit glibc's malloc to ``MALLOC_ARENAS`` arenas, once, before delta-rs starts threads.

    delta-rs runs its I/O on a pool of threads that grows with the work (16 threads once a
    table is open, 50 to 70 after a 5M-event ingest), and glibc gives each thread its own
    arena, up to 8 per core, each keeping the memory freed in it: the peak RSS of an ingest
    grew with the events (540 MB at 5M, 1.15x the 1M figure; 393 MB and 1.07x with two). The limit is process-wide and applies to arenas created after it,
    so it is set before the first table is opened. Only on Linux with glibc, and never when
    ``MALLOC_ARENA_MAX`` is set (glibc applies the user's own limit). Returns True when it
    set the limit now.
    """
    if _arenas_set or not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    _arenas_set.append(True)
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_arena_max = -8  # <malloc.h>
        return bool(libc.mallopt(m_arena_max, MALLOC_ARENAS))
    except (OSError, AttributeError):  # not glibc (musl...)
        return False


def files_of(table: Any) -> tuple[PartFile, ...]:
    """The data files of a table version (from its add actions), ordered by time."""
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


def meta_json(state: CacheState, footers: dict) -> str:
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
            "updated_at": state.updated_at or now_iso(),
            "footers": footers,
        }
    )


def delta_type(kind: pa.DataType) -> pa.DataType:
    """Arrow types as Delta stores them: strings for dictionaries, microsecond timestamps."""
    if pa.types.is_dictionary(kind):
        return kind.value_type
    if pa.types.is_timestamp(kind):
        return pa.timestamp("us", "UTC")
    if pa.types.is_list(kind):
        return pa.list_(pa.field(kind.value_field.name, delta_type(kind.value_type)))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, delta_type(f.type), f.nullable) for f in kind])
    return kind


def to_delta_types(table: pa.Table) -> pa.Table:
    """``table`` cast to the types a Delta table stores (see :func:`delta_type`)."""
    schema = pa.schema([pa.field(f.name, delta_type(f.type), f.nullable) for f in table.schema])
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


def _quick_puts(fs: pafs.FileSystem, root: str) -> tuple[pafs.FileSystem, str]:
    """S3: the same file system, but a small file is written with one PUT, not a multipart
    upload (three requests); an error then shows when the file is closed, still inside the
    write (pyarrow's ``allow_delayed_open``). Credentials stay the store's own chain."""
    if isinstance(fs, pafs.S3FileSystem):
        _, (options, *_) = fs.__reduce__()
        if isinstance(options, dict) and not options.get("allow_delayed_open"):
            fs = pafs.S3FileSystem(**{**options, "allow_delayed_open": True})
    return fs, root


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


def short(exc: BaseException) -> str:
    """The first line of an error, without the tracebacks delta-rs appends."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else exc.__class__.__name__


def write_message(exc: BaseException, what: str) -> str:
    """The message of a failed table write; a full disk says so (see ``write_error``)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return write_error(exc, what)
    text = str(exc)
    if "No space left" in text or "ENOSPC" in text:
        return write_error(OSError(errno.ENOSPC, "No space left on device"), what)
    return f"could not write {what} ({short(exc)}); the table and its cursor are unchanged"

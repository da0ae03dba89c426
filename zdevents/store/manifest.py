"""The manifest of a Parquet cache: :class:`CacheState` and its ``state.json``, with checksums.

``state.json`` is the snapshot of one stream's cache: the cursor, the coverage, the horizon
and the list of part files with each file's size and footer CRC32. It is written atomically
(a temp file, fsync, rename, fsync of the folder); :func:`read_state` checks it whole.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from dataclasses import field as dataclass_field
from pathlib import Path

import pandas as pd

from ..errors import CacheError

__all__ = [
    "SCHEMA_VERSION",
    "STATE",
    "CacheState",
    "CommitResult",
    "Interval",
    "PartFile",
    "RebuildResult",
    "coverage_from_json",
    "footer_crc32",
    "fsync_dir",
    "merge",
    "opt_int",
    "read_state",
    "state_error",
    "write_error",
    "write_state",
]

SCHEMA_VERSION = 1
STATE = "state.json"
PART_PATH = re.compile(r"^month=(\d{4}-\d{2})/part-[0-9a-f]{32}\.parquet$")
"""A part file's path relative to the stream folder."""


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


def merge(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """Sorted, disjoint intervals; touching ones are joined, empty ones dropped."""
    out: list[Interval] = []
    for a, b in sorted((int(a), int(b)) for a, b in intervals if a < b):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return tuple(out)


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
    state : CacheState or None
        The state this commit wrote (a :class:`~zdevents.store.delta_log.DeltaState` for a
        Delta table): what :meth:`Cache.state` gives right after it.
    """

    new_rows: int
    replaced_rows: int
    rows_total: int
    state: CacheState | None = dataclass_field(default=None, repr=False, compare=False)


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


def read_state(
    state_path: Path, stream: str, found_parts: Callable[[], list[Path]] | None = None
) -> CacheState:
    """Read and check ``state.json`` (no file and no part file: an empty state).

    ``found_parts()`` lists the part files on disk (called only when the file is missing:
    part files without a state mean the state was lost, an error).

    Raises
    ------
    CacheError
        When the file is unreadable, truncated, of an unknown schema version or of another
        stream, or missing while part files are present; the message gives the rebuild
        command.
    """
    try:
        raw = state_path.read_bytes()
    except FileNotFoundError:
        found = found_parts() if found_parts is not None else []
        if found:
            raise state_error(
                state_path,
                stream,
                f"is missing, but {len(found)} data file(s) of this cache are present",
            ) from None
        return CacheState(schema_version=SCHEMA_VERSION, stream=stream)
    except OSError as exc:
        raise state_error(state_path, stream, f"cannot be read ({exc.strerror})") from None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise state_error(state_path, stream, "is damaged (not valid JSON; truncated?)") from None
    if not isinstance(data, dict):
        raise state_error(state_path, stream, "is damaged (not a JSON object)")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise state_error(
            state_path,
            stream,
            f"has schema version {version!r}, which this zdevents (version "
            f"{SCHEMA_VERSION}) does not read",
        )
    try:
        files = tuple(_part_from_json(item) for item in data["files"])
        cursor = opt_int(data.get("cursor"))
        covered_since = opt_int(data.get("covered_since"))
        if "coverage" in data:
            coverage = coverage_from_json(data["coverage"])
            horizon = opt_int(data.get("horizon"))
        else:  # written before coverage was kept: one interval up to the cursor
            legacy = [(covered_since, cursor)] if None not in (covered_since, cursor) else []
            coverage = merge(legacy)
            horizon = cursor
        known = {f.name for f in fields(CacheState)}
        state = CacheState(
            schema_version=version,
            stream=str(data["stream"]),
            cursor=cursor,
            covered_since=covered_since,
            covered_until=opt_int(data.get("covered_until")),
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
        problem = f"is damaged ({exc.__class__.__name__}: {exc})"
        raise state_error(state_path, stream, problem) from None
    if state.stream != stream:
        raise state_error(state_path, stream, f"belongs to stream {state.stream!r}, not {stream!r}")
    if state.rows != sum(p.rows for p in files):
        raise state_error(
            state_path,
            stream,
            f"is damaged (rows {state.rows} but its files hold {sum(p.rows for p in files)})",
        )
    return state


def write_state(state_path: Path, state: CacheState) -> None:
    """Replace ``state.json`` atomically (temp file, fsync, rename, fsync of the folder)."""
    payload = {**state.extra, **asdict(state)}
    del payload["extra"]
    payload["files"] = [asdict(p) for p in state.files]
    payload["coverage"] = [list(pair) for pair in state.coverage]
    text = json.dumps(payload, indent=1, sort_keys=False).encode()
    tmp = state_path.parent / f".{STATE}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, state_path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise CacheError(write_error(exc, str(state_path)), path=str(state_path)) from exc
    fsync_dir(state_path.parent)


def state_error(state_path: Path, stream: str, problem: str) -> CacheError:
    """The error of an unreadable state file, with the command that rebuilds it."""
    return CacheError(
        f"the cache state file {state_path} {problem}. The {stream} cache cannot "
        f"be read until its state is rebuilt from its data files: zdevents cache rebuild "
        f"--stream {stream} (no file is deleted; then `zdevents fetch` fetches what "
        "the files do not hold)",
        path=str(state_path),
    )


def _part_from_json(item: dict) -> PartFile:
    path = item["path"]
    match = PART_PATH.match(path) if isinstance(path, str) else None
    if not match or match.group(1) != item["month"]:
        raise ValueError(f"bad file entry {path!r}")
    part = PartFile(
        path=path,
        month=item["month"],
        rows=int(item["rows"]),
        min_time=int(item["min_time"]),
        max_time=int(item["max_time"]),
        size=opt_int(item.get("size")),
        footer_crc32=opt_int(item.get("footer_crc32")),
    )
    if part.rows < 0 or part.min_time > part.max_time:
        raise ValueError(f"bad file entry {path!r}")
    return part


def coverage_from_json(value: object) -> tuple[Interval, ...]:
    """Coverage intervals as stored (a list of ``[start, end]``), checked and merged."""
    if not isinstance(value, list):
        raise TypeError(f"coverage must be a list, not {value!r}")
    pairs = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise ValueError(f"bad coverage interval {item!r}")
        a, b = (opt_int(x) for x in item)
        if a is None or b is None or a >= b:
            raise ValueError(f"bad coverage interval {item!r}")
        pairs.append((a, b))
    return merge(pairs)


def opt_int(value: object) -> int | None:
    """An integer field of the manifest, or None (TypeError for anything else)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def footer_crc32(fh) -> tuple[int, int]:
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


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (where directories can be fsynced)."""
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


def write_error(exc: OSError, what: str) -> str:
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

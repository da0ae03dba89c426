"""Repair and rebuild of a store: dropping damaged files, restoring a lost state from files.

:func:`find_damaged` is shared by both stores' ``repair``; :func:`scan_part_files` reads a
Parquet cache's part files for its ``rebuild`` (the state then comes from
:func:`zdevents.store.ranges.rebuilt_state`, as for a Delta table).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import CacheError
from .layout import part_paths
from .manifest import PartFile, footer_crc32
from .parts import PartFolder
from .ranges import dropped_spans
from .rows import split_by_month, time_range

__all__ = ["find_damaged", "log_dropped", "scan_part_files"]

log = logging.getLogger(__name__)


def find_damaged(parts: list[PartFile], read: Callable[[PartFile], pa.Table]) -> list[PartFile]:
    """The parts that cannot be read in full (``read`` raises CacheError)."""
    damaged = []
    for part in parts:
        try:
            read(part)
        except CacheError:
            damaged.append(part)
    return damaged


def log_dropped(damaged: list[PartFile]) -> None:
    """Warn that ``damaged`` parts were dropped and their time is no longer cached."""
    log.warning(
        "dropped %d damaged cache files; %s no longer cached until fetched again",
        len(damaged),
        dropped_spans(damaged),
    )


def scan_part_files(
    parts_dir: PartFolder, conform: Callable[[pa.Table], pa.Table]
) -> tuple[list[PartFile], list[str]]:
    """The readable part files on disk, each ``id`` kept in its most recently written file.

    Each file is read in full, one at a time; files that are damaged, of another stream or
    holding rows of another month are skipped. When several files hold the same ``id``
    (orphans of an interrupted commit), older files keep only their other rows, rewritten
    as new parts. Nothing is deleted.

    Returns
    -------
    (files, skipped)
        The parts to list, and the relative paths left unlisted.
    """
    stream = parts_dir.stream
    found: list[tuple[float, PartFile, pa.Table]] = []  # (mtime, part, id+time)
    skipped: list[str] = []
    for path in part_paths(parts_dir.folder):
        relative = f"{path.parent.name}/{path.name}"
        month = path.parent.name.removeprefix("month=")
        try:
            with open(path, "rb") as fh:
                size, crc = footer_crc32(fh)
            metadata = pq.read_schema(path).metadata or {}
            if metadata.get(b"stream", stream.encode()) != stream.encode():
                raise ValueError("a file of another stream")
            table = conform(
                pq.read_table(path, schema=parts_dir.schema, page_checksum_verification=True)
            )
            if not table.num_rows:
                raise ValueError("no rows")
            lo, hi = time_range(table)
            months = {m for m, _ in split_by_month(table.select(["time"]).sort_by("time"))}
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
            kept = parts_dir.read(part).filter(pa.array(~stale))
            files.append(parts_dir.write(conform(kept), part.month))
            skipped.append(part.path)
    return files, skipped

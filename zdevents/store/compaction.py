"""Compaction of a Parquet cache's small part files, and the sweep of files no longer listed.

A part of at least ``SMALL_PART_ROWS`` rows (what one batch of a bulk fetch makes) is never
rewritten, so a bulk fetch writes each row once. Small parts (incremental fetches, month
edges, the end of a fetch) are merged when a month holds more than ``MAX_PARTS_PER_MONTH``
of them. The sweep deletes only names zdevents writes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from .layout import REJECTED_NAME, month_dirs, own_files
from .manifest import CacheState, PartFile
from .parts import PartFolder
from .rows import ORDER, ROW_GROUP_ROWS, is_time_ordered, time_ms

__all__ = [
    "COMPACT_ROWS",
    "MAX_PARTS_PER_MONTH",
    "SMALL_PART_ROWS",
    "compact",
    "remove_own_files",
    "sweep",
]

log = logging.getLogger(__name__)

MAX_PARTS_PER_MONTH = 8
"""A month with more small parts than this is compacted."""
SMALL_PART_ROWS = ROW_GROUP_ROWS // 2
"""Parts with fewer rows are small: compaction merges them; larger ones are never rewritten."""
COMPACT_ROWS = 1_000_000
"""A compaction merges time-adjacent small parts into files of at most this many rows."""


def compact(
    parts_dir: PartFolder,
    files: list[PartFile],
    month: str,
    conform: Callable[[pa.Table], pa.Table],
) -> tuple[list[PartFile], list[PartFile], list[PartFile]]:
    """Merge runs of small parts of ``month`` when it has too many of them.

    Each run of time-adjacent small parts becomes files of up to ``COMPACT_ROWS`` rows,
    written as a stream (one part in memory at a time).

    Returns
    -------
    (files, merged_in, merged_out)
        The parts now listed, the ones merged away, the ones written.
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
            table = pa.concat_tables([parts_dir.recent(p) for p in group])
            made = parts_dir.write(conform(table.sort_by(ORDER)), month)
        else:
            made = parts_dir.write(_in_order(parts_dir, group, conform), month)
        merged_out.append(made)
        merged_in += group
    if merged_in:
        log.debug("compacted %d parts of %s into %d", len(merged_in), month, len(merged_out))
    kept = [p for p in files if p not in merged_in]
    return kept + merged_out, merged_in, merged_out


def _in_order(
    parts_dir: PartFolder, group: list[PartFile], conform: Callable[[pa.Table], pa.Table]
) -> Iterator[pa.Table]:
    """The rows of time-adjacent parts, one part at a time, in (time, id) order.

    Consecutive parts may share their boundary second (Zendesk repeats it at page
    boundaries); those few rows are held back and merged with the next part.
    """
    held: pa.Table | None = None
    for part in group:
        table = conform(parts_dir.recent(part))
        if held is None:
            held = table
            continue
        held_ms = time_ms(held)
        if time_ms(table.slice(0, 1))[0] == held_ms[-1]:
            cut = int(np.searchsorted(held_ms, held_ms[-1], side="left"))
            yield held.slice(0, cut)
            table = pa.concat_tables([held.slice(cut), table])
            if not is_time_ordered(table):
                table = table.sort_by(ORDER)
        else:
            yield held
        held = table
    if held is not None:
        yield held


def sweep(folder: Path, state: CacheState, removed: list[PartFile]) -> None:
    """Delete files the snapshot no longer lists, plus orphans of crashed commits.

    Only names zdevents writes are touched (``month=YYYY-MM/part-<hex>.parquet``, their
    temp files, ``.state.json.<hex>.tmp``): anything else in the folder is left alone.
    """
    listed = {p.path for p in state.files}
    for part in removed:
        if part.path not in listed:
            with contextlib.suppress(OSError):
                (folder / part.path).unlink()
    for path in own_files(folder, listed):
        log.debug("removing orphan %s", path)
        with contextlib.suppress(OSError):
            path.unlink()
    for month in month_dirs(folder):
        with contextlib.suppress(OSError):
            month.rmdir()  # only succeeds when empty


def remove_own_files(folder: Path) -> None:
    """Delete every file zdevents wrote in a stream folder (parts, temp files, rejected pages).

    Folders left empty go too; files zdevents did not write stay (and so do their folders).
    """
    for path in own_files(folder, set()):
        with contextlib.suppress(OSError):
            path.unlink()
    rejected = folder / "rejected"
    if rejected.is_dir():
        for path in rejected.iterdir():
            if REJECTED_NAME.match(path.name):
                with contextlib.suppress(OSError):
                    path.unlink()
    for empty in [*month_dirs(folder), rejected]:
        with contextlib.suppress(OSError):
            empty.rmdir()  # only when empty

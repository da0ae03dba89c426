"""Converting a stream's Parquet cache folder into a Delta table, once, keeping nothing lost."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CacheError
from .delta import DeltaCache
from .location import is_object_store
from .manifest import RebuildResult
from .parquet import Cache
from .rows import dedupe_keep_last

__all__ = ["MigrationResult", "migrate", "restore_table"]

log = logging.getLogger(__name__)


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
                new.adopt(state)
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


def restore_table(data_dir: str | os.PathLike[str], account: str, stream: str) -> RebuildResult:
    """Rebuild a local Delta table whose ``_delta_log`` is lost, from the data files left.

    Every ``month=*/part-*.parquet`` file in the folder is read once (page checksums
    verified; a damaged one is left out and named in the result); rows are deduplicated by
    ``id``, the most recently written file's copy winning, and committed into a new table in
    the same folder, one commit per month; the state is then rebuilt from the table (the
    coverage is the time from the first event to the last). No file is deleted: the old files
    stay unreferenced until ``zdevents cache vacuum``.

    Raises
    ------
    CacheError
        When the folder has a table log already, or no data files.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = DeltaCache(data_dir, account, stream)
    folder = Path(table.uri)
    if (folder / "_delta_log").exists():
        raise CacheError(f"{folder} has a table log: rebuild it with rebuild()", path=str(folder))
    found = sorted(
        folder.glob("month=*/part-*.parquet"), key=lambda p: (p.stat().st_mtime_ns, p.name)
    )
    if not found:
        raise CacheError(f"{folder} holds no data files to rebuild a table from", path=str(folder))
    by_month: dict[str, list[pa.Table]] = {}
    skipped = []
    for path in found:
        try:
            rows = pq.read_table(path, page_checksum_verification=True)
        except (OSError, pa.ArrowException) as exc:
            log.warning("rebuild: leaving %s out: %s", path, exc)
            skipped.append(str(path.relative_to(folder)))
            continue
        by_month.setdefault(path.parent.name, []).append(
            rows.drop_columns([c for c in ("month",) if c in rows.column_names])
        )
    with table.lock():
        for month in sorted(by_month):
            rows = dedupe_keep_last(pa.concat_tables(by_month[month], promote_options="default"))
            table.commit(rows)  # rows only: the state is rebuilt from the table below
        result = table.rebuild()
    return RebuildResult(result.files, result.rows, tuple(skipped), result.coverage)

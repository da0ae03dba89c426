"""Converting a stream's Parquet cache folder into a Delta table, once, keeping nothing lost."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import CacheError
from .delta import DeltaCache
from .location import is_object_store
from .parquet import Cache

__all__ = ["MigrationResult", "migrate"]

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

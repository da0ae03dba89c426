"""Where a stream's cache lives: the Parquet cache folder or a Delta Lake table.

:func:`open_store` picks the store of one account's stream: a Delta Lake table
(:class:`~zdevents.store.delta.DeltaCache`), the default, on local disk or at an object-store
URL (``s3://bucket/prefix``, ``gs://``, ``az://``, ``abfss://``); or, on local disk with
``table_format="parquet"``, the Parquet cache folder (:class:`~zdevents.store.parquet.Cache`). Both offer the same methods (``lock``, ``commit``,
``state``, ``snapshot``, ``read``, ``parts``, ``files``, ``repair``, ``rebuild``, ``uncovered``).
"""

from __future__ import annotations

import logging
import os

from ..config import TABLE_FORMATS
from ..errors import CacheError, CacheLocked, ConfigError
from .delta import DeltaCache, DeltaState
from .location import is_object_store, table_uri
from .migration import MigrationResult, migrate, restore_table
from .parquet import Cache
from .snapshot import Snapshot

__all__ = [
    "DeltaCache",
    "DeltaState",
    "MigrationResult",
    "Snapshot",
    "is_object_store",
    "lost_table_log",
    "migrate",
    "open_store",
    "restore_table",
    "table_uri",
]

log = logging.getLogger(__name__)


def open_store(
    data_dir: str | os.PathLike[str],
    account: str,
    stream: str,
    *,
    table_format: str = "delta",
) -> Cache | DeltaCache:
    """The cache of ``account``'s ``stream`` under ``data_dir``: Delta table or Parquet folder.

    A Delta table on object storage, or where the stream's folder holds one (``_delta_log``).
    Otherwise ``table_format`` decides: ``"delta"`` (the default) gives a Delta table, and a
    Parquet cache folder found there is converted first, once (:func:`migrate`: the old folder
    goes only after the table holds the same rows and ids; while a fetch holds the folder's
    lock, the Parquet cache is returned as it is and converted on a later use).
    ``"parquet"`` keeps (or starts) the Parquet cache folder.

    Parameters
    ----------
    data_dir : path or URL
        ``Settings.data_dir``: a local folder, or ``s3://bucket/prefix`` (credentials come
        from the store's standard environment variables).
    account, stream : str
        Folder names (checked: they cannot leave ``data_dir``).
    table_format : {"delta", "parquet"}
        ``Settings.table_format``.

    Returns
    -------
    Cache or DeltaCache

    Raises
    ------
    ConfigError
        When ``table_format`` is unknown, or ``"parquet"`` on object storage.

    Examples
    --------
    >>> import tempfile
    >>> open_store(tempfile.mkdtemp(), "acme", "metric_events")  # doctest: +ELLIPSIS
    DeltaCache('...acme/metric_events')
    >>> open_store(tempfile.mkdtemp(), "acme", "metric_events", table_format="parquet")
    ... # doctest: +ELLIPSIS
    Cache('...acme/metric_events')
    """
    if table_format not in TABLE_FORMATS:
        raise ConfigError(f"table_format {table_format!r} is not one of {TABLE_FORMATS}")
    if is_object_store(data_dir):
        if table_format == "parquet":
            raise ConfigError(
                "ZDEVENTS_TABLE_FORMAT='parquet' needs a local data dir: a cache on object "
                "storage is a Delta table"
            )
        return DeltaCache(data_dir, account, stream)
    cache = Cache(data_dir, account, stream)
    if (cache.dir / "_delta_log").is_dir():
        return DeltaCache(data_dir, account, stream)
    if table_format == "parquet":
        return cache
    if cache.state_path.exists():  # a Parquet cache folder: converted once, here
        log.warning(
            "converting the Parquet cache in %s into a Delta table (once; the old files go "
            "when the table holds the same rows)",
            cache.dir,
        )
        try:
            done = migrate(data_dir, account, stream)
        except CacheLocked:
            log.warning("%s: a fetch is running; read as a Parquet cache this time", cache.dir)
            return cache
        log.warning("%s: %s rows now in a Delta table", cache.dir, f"{done.rows:,}")
    elif parts := lost_table_log(data_dir, account, stream):
        # never an empty new table over them: that would silently drop every cached event
        raise CacheError(
            f"{cache.dir} holds {parts} data file(s) but no table log (_delta_log) nor "
            f"state.json: run `zdevents cache rebuild --stream {stream}` to rebuild the "
            "table from them (nothing is deleted), or restore the _delta_log folder",
            path=str(cache.dir),
        )
    return DeltaCache(data_dir, account, stream)


def lost_table_log(data_dir: str | os.PathLike[str], account: str, stream: str) -> int:
    """How many data files a local stream folder holds without a table log nor ``state.json``.

    Not 0 when the ``_delta_log`` was deleted or the folder copied without it: reading it as
    empty, or fetching into it, would silently drop every cached event.
    :func:`restore_table` rebuilds the table from them.

    Examples
    --------
    >>> import tempfile
    >>> lost_table_log(tempfile.mkdtemp(), "acme", "metric_events")
    0
    """
    if is_object_store(data_dir):
        return 0
    folder = Cache(data_dir, account, stream).dir
    if not folder.is_dir() or (folder / "_delta_log").exists() or (folder / "state.json").exists():
        return 0
    return sum(1 for _ in folder.glob("month=*/part-*.parquet"))

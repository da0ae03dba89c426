"""Where a stream's cache lives: the Parquet cache folder or a Delta Lake table.

:func:`open_store` picks the store of one account's stream: a Delta Lake table
(:class:`~zdevents.store.delta.DeltaCache`) when the data dir is an object-store URL
(``s3://bucket/prefix``, ``gs://``, ``az://``, ``abfss://``) or when the stream's folder
already holds a Delta table (a ``_delta_log`` folder); otherwise the Parquet cache
(:class:`~zdevents.store.parquet.Cache`). Both offer the same methods (``lock``, ``commit``,
``state``, ``snapshot``, ``read``, ``parts``, ``files``, ``repair``, ``rebuild``, ``uncovered``).
"""

from __future__ import annotations

import os

from .delta import DeltaCache, DeltaState
from .location import is_object_store, table_uri
from .migration import MigrationResult, migrate
from .parquet import Cache
from .snapshot import Snapshot

__all__ = [
    "DeltaCache",
    "DeltaState",
    "MigrationResult",
    "Snapshot",
    "is_object_store",
    "migrate",
    "open_store",
    "table_uri",
]


def open_store(data_dir: str | os.PathLike[str], account: str, stream: str) -> Cache | DeltaCache:
    """The cache of ``account``'s ``stream`` under ``data_dir``: Delta table or Parquet folder.

    Parameters
    ----------
    data_dir : path or URL
        ``Settings.data_dir``: a local folder, or ``s3://bucket/prefix`` (credentials come
        from the store's standard environment variables).
    account, stream : str
        Folder names (checked: they cannot leave ``data_dir``).

    Returns
    -------
    Cache or DeltaCache

    Examples
    --------
    >>> import tempfile
    >>> open_store(tempfile.mkdtemp(), "acme", "metric_events")  # doctest: +ELLIPSIS
    Cache('...acme/metric_events')
    """
    if is_object_store(data_dir):
        return DeltaCache(data_dir, account, stream)
    cache = Cache(data_dir, account, stream)
    if (cache.dir / "_delta_log").is_dir():
        return DeltaCache(data_dir, account, stream)
    return cache

"""Open the Parquet cache lazily on Dask, polars, DuckDB or Spark (the distributed path).

:func:`scan` is :func:`zdevents.load_frame` without the refresh and without pandas: it
returns a lazy frame over exactly the part files that the cache's ``state.json`` lists (one
snapshot: files that a concurrent fetch has written but not yet committed are never read, and
no file is read twice), pruned to the months that can hold ``[since, until)``, filtered
row-wise to that half-open range. :func:`zdevents.sla_targets` and
:func:`zdevents.breach_rates` accept what it returns.

Engines and what differs from ``load_frame``
--------------------------------------------
``"dask"`` (``pip install 'zdevents[dask]'``)
    A ``dask.dataframe.DataFrame`` with the same dtypes as ``load_frame``: ``Int64``/
    ``Int32``, ``boolean``, ``category`` for ``metric``/``type``/``sla_kind`` (categories are
    *unknown* until computed, as in any Dask read), Arrow-backed ``string`` for
    ``policy_title``, ``datetime64[ms, UTC]`` for ``time``. One partition per part file (or
    per row-group range of a large file). Differences: the index is per-partition (not one
    RangeIndex), rows are in file order (months in time order, but several parts of one month
    may interleave: sort after computing if order matters), and there is no ``attrs``.
``"polars"``
    A ``polars.LazyFrame``: ``Int64``/``Int32``, ``Boolean``, ``Categorical``, ``String``,
    ``Datetime("ms", "UTC")``.
``"duckdb"``
    A ``duckdb.DuckDBPyRelation`` on a new connection whose ``TimeZone`` is ``UTC`` (or on the
    ``session`` connection you pass, unchanged). ``metric``/``type``/``sla_kind`` are
    ``VARCHAR`` and ``time`` is ``TIMESTAMP WITH TIME ZONE`` (microseconds). The out-of-core
    path on one machine: :func:`zdevents.sla_targets` and :func:`zdevents.breach_rates` run on
    it as lazy DuckDB queries over the files (50M events at a 1.6 GB peak in the benchmarks).
``"spark"`` (``pip install pyspark`` and Java 17)
    A ``pyspark.sql.DataFrame`` from ``SparkSession.builder.getOrCreate()`` (or ``session``).
    Strings for the dictionary columns, ``TimestampType`` for ``time`` (shown in the
    session's time zone: set ``spark.sql.session.timeZone`` to ``UTC`` so that week and month
    buckets are UTC as elsewhere).

The as-of time
--------------
A lazy frame carries no ``attrs``, so :func:`zdevents.sla_targets` cannot find the cache
horizon by itself (without ``as_of`` it would use the current time and count breaches that are
merely scheduled). Read it with :func:`scan_as_of` *before* :func:`scan` and pass it::

    as_of = zd.scan_as_of()
    events = zd.scan(since="2024-01-01", engine="dask")
    targets = zd.sla_targets(events, as_of=as_of)

Read in that order, the view is consistent even while a fetch runs: the horizon only moves
forward and the later snapshot holds every event up to it; events newer than ``as_of`` are
ignored by ``sla_targets``.

Storage that every worker sees
------------------------------
The frame holds file *paths*, read when it is computed, by whichever process computes it.
With a ``distributed.Client`` (or a Spark cluster) every worker must see the cache folder at
the same path: a shared file system (NFS, SMB, a cluster file system, an object store mounted
with e.g. s3fs/gcsfuse/Mountpoint) mounted at one path on the client and all workers, or one
machine. The Parquet cache writer needs a POSIX folder (atomic rename, fsync, a lock file).

A Delta table on object storage (``ZDEVENTS_DATA_DIR=s3://bucket/prefix``, see
:mod:`zdevents.store`) needs no mount: Dask reads its files through the table's pyarrow file
system (pickled to the workers), DuckDB through a pyarrow dataset on that file system (no
``httpfs`` extension to download), polars through its own object-store reader. All three take
the endpoint, region and keys from the store's standard environment variables
(``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``...),
which zdevents never prints; Dask workers need those variables too. Spark reads such a
table with its Delta reader (``spark.read.format("delta")``), not with :func:`scan`.

A fetch that runs *while* a computation reads may replace and delete the newest month's part
files; the computation then fails with a file-not-found error (it never mixes two
snapshots). Call :func:`scan` again after the fetch.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa

from ..config import Settings
from ..dates import TimeLike, time_range
from ..errors import CacheError, ConfigError, ZdEventsError
from ..store import DeltaCache
from ..store.ranges import Window
from ..streams import get_stream
from .stores import open_cache, outside_package

__all__ = ["ENGINES", "EngineUnavailable", "scan", "scan_as_of"]

log = logging.getLogger(__name__)

Engine = Literal["dask", "polars", "duckdb", "spark"]
ENGINES: tuple[str, ...] = ("dask", "polars", "duckdb", "spark")
"""The engines :func:`scan` can open the cache with."""

_INSTALL = {
    "dask": "pip install 'zdevents[dask]'  (dask[dataframe] and distributed)",
    "polars": "pip install polars",
    "duckdb": "pip install duckdb",
    "spark": "pip install pyspark  (and a Java 17 runtime on PATH or in JAVA_HOME)",
}
_MODULES = {
    "dask": "dask.dataframe",
    "polars": "polars",
    "duckdb": "duckdb",
    "spark": "pyspark.sql",
}


class EngineUnavailable(ZdEventsError, ImportError):
    """The engine asked of :func:`scan` is not installed; the message says what to install."""


def _import(engine: str) -> Any:
    try:
        return importlib.import_module(_MODULES[engine])
    except ImportError as exc:
        raise EngineUnavailable(
            f"scan(engine={engine!r}) needs {_MODULES[engine].split('.')[0]}, which is not "
            f"importable here ({exc}): {_INSTALL[engine]}"
        ) from None


def scan_as_of(
    stream: str = "metric_events", *, settings: Settings | None = None
) -> pd.Timestamp | None:
    """The cache's horizon of ``stream`` as a UTC Timestamp: the ``as_of`` for lazy frames.

    Every event before it is cached; it only moves forward (a forced refetch or a backfill
    running meanwhile never lowers it) and is never later than now.

    ``load_frame`` puts this in ``frame.attrs["zdevents_as_of"]``; lazy frames cannot carry
    it, so pass it to :func:`zdevents.sla_targets` yourself. Call it *before*
    :func:`scan` (see the module notes on consistency).

    Parameters
    ----------
    stream : {"metric_events", "ticket_events"}
    settings : Settings, optional
        Default: ``Settings.from_env()``.

    Returns
    -------
    pandas.Timestamp or None
        None when nothing was ever fetched.

    Examples
    --------
    >>> import zdevents as zd
    >>> as_of = zd.scan_as_of()  # doctest: +SKIP
    >>> targets = zd.sla_targets(zd.scan(engine="dask"), as_of=as_of)  # doctest: +SKIP
    """
    return open_cache(stream, settings=settings).state().as_of


def scan(
    since: TimeLike = None,
    until: TimeLike = None,
    *,
    stream: str = "metric_events",
    columns: Sequence[str] | None = None,
    settings: Settings | None = None,
    engine: Engine = "dask",
    session: Any = None,
    version: int | None = None,
) -> Any:
    """Open the cached export lazily on a distributed or out-of-core engine.

    Nothing is fetched (run ``zdevents fetch`` or :func:`zdevents.fetch` first) and nothing is
    read until the frame is computed.

    Parameters
    ----------
    since, until : str, date, datetime, Timestamp or epoch seconds, optional
        Half-open range ``[since, until)`` of event time (naive values are UTC), exactly as
        :func:`zdevents.load_frame`: only the part files whose time range can hold such rows
        are opened, and rows outside it are filtered out.
    stream : {"metric_events", "ticket_events"}
        ``ticket_events`` frames include the nested ``child_events`` column as the engine
        reads it (:func:`zdevents.export.parse.ticket_changes` is pandas-only).
    columns : sequence of str, optional
        Only these columns (projection pushed down to the Parquet reader).
    settings : Settings, optional
        Default: ``Settings.from_env()``. The account is the configured one, or the only
        account in the cache folder.
    engine : {"dask", "polars", "duckdb", "spark"}
        What to return: a ``dask.dataframe.DataFrame``, a ``polars.LazyFrame``, a
        ``duckdb.DuckDBPyRelation`` or a ``pyspark.sql.DataFrame``. See the module notes for
        the dtypes of each. Dask computes on the ``distributed.Client`` in effect, if any.
    session : duckdb.DuckDBPyConnection or pyspark.sql.SparkSession, optional
        The DuckDB connection or Spark session to read with (``"duckdb"``/``"spark"`` only).
        Default: a new DuckDB connection set to UTC / ``SparkSession.builder.getOrCreate()``.
    version : int, optional
        A Delta table cache only (see :mod:`zdevents.store`): open the files of this
        table version (default: the latest). Its horizon is
        ``cache.state(version=N).as_of`` of :func:`zdevents.open_cache`.

    Returns
    -------
    Lazy frame of the chosen engine
        With the columns of the cache schema (or ``columns``), no defined row order, no
        ``attrs``: pass ``as_of=scan_as_of()`` to :func:`zdevents.sla_targets`. A range that
        holds no rows gives an empty frame with the full schema.

    Raises
    ------
    CacheError
        When the stream's cache holds no events at all (never fetched, or wrong
        ``ZDEVENTS_DATA_DIR``/account): an empty result would look like "no breaches".
    EngineUnavailable
        When the engine's package is not installed (an ``ImportError``; the message says
        what to install).
    ConfigError, ValueError
        For an unknown engine, stream, column or date, and for ``engine="spark"`` on a
        table on object storage.

    Examples
    --------
    >>> import zdevents as zd
    >>> from distributed import Client  # doctest: +SKIP
    >>> client = Client("tcp://scheduler:8786")  # doctest: +SKIP
    >>> as_of = zd.scan_as_of()  # doctest: +SKIP
    >>> events = zd.scan(since="2024-01-01", engine="dask")  # doctest: +SKIP
    >>> rates = zd.breach_rates(zd.sla_targets(events, as_of=as_of)).compute()  # doctest: +SKIP
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if session is not None and engine not in ("duckdb", "spark"):
        raise ValueError(f"session= is for the duckdb and spark engines, not {engine!r}")
    start, end = time_range(since, until)
    name = get_stream(stream).name
    cache = open_cache(name, settings=settings)
    if columns is not None:
        columns = list(dict.fromkeys(columns))
        schema = cache.schema
        unknown = [c for c in columns if schema is not None and c not in schema.names]
        if unknown:
            raise ValueError(
                f"{name} has no column(s) {', '.join(map(repr, unknown))}; columns: "
                f"{', '.join(schema.names)}"
            )
    remote = isinstance(cache, DeltaCache) and cache.remote
    if remote and engine == "spark":
        raise ConfigError(
            f"scan(engine='spark') reads local or mounted caches; {cache.dir} is on object "
            "storage: read it with spark.read.format('delta').load(...) (delta-spark), see "
            "the README's 'Sharing a cache'"
        )
    module = _import(engine)
    # one snapshot: everything below uses its file list only
    snap = cache.snapshot(version=version)
    state = snap.state
    if not state.files:
        raise CacheError(
            f"the {name} cache in {cache.dir} holds no events"
            + (" (never fetched)" if state.cursor is None else "")
            + ": check ZDEVENTS_DATA_DIR and the account, or run `zdevents fetch --stream "
            f"{name} --since <first date you need>`",
            path=str(cache.dir),
        )
    window = Window.from_utc(start, end)
    snap.warn_uncovered(window, stacklevel=outside_package())
    parts = snap.parts(window)
    if not parts:  # keep the schema: read the newest file, the row filter leaves no row
        parts = [state.files[-1]]
        start = end = pd.Timestamp(state.files[-1].max_time + 1, unit="ms", tz="UTC")
    paths = [str(cache.dir / p.path) for p in parts]
    log.debug("scan %s with %s: %d of %d part files", name, engine, len(paths), len(state.files))
    reader = {"dask": _dask, "polars": _polars, "duckdb": _duckdb, "spark": _spark}[engine]
    store = _Store.of(cache) if remote else None
    frame = reader(module, paths, columns, start, end, session, store)
    return _like_load_frame(frame, cache.schema) if engine == "dask" else frame


def _like_load_frame(frame: Any, schema: pa.Schema | None) -> Any:
    """A Dask frame with ``load_frame``'s dtypes where the files store another type.

    A Delta table stores the cache's dictionary columns as strings and its times in
    microseconds (Delta has no dictionary type nor millisecond times): they become
    ``category`` (categories unknown, as the lazy meta cannot know them) and
    ``datetime64[ms, UTC]`` again.
    """
    if schema is None:
        return frame
    for name, dtype in frame.dtypes.items():
        if name not in schema.names:
            continue
        arrow_type = schema.field(name).type
        if pa.types.is_dictionary(arrow_type) and not isinstance(dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype("category").cat.as_unknown()
        elif pa.types.is_timestamp(arrow_type) and str(dtype) != "datetime64[ms, UTC]":
            frame[name] = frame[name].astype("datetime64[ms, UTC]")
    return frame


class _Store:
    """How Dask and DuckDB reach a table on object storage: a pyarrow file system.

    The table's own (``pyarrow.fs.FileSystem.from_uri``, configured from the store's standard
    environment variables: ``AWS_ENDPOINT_URL``, ``AWS_REGION``, the keys...), the one the
    cache writes with. Polars' reader reads the same variables itself. Never logged.
    """

    __slots__ = ("filesystem",)

    def __init__(self, filesystem: Any) -> None:
        self.filesystem = filesystem

    def __repr__(self) -> str:
        return f"_Store({type(self.filesystem).__name__})"

    @classmethod
    def of(cls, cache: DeltaCache) -> _Store:
        return cls(cache.filesystem()[0])

    @staticmethod
    def path(uri: str) -> str:
        """``bucket/key``: the path of ``scheme://bucket/key`` on the pyarrow file system."""
        return uri.split("://", 1)[1]

    def dataset(self, paths: list[str]) -> Any:
        import pyarrow.dataset as ds

        return ds.dataset(
            [self.path(p) for p in paths], format="parquet", filesystem=self.filesystem
        )


# ---------------------------------------------------------------------------------- engines
def _dask(
    dd: Any,
    paths: list[str],
    columns: list[str] | None,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    session: Any,
    store: _Store | None = None,
) -> Any:
    filters = [("time", ">=", start)] if start is not None else []
    if end is not None:
        filters.append(("time", "<", end))
    wanted = None if columns is None else list(dict.fromkeys([*columns, "time"]))
    frame = dd.read_parquet(
        paths if store is None else [store.path(p) for p in paths],
        columns=wanted,
        **({} if store is None else {"filesystem": store.filesystem}),  # pickled to workers
        filters=filters or None,
        dtype_backend="numpy_nullable",  # Int64/Int32/boolean like load_frame
        dataset={"partitioning": None},  # month=YYYY-MM folders are not a column
    )
    for name, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype):  # meta comes from one file: say unknown
            frame[name] = frame[name].cat.as_unknown()
    if start is not None:
        frame = frame[frame["time"] >= start]
    if end is not None:
        frame = frame[frame["time"] < end]
    return frame if columns is None else frame[columns]


def _polars(
    pl: Any,
    paths: list[str],
    columns: list[str] | None,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    session: Any,
    store: _Store | None = None,
) -> Any:
    frame = pl.scan_parquet(paths, hive_partitioning=False)  # s3://: the AWS_* variables
    if start is not None:
        frame = frame.filter(pl.col("time") >= start.to_pydatetime())
    if end is not None:
        frame = frame.filter(pl.col("time") < end.to_pydatetime())
    return frame if columns is None else frame.select(columns)


def _duckdb(
    duckdb: Any,
    paths: list[str],
    columns: list[str] | None,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    session: Any,
    store: _Store | None = None,
) -> Any:
    if session is None:
        session = duckdb.connect()
        session.execute("SET TimeZone = 'UTC'")  # day/week/month truncation in UTC
    if store is None:
        relation = session.read_parquet(paths, hive_partitioning=False)
    else:  # through pyarrow's file system: no httpfs extension to download
        relation = session.from_arrow(store.dataset(paths))
    time = duckdb.ColumnExpression("time")
    if start is not None:
        relation = relation.filter(time >= duckdb.ConstantExpression(start.to_pydatetime()))
    if end is not None:
        relation = relation.filter(time < duckdb.ConstantExpression(end.to_pydatetime()))
    if columns is not None:
        relation = relation.select(*(duckdb.ColumnExpression(c) for c in columns))
    return relation


def _spark(
    sql: Any,
    paths: list[str],
    columns: list[str] | None,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    session: Any,
    store: _Store | None = None,
) -> Any:
    spark = session if session is not None else sql.SparkSession.builder.getOrCreate()
    zone = spark.conf.get("spark.sql.session.timeZone", None)
    if zone not in ("UTC", "Etc/UTC", "GMT", "Z", "+00:00"):
        log.warning(
            "Spark session time zone is %s: week/month buckets follow it; set "
            "spark.sql.session.timeZone=UTC for the UTC buckets of the pandas path",
            zone,
        )
    # Plain file list, no partition inference: the month=YYYY-MM folders add no column.
    frame = spark.read.option("recursiveFileLookup", "true").parquet(*_file_uris(paths))
    time = sql.functions.col("time")
    if start is not None:
        frame = frame.filter(time >= sql.functions.lit(start.to_pydatetime()))
    if end is not None:
        frame = frame.filter(time < sql.functions.lit(end.to_pydatetime()))
    return frame if columns is None else frame.select(*columns)


def _file_uris(paths: list[str]) -> list[str]:
    """``file:`` paths: a bare path would be read from Spark's default file system (HDFS...).

    Hadoop paths, not URIs: ``month=2024-01`` must stay unescaped.
    """
    return ["file://" + Path(p).absolute().as_posix() for p in paths]

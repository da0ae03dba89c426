"""The front door: cached exports as typed pandas frames, refreshed on demand."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Literal

import pandas as pd
import pyarrow as pa

from ..config import Settings, resolve_account
from ..dates import TimeLike, time_range
from ..errors import CacheError, CacheLocked, RateLimited, ServerError
from ..export import parse as normalize
from ..schema import schema_for, to_pandas
from ..store import lost_table_log, restore_table
from ..store.parquet import RebuildResult
from ..store.ranges import Window
from ..store.snapshot import Snapshot, read_current
from ..streams import get_stream
from .stores import open_cache, outside_package

__all__ = ["load_changes", "load_frame", "open_cache", "rebuild_cache"]

log = logging.getLogger(__name__)

Refresh = Literal["auto", "never", "force"]
_told_cache_only: set[str] = set()


def rebuild_cache(
    stream: str = "metric_events", *, settings: Settings | None = None
) -> RebuildResult:
    """Rebuild a stream's lost or damaged state from its data files.

    Takes the stream's lock, reads every data file once and commits a new state listing the
    readable ones (see :meth:`zdevents.store.DeltaCache.rebuild`; a Parquet folder's
    ``state.json``: :meth:`zdevents.store.parquet.Cache.rebuild`); no file is deleted. A Delta
    table whose ``_delta_log`` is gone is rebuilt from the files left in its folder
    (:func:`zdevents.store.restore_table`). The
    coverage becomes the time from the first cached event to the last; the next fetch
    continues from there.

    Parameters
    ----------
    stream : {"metric_events", "ticket_events"}
    settings : Settings, optional
        Default: ``Settings.from_env()``.

    Returns
    -------
    RebuildResult
        Files listed, rows, files left unlisted, the coverage.

    Raises
    ------
    CacheLocked
        When a fetch of the stream is running.
    CacheError
        When the stream has no cache folder.

    Examples
    --------
    >>> import zdevents as zd
    >>> zd.rebuild_cache("metric_events").rows  # doctest: +SKIP
    11016
    """
    settings = settings if settings is not None else Settings.from_env()
    account, name = resolve_account(settings), get_stream(stream).name
    if settings.table_format == "delta" and lost_table_log(settings.data_dir, account, name):
        return restore_table(settings.data_dir, account, name)  # the _delta_log was lost
    cache = open_cache(stream, settings=settings)
    if not cache.dir.is_dir():
        raise CacheError(
            f"there is no {cache.stream} cache in {cache.dir} to rebuild: check "
            "ZDEVENTS_DATA_DIR and the account",
            path=str(cache.dir),
        )
    with cache.lock():
        return cache.rebuild()


def _refresh(
    stream: str,
    since: pd.Timestamp | None,
    refresh: Refresh,
    settings: Settings,
    *,
    until: pd.Timestamp | None = None,
    lock_timeout: float = 0,
    progress: bool = True,
) -> None:
    """Fetch before a read. ``"auto"`` degrades to reading: when Zendesk cannot be reached,
    the cache is read-only or another process holds its lock, it warns once and returns
    (the read then sees the last committed snapshot). ``"force"`` raises instead."""
    from ..export.fetch import fetch

    if refresh == "never":
        return
    if refresh not in ("auto", "force"):
        raise ValueError(f"refresh must be 'auto', 'never' or 'force', not {refresh!r}")
    if not (settings.has_account and settings.has_credentials):
        if refresh == "force":
            settings.require_credentials()
            settings.url  # noqa: B018 - raises ConfigError naming what to set
        key = f"{settings.data_dir}:{stream}"
        if key not in _told_cache_only:
            _told_cache_only.add(key)
            log.info("no Zendesk account configured: reading the %s cache only", stream)
            warnings.warn(
                f"no Zendesk account configured: reading the {stream} cache in "
                f"{settings.data_dir} without refreshing it",
                stacklevel=outside_package(),
            )
        return
    force = refresh == "force"
    try:
        fetch(
            stream,
            since,
            until=until if force else None,
            settings=settings,
            progress=progress,
            force=force,
            lock_timeout=lock_timeout,
        )
    except CacheLocked:
        if force:
            raise
        why = (
            f"another process is fetching {stream} into this cache: reading its last "
            "committed snapshot (pass lock_timeout=SECONDS to wait for that fetch instead)"
        )
    except (ServerError, RateLimited) as exc:
        if force:
            raise
        why = f"could not refresh {stream} from Zendesk ({exc}): reading the cache as it is"
    except CacheError as exc:  # read-only folder, full disk: the cache itself still reads
        if force:
            raise
        why = f"could not refresh the {stream} cache ({exc}): reading it as it is"
    else:
        return
    log.info("%s", why)
    warnings.warn(why, stacklevel=outside_package())


def load_frame(
    since: TimeLike = None,
    until: TimeLike = None,
    *,
    stream: str = "metric_events",
    refresh: Refresh = "auto",
    columns: Sequence[str] | None = None,
    settings: Settings | None = None,
    lock_timeout: float = 0,
    progress: bool = True,
    version: int | None = None,
    as_of_commit: TimeLike = None,
) -> pd.DataFrame:
    """Load one export stream as a typed DataFrame, fetching what is new first.

    Parameters
    ----------
    since, until : str, date, datetime, Timestamp or epoch seconds, optional
        Half-open range ``[since, until)`` of event time. Naive values are UTC.
    stream : {"metric_events", "ticket_events"}
        ``metric_events`` (SLA events, one row per event) or ``ticket_events`` (one row per
        audit; see :func:`load_changes` for the field changes inside audits).
    refresh : {"auto", "never", "force"}
        ``"auto"`` fetches what the cache lacks (newer than its cursor, a gap, a ``since``
        before its start) when an account and credentials are configured, and otherwise
        reads the cache (saying so once). It never fails for the refresh: offline, with a
        read-only cache, or while another process fetches, it warns once and reads the last
        committed snapshot. ``"never"`` only reads; ``"force"`` refetches exactly
        ``[since, until)`` and raises when it cannot.
    columns : list of str, optional
        Only these columns (read from disk, nothing else).
    settings : Settings, optional
        Default: ``Settings.from_env()``.
    lock_timeout : float
        Seconds to wait for another process's fetch of this stream before refreshing
        (0: read its last snapshot at once).
    progress : bool
        Show the fetch's progress bar when it fetches (a widget in Jupyter, text on
        stderr elsewhere); ``False`` silences it.
    version : int, optional
        Delta table caches only (see :mod:`zdevents.store`): read this table version, as
        it was committed (nothing is fetched). ``frame.attrs["zdevents_table_version"]``
        records the version every Delta read used.
    as_of_commit : str, datetime, Timestamp or epoch seconds, optional
        Delta table caches only: read the version that was current at this time (the
        numbers a report showed then; nothing is fetched).

    Returns
    -------
    pandas.DataFrame
        Sorted by time. ``frame.attrs["zdevents_as_of"]`` holds the export's horizon (UTC:
        every event before it is cached, it never moves back and is never later than now),
        which :func:`zdevents.sla_targets` uses as its default ``as_of``.
        When ``since``/``until`` leave out cached events, ``frame.attrs["zdevents_window"]``
        holds ``(since, until)`` and :func:`zdevents.sla_targets` warns: SLA targets need
        the whole history (select them afterwards with :func:`zdevents.applied_between`).

    Warns
    -----
    UserWarning
        When part of ``[since, until)`` was never fetched (or was dropped as damaged), so
        the frame lacks its events; the message names the span and the fetch that fills it.

    Examples
    --------
    >>> import zdevents as zd
    >>> events = zd.load_frame(since="2024-01-01")  # doctest: +SKIP
    >>> events.dtypes["time"]  # doctest: +SKIP
    datetime64[ms, UTC]
    """
    settings = settings if settings is not None else Settings.from_env()
    name = get_stream(stream).name
    start, end = time_range(since, until)
    if columns is not None:
        _check_columns(columns, name)
    pinned = version is not None or as_of_commit is not None
    if not pinned:
        _refresh(
            name,
            start,
            refresh,
            settings,
            until=end,
            lock_timeout=lock_timeout,
            progress=progress,
        )
    cache = open_cache(name, settings=settings)
    window = Window.from_utc(start, end)
    wanted = list(columns) if columns is not None else None
    # one snapshot: the rows, the warning and every attr below come from the same state
    read = list(read_current(cache, wanted, window, version=version, as_of_commit=as_of_commit))
    snap = read[0]
    snap.warn_uncovered(window, stacklevel=outside_package())
    # the table goes in with no other reference: each column is freed once converted
    frame = _framed(to_pandas(read.pop(), name, self_destruct=True), snap)
    pa.default_memory_pool().release_unused()  # hand what the read freed back to the system
    horizon = frame.attrs.get("zdevents_as_of")
    if (start is not None and snap.parts(Window.from_utc(None, start))) or (
        end is not None and horizon is not None and end < horizon
    ):  # the cache holds events outside the window: sla_targets warns (they are missing)
        frame.attrs["zdevents_window"] = (start, end)
    return frame


def _framed(frame: pd.DataFrame, snap: Snapshot) -> pd.DataFrame:
    """``frame`` with the attrs of the snapshot its rows came from."""
    if snap.as_of is not None:
        frame.attrs["zdevents_as_of"] = snap.as_of
    if snap.version is not None:
        frame.attrs["zdevents_table_version"] = snap.version
    return frame


def _check_columns(columns: Sequence[str], stream: str) -> None:
    """A ValueError naming the unknown columns and the available ones (a typo, not the cache)."""
    if isinstance(columns, str):
        raise ValueError(f"columns must be a list of column names, not the string {columns!r}")
    available = schema_for(stream).names
    unknown = [c for c in columns if c not in available]
    if unknown:
        raise ValueError(
            f"{stream} has no column {', '.join(map(repr, unknown))}; available: "
            f"{', '.join(available)}"
        )


def load_changes(
    since: TimeLike = None,
    until: TimeLike = None,
    *,
    refresh: Refresh = "auto",
    settings: Settings | None = None,
    lock_timeout: float = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Field changes inside ticket audits, one row per change (the long form).

    Columns: ``ticket_id``, ``audit_id``, ``time``, ``updater_id``, ``via_channel``,
    ``event_id``, ``event_type``, ``field``, ``value``, ``previous_value``, and for comments
    ``author_id``, ``public``, ``body`` (bodies need ``zdevents fetch --include-comments``).
    ``refresh`` and ``lock_timeout`` work as in :func:`load_frame`.

    Examples
    --------
    >>> changes = zd.load_changes(since="2024-01-01")  # doctest: +SKIP
    >>> changes[changes.field == "priority"].value.value_counts()  # doctest: +SKIP
    """
    settings = settings if settings is not None else Settings.from_env()
    start, end = time_range(since, until)
    _refresh(
        "ticket_events",
        start,
        refresh,
        settings,
        until=end,
        lock_timeout=lock_timeout,
        progress=progress,
    )
    window = Window.from_utc(start, end)
    snap, table = read_current(open_cache("ticket_events", settings=settings), None, window)
    snap.warn_uncovered(window, stacklevel=outside_package())
    changes = to_pandas(normalize.ticket_changes(table), "ticket_changes")
    if snap.as_of is not None:
        changes.attrs["zdevents_as_of"] = snap.as_of
    return changes

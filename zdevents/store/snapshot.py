"""One committed state of a store and a reader bound to it: what a read sees, whole.

A :class:`Snapshot` pairs a state (Parquet: a ``state.json``; Delta: a table version) with
reads of exactly the files that state lists, so the rows read and the state's ``as_of``,
coverage and version describe the same thing, whatever a writer commits meanwhile.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd
import pyarrow as pa

from ..errors import CacheError
from .manifest import CacheState, PartFile
from .ranges import Window, select_parts, uncovered

__all__ = ["Snapshot", "SnapshotGone", "StoreReads", "read_current", "warn_uncovered"]


class SnapshotGone(CacheError):
    """A file a snapshot lists was replaced by a later commit and deleted: read a newer one."""


class Snapshot:
    """A store's state and reads bound to it (take one with ``store.snapshot()``).

    Attributes
    ----------
    store : Cache or DeltaCache
    state : CacheState
        ``DeltaState`` for a Delta table (with its ``version``).

    Examples
    --------
    >>> import tempfile
    >>> from zdevents.store import open_store
    >>> snap = open_store(tempfile.mkdtemp(), "acme", "metric_events").snapshot()
    >>> snap.read(["id"]).num_rows, snap.as_of
    (0, None)
    """

    __slots__ = ("state", "store")

    def __init__(self, store: Any, state: CacheState) -> None:
        self.store = store
        self.state = state

    def __repr__(self) -> str:
        return f"Snapshot({self.store!r}, rows={self.state.rows}, as_of={self.as_of})"

    @property
    def as_of(self) -> pd.Timestamp | None:
        """The state's horizon (see :attr:`CacheState.as_of`)."""
        return self.state.as_of

    @property
    def version(self) -> int | None:
        """The Delta table version read (None for a Parquet cache)."""
        return getattr(self.state, "version", None)

    def parts(self, window: Window | None = None) -> list[PartFile]:
        """The listed parts that may hold rows in ``window`` (default: all)."""
        return select_parts(self.state.files, window or Window())

    def uncovered(self, window: Window | None = None) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """The parts of ``window`` this state does not cover (see ``Cache.uncovered``)."""
        return uncovered(self.state, window or Window())

    def read(self, columns: list[str] | None = None, window: Window | None = None) -> pa.Table:
        """The rows of this state's files with ``since <= time < until``, ordered by time.

        Raises
        ------
        SnapshotGone
            When a file is gone (a later commit replaced it and deleted it: take a new
            snapshot, or use :func:`read_current`).
        CacheError
            When a file is damaged.
        """
        return self.store.read_parts(self.state, columns, window or Window())

    def warn_uncovered(
        self, window: Window | None = None, *, stacklevel: int = 2
    ) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """Warn when part of ``window`` is not cached; return those gaps."""
        gaps = self.uncovered(window)
        warn_uncovered(self.store, gaps, stacklevel=stacklevel + 1)
        return gaps


class StoreReads:
    """The selections both stores offer over a state: :meth:`parts`, :meth:`uncovered`,
    :meth:`warn_uncovered` (a store provides ``state()``, ``stream`` and ``dir``)."""

    def state(self) -> CacheState:  # pragma: no cover - provided by the store
        raise NotImplementedError

    def parts(
        self, since: object = None, until: object = None, *, state: CacheState | None = None
    ) -> list[PartFile]:
        """The listed parts that may hold rows in ``[since, until)``, ordered by time.

        Parameters
        ----------
        since, until : pandas.Timestamp, datetime, str or Unix seconds, optional
            Naive values are UTC.
        state : CacheState, optional
            The snapshot to select from (default: read the current state now). Pass the one you
            already hold to keep several reads on one snapshot.

        Examples
        --------
        >>> import tempfile
        >>> from zdevents.store import open_store
        >>> open_store(tempfile.mkdtemp(), "acme", "metric_events").parts(since="2024-01-01")
        []
        """
        state = self.state() if state is None else state
        return Snapshot(self, state).parts(Window.of(since, until))

    def uncovered(
        self, since: object = None, until: object = None, *, state: CacheState | None = None
    ) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """The parts of ``[since, until)`` that were never fetched (or were dropped as damaged).

        Looked at up to the cursor (what lies beyond it is simply not fetched yet: see
        :attr:`CacheState.as_of`); ``since`` defaults to the earliest time ever covered.
        Empty for a cache that never recorded its coverage.

        Examples
        --------
        >>> import tempfile
        >>> from zdevents.store import open_store
        >>> open_store(tempfile.mkdtemp(), "acme", "metric_events").uncovered("2024-01-01")
        []
        """
        state = self.state() if state is None else state
        return Snapshot(self, state).uncovered(Window.of(since, until))

    def warn_uncovered(
        self,
        since: object = None,
        until: object = None,
        *,
        state: CacheState | None = None,
        stacklevel: int = 2,
    ) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """Warn (once per call) when :meth:`uncovered` finds a part of the range not cached.

        Returns what :meth:`uncovered` found.
        """
        gaps = self.uncovered(since, until, state=state)
        warn_uncovered(self, gaps, stacklevel=stacklevel + 1)
        return gaps


def read_current(
    store: Any,
    columns: list[str] | None = None,
    window: Window | None = None,
    *,
    version: int | None = None,
    as_of_commit: object = None,
) -> tuple[Snapshot, pa.Table]:
    """Take a snapshot and read it; when a concurrent commit replaced one of its files before
    it was read, take the newer snapshot (once per change of the file list).

    Returns the snapshot read with the rows, so the two always agree.

    Examples
    --------
    >>> import tempfile
    >>> from zdevents.store import open_store
    >>> snap, table = read_current(open_store(tempfile.mkdtemp(), "acme", "metric_events"))
    >>> table.num_rows, snap.state.rows
    (0, 0)
    """
    previous: tuple[PartFile, ...] | None = None
    while True:
        snap = store.snapshot(version=version, as_of_commit=as_of_commit)
        try:
            return snap, snap.read(columns, window)
        except SnapshotGone:
            if previous is not None and previous == snap.state.files:
                raise
            previous = snap.state.files  # a concurrent commit replaced it: read the new one


def warn_uncovered(
    store: Any, gaps: list[tuple[pd.Timestamp, pd.Timestamp]], *, stacklevel: int = 2
) -> None:
    """Warn (once) that ``gaps`` of ``store`` are not cached and which fetch fills them."""
    if not gaps:
        return
    fmt = "%Y-%m-%d %H:%M:%S"
    spans = ", ".join(f"{a.strftime(fmt)}..{b.strftime(fmt)}" for a, b in gaps[:3])
    more = f" and {len(gaps) - 3} more" if len(gaps) > 3 else ""
    warnings.warn(
        f"the {store.stream} cache in {store.dir} does not hold {spans} UTC{more} (never "
        "fetched, or dropped as damaged): events of that time are missing from this "
        f"read. `zdevents fetch --stream {store.stream}` fetches them (so does a "
        'refresh="auto" read with credentials)',
        stacklevel=stacklevel + 1,
    )

"""Covered-range arithmetic shared by both stores: coverage, horizon, windows of event time.

Coverage intervals and the horizon are Unix seconds (like Zendesk's ``start_time``); part
files' ``min_time``/``max_time`` are Unix milliseconds. A :class:`Window` is a read's
``[since, until)`` converted once, used for every selection of that read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pandas as pd

from ..dates import to_utc
from .manifest import SCHEMA_VERSION, CacheState, Interval, PartFile, merge

__all__ = [
    "Window",
    "advance_horizon",
    "covering",
    "dropped_spans",
    "iso",
    "now_iso",
    "rebuilt_state",
    "select_parts",
    "subtract",
    "uncovered",
    "without_damaged",
]


@dataclass(frozen=True)
class Window:
    """A half-open range ``[since, until)`` of event time, converted once for one read.

    Attributes
    ----------
    since, until : pandas.Timestamp or None
        UTC bounds (None: open).
    lo_ms, hi_ms : int or None
        The same bounds as Unix milliseconds, rounded up (so ``time >= since`` stays exact).

    Examples
    --------
    >>> Window.of("2024-01-01").lo_ms
    1704067200000
    """

    since: pd.Timestamp | None = None
    until: pd.Timestamp | None = None
    lo_ms: int | None = None
    hi_ms: int | None = None

    @classmethod
    def of(cls, since: object = None, until: object = None) -> Window:
        """The window of ``since``/``until`` (anything :func:`zdevents.dates.to_utc` takes)."""
        if isinstance(since, Window) and until is None:
            return since
        start = to_utc(since, name="since")  # type: ignore[arg-type]
        end = to_utc(until, name="until")  # type: ignore[arg-type]
        return cls.from_utc(start, end)

    @classmethod
    def from_utc(cls, since: pd.Timestamp | None, until: pd.Timestamp | None) -> Window:
        """The window of bounds already normalised (by :func:`zdevents.dates.time_range`)."""
        return cls(since, until, _ms_up(since), _ms_up(until))


def _ms_up(stamp: pd.Timestamp | None) -> int | None:
    if stamp is None:
        return None
    return -((-stamp.as_unit("ns").value) // 1_000_000)


def select_parts(files: tuple[PartFile, ...], window: Window) -> list[PartFile]:
    """The parts that may hold rows in ``window``, in the order listed (by time)."""
    lo, hi = window.lo_ms, window.hi_ms
    return [
        p for p in files if (lo is None or p.max_time >= lo) and (hi is None or p.min_time < hi)
    ]


def uncovered(state: CacheState, window: Window) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The parts of ``window`` the state's coverage does not hold, up to its cursor.

    ``since`` defaults to the earliest time ever covered. Empty for a state that never
    recorded its coverage.
    """
    if not state.coverage or state.cursor is None:
        return []
    lo_ms, hi_ms = window.lo_ms, window.hi_ms
    lo = state.covered_since if lo_ms is None else lo_ms // 1000
    hi = state.cursor if hi_ms is None else min(-(-hi_ms // 1000), state.cursor)
    if lo is None or lo >= hi:
        return []
    return [
        (pd.Timestamp(a, unit="s", tz="UTC"), pd.Timestamp(b, unit="s", tz="UTC"))
        for a, b in state.gaps(lo, hi)
    ]


def subtract(intervals: tuple[Interval, ...], cut: Interval) -> tuple[Interval, ...]:
    """``intervals`` without the half-open ``cut``."""
    lo, hi = cut
    out: list[Interval] = []
    for a, b in intervals:
        if b <= lo or a >= hi:
            out.append((a, b))
            continue
        if a < lo:
            out.append((a, lo))
        if b > hi:
            out.append((hi, b))
    return tuple(out)


def advance_horizon(
    horizon: int | None, coverage: tuple[Interval, ...], claim: Interval | None
) -> int | None:
    """The horizon after a commit: the end of the interval it lies in, never lower.

    Before any coverage, the first claim's interval sets it. A claim elsewhere (a backfill
    before the horizon's interval, a forced range after a gap) moves it only once it joins
    the horizon's interval.
    """
    if horizon is None:
        if claim is None:
            return None
        return next((b for a, b in coverage if a <= claim[0] < b), None)
    for a, b in coverage:
        if a <= horizon <= b:
            return max(horizon, b)
    return horizon


def covering(
    state: CacheState,
    cursor: int | None,
    covered_since: int | None,
    files: tuple[PartFile, ...],
    *,
    after_cursor: str | None = None,
    support_type_scope: str | None = None,
) -> CacheState:
    """``state`` with ``files``, the new cursor and what the commit covers."""
    coverage, horizon, claim = state.coverage, state.horizon, None
    new_cursor, new_after = state.cursor, state.after_cursor
    if cursor is not None:
        now = int(time.time())
        end = min(int(cursor), now)  # an end_time in the future covers nothing beyond now
        start = covered_since if covered_since is not None else state.cursor
        if start is not None and start < end:
            claim = (int(start), end)
            coverage = merge([*coverage, claim])
        if state.cursor is None or end >= state.cursor:  # the commit reaches the cursor
            new_after = after_cursor
        new_cursor = end if state.cursor is None else max(state.cursor, end)
        horizon = advance_horizon(horizon, coverage, claim)
        if horizon is None and not coverage:
            horizon = new_cursor  # commits that never said where they began: as before
        horizon = None if horizon is None else min(horizon, now)
    reached = [x for x in (state.covered_until, new_cursor) if x is not None]
    return replace(
        state,
        schema_version=SCHEMA_VERSION,
        cursor=new_cursor,
        covered_since=min(x for x in (coverage[0][0], state.covered_since) if x is not None)
        if coverage
        else state.covered_since,
        covered_until=max(reached) if reached else None,
        rows=sum(p.rows for p in files),
        files=files,
        updated_at=now_iso(),
        coverage=coverage,
        horizon=horizon,
        support_type_scope=support_type_scope or state.support_type_scope,
        after_cursor=new_after,
    )


def without_damaged(state: CacheState, damaged: list[PartFile]) -> CacheState:
    """``state`` without ``damaged`` parts and without the seconds their rows spanned."""
    files = tuple(p for p in state.files if p not in damaged)
    coverage = state.coverage
    for part in damaged:
        coverage = subtract(coverage, (part.min_time // 1000, part.max_time // 1000 + 1))
    return replace(state, files=files, rows=sum(p.rows for p in files), coverage=coverage)


def rebuilt_state(stream: str, files: list[PartFile]) -> CacheState:
    """The state of a rebuild: ``files``, covered from the first event's second to the last's.

    The cursor and the horizon become the last event's second (the next fetch reads that
    second again).
    """
    files = sorted(files, key=lambda p: (p.min_time, p.max_time, p.path))
    coverage: tuple[Interval, ...] = ()
    cursor = None
    if files:
        first = min(p.min_time for p in files) // 1000
        cursor = max(p.max_time for p in files) // 1000
        coverage = merge([(first, cursor)])
    return CacheState(
        schema_version=SCHEMA_VERSION,
        stream=stream,
        cursor=cursor,
        covered_since=coverage[0][0] if coverage else None,
        covered_until=cursor,
        rows=sum(p.rows for p in files),
        files=tuple(files),
        updated_at=now_iso(),
        coverage=coverage,
        horizon=cursor,
    )


def dropped_spans(damaged: list[PartFile]) -> str:
    """The time spans of dropped parts, for the warning that says they are no longer cached."""
    return ", ".join(f"{iso(p.min_time // 1000)}..{iso(p.max_time // 1000 + 1)}" for p in damaged)


def iso(seconds: int) -> str:
    """Unix seconds as ``YYYY-MM-DD HH:MM:SS UTC``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def now_iso() -> str:
    """The clock as ISO-8601 UTC seconds with a ``Z`` (a state's ``updated_at``)."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

"""What a fetch reads and what it did: the fetch plan (ranges the store lacks) and
:class:`FetchResult` (counts, the cursor, and the store state it committed)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..store.parquet import CacheState

__all__ = ["FetchResult", "Segment", "fetch_plan"]


@dataclass(frozen=True)
class FetchResult:
    """What one :func:`fetch` did.

    Attributes
    ----------
    stream : str
    pages : int
        Pages received.
    events_received : int
        Records received, duplicates at page boundaries included.
    new_events : int
        Records stored that the cache did not hold before.
    requests : int
        HTTP requests sent (retries included).
    rate_limited : int
        HTTP 429 answers received.
    seconds_waited : float
        Time spent waiting for the rate limit, Retry-After and backoff.
    cursor : pandas.Timestamp or None
        Where the next fetch starts (UTC).
    rows : int
        Rows in the cache after the fetch.
    seconds : float
        Wall time of the fetch.
    other_stream_events : int
        Records of the other stream that arrived in this export (metric events under the
        ``ticket_events`` key) and were stored in that stream's cache, new there.
    state : CacheState or None
        The store's state as the fetch left it (what ``store.state()`` says right after its
        last commit: cursor, coverage, horizon, rows, and the table version of a Delta
        store); ``cursor`` and ``rows`` are read from it.
    """

    stream: str
    pages: int
    events_received: int
    new_events: int
    requests: int
    rate_limited: int
    seconds_waited: float
    cursor: pd.Timestamp | None
    rows: int
    seconds: float
    other_stream_events: int = 0
    state: CacheState | None = field(default=None, repr=False)

    def __str__(self) -> str:
        cursor = self.cursor.strftime("%Y-%m-%d %H:%M UTC") if self.cursor is not None else "-"
        other = ""
        if self.other_stream_events:
            other = (
                f" (+{self.other_stream_events:,} new metric events that arrived in this "
                "export, stored with metric_events)"
            )
        return (
            f"{self.stream}: {_count(self.pages, 'page')}, "
            f"{_count(self.events_received, 'event')} received, "
            f"{self.new_events:,} new{other}, {self.rows:,} cached; {self.requests:,} requests, "
            f"{self.rate_limited} rate-limited, caught up to {cursor} ({self.seconds:.1f} s)"
        )


def _count(n: int, noun: str) -> str:
    """``"1 page"``, ``"2 pages"``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


Segment = tuple[int, int | None]
"""A range of the export to read: ``start_time`` and where to stop (None: the present)."""


def fetch_plan(
    state: CacheState, since: pd.Timestamp | None, until: pd.Timestamp | None, force: bool
) -> list[Segment]:
    """The ranges one fetch reads, in order: only what the cache lacks, or what was forced.

    A forced fetch reads exactly ``[since, until)`` (``since`` defaults to the start of the
    coverage). Otherwise: ``[since, start of the coverage)`` when ``since`` is earlier (a
    backfill), then every gap inside the coverage (left by a forced range or a repair), then
    on from the cursor. ``until`` ends every range.
    """
    lo = int(since.timestamp()) if since is not None else None
    hi = int(-(-until.value // 1_000_000_000)) if until is not None else None
    coverage = state.coverage
    if force:
        start = lo if lo is not None else (coverage[0][0] if coverage else 0)
        wanted: list[Segment] = [(start, hi)]
    elif not coverage and state.cursor is None:
        wanted = [(lo if lo is not None else 0, hi)]
    else:
        wanted = []
        known = [
            x for x in (state.covered_since, coverage[0][0] if coverage else None) if x is not None
        ]
        if known and lo is not None and lo < min(known):
            wanted.append((lo, min(known)))
        tail = state.cursor if state.cursor is not None else coverage[-1][1]
        wanted += state.gaps(state.covered_since, tail)
        wanted.append((tail, hi))
    plan: list[Segment] = []
    for start, end in wanted:
        if end is not None and hi is not None:
            end = min(end, hi)
        if end is not None and start >= end:
            continue
        if plan and plan[-1][1] == start:  # back to back: one continuous read
            plan[-1] = (plan[-1][0], end)
        else:
            plan.append((start, end))
    return plan

"""Progress bar of a fetch: pages, events, how far the export has caught up, and an ETA.

The ETA knows the rate limit: the export advances by about ``seconds of history per page``
with each page, and pages come at most ``requests_per_minute`` a minute.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pandas as pd
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from .client import ClientStats, Page

__all__ = ["FetchProgress", "eta_seconds"]

_DAY = 86_400


def eta_seconds(
    origin: int,
    caught_up: int,
    now: float,
    pages: int,
    requests_per_minute: float,
    elapsed: float,
) -> float | None:
    """Seconds until the export reaches ``now``, or None before anything is known.

    History still to fetch divided by history per page gives the pages left; each takes the
    longer of the rate limit's interval and the observed time per page.

    Parameters
    ----------
    origin : int
        Unix seconds where the measured pages began.
    caught_up : int
        Unix seconds the export has reached (the last page's ``end_time``).
    now : float
        Unix seconds now.
    pages : int
        Pages received since ``origin``.
    requests_per_minute : float
        The request budget.
    elapsed : float
        Seconds those pages took.

    Examples
    --------
    >>> eta_seconds(0, 1000, 2000, pages=10, requests_per_minute=60, elapsed=5)
    10.0
    """
    if pages <= 0 or caught_up <= origin:
        return None
    per_page = (caught_up - origin) / pages
    pages_left = max(0.0, (now - caught_up) / per_page)
    seconds_per_page = max(60.0 / requests_per_minute, elapsed / pages)
    return pages_left * seconds_per_page


class FetchProgress:
    """A tqdm bar measured in days of history caught up, with pages and events as postfix.

    The bar opens with the first page (a fetch that fails at once prints nothing). When the
    fetch starts at the beginning of history (``start_time=0``), the first page tells where
    the account's history really begins, and the bar and ETA are measured from there.
    """

    def __init__(
        self, stream: str, start: int, requests_per_minute: float, *, enabled: bool = True
    ) -> None:
        self.stream = stream
        self.start = start
        self.rpm = requests_per_minute
        self.enabled = enabled
        self.pages = 0
        self.events = 0
        self.bar: tqdm | None = None
        self.origin = start
        self.origin_pages = 0
        self.origin_clock = time.monotonic()

    def _open(self, first_end_time: int | None) -> tqdm:
        if first_end_time is not None and first_end_time - self.start > 7 * _DAY:
            # start_time=0 or far before the first event: measure from the first page on
            self.origin = first_end_time
            self.origin_pages = 1
            self.origin_clock = time.monotonic()
        total_days = max((time.time() - self.origin) / _DAY, 1 / 24)
        return tqdm(
            total=round(total_days, 2),
            unit="day",
            desc=f"fetch {self.stream}",
            disable=not self.enabled,
            bar_format="{desc}: {percentage:3.0f}%|{bar}|{postfix}",
            mininterval=0.5,
            leave=True,
        )

    def update(self, page: Page, stats: ClientStats) -> None:
        """Account for one page received."""
        self.pages += 1
        self.events += page.count or 0
        if self.bar is None:
            self.bar = self._open(page.end_time)
        if page.end_time is None:
            return
        caught_up = page.end_time
        total = self.bar.total or 0
        if page.last:
            self.bar.n = total
            eta_text = "done"
        else:
            self.bar.n = round(min(max(caught_up - self.origin, 0) / _DAY, total), 2)
            eta = eta_seconds(
                self.origin, caught_up, time.time(), self.pages - self.origin_pages,
                self.rpm, time.monotonic() - self.origin_clock,
            )
            eta_text = _human(eta)
        day = pd.Timestamp(caught_up, unit="s", tz="UTC").strftime("%Y-%m-%d")
        self.bar.set_postfix_str(
            f"{self.pages:,} page{'' if self.pages == 1 else 's'}, {self.events:,} events, "
            f"caught up to {day}, "
            f"{stats.rate_limited} rate-limited, ETA {eta_text}",
            refresh=page.last,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _human(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}min"
    if seconds < 2 * _DAY:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / _DAY:.1f}d"

"""Progress bar of a fetch: pages, events, how far the export has caught up, and an ETA.

The ETA knows the rate limit: the export advances by about ``seconds of history per page``
with each page, and pages come at most ``requests_per_minute`` a minute.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TextIO

import pandas as pd

from .pacing import without_seconds

if TYPE_CHECKING:
    from tqdm import tqdm

    from .envelope import Page
    from .stats import ClientStats

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


def _bar_class() -> type:
    """tqdm's auto class (a widget in Jupyter, text elsewhere) with a ``status`` field.

    The status is formatted by ``bar_format`` directly, so no ", " is put before it (tqdm
    prefixes its own postfix with one).
    """
    from tqdm.auto import tqdm

    class _FetchBar(tqdm):  # type: ignore[misc, valid-type]
        status = ""

        @property
        def format_dict(self) -> dict:
            values = super().format_dict
            values["status"] = self.status
            return values

    return _FetchBar


class FetchProgress:
    """A tqdm bar measured in days of history caught up, redrawn at every page and wait.

    Shows pages, events, the day the export has caught up to, the requests that waited on
    the rate limit and an ETA; while the client waits (pacing, ``Retry-After``, backoff) it
    says how long and why. In Jupyter the bar is a notebook widget (``tqdm.auto``).

    The bar opens with the first page or the first wait (a fetch that fails at once prints
    nothing). When the fetch starts at the beginning of history (``start_time=0``), the first
    page tells where the account's history really begins, and the bar and ETA are measured
    from there.

    Parameters
    ----------
    stream : str
        Shown in the bar's description.
    start : int
        Unix seconds where the fetch starts.
    requests_per_minute : float
        The request budget (for the ETA).
    enabled : bool
        False shows nothing.
    file : text stream, optional
        Where the bar is drawn (default: stderr).

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> bar = FetchProgress("metric_events", 0, 10, file=out)
    >>> bar.waiting(6.0, "rate budget of 10 requests per 60 s for https://acme.zendesk.com")
    >>> "waiting 6s (rate limit)" in out.getvalue()
    True
    >>> bar.close()
    """

    def __init__(
        self,
        stream: str,
        start: int,
        requests_per_minute: float,
        *,
        enabled: bool = True,
        file: TextIO | None = None,
    ) -> None:
        self.stream = stream
        self.start = start
        self.rpm = requests_per_minute
        self.enabled = enabled
        self.file = file
        self.pages = 0
        self.events = 0
        self.rate_waits = 0
        self.caught_up: int | None = None
        self.bar: tqdm | None = None
        self.origin = start
        self.origin_pages = 0
        self.origin_clock = time.monotonic()
        self._eta_text = "?"

    def _open(self) -> tqdm:
        total_days = max((time.time() - self.origin) / _DAY, 1 / 24)
        return _bar_class()(
            total=round(total_days, 2),
            unit="day",
            desc=f"fetch {self.stream}",
            disable=not self.enabled,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {status}",
            mininterval=0,
            leave=True,
            file=self.file,
        )

    def _measure_from(self, first_end_time: int | None) -> None:
        """After the first page: measure from it when history starts long after ``start``."""
        if first_end_time is not None and first_end_time - self.start > 7 * _DAY:
            # start_time=0 or far before the first event: measure from the first page on
            self.origin = first_end_time
            self.origin_pages = 1
            self.origin_clock = time.monotonic()
        assert self.bar is not None
        self.bar.total = round(max((time.time() - self.origin) / _DAY, 1 / 24), 2)

    def _status(self, waiting: str = "") -> str:
        if self.caught_up is None:
            text = "waiting for the first page"
        else:
            day = pd.Timestamp(self.caught_up, unit="s", tz="UTC").strftime("%Y-%m-%d")
            text = (
                f"{self.pages:,} page{'s' if self.pages != 1 else ''}, {self.events:,} events, "
                f"caught up to {day}, ETA {self._eta_text}, "
                f"{self.rate_waits:,} waited on the rate limit"
            )
        return f"{text}; {waiting}" if waiting else text

    def _draw(self, status: str) -> None:
        assert self.bar is not None
        self.bar.status = status
        self.bar.refresh()

    def update(self, page: Page, stats: ClientStats) -> None:
        """Account for one page received and redraw the bar."""
        self.pages += 1
        self.events += page.count or 0
        self.rate_waits = stats.rate_waits
        first = self.bar is None or self.caught_up is None
        if self.bar is None:
            self.bar = self._open()
        if first:
            self._measure_from(page.end_time)
        if page.end_time is not None:
            self.caught_up = max(page.end_time, self.caught_up or page.end_time)
        total = self.bar.total or 0
        if page.last:
            self.bar.n = total
            self._eta_text = "done"
        elif self.caught_up is not None:
            self.bar.n = round(min(max(self.caught_up - self.origin, 0) / _DAY, total), 2)
            eta = eta_seconds(
                self.origin,
                self.caught_up,
                time.time(),
                self.pages - self.origin_pages,
                self.rpm,
                time.monotonic() - self.origin_clock,
            )
            self._eta_text = _human(eta)
        self._draw(self._status())

    def waiting(self, seconds: float, reason: str) -> None:
        """Show that the next request waits ``seconds`` (pacing, Retry-After, backoff)."""
        if seconds < 0.5:  # a moment: not worth a redraw
            return
        if self.bar is None:
            self.bar = self._open()
        self._draw(self._status(f"waiting {_human(seconds)} ({_short_reason(reason)})"))

    def close(self) -> None:
        """Leave the last state on screen."""
        if self.bar is not None:
            self.bar.close()


def _short_reason(reason: str) -> str:
    """The client's reason for a wait, short enough for one terminal line."""
    if reason.startswith("rate budget"):
        return "rate limit"
    reason = without_seconds(reason)  # the bar already says how long
    return reason if len(reason) <= 48 else reason[:45] + "..."


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

"""Pacing under Zendesk's rate limit: one sliding-window budget per account, and Retry-After.

Every request of one account in this process goes through one shared sliding-window log:
at most ``requests_per_minute`` requests in any 60 s window (so a burst of up to N, then the
next request when the oldest of the last N leaves the window). A request's entry is its
*completion* time, which is never earlier than the moment the server counted it, so the log
never under-counts and a paced fetch gets no 429. A 429 blocks the whole budget until its
``Retry-After`` has passed.
"""

from __future__ import annotations

import email.utils
import math
import re
import threading
from datetime import UTC

__all__ = [
    "RATE_WINDOW",
    "Pacer",
    "Slot",
    "budget",
    "parse_retry_after",
    "shared_pacer",
    "without_seconds",
]

RATE_WINDOW = 60.0
"""Seconds: Zendesk's rate limits are per minute."""
RETRY_AFTER_CEILING = 10.0 * 365 * 86_400
"""Seconds: a longer ``Retry-After`` reads as ten years."""


class Slot:
    """One request in a pacer's log: its reserved start, then its completion time."""

    __slots__ = ("done", "time")

    def __init__(self, at: float) -> None:
        self.time = at
        self.done = False


class Pacer:
    """Sliding-window log of one account's requests, shared by the Clients of a process.

    At most ``capacity`` requests in any ``window`` seconds. ``reserve`` hands out start
    times under a lock, so threads share the budget fairly; each entry later becomes the
    request's completion time (the latest moment the server can have counted it).
    """

    def __init__(self, requests_per_minute: float) -> None:
        self._lock = threading.Lock()
        self.capacity, self.window = budget(requests_per_minute)
        self._log: list[Slot] = []
        self._blocked_until = -math.inf

    def tighten(self, requests_per_minute: float) -> None:
        """Adopt a stricter budget (the strictest Client of an account wins)."""
        capacity, window = budget(requests_per_minute)
        with self._lock:
            if capacity / window < self.capacity / self.window:
                self.capacity, self.window = capacity, window

    def reserve(self, now: float, not_before: float = -math.inf) -> Slot:
        """Reserve the earliest start at or after ``max(now, not_before)`` the budget allows."""
        with self._lock:
            horizon = now - self.window
            self._log = [s for s in self._log if not (s.done and s.time <= horizon)]
            start = max(now, not_before, self._blocked_until)
            if len(self._log) >= self.capacity:
                times = sorted(s.time if s.done else max(s.time, now) for s in self._log)
                start = max(start, times[-self.capacity] + self.window)
            slot = Slot(start)
            self._log.append(slot)
            return slot

    def complete(self, slot: Slot, now: float) -> None:
        """Record that the request of ``slot`` finished at ``now``."""
        with self._lock:
            slot.time = max(slot.time, now)
            slot.done = True

    def block_until(self, moment: float) -> None:
        """No request of this account starts before ``moment`` (after a 429)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, moment)


def budget(requests_per_minute: float) -> tuple[int, float]:
    """(requests, seconds) of the window: 10/min -> (10, 60 s); 0.5/min -> (1, 120 s)."""
    capacity = max(1, int(requests_per_minute))
    return capacity, RATE_WINDOW * capacity / requests_per_minute


# One pacer per (account origin, clock). Every Client built with the default clock shares the
# account's budget; a test's fake clock gets a budget of its own, measured on that clock.
_PACERS: dict[tuple[str, object], Pacer] = {}
_PACERS_LOCK = threading.Lock()


def shared_pacer(origin: str, clock: object, requests_per_minute: float) -> Pacer:
    """The pacer of an account (its origin) measured on ``clock``, made at the first call.

    A later caller with a lower ``requests_per_minute`` tightens the shared budget.
    """
    with _PACERS_LOCK:
        pacer = _PACERS.get((origin, clock))
        if pacer is None:
            pacer = _PACERS[(origin, clock)] = Pacer(requests_per_minute)
            return pacer
    pacer.tighten(requests_per_minute)
    return pacer


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or None when absent or unreadable.

    Parameters
    ----------
    value : str or None
        The header: delay seconds (``"30"``; decimals tolerated) or an HTTP date.
    now : float
        Current Unix time, for the HTTP-date form (a past date gives 0).

    Examples
    --------
    >>> parse_retry_after("7", now=0.0)
    7.0
    >>> parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", now=30.0)
    30.0
    >>> parse_retry_after("soon", now=0.0) is None
    True
    """
    if value is None:
        return None
    text = value.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return min(float(text), RETRY_AFTER_CEILING)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:  # HTTP dates are GMT
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


def without_seconds(reason: str) -> str:
    """A wait's reason without its trailing ``" (58 s)"`` (for texts that say the wait).

    Examples
    --------
    >>> without_seconds("Retry-After of a 429 (58 s)")
    'Retry-After of a 429'
    """
    return re.sub(r" \([\d.e+]+ s\)$", "", reason)

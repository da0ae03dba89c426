"""What one :class:`~zdevents.export.client.Client` did: requests, retries and waits."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClientStats"]


@dataclass
class ClientStats:
    """Counters of one :class:`Client`.

    Attributes
    ----------
    requests : int
        HTTP requests sent, retries included.
    rate_limited : int
        429 answers received.
    retries : int
        Requests sent again after a 429, 5xx, network failure or malformed page.
    seconds_waited : float
        Time slept for pacing, ``Retry-After`` and backoff.
    rate_waits : int
        Requests that waited for the rate budget or a 429's ``Retry-After``.
    """

    requests: int = 0
    rate_limited: int = 0
    retries: int = 0
    seconds_waited: float = 0.0
    rate_waits: int = 0

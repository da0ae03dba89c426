"""The two Zendesk incremental exports zdevents reads, named once."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["METRIC_EVENTS", "STREAMS", "TICKET_EVENTS", "Stream", "get_stream"]


@dataclass(frozen=True)
class Stream:
    """One incremental export endpoint.

    Attributes
    ----------
    name : str
        zdevents' name for the stream (``metric_events`` or ``ticket_events``).
    path : str
        URL path of the endpoint.
    records_key : str
        Key of the records list in the page envelope.
    always_has_end_of_stream : bool
        False where Zendesk's documented envelope has no ``end_of_stream``; then a page with
        fewer than ``page_size`` items, or whose ``end_time`` does not advance, ends the stream.
    page_size : int
        Zendesk's page size for this export.
    """

    name: str
    path: str
    records_key: str
    always_has_end_of_stream: bool
    page_size: int = 1000


METRIC_EVENTS = Stream(
    name="metric_events",
    path="/api/v2/incremental/ticket_metric_events",
    records_key="ticket_metric_events",
    always_has_end_of_stream=False,
)
TICKET_EVENTS = Stream(
    name="ticket_events",
    path="/api/v2/incremental/ticket_events",
    records_key="ticket_events",
    always_has_end_of_stream=True,
)
STREAMS: dict[str, Stream] = {s.name: s for s in (METRIC_EVENTS, TICKET_EVENTS)}


def get_stream(stream: str | Stream) -> Stream:
    """Return the :class:`Stream` named ``stream`` (or ``stream`` itself).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.
    """
    if isinstance(stream, Stream):
        return stream
    try:
        return STREAMS[stream]
    except KeyError:
        known = ", ".join(sorted(STREAMS))
        raise ValueError(f"unknown stream {stream!r}; choose one of: {known}") from None

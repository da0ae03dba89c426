"""The two Zendesk incremental exports zdevents reads, and their options, named once."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "METRIC_EVENTS",
    "PAGINATION_MODES",
    "STREAMS",
    "SUPPORT_TYPE_SCOPES",
    "TICKET_EVENTS",
    "Stream",
    "get_stream",
]

PAGINATION_MODES = ("time", "cursor")
"""``time``: ``start_time``/``end_time`` pages of up to 1000 (the default); ``cursor``:
``page[size]``/``page[after]`` pages of up to 100 (metric events only)."""

SUPPORT_TYPE_SCOPES = ("agent", "ai_agent", "all")
"""Values of ticket_events' ``support_type_scope``; ``agent`` is Zendesk's default."""


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
        False where Zendesk's documented envelope has no ``end_of_stream``. A page without
        it ends the stream only when its ``end_time`` does not move past the page's
        ``start_time`` or has reached the withheld last minute (now - 60 s); a short page
        alone never does (see :meth:`zdevents.export.client.Client.pages`).
    cursor_page_size : int or None
        Largest ``page[size]`` of the export's cursor pagination; None when the export has
        no cursor pagination.
    per_page : bool
        Whether Zendesk documents ``per_page`` for this export.
    """

    name: str
    path: str
    records_key: str
    always_has_end_of_stream: bool
    cursor_page_size: int | None = None
    per_page: bool = False


METRIC_EVENTS = Stream(
    name="metric_events",
    path="/api/v2/incremental/ticket_metric_events",
    records_key="ticket_metric_events",
    always_has_end_of_stream=False,
    cursor_page_size=100,
)
TICKET_EVENTS = Stream(
    name="ticket_events",
    path="/api/v2/incremental/ticket_events",
    records_key="ticket_events",
    always_has_end_of_stream=True,
    per_page=True,
)
STREAMS: dict[str, Stream] = {s.name: s for s in (METRIC_EVENTS, TICKET_EVENTS)}


def get_stream(stream: str | Stream) -> Stream:
    """Return the :class:`Stream` named ``stream`` (or ``stream`` itself).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.

    Examples
    --------
    >>> get_stream("metric_events").cursor_page_size
    100
    """
    if isinstance(stream, Stream):
        return stream
    try:
        return STREAMS[stream]
    except KeyError:
        known = ", ".join(sorted(STREAMS))
        raise ValueError(f"unknown stream {stream!r}; choose one of: {known}") from None

"""Reading Zendesk's page envelope: the fields that say where an export page ends.

An export page is ``{"<records key>": [...], "count": .., "end_time": .., "end_of_stream": ..,
"next_page": ..}`` (time pagination) or carries ``meta.has_more``, ``meta.after_cursor`` and
``links.next`` (cursor pagination). The client reads only these, without decoding the
records (the stream parsers do that later, once, with pyarrow); the stopping rules of
:meth:`zdevents.export.client.Client.pages` take their inputs from here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import PageError
from ..streams import METRIC_EVENTS, TICKET_EVENTS
from .redact import iso_time, shorten

__all__ = [
    "RECORDS_KEYS",
    "CursorPage",
    "Envelope",
    "Page",
    "check_progress",
    "read_cursor_page",
    "read_envelope",
    "record_seconds",
]

RECORDS_KEYS = (METRIC_EVENTS.records_key, TICKET_EVENTS.records_key)
"""The keys an export page may hold its records under."""


@dataclass(frozen=True)
class Page:
    """One page of an incremental export, as Zendesk sent it.

    Attributes
    ----------
    url : str
        The URL requested, query included (never carries credentials).
    start_time : int
        The ``start_time`` asked for (after clamping).
    body : bytes
        The raw JSON body, untouched.
    records_key : str or None
        Key the records list was found under (``ticket_metric_events`` or ``ticket_events``;
        a metric-events page may carry its records under ``ticket_events``).
    count, end_time, end_of_stream, next_page
        The envelope's values (None when absent). For a cursor-paginated page: the number
        of records, the newest record time seen so far, ``not meta.has_more`` and
        ``links.next``.
    last : bool
        True when the stopping rules say no page follows.
    after_cursor : str or None
        Cursor pagination only: where the next page starts (``meta.after_cursor``, or the
        last one known when the page has none).
    """

    url: str
    start_time: int
    body: bytes
    records_key: str | None
    count: int | None
    end_time: int | None
    end_of_stream: bool | None
    next_page: str | None
    last: bool
    after_cursor: str | None = None


@dataclass(frozen=True)
class Envelope:
    """The top-level fields of an export page (see :func:`read_envelope`)."""

    records_key: str
    count: int | None
    end_time: int
    end_of_stream: bool | None
    next_page: str | None
    records_empty: bool


@dataclass(frozen=True)
class CursorPage:
    """What a cursor-paginated page says (see :func:`read_cursor_page`).

    Attributes
    ----------
    records_key : str
    count : int
        Records on the page.
    times : list of int
        Unix seconds of the records that carry a readable time.
    has_more : bool
        ``meta.has_more``.
    after_cursor, next_url : str or None
        ``meta.after_cursor`` and ``links.next``.
    """

    records_key: str
    count: int
    times: list[int]
    has_more: bool
    after_cursor: str | None
    next_url: str | None


# ---------------------------------------------------------------------------------- envelope

# A JSON scalar. Inside a JSON string every '"' is escaped, so none of these patterns can
# start or end in the middle of a string value when applied from a structural position.
_SCALAR = rb'(?:"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)'
_PAIR = re.compile(rb'"((?:[^"\\]|\\.)*)"\s*:\s*(' + _SCALAR + rb")", re.DOTALL)
# The head: '{', scalar members, then the records key and its '['. Anchored at the start,
# so a records key matched here is top-level whatever the records contain.
_HEAD = re.compile(
    rb'\s*\{\s*((?:"(?:[^"\\]|\\.)*"\s*:\s*' + _SCALAR + rb"\s*,\s*)*)"
    rb'"(ticket_metric_events|ticket_events)"\s*:\s*\[',
    re.DOTALL,
)
# The tail: the records array's ']', scalar members, the final '}'. Searched only in the last
# few KB of the body, so the cost does not grow with the page.
_TAIL = re.compile(
    rb"\]\s*((?:,\s*" + rb'"(?:[^"\\]|\\.)*"\s*:\s*' + _SCALAR + rb"\s*)*)\}\s*\Z",
    re.DOTALL,
)
_TAIL_WINDOW = 16384
_ENVELOPE_KEYS = ("count", "end_time", "end_of_stream", "next_page")


def read_envelope(body: bytes, *, records_key: str = METRIC_EVENTS.records_key) -> Envelope:
    """Read a page's envelope without decoding its records.

    Fast path: the members before the records array (matched from the body's start) and the
    members after it (matched back from the body's end) are scalar ``"key": value`` pairs;
    only those are read, so text inside records (a comment saying ``"end_time": 5``, a
    record's own ``count``) is never mistaken for the envelope, in any key order, compact
    or pretty-printed. When the layout is anything else (a non-scalar top-level member,
    duplicate keys) the body is decoded with :func:`json.loads` instead.

    Parameters
    ----------
    body : bytes
        The page's raw JSON.
    records_key : str
        Preferred records key when both ``ticket_metric_events`` and ``ticket_events`` are
        present (the stream's own key).

    Returns
    -------
    Envelope

    Raises
    ------
    PageError
        When the body is not a JSON object (truncated, HTML, ...), has no records list, or
        ``end_time`` is missing or not an integer (the message says which).

    Examples
    --------
    >>> env = read_envelope(b'{"ticket_events": [], "end_time": 1717430460, "count": 0}')
    >>> env.records_key, env.end_time, env.count, env.end_of_stream, env.records_empty
    ('ticket_events', 1717430460, 0, None, True)
    """
    stripped = body.strip()
    if not stripped.startswith(b"{"):
        raise PageError("the body is not a JSON object (it does not start with '{')")
    if not stripped.endswith(b"}"):
        raise PageError("the body does not end with '}': truncated or not JSON")
    fast = _read_envelope_fast(body)
    if fast is not None:
        key, values, records_empty = fast
    else:
        key, values, records_empty = _read_envelope_json(body, records_key)
    return _checked_envelope(key, values, records_empty)


def _read_envelope_fast(body: bytes) -> tuple[str, dict[str, object], bool] | None:
    head = _HEAD.match(body)
    if head is None:
        return None
    bracket = head.end()  # just after '['
    window_start = max(bracket, len(body) - _TAIL_WINDOW)
    tail = _TAIL.search(body, window_start)
    if tail is None:
        return None
    values: dict[str, object] = {}
    for region in (head.group(1), tail.group(1)):
        for pair in _PAIR.finditer(region):
            name = pair.group(1).decode("utf-8", "replace")
            if name in values or name in RECORDS_KEYS:
                return None  # duplicate or a second records key: let json decide
            if name in _ENVELOPE_KEYS:
                try:
                    values[name] = json.loads(pair.group(2))
                except ValueError:
                    return None
            else:
                values[name] = None
    values = {k: v for k, v in values.items() if k in _ENVELOPE_KEYS}
    records_empty = body[bracket : tail.start()].strip() == b""
    return head.group(2).decode(), values, records_empty


def _read_envelope_json(body: bytes, records_key: str) -> tuple[str, dict[str, object], bool]:
    try:
        data = json.loads(body)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise PageError(f"the body is not valid JSON ({shorten(str(exc), 120)})") from None
    if not isinstance(data, dict):
        raise PageError("the body is not a JSON object")
    keys = [records_key] + [k for k in RECORDS_KEYS if k != records_key]
    found = next((k for k in keys if isinstance(data.get(k), list)), None)
    if found is None:
        raise PageError(
            "the page has no records list under 'ticket_metric_events' or 'ticket_events'"
        )
    values = {k: data[k] for k in _ENVELOPE_KEYS if k in data}
    return found, values, len(data[found]) == 0


def _checked_envelope(key: str, values: dict[str, object], records_empty: bool) -> Envelope:
    end_time = values.get("end_time")
    if end_time is None:
        raise PageError("the page has no end_time")
    if not _is_int(end_time):
        raise PageError(f"end_time must be an integer, not {shorten(repr(end_time), 40)}")
    count = values.get("count")
    if count is not None and not _is_int(count):
        raise PageError(f"count must be an integer, not {shorten(repr(count), 40)}")
    eos = values.get("end_of_stream")
    if eos is not None and not isinstance(eos, bool):
        raise PageError(f"end_of_stream must be true or false, not {shorten(repr(eos), 40)}")
    next_page = values.get("next_page")
    if next_page is not None and not isinstance(next_page, str):
        raise PageError(f"next_page must be a string, not {shorten(repr(next_page), 40)}")
    return Envelope(
        records_key=key,
        count=count,  # type: ignore[arg-type]
        end_time=end_time,  # type: ignore[arg-type]
        end_of_stream=eos,
        next_page=next_page,
        records_empty=records_empty,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_cursor_page(body: bytes, url: str) -> CursorPage:
    """Read a cursor-paginated page's records key, record times, ``meta`` and ``links``.

    Parameters
    ----------
    body : bytes
        The page's raw JSON.
    url : str
        The URL it came from, as messages may show it (secrets masked).

    Raises
    ------
    PageError
        When the body is not a JSON object with a records list and a boolean
        ``meta.has_more``, or ``meta.after_cursor`` / ``links.next`` is not a string.

    Examples
    --------
    >>> page = read_cursor_page(
    ...     b'{"ticket_metric_events": [{"time": "2024-01-02T03:04:05Z"}],'
    ...     b' "meta": {"has_more": false, "after_cursor": "c1"}, "links": {"next": null}}', "/x")
    >>> page.count, page.times, page.has_more, page.after_cursor
    (1, [1704164645], False, 'c1')
    """
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise PageError(f"the page is not valid JSON ({shorten(str(exc), 120)})", url=url) from None
    if not isinstance(data, dict):
        raise PageError("the page is not a JSON object", url=url)
    key = next((k for k in RECORDS_KEYS if isinstance(data.get(k), list)), None)
    if key is None:
        raise PageError(
            "the page has no records list under 'ticket_metric_events' or 'ticket_events'",
            url=url,
        )
    meta = data.get("meta")
    links = data.get("links")
    if not isinstance(meta, dict) or not isinstance(meta.get("has_more"), bool):
        raise PageError(
            "the cursor-paginated page has no boolean meta.has_more "
            "(does this export support page[size]?)",
            url=url,
        )
    after = meta.get("after_cursor")
    if after is not None and not isinstance(after, str):
        raise PageError(f"meta.after_cursor must be a string, not {type(after).__name__}", url=url)
    next_url = links.get("next") if isinstance(links, dict) else None
    if next_url is not None and not isinstance(next_url, str):
        raise PageError(f"links.next must be a string, not {type(next_url).__name__}", url=url)
    times = [t for t in (record_seconds(r) for r in data[key]) if t is not None]
    return CursorPage(key, len(data[key]), times, meta["has_more"], after, next_url)


def record_seconds(record: object) -> int | None:
    """Unix seconds of a record's ``time`` (metric events) or ``timestamp`` (audits)."""
    if not isinstance(record, dict):
        return None
    stamp = record.get("timestamp")
    if isinstance(stamp, int) and not isinstance(stamp, bool):
        return stamp
    text = record.get("time")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def check_progress(start_time: int, envelope: Envelope, url: str) -> bool:
    """Whether a time-paginated page moved the export forward (``end_time > start_time``).

    Raises
    ------
    PageError
        When ``end_time`` is earlier than ``start_time`` (the export would move backwards),
        or does not move while ``end_of_stream`` is false (the same page again).

    Examples
    --------
    >>> env = read_envelope(b'{"ticket_events": [], "end_time": 20, "end_of_stream": true}')
    >>> check_progress(10, env, "/x"), check_progress(20, env, "/x")
    (True, False)
    """
    if envelope.end_time < start_time:
        raise PageError(
            f"the page's end_time {envelope.end_time} ({iso_time(envelope.end_time)}) is "
            f"earlier than its start_time {start_time} ({iso_time(start_time)}): the export "
            "would move backwards; stopping without moving the cursor. Nothing was lost: the "
            "next fetch resumes from this start_time",
            url=url,
        )
    advanced = envelope.end_time > start_time
    if not advanced and envelope.end_of_stream is False:
        what = "an empty page" if envelope.records_empty or envelope.count == 0 else "a page"
        raise PageError(
            f"the export's cursor did not advance past {iso_time(start_time)} "
            f"(start_time={start_time}, end_time={envelope.end_time}, end_of_stream false, "
            f"{what}): Zendesk returned the same page again; stopping instead of looping. "
            "Nothing was lost: the next fetch resumes from this start_time",
            url=url,
        )
    return advanced

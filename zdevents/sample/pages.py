"""Zendesk's envelopes and pagination over the records the local server holds.

* :func:`time_page` - time-based incremental pages: inclusive ``start_time``, pages of
  ``size`` extended to the end of their last second, ``end_time``, ``next_page`` and
  (optionally) ``end_of_stream``;
* :func:`cursor_page` - cursor pages of metric events (``page[size]`` up to 100,
  ``page[after]``; ``meta.has_more``, ``meta.after_cursor``, ``links.next``);
* :func:`names_page` - ``/api/v2/groups`` and ``/api/v2/brands`` with cursor pagination.

Records are serialized once per variant into a :class:`Dataset`; :class:`Datasets` keeps
the variants and what was served of each. Requests a page cannot answer raise
:class:`BadRequest` with the status and body Zendesk would send.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from urllib.parse import urlencode

from ..streams import METRIC_EVENTS, Stream
from .handler import ENCODE

__all__ = [
    "CURSOR_MAX",
    "TOO_RECENT",
    "BadRequest",
    "Dataset",
    "Datasets",
    "cursor_page",
    "keyed",
    "names_page",
    "start_time_param",
    "time_page",
]

TOO_RECENT = {
    "error": "InvalidValue",
    "description": "Too recent start_time. Use a start_time older than 1 minute",
}
"""The 422 body for a ``start_time`` less than a minute old."""
CURSOR_MAX = 100
"""Largest ``page[size]`` of cursor pagination."""

Keyed = tuple[int, int, dict]  # (unix time, id, record)


class BadRequest(Exception):
    """A request answered with an error ``status`` and JSON ``payload`` instead of a page."""

    def __init__(self, status: int, payload: dict) -> None:
        super().__init__(status, payload)
        self.status = status
        self.payload = payload


class Dataset:
    """Records pre-serialized once, sorted by (time, id), in one bytes blob."""

    def __init__(self, keyed: Iterable[Keyed]) -> None:
        items = [(t, rid, ENCODE(rec).encode()) for t, rid, rec in keyed]
        items.sort()  # (time, id): ids are unique, so the bytes are never compared
        self.times = array("q", (item[0] for item in items))
        self.ids = array("q", (item[1] for item in items))
        self.offsets = array("q")
        position = 0
        for item in items:
            self.offsets.append(position)
            position += len(item[2]) + 1
        self.offsets.append(position)
        self.blob = b",".join(item[2] for item in items)
        self.served: list[tuple[int, int]] = []
        """Index ranges ``[a, b)`` of the pages served, in order."""

    def __len__(self) -> int:
        return len(self.times)

    def body(self, a: int, b: int) -> bytes:
        """Records ``a..b-1`` joined by commas."""
        if a >= b:
            return b""
        return self.blob[self.offsets[a] : self.offsets[b] - 1]


class Datasets:
    """The serialized variants of each stream, built on first use by ``build``.

    A variant is ``(stream, flag, scope)``: ``flag`` is exclude_deleted for metric events,
    include_comments for ticket events; ``scope`` the support_type_scope of ticket events.
    """

    def __init__(self, build: Callable[[Stream, bool, str], Iterable[Keyed]]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._datasets: dict[tuple[str, bool, str], Dataset] = {}

    def get(self, stream: Stream, flag: bool, scope: str = "agent") -> Dataset:
        """The dataset of a variant (metric events have no scope)."""
        if stream is METRIC_EVENTS:
            scope = "all"
        key = (stream.name, flag, scope)
        dataset = self._datasets.get(key)
        if dataset is not None:
            return dataset
        with self._build_lock:
            dataset = self._datasets.get(key)
            if dataset is None:
                dataset = Dataset(self._build(stream, flag, scope))
                with self._lock:
                    self._datasets[key] = dataset
        return dataset

    def serve(self, dataset: Dataset, a: int, b: int) -> None:
        """Note that records ``a..b-1`` of ``dataset`` were served as one page."""
        with self._lock:
            dataset.served.append((a, b))

    def served_pages(self, stream_name: str) -> list[list[int]]:
        """Ids of each page served of every variant of a stream (each variant in order)."""
        with self._lock:
            return [
                list(dataset.ids[a:b])
                for (name, *_), dataset in self._datasets.items()
                if name == stream_name
                for a, b in dataset.served
            ]


def keyed(records: Iterable[dict]) -> Iterator[Keyed]:
    """``(unix_time, id, record)`` of records given as dicts (``time``, ``timestamp`` or
    ``created_at``)."""
    for record in records:
        yield _record_time(record), int(record.get("id", 0)), record


def _record_time(record: dict) -> int:
    value = record.get("timestamp")
    if isinstance(value, int | float):
        return int(value)
    text = record.get("time") or record.get("created_at")
    if not isinstance(text, str):
        raise ValueError(f"record {record.get('id')!r} has no time, timestamp or created_at")
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def time_page(
    datasets: Datasets,
    dataset: Dataset,
    stream: Stream,
    *,
    base_url: str,
    path: str,
    params: dict[str, str],
    start_time: int,
    horizon: int,
    size: int,
    end_of_stream: bool,
    kind: str | None = None,
) -> bytes:
    """A time-based page from ``start_time`` (records after ``horizon`` are withheld).

    ``end_of_stream`` puts the flag in the envelope; ``kind`` is the fault that shapes the
    page (``empty``, ``loop``, ``foreign`` with ``base_url`` pointing elsewhere).
    """
    times = dataset.times
    hi = bisect.bisect_right(times, horizon)
    a = bisect.bisect_left(times, start_time, 0, hi)
    b = min(a + size, hi)
    if a < b < hi:
        b = bisect.bisect_right(times, times[b - 1], b, hi)
    if kind == "empty":
        b = a
    datasets.serve(dataset, a, b)
    if b > a:
        end_time = times[b - 1]
        if end_time <= start_time and b < hi:
            end_time = start_time + 1  # everything at start_time was served
    else:
        end_time = start_time
    at_end = b >= hi and kind not in ("empty", "loop")
    if kind == "loop":
        end_time = start_time
    next_page = f"{base_url}{path}?{urlencode(dict(params, start_time=str(end_time)))}"
    with_eos = end_of_stream or kind in ("empty", "loop")
    tail = [b'],"next_page":', ENCODE(next_page).encode(), b',"count":', str(b - a).encode()]
    if with_eos:
        tail += [b',"end_of_stream":', b"true" if at_end else b"false"]
    tail += [b',"end_time":', str(end_time).encode(), b"}"]
    return b"".join([b'{"', stream.records_key.encode(), b'":[', dataset.body(a, b), *tail])


def cursor_page(
    datasets: Datasets,
    dataset: Dataset,
    *,
    base_url: str,
    path: str,
    params: dict[str, str],
    horizon: int,
    kind: str | None = None,
) -> bytes:
    """A cursor page of metric events (``page[size]`` <= 100), from ``page[after]`` or
    ``start_time``; ``kind`` ``empty``/``loop`` repeat the cursor with ``has_more``."""
    try:
        size = max(1, min(CURSOR_MAX, int(params.get("page[size]", CURSOR_MAX))))
    except ValueError:
        raise BadRequest(
            400,
            {"error": "InvalidPaginationParameter", "description": "page[size] must be an integer"},
        ) from None
    times, ids = dataset.times, dataset.ids
    hi = bisect.bisect_right(times, horizon)
    after = params.get("page[after]")
    if after is not None:
        position = _decode_cursor(after)
        if position is None:
            raise BadRequest(
                400,
                {
                    "error": "InvalidPaginationParameter",
                    "description": "page[after] is not a valid cursor",
                },
            )
        a = bisect.bisect_left(times, position[0])
        while a < len(times) and times[a] == position[0] and ids[a] <= position[1]:
            a += 1
    else:
        start_time = start_time_param(params)
        if start_time > horizon:
            raise BadRequest(422, TOO_RECENT)
        a = bisect.bisect_left(times, start_time, 0, hi)
    a = min(a, hi)
    b = min(a + size, hi)
    if kind == "empty":
        b = a
    datasets.serve(dataset, a, b)
    has_more = b < hi or kind in ("empty", "loop")
    after_cursor = _encode_cursor(times[b - 1], ids[b - 1]) if b > a else None
    before_cursor = _encode_cursor(times[a], ids[a]) if b > a else None
    if kind in ("empty", "loop"):
        after_cursor = after

    def link(cursor: str | None, key: str) -> str | None:
        if cursor is None:
            return None
        query = {k: v for k, v in params.items() if k not in ("page[after]", "page[before]")}
        return f"{base_url}{path}?{urlencode({**query, 'page[size]': str(size), key: cursor})}"

    tail = ENCODE(
        {
            "meta": {
                "has_more": has_more,
                "after_cursor": after_cursor,
                "before_cursor": before_cursor,
            },
            "links": {
                "prev": link(before_cursor, "page[before]"),
                "next": link(after_cursor, "page[after]") if has_more else None,
            },
        }
    )
    return b"".join([b'{"ticket_metric_events":[', dataset.body(a, b), b"],", tail[1:].encode()])


def names_page(names: dict[int, str], kind: str, params: dict[str, str], base_url: str) -> dict:
    """A page of ``/api/v2/groups`` or ``/api/v2/brands`` (``kind``) with Zendesk's cursor
    pagination (``page[size]``, ``page[after]``; ``meta.has_more``, ``links.next``)."""
    ids = sorted(names)
    try:
        size = max(1, min(100, int(params.get("page[size]", "100"))))
        start = int(params.get("page[after]", "0"))
    except ValueError:
        raise BadRequest(400, {"error": "InvalidPaginationParameter"}) from None
    chunk = ids[start : start + size]
    more = start + size < len(ids)
    records = [
        {
            "id": i,
            "name": names[i],
            "url": f"{base_url}/api/v2/{kind}/{i}.json",
            "default": i == ids[0],
            "deleted": False,
        }
        for i in chunk
    ]
    after = str(start + size)
    return {
        kind: records,
        "meta": {
            "has_more": more,
            "after_cursor": after if more else None,
            "before_cursor": str(start) if chunk else None,
        },
        "links": {
            "next": f"{base_url}/api/v2/{kind}.json?"
            + urlencode({"page[size]": size, "page[after]": after})
            if more
            else None,
            "prev": None,
        },
    }


def start_time_param(params: dict[str, str]) -> int:
    """The ``start_time`` parameter (400 when it is missing or not an integer)."""
    try:
        return int(params.get("start_time", ""))
    except ValueError:
        raise BadRequest(
            400,
            {
                "error": "InvalidValue",
                "description": "start_time is required and must be an integer",
            },
        ) from None


def _encode_cursor(seconds: int, record_id: int) -> str:
    return base64.urlsafe_b64encode(f"{seconds}:{record_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int] | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        seconds, record_id = text.split(":")
        return int(seconds), int(record_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None

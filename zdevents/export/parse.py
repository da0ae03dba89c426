"""Raw Zendesk page bodies -> typed Arrow tables -> pandas frames.

Two streams, two paths:

* **metric events** (dense: tens of millions of rows) are parsed by pyarrow's JSON reader with
  an explicit schema of the page envelope: the bodies are joined one per line and read in
  parallel, so no Python dict per event is ever made. Types never depend on what a batch
  contains; a value of the wrong type, invalid JSON or invalid UTF-8 raises
  :class:`~zdevents.errors.PageError` naming the page (and the field when known).
* **ticket events** (audits, far less dense, polymorphic) are parsed page by page with
  :func:`json.loads` and built column-wise.

Both build tables in the storage schemas of :mod:`zdevents.schema`.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from ..errors import PageError
from ..schema import (
    CHILD_EVENT_TYPE,
    METRIC_EVENTS_SCHEMA,
    TICKET_CHANGES_SCHEMA,
    TICKET_EVENTS_SCHEMA,
    TIME_TYPE,
    empty_table,
    to_pandas,
)

__all__ = [
    "is_metric_event",
    "metric_events_frame",
    "metric_events_table",
    "ticket_changes",
    "ticket_events_table",
]

log = logging.getLogger(__name__)

_METRIC_KEYS = ("ticket_metric_events", "ticket_events")
_REQUIRED = ("id", "ticket_id", "metric", "type", "time")

# ---------------------------------------------------------------------------------- JSON schema
# Times are parsed at ns precision (any number of fractional digits up to 9) and truncated to ms.
_JSON_SLA = pa.struct(
    [
        ("target", pa.int64()),
        ("target_in_seconds", pa.int64()),
        ("business_hours", pa.bool_()),
        ("policy", pa.struct([("id", pa.int64()), ("title", pa.string())])),
    ]
)
_JSON_METRIC_EVENT = pa.struct(
    [
        ("id", pa.int64()),
        ("ticket_id", pa.int64()),
        ("metric", pa.string()),
        ("instance_id", pa.int64()),
        ("type", pa.string()),
        ("time", pa.timestamp("ns", tz="UTC")),
        ("sla", _JSON_SLA),
        ("group_sla", _JSON_SLA),
        ("status", pa.struct([("calendar", pa.int64()), ("business", pa.int64())])),
        ("deleted", pa.bool_()),
    ]
)
_JSON_METRIC_ENVELOPE = pa.schema(
    [
        ("count", pa.int64()),
        ("end_time", pa.int64()),
        ("end_of_stream", pa.bool_()),
        ("next_page", pa.string()),
        ("ticket_metric_events", pa.list_(_JSON_METRIC_EVENT)),
        ("ticket_events", pa.list_(_JSON_METRIC_EVENT)),
    ]
)
_PARSE_OPTIONS = pajson.ParseOptions(
    explicit_schema=_JSON_METRIC_ENVELOPE, unexpected_field_behavior="ignore"
)
_MIN_BLOCK = 1 << 20
PARSE_PAGES = 25
"""Pages parsed per pyarrow JSON read: a few MB, so the reader's buffers stay small."""
_COLUMN_RE = re.compile(r"Column\(([^)]*)\)")


class _BadPage(Exception):
    """Internal: one page (or a batch) failed; ``field`` names the field when known."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


# ---------------------------------------------------------------------------------- metric events
def metric_events_table(bodies: Sequence[bytes], urls: Sequence[str] | None = None) -> pa.Table:
    """Parse raw page bodies of the metric-event export into one typed table.

    Records are read under ``ticket_metric_events`` and also under ``ticket_events`` (Zendesk's
    reference shows metric events under that key). Unknown fields are ignored; unknown
    ``metric``/``type`` values are kept. Rows keep page order (no dedupe: the cache does it).

    Parameters
    ----------
    bodies : sequence of bytes
        Whole JSON envelopes exactly as Zendesk returned them.
    urls : sequence of str, optional
        The pages' URLs, named in errors.

    Returns
    -------
    pyarrow.Table
        In :data:`METRIC_EVENTS_SCHEMA`.

    Raises
    ------
    PageError
        Invalid JSON or UTF-8, a value of the wrong type, or a record without ``id``,
        ``ticket_id``, ``metric``, ``type`` or ``time``; the message names the page (and the field).

    Examples
    --------
    >>> body = (b'{"ticket_metric_events": [{"id": 1, "ticket_id": 7, "metric": "reply_time",'
    ...         b' "instance_id": 1, "type": "activate", "time": "2024-01-02T03:04:05Z"}]}')
    >>> t = metric_events_table([body])
    >>> t.num_rows, t["metric"][0].as_py(), str(t.schema.field("time").type)
    (1, 'reply_time', 'timestamp[ms, tz=UTC]')
    """
    if urls is not None and len(urls) != len(bodies):
        raise ValueError(f"got {len(bodies)} bodies but {len(urls)} urls")
    if not bodies:
        return empty_table("metric_events")
    chunks = [bodies[i : i + PARSE_PAGES] for i in range(0, len(bodies), PARSE_PAGES)]
    tables = _parse_chunks(chunks)
    for n, table in enumerate(tables):
        if not isinstance(table, _BadPage):
            continue
        if len(bodies) == 1:
            raise _page_error(table, urls, 0) from None
        for i, body in enumerate(chunks[n], start=n * PARSE_PAGES):
            try:
                _metric_table([body])
            except _BadPage as page_error:
                raise _page_error(page_error, urls, i) from None
        raise _page_error(table, None, 0) from None  # only the batch fails: say so
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def metric_events_frame(bodies: Sequence[bytes], urls: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`metric_events_table` as a pandas frame (see :func:`to_pandas`).

    Examples
    --------
    >>> body = (b'{"ticket_metric_events": [{"id": 1, "ticket_id": 7, "metric": "reply_time",'
    ...         b' "instance_id": 1, "type": "activate", "time": "2024-01-02T03:04:05Z"}]}')
    >>> str(metric_events_frame([body])["time"].dtype)
    'datetime64[ms, UTC]'
    """
    return to_pandas(metric_events_table(bodies, urls), "metric_events")


def _page_error(err: _BadPage, urls: Sequence[str] | None, index: int) -> PageError:
    url = urls[index] if urls is not None else ""
    where = f"page {url}" if url else f"page #{index + 1} of the batch"
    what = f"field {err.field!r}: " if err.field else ""
    return PageError(f"{where} could not be read: {what}{err.reason}", url=url)


def _ndjson(bodies: Sequence[bytes]) -> tuple[bytes, int]:
    longest = 0
    lines = []
    for body in bodies:
        if not isinstance(body, bytes | bytearray | memoryview):
            raise _BadPage(f"body is {type(body).__name__}, not bytes")
        body = bytes(body)
        if not body.isascii():
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _BadPage(f"invalid UTF-8 at byte {exc.start}") from None
        if b"\n" in body or b"\r" in body:
            body = body.replace(b"\n", b" ").replace(b"\r", b" ")
        if not body or body.isspace():
            raise _BadPage("the body is empty, not a JSON object")
        longest = max(longest, len(body))
        lines.append(body)
    return b"\n".join(lines), longest


def _parse_chunks(chunks: list[Sequence[bytes]]) -> list[pa.Table | _BadPage]:
    """Parse chunks of pages, several at once: each chunk is one single-threaded JSON read.

    One read per chunk on as many threads as Arrow uses keeps every core busy to the end of
    the batch (a multi-threaded read of one chunk idles at its tail) and costs less CPU.
    """

    def parse(chunk: Sequence[bytes], threads: bool = False) -> pa.Table | _BadPage:
        try:
            return _metric_table(chunk, threads)
        except _BadPage as exc:
            return exc

    workers = min(len(chunks), pa.cpu_count())
    if workers < 2:
        return [parse(chunk, threads=True) for chunk in chunks]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zdevents-parse") as pool:
        return list(pool.map(parse, chunks))


def _metric_table(bodies: Sequence[bytes], threads: bool = True) -> pa.Table:
    data, longest = _ndjson(bodies)
    block = max(_MIN_BLOCK, longest + 2)
    try:
        pages = pajson.read_json(
            io.BytesIO(data),
            read_options=pajson.ReadOptions(use_threads=threads, block_size=block),
            parse_options=_PARSE_OPTIONS,
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        message = str(exc)
        match = _COLUMN_RE.search(message)
        field = _json_path(match.group(1)) if match else None
        if len(bodies) == 1:  # name the field and record (pyarrow does not always say)
            found = _find_bad_value(bodies[0], field)
            if found is not None:
                field, message = found[0], f"record #{found[1] + 1}: {message}"
        raise _BadPage(message, field) from None
    if pages.num_rows != len(bodies):
        raise _BadPage("the body is not exactly one JSON object")
    keys = [key for key in _METRIC_KEYS if pages[key].null_count < len(pages[key])]
    if not keys:
        return empty_table("metric_events")
    parts = [pc.list_flatten(pages[key]) for key in keys]
    records = pa.chunked_array(
        [chunk for part in parts for chunk in part.chunks], type=_JSON_METRIC_EVENT
    )
    if len(keys) > 1:
        # pages of a batch may use either key: keep page order (keep-last dedupe relies on it)
        order = pa.table(
            {
                "page": pa.chunked_array(
                    [
                        chunk.cast(pa.int64())
                        for key in keys
                        for chunk in pc.list_parent_indices(pages[key]).chunks
                    ],
                    type=pa.int64(),
                ),
                "seq": pa.array(range(len(records)), pa.int64()),
            }
        )
        by_page = pc.sort_indices(order, [("page", "ascending"), ("seq", "ascending")])
        records = records.take(by_page)
    return _metric_columns(records)


def _find_bad_value(body: bytes, want: str | None = None) -> tuple[str, int] | None:
    """(field path, record index) of the first value that does not fit the JSON schema.

    ``want``: only a value at this path (the one pyarrow named) counts.
    """
    try:
        page = json.loads(body)
    except ValueError:
        return None
    if not isinstance(page, dict):
        return None
    for key in _METRIC_KEYS:
        records = page.get(key)
        if not isinstance(records, list):
            continue
        for n, record in enumerate(records):
            path = _bad_path(record, _JSON_METRIC_EVENT) if isinstance(record, dict) else None
            if path is not None and want in (None, f"{key}[].{path}"):
                return f"{key}[].{path}", n
    return None


def _bad_path(value: dict, struct: pa.StructType) -> str | None:
    for field in struct:
        item = value.get(field.name)
        if item is None:
            continue
        kind = field.type
        if pa.types.is_struct(kind):
            inner = _bad_path(item, kind) if isinstance(item, dict) else ""
            if inner is not None:
                return f"{field.name}.{inner}" if inner else field.name
        elif pa.types.is_integer(kind):
            if isinstance(item, bool) or not isinstance(item, int) or not -(2**63) <= item < 2**63:
                return field.name
        elif pa.types.is_boolean(kind):
            if not isinstance(item, bool):
                return field.name
        elif pa.types.is_timestamp(kind):
            if not _is_time_text(item):
                return field.name
        elif not isinstance(item, str):
            return field.name
    return None


def _is_time_text(value: object) -> bool:
    """True when pyarrow's JSON reader can read ``value`` as a time (with or without offset)."""
    if not isinstance(value, str):
        return False
    text = pa.array([value], pa.string())
    for kind in (pa.timestamp("ns", tz="UTC"), pa.timestamp("ns")):
        try:
            text.cast(kind)
            return True
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return False


def _json_path(column: str) -> str:
    """'/ticket_metric_events/[]/sla/target' -> 'ticket_metric_events[].sla.target'."""
    path = column.strip("/").replace("/[]", "[]").replace("/", ".")
    return path or "<page>"


def _flat(struct: pa.ChunkedArray) -> dict[str, pa.ChunkedArray]:
    # ChunkedArray.flatten() goes through StructArray.flatten(), which ANDs the parent's
    # validity into every child (StructArray.field() would not: garbage under null parents).
    return dict(zip([f.name for f in struct.type], struct.flatten(), strict=True))


def _metric_columns(records: pa.ChunkedArray) -> pa.Table:
    rec = _flat(records)
    for name in _REQUIRED:
        column = rec[name]
        if column.null_count:
            row = pc.index(pc.is_null(column), True).as_py()
            raise _BadPage(f"record #{row + 1} has no {name!r}", f"records[].{name}")
    sla, group_sla = _flat(rec["sla"]), _flat(rec["group_sla"])
    has_sla, has_group = pc.is_valid(rec["sla"]), pc.is_valid(rec["group_sla"])
    kind = pc.if_else(
        has_sla,
        pa.scalar("sla"),
        pc.if_else(has_group, pa.scalar("group_sla"), pa.scalar(None, pa.string())),
    )

    def pick(name: str) -> pa.ChunkedArray:
        return pc.if_else(has_sla, sla[name], group_sla[name])

    seconds = pc.cast(pick("target_in_seconds"), pa.float64(), safe=False)  # > 2**53: inexact
    seconds_as_minutes = pc.cast(pc.round(pc.divide(seconds, 60.0)), pa.int64())
    target = pc.coalesce(pick("target"), seconds_as_minutes)
    policy = _flat(pick("policy"))
    status = _flat(rec["status"])
    columns = {
        "id": rec["id"],
        "ticket_id": rec["ticket_id"],
        "metric": rec["metric"].dictionary_encode(),
        "instance_id": _int32(rec["instance_id"], "instance_id"),
        "type": rec["type"].dictionary_encode(),
        "time": rec["time"].cast(TIME_TYPE, safe=False),
        "sla_kind": kind.dictionary_encode(),
        "sla_target_minutes": _int32(target, "sla.target"),
        "sla_business_hours": pick("business_hours"),
        "policy_id": policy["id"],
        "policy_title": policy["title"],
        "status_calendar_minutes": _int32(status["calendar"], "status.calendar"),
        "status_business_minutes": _int32(status["business"], "status.business"),
        "deleted": rec["deleted"],
    }
    return pa.Table.from_arrays(list(columns.values()), schema=METRIC_EVENTS_SCHEMA)


def _int32(values: pa.ChunkedArray, field: str) -> pa.ChunkedArray:
    try:
        return values.cast(pa.int32())
    except pa.ArrowInvalid as exc:
        raise _BadPage(f"value out of range for int32 ({exc})", field) from None


# ---------------------------------------------------------------------------------- ticket events
# Keys of a child event that describe the event itself; every other key is a changed field.
_CHILD_METADATA = frozenset(
    {
        "id", "via", "via_reference_id", "event_type", "previous_value", "comment_present",
        "comment_public", "public", "author_id", "body", "html_body", "plain_body",
        "attachments", "audit_id", "created_at", "metadata", "data", "recipients",
        "formatted_from", "formatted_to", "transcription_visible", "trusted", "uploads",
        "value_reference",
    }
)  # fmt: skip
_FIELD_CHANGE_EVENTS = frozenset({"Create", "Change"})
_COMMENT_EVENTS = frozenset({"Comment", "VoiceComment"})
# Only on field-change events are these the ticket's fields; elsewhere they describe the event
# (a comment object's "type": "Comment", a notification's "subject").
_AMBIGUOUS = frozenset({"type", "subject"})
_DELTA_KEYS = frozenset({"added_tags", "removed_tags"})


def ticket_events_table(
    bodies: Sequence[bytes], urls: Sequence[str] | None = None
) -> tuple[pa.Table, pa.Table | None]:
    """Parse raw page bodies of the ticket-event export.

    Each audit becomes one row; its child events become ``child_events`` entries, one per
    changed field (``field``/``value``/``previous_value``), one per comment (``field`` is
    ``"comment"``; ``public``, ``author_id``, ``body``) and one with ``field`` null for events
    that change nothing (notifications...). Values are strings: scalars as ``str``, booleans as
    ``"true"``/``"false"``, lists (tags) joined by a space, objects as compact JSON; null stays
    null.

    A child-event key is the name of a changed field unless it describes the event (``id``,
    ``via``, ``event_type``, ``previous_value``, ``public``, ``author_id``, ``body``, ...).
    ``type`` and ``subject`` are field changes on ``Create``/``Change`` events (ticket type,
    ticket subject) and describe the event otherwise (a comment object's ``"type": "Comment"``,
    a notification's subject).

    Parameters
    ----------
    bodies : sequence of bytes
        Whole JSON envelopes as Zendesk returned them.
    urls : sequence of str, optional
        The pages' URLs, named in errors.

    Returns
    -------
    (pyarrow.Table, pyarrow.Table or None)
        Audits in :data:`TICKET_EVENTS_SCHEMA`, and the metric events found on pages whose
        records are metric-event objects (Zendesk's documented example) or None when none were.

    Raises
    ------
    PageError
        Invalid JSON or UTF-8, a record that is not an object, a required field (``id``,
        ``ticket_id``, ``timestamp``/``created_at``) missing or of the wrong type, or a page
        mixing audits and metric events.

    Examples
    --------
    >>> body = (b'{"ticket_events": [{"id": 5, "ticket_id": 7, "timestamp": 1704164645,'
    ...         b' "via": "Web form", "event_type": "Audit", "child_events":'
    ...         b' [{"id": 6, "event_type": "Change", "status": "open", "previous_value": "new"}]}]}')
    >>> audits, metric = ticket_events_table([body])
    >>> audits["child_events"][0].as_py()[0]["field"], metric is None
    ('status', True)
    """
    if urls is not None and len(urls) != len(bodies):
        raise ValueError(f"got {len(bodies)} bodies but {len(urls)} urls")
    builder = _AuditBuilder()
    metric_bodies: list[bytes] = []
    metric_urls: list[str] = []
    for i, body in enumerate(bodies):
        url = urls[i] if urls is not None else ""
        try:
            records = _audit_records(body)
            kinds = {is_metric_event(r) for r in records}
            if kinds == {True}:
                metric_bodies.append(body)
                metric_urls.append(url)
                continue
            if len(kinds) > 1:
                raise _BadPage("the page mixes audits and metric events")
            mark = builder.mark()
            try:
                for n, record in enumerate(records):
                    builder.add(record, n)
            except _BadPage:
                builder.rollback(mark)
                raise
        except _BadPage as exc:
            raise _page_error(exc, urls, i) from None
    metric = None
    if metric_bodies:
        metric = metric_events_table(metric_bodies, metric_urls if urls is not None else None)
    return builder.table(), metric


def _audit_records(body: bytes) -> list[Any]:
    try:
        page = json.loads(body)
    except UnicodeDecodeError as exc:
        raise _BadPage(f"invalid UTF-8 at byte {exc.start}") from None
    except (json.JSONDecodeError, TypeError) as exc:
        raise _BadPage(f"invalid JSON ({exc})") from None
    if not isinstance(page, dict):
        raise _BadPage(f"the body is a JSON {type(page).__name__}, not an object")
    records: list[Any] = []
    for key in _METRIC_KEYS:
        value = page.get(key)
        if value is None:
            continue
        if not isinstance(value, list):
            raise _BadPage(f"is a {type(value).__name__}, not a list", key)
        records.extend(value)
    for n, record in enumerate(records):
        if not isinstance(record, dict):
            raise _BadPage(f"record #{n + 1} is a {type(record).__name__}, not an object")
    return records


def is_metric_event(record: dict) -> bool:
    """True when ``record`` is a metric-event object rather than an audit (by its shape).

    Examples
    --------
    >>> is_metric_event({"id": 1, "metric": "reply_time", "type": "activate"})
    True
    >>> is_metric_event({"id": 2, "event_type": "Audit", "child_events": []})
    False
    """
    return ("metric" in record or "instance_id" in record) and "child_events" not in record


def _text(value: Any) -> str | None:
    """Stringify a child-event value: see :func:`ticket_events_table`."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(t for t in (_text(v) for v in value) if t is not None)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _int(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if -(2**63) <= value < 2**63:
            return value
        raise _BadPage("integer out of range", field)
    raise _BadPage(f"expected an integer, got {type(value).__name__} {value!r:.40}", field)


def _bool(value: Any, field: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise _BadPage(f"expected true/false, got {type(value).__name__} {value!r:.40}", field)


def _channel(via: Any) -> str | None:
    if isinstance(via, dict):
        return _text(via.get("channel"))
    return _text(via)


def _time_ms(record: dict, field: str) -> int:
    stamp = record.get("timestamp")
    if stamp is not None:
        if isinstance(stamp, bool) or not isinstance(stamp, int | float):
            raise _BadPage(f"expected Unix seconds, got {stamp!r:.40}", f"{field}.timestamp")
        return int(round(stamp * 1000))
    created = record.get("created_at")
    if created is None:
        raise _BadPage("the audit has neither 'timestamp' nor 'created_at'", f"{field}.timestamp")
    if not isinstance(created, str):
        raise _BadPage(f"expected an ISO-8601 time, got {created!r:.40}", f"{field}.created_at")
    try:
        when = datetime.fromisoformat(created)
    except ValueError:
        raise _BadPage(f"not an ISO-8601 time: {created!r:.40}", f"{field}.created_at") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(round(when.timestamp() * 1000))


class _AuditBuilder:
    """Column lists for audits and their flattened child events."""

    _AUDIT = ("id", "ticket_id", "time", "updater_id", "via_channel", "event_type")

    def __init__(self) -> None:
        self.audit: dict[str, list] = {name: [] for name in self._AUDIT}
        self.child: dict[str, list] = {f.name: [] for f in CHILD_EVENT_TYPE}
        self.offsets: list[int] = [0]

    def mark(self) -> tuple[int, int]:
        return len(self.audit["id"]), len(self.child["id"])

    def rollback(self, mark: tuple[int, int]) -> None:
        audits, children = mark
        for column in self.audit.values():
            del column[audits:]
        for column in self.child.values():
            del column[children:]
        del self.offsets[audits + 1 :]

    def add(self, record: dict, n: int) -> None:
        where = f"records[{n}]"
        audit_id = _int(record.get("id"), f"{where}.id")
        ticket_id = _int(record.get("ticket_id"), f"{where}.ticket_id")
        if audit_id is None or ticket_id is None:
            missing = "id" if audit_id is None else "ticket_id"
            raise _BadPage(f"the audit has no {missing!r}", f"{where}.{missing}")
        self.audit["id"].append(audit_id)
        self.audit["ticket_id"].append(ticket_id)
        self.audit["time"].append(_time_ms(record, where))
        self.audit["updater_id"].append(_int(record.get("updater_id"), f"{where}.updater_id"))
        self.audit["via_channel"].append(_channel(record.get("via")))
        self.audit["event_type"].append(_text(record.get("event_type")))
        children = record.get("child_events") or []
        if not isinstance(children, list):
            raise _BadPage("expected a list", f"{where}.child_events")
        for k, child in enumerate(children):
            if not isinstance(child, dict):
                raise _BadPage("a child event is not an object", f"{where}.child_events[{k}]")
            self._add_child(child, f"{where}.child_events[{k}]")
        self.offsets.append(len(self.child["id"]))

    def _add_child(self, child: dict, where: str) -> None:
        event_type = child.get("event_type")
        kind = child.get("type")
        if event_type is None and kind in _COMMENT_EVENTS:
            event_type = kind
        event_type = _text(event_type)
        changes_fields = event_type is None or event_type in _FIELD_CHANGE_EVENTS
        is_comment = event_type in _COMMENT_EVENTS
        event_id = _int(child.get("id"), f"{where}.id")
        channel = _channel(child.get("via"))
        author_id = _int(child.get("author_id"), f"{where}.author_id")
        body = _text(child.get("body"))
        previous = _text(child.get("previous_value"))
        rows: list[tuple[str | None, str | None, str | None, bool | None]] = []
        if is_comment:
            public = child.get("public", child.get("comment_public"))
            rows.append(("comment", None, None, _bool(public, f"{where}.public")))
        for key, value in child.items():
            if key in _CHILD_METADATA or (key in _AMBIGUOUS and not changes_fields):
                continue
            rows.append((key, _text(value), None if key in _DELTA_KEYS else previous, None))
        if not rows:
            rows.append((None, None, None, None))
        for field, value, previous_value, public in rows:
            self.child["id"].append(event_id)
            self.child["event_type"].append(event_type)
            self.child["field"].append(field)
            self.child["value"].append(value)
            self.child["previous_value"].append(previous_value)
            self.child["via_channel"].append(channel)
            self.child["author_id"].append(author_id if field == "comment" or is_comment else None)
            self.child["public"].append(public)
            self.child["body"].append(body if field == "comment" or field is None else None)

    def table(self) -> pa.Table:
        children = pa.StructArray.from_arrays(
            [pa.array(self.child[f.name], type=f.type) for f in CHILD_EVENT_TYPE],
            fields=list(CHILD_EVENT_TYPE),
        )
        child_events = pa.ListArray.from_arrays(
            pa.array(self.offsets, type=pa.int32()), children, type=pa.list_(CHILD_EVENT_TYPE)
        )
        arrays = [
            pa.array(self.audit["id"], type=pa.int64()),
            pa.array(self.audit["ticket_id"], type=pa.int64()),
            pa.array(self.audit["time"], type=pa.int64()).cast(TIME_TYPE),
            pa.array(self.audit["updater_id"], type=pa.int64()),
            pa.array(self.audit["via_channel"], type=pa.string()),
            pa.array(self.audit["event_type"], type=pa.string()),
            child_events,
        ]
        return pa.Table.from_arrays(arrays, schema=TICKET_EVENTS_SCHEMA)


def ticket_changes(audits: pa.Table) -> pa.Table:
    """Explode audits (:data:`TICKET_EVENTS_SCHEMA`) to one row per change or comment.

    Returns
    -------
    pyarrow.Table
        In :data:`TICKET_CHANGES_SCHEMA`: ``ticket_id, audit_id, time, updater_id,
        via_channel`` (of the audit), ``event_id, event_type, field, value, previous_value,
        author_id, public, body``. Audits without child events give no rows.

    Examples
    --------
    >>> body = (b'{"ticket_events": [{"id": 5, "ticket_id": 7, "timestamp": 1704164645,'
    ...         b' "child_events": [{"id": 6, "event_type": "Change", "tags": ["a", "b"]}]}]}')
    >>> changes = ticket_changes(ticket_events_table([body])[0])
    >>> changes.select(["audit_id", "field", "value"]).to_pylist()
    [{'audit_id': 5, 'field': 'tags', 'value': 'a b'}]
    """
    lists = audits["child_events"]
    parents = pc.list_parent_indices(lists)
    child = _flat(pc.list_flatten(lists))
    columns = {
        "ticket_id": audits["ticket_id"].take(parents),
        "audit_id": audits["id"].take(parents),
        "time": audits["time"].take(parents),
        "updater_id": audits["updater_id"].take(parents),
        "via_channel": audits["via_channel"].take(parents),
        "event_id": child["id"],
        "event_type": child["event_type"],
        "field": child["field"],
        "value": child["value"],
        "previous_value": child["previous_value"],
        "author_id": child["author_id"],
        "public": child["public"],
        "body": child["body"],
    }
    arrays = []
    for field in TICKET_CHANGES_SCHEMA:
        column = columns[field.name]
        if pa.types.is_dictionary(field.type):
            column = column.dictionary_encode()
        arrays.append(column.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=TICKET_CHANGES_SCHEMA)

"""Metric-event pages -> one typed Arrow table, with pyarrow's JSON reader.

Metric events are dense (tens of millions of rows): the page bodies are joined one per line
and read in parallel by pyarrow with an explicit schema of the page envelope, so no Python
dict per event is ever made. Types never depend on what a batch contains; a value of the
wrong type, invalid JSON or invalid UTF-8 raises :class:`~zdevents.errors.PageError` naming
the page (and the field when known). The table is in :data:`zdevents.schema.METRIC_EVENTS_SCHEMA`.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from ..errors import PageError
from ..schema import METRIC_EVENTS_SCHEMA, TIME_TYPE, empty_table, to_pandas
from .envelope import RECORDS_KEYS

__all__ = [
    "PARSE_PAGES",
    "BadPage",
    "metric_events_frame",
    "metric_events_table",
    "page_error",
    "struct_columns",
]

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


class BadPage(Exception):
    """One page (or a batch) could not be read; ``field`` names the field when known.

    Raised while parsing; :func:`page_error` turns it into the :class:`PageError` that names
    the page.
    """

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
        if not isinstance(table, BadPage):
            continue
        if len(bodies) == 1:
            raise page_error(table, urls, 0) from None
        for i, body in enumerate(chunks[n], start=n * PARSE_PAGES):
            try:
                _metric_table([body])
            except BadPage as bad:
                raise page_error(bad, urls, i) from None
        raise page_error(table, None, 0) from None  # only the batch fails: say so
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


def page_error(err: BadPage, urls: Sequence[str] | None, index: int) -> PageError:
    """The :class:`PageError` of page ``index`` of a batch: names its URL (or its position)
    and the field when known."""
    url = urls[index] if urls is not None else ""
    where = f"page {url}" if url else f"page #{index + 1} of the batch"
    what = f"field {err.field!r}: " if err.field else ""
    return PageError(f"{where} could not be read: {what}{err.reason}", url=url)


def _ndjson(bodies: Sequence[bytes]) -> tuple[bytes, int]:
    longest = 0
    lines = []
    for body in bodies:
        if not isinstance(body, bytes | bytearray | memoryview):
            raise BadPage(f"body is {type(body).__name__}, not bytes")
        body = bytes(body)
        if not body.isascii():
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BadPage(f"invalid UTF-8 at byte {exc.start}") from None
        if b"\n" in body or b"\r" in body:
            body = body.replace(b"\n", b" ").replace(b"\r", b" ")
        if not body or body.isspace():
            raise BadPage("the body is empty, not a JSON object")
        longest = max(longest, len(body))
        lines.append(body)
    return b"\n".join(lines), longest


def _parse_chunks(chunks: list[Sequence[bytes]]) -> list[pa.Table | BadPage]:
    """Parse chunks of pages, several at once: each chunk is one single-threaded JSON read.

    One read per chunk on as many threads as Arrow uses keeps every core busy to the end of
    the batch (a multi-threaded read of one chunk idles at its tail) and costs less CPU.
    """

    def parse(chunk: Sequence[bytes], threads: bool = False) -> pa.Table | BadPage:
        try:
            return _metric_table(chunk, threads)
        except BadPage as exc:
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
        raise BadPage(message, field) from None
    if pages.num_rows != len(bodies):
        raise BadPage("the body is not exactly one JSON object")
    keys = [key for key in RECORDS_KEYS if pages[key].null_count < len(pages[key])]
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
    for key in RECORDS_KEYS:
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


def struct_columns(struct: pa.ChunkedArray) -> dict[str, pa.ChunkedArray]:
    """The child arrays of a struct column by name, null where the parent is null."""
    # ChunkedArray.flatten() goes through StructArray.flatten(), which ANDs the parent's
    # validity into every child (StructArray.field() would not: garbage under null parents).
    return dict(zip([f.name for f in struct.type], struct.flatten(), strict=True))


def _metric_columns(records: pa.ChunkedArray) -> pa.Table:
    rec = struct_columns(records)
    for name in _REQUIRED:
        column = rec[name]
        if column.null_count:
            row = pc.index(pc.is_null(column), True).as_py()
            raise BadPage(f"record #{row + 1} has no {name!r}", f"records[].{name}")
    sla, group_sla = struct_columns(rec["sla"]), struct_columns(rec["group_sla"])
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
    policy = struct_columns(pick("policy"))
    status = struct_columns(rec["status"])
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
        raise BadPage(f"value out of range for int32 ({exc})", field) from None


# ---------------------------------------------------------------------------------- ticket events

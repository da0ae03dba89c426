"""Saved export pages (files or parsed dicts) -> the typed frames :func:`load_frame` returns.

Pages saved from curl, Postman, a browser or another client are read here: a ``.json`` page,
a JSON list of pages, JSON lines (one page per line), each optionally gzipped, or pages
already parsed into dicts. The stream of each page is told by its records' shape, not by its
key: metric-event objects under ``ticket_events`` (as in Zendesk's reference example) are
metric events. Values then go through the same parsers as a fetch (:mod:`zdevents.export.parse`),
so types and errors are exactly those of the cache.

:func:`read_export` returns a frame; :func:`import_pages` adds the pages to the cache without
moving its cursor (``zdevents import``).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from ..config import Settings
from ..dates import to_utc
from ..errors import CacheError, PageError
from ..export import parse as normalize
from ..schema import empty_table, to_pandas
from ..streams import get_stream

__all__ = ["ImportResult", "PageSource", "import_pages", "read_export"]

PageSource = str | os.PathLike[str] | Mapping[str, Any]
"""One file of saved pages, or one page already parsed into a dict."""

_RECORD_KEYS = ("ticket_metric_events", "ticket_events")
# The placeholders of API collections and OpenAPI examples (Postman writes "<integer>"...).
_PLACEHOLDERS = {
    "<integer>": "an integer",
    "<long>": "an integer",
    "<number>": "a number",
    "<boolean>": "true or false",
    "<string>": "a string",
    "<dateTime>": "an ISO-8601 time such as 2024-01-02T03:04:05Z",
    "<date>": "an ISO-8601 date",
    "<uri>": "a URL",
    "<object>": "an object",
}
_ENVELOPE_TYPES = {"count": int, "end_time": int, "end_of_stream": bool, "next_page": str}


@dataclass(frozen=True)
class _Page:
    label: str  # "2 of pages.jsonl": "page <label>" in every error
    body: bytes
    stream: str | None  # None: no records, fits either stream
    end_time: int | None


def read_export(
    paths_or_pages: PageSource | Iterable[PageSource], *, stream: str | None = None
) -> pd.DataFrame:
    """Load saved incremental-export pages into the typed frame :func:`load_frame` returns.

    Parameters
    ----------
    paths_or_pages : path, dict, or a list of them
        Files holding one page (``.json``), a JSON list of pages, or JSON lines (one page
        per line), each optionally gzipped (``.gz``); or pages already parsed into dicts.
    stream : {"metric_events", "ticket_events"}, optional
        Default: told from the records' shape. Metric-event objects load as metric events
        under either key (``ticket_metric_events``, or ``ticket_events`` as in Zendesk's
        reference example); audits (objects with ``child_events``) as ticket events.

    Returns
    -------
    pandas.DataFrame
        The columns and dtypes of ``load_frame(stream=...)``: one row per event id (a
        repeated id keeps its last copy, as in the cache), sorted by time.
        ``attrs["zdevents_as_of"]`` holds the newest page ``end_time`` when the pages carry
        one, so :func:`zdevents.sla_targets` reads the pages as of their own horizon.

    Raises
    ------
    PageError
        A file that cannot be read or is not JSON, a page that is not an export page, a
        placeholder left in a saved example (``"<integer>"``...), a value of the wrong type,
        or pages of both streams without ``stream``: the message names the file, the page and
        the field.

    Examples
    --------
    >>> import zdevents as zd
    >>> page = {"ticket_events": [{"id": 1, "ticket_id": 7, "metric": "reply_time",
    ...          "instance_id": 1, "type": "apply_sla", "time": "2024-01-02T03:04:05Z"}],
    ...         "end_time": 1704164645}
    >>> events = zd.read_export(page)
    >>> events[["id", "metric", "type"]]
       id      metric       type
    0   1  reply_time  apply_sla
    >>> events.attrs["zdevents_as_of"]
    Timestamp('2024-01-02 03:04:05+0000', tz='UTC')
    """
    pages = _read_pages(paths_or_pages)
    name = _one_stream(pages, stream)
    chosen = [p for p in pages if p.stream in (None, name)]
    frame = to_pandas(_table(chosen, name), name)
    if len(frame):
        frame = frame.drop_duplicates("id", keep="last")
        frame = frame.sort_values(["time", "id"], kind="stable").reset_index(drop=True)
    ends = [p.end_time for p in chosen if p.end_time is not None]
    if ends:
        frame.attrs["zdevents_as_of"] = to_utc(max(ends), name="end_time")
    return frame


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_pages` added to one stream's cache.

    Attributes
    ----------
    stream : str
    pages : int
        Pages read for this stream.
    events : int
        Records in those pages (repeats included).
    new_events : int
        Rows whose ``id`` the cache did not hold before.
    rows : int
        Rows in the cache after the import.
    cursor : pandas.Timestamp
        The cache's cursor: unchanged by an import.
    """

    stream: str
    pages: int
    events: int
    new_events: int
    rows: int
    cursor: pd.Timestamp

    def __str__(self) -> str:
        return (
            f"{self.stream}: {self.pages:,} pages, {self.events:,} events read, "
            f"{self.new_events:,} new, {self.rows:,} rows in the cache; cursor unchanged "
            f"({self.cursor.strftime('%Y-%m-%dT%H:%M:%SZ')})"
        )


def import_pages(
    paths_or_pages: PageSource | Iterable[PageSource],
    *,
    stream: str | None = None,
    settings: Settings | None = None,
) -> list[ImportResult]:
    """Add saved export pages to the cache: deduplicated by id, the cursor untouched.

    Every page is read and checked before anything is written, so a bad page stores
    nothing. The pages' events join the cache like fetched ones (a repeated id keeps the
    imported copy); the cursor, and so what the next fetch asks Zendesk for, does not move.
    A cache that was never fetched has no cursor to keep: fetch it first (or analyse the
    files with :func:`read_export`).

    Parameters
    ----------
    paths_or_pages, stream
        As in :func:`read_export`; pages of both streams go to their own caches when
        ``stream`` is None.
    settings : Settings, optional
        Default: ``Settings.from_env()``.

    Returns
    -------
    list of ImportResult
        One per stream that received pages.

    Raises
    ------
    PageError, CacheError, CacheLocked, ConfigError

    Examples
    --------
    >>> for result in import_pages(["saved/page-1.json"]):  # doctest: +SKIP
    ...     print(result)
    metric_events: 1 pages, 1,000 events read, 12 new, 5,387 rows in the cache; cursor ...
    """
    from .stores import open_cache

    settings = settings if settings is not None else Settings.from_env()
    pages = _read_pages(paths_or_pages)
    if stream is not None:
        _one_stream(pages, stream)  # pages of the other stream are an error
        names = [get_stream(stream).name]
    else:
        names = sorted({p.stream for p in pages if p.stream is not None})
    work = []
    for name in names:
        chosen = [p for p in pages if p.stream == name]
        work.append((name, chosen, _table(chosen, name)))
    caches = {name: open_cache(name, settings=settings) for name, _, _ in work}
    for name, cache in caches.items():
        if cache.state().cursor is None:
            raise CacheError(
                f"the {name} cache in {cache.dir} was never fetched, so it has no cursor to "
                f"keep: run `zdevents fetch --stream {name} --since DATE` first, or read the "
                "files with zd.read_export()",
                path=str(cache.dir),
            )
    results = []
    for name, chosen, table in work:
        cache = caches[name]
        with cache.lock():
            state = cache.state()
            assert state.cursor is not None  # checked above; only fetches set it
            result = cache.commit(table, cursor=state.cursor)
        results.append(
            ImportResult(
                stream=name,
                pages=len(chosen),
                events=table.num_rows,
                new_events=result.new_rows,
                rows=result.rows_total,
                cursor=to_utc(state.cursor, name="cursor"),
            )
        )
    return results


# ---------------------------------------------------------------------------------- internals
def _sources(paths_or_pages: PageSource | Iterable[PageSource]) -> list[PageSource]:
    if isinstance(paths_or_pages, str | os.PathLike | Mapping):
        return [paths_or_pages]
    if isinstance(paths_or_pages, bytes | bytearray):
        raise TypeError("pass a path or a parsed page (dict), not bytes")
    return list(paths_or_pages)


def _read_pages(paths_or_pages: PageSource | Iterable[PageSource]) -> list[_Page]:
    pages: list[_Page] = []
    given = 0
    for source in _sources(paths_or_pages):
        if isinstance(source, Mapping):
            given += 1
            pages.append(_page(dict(source), f"{given} of the pages given"))
        elif isinstance(source, str | os.PathLike):
            path = Path(source)
            for n, page in enumerate(_file_pages(path), start=1):
                pages.append(_page(page, f"{n} of {path}"))
        else:
            raise TypeError(
                f"read_export takes paths and parsed pages (dicts), not {type(source).__name__}"
            )
    return pages


def _file_pages(path: Path) -> list[Any]:
    """The pages in one file: a page, a list of pages, or JSON lines; gzipped or not."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise PageError(f"{path} is not a readable gzip file ({exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PageError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as whole:
        # split on "\n" only: str.splitlines() would also cut at U+2028 inside JSON strings
        lines = [(n, line) for n, line in enumerate(text.split("\n"), start=1) if line.strip()]
        try:
            first = json.loads(lines[0][1]) if lines else None
        except json.JSONDecodeError:
            first = None
        if not isinstance(first, dict):  # not JSON lines either: report the document's error
            raise PageError(f"{path} is not JSON ({whole})") from None
        pages = []
        for n, line in lines:
            try:
                pages.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise PageError(f"{path}, line {n}: not a JSON page ({exc})") from None
        return pages
    return document if isinstance(document, list) else [document]


def _page(page: Any, label: str) -> _Page:
    """Check one parsed page's shape and envelope; tell its stream from its records."""
    if not isinstance(page, dict):
        raise PageError(
            f"page {label} is a JSON {type(page).__name__}, not an export page (object)"
        )
    keys = [k for k in _RECORD_KEYS if k in page]
    if not keys:
        raise PageError(
            f"page {label} is not an incremental export page: it has no ticket_metric_events or "
            "ticket_events list"
        )
    _check_placeholders(page, label)
    for field, kind in _ENVELOPE_TYPES.items():
        value = page.get(field)
        if value is not None and (
            not isinstance(value, kind) or (kind is int and isinstance(value, bool))
        ):
            raise PageError(
                f"page {label}: field {field!r} should be {kind.__name__}, got {value!r:.40}"
            )
    kinds = set()
    for key in keys:
        records = page[key]
        if records is None:
            continue
        if not isinstance(records, list):
            raise PageError(
                f"page {label}: field {key!r} is a {type(records).__name__}, not a list"
            )
        for n, record in enumerate(records, start=1):
            if not isinstance(record, dict):
                raise PageError(
                    f"page {label}: {key} record #{n} is a {type(record).__name__}, not an object"
                )
            kinds.add(normalize.is_metric_event(record))
    if len(kinds) > 1:
        raise PageError(f"page {label} mixes audits and metric events")
    stream = None if not kinds else "metric_events" if kinds == {True} else "ticket_events"
    end_time = page.get("end_time")
    if end_time is not None:
        try:
            to_utc(end_time, name="end_time")
        except ValueError as exc:
            raise PageError(f"page {label}: {exc}") from None
    body = json.dumps(page, separators=(",", ":"), ensure_ascii=False).encode()
    return _Page(label=label, body=body, stream=stream, end_time=end_time)


def _check_placeholders(value: Any, label: str, path: str = "", record: int = 0) -> None:
    """A saved API example's placeholder (``"<integer>"``) where a value belongs: say which."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_placeholders(item, label, f"{path}.{key}" if path else str(key), record)
    elif isinstance(value, list):
        for n, item in enumerate(value, start=1):
            _check_placeholders(item, label, f"{path}[]", n if path in _RECORD_KEYS else record)
    elif isinstance(value, str) and value in _PLACEHOLDERS:
        where = f" (record #{record})" if record else ""
        raise PageError(
            f"page {label}: field {path!r}{where} holds the placeholder {value!r} of a saved "
            f"API example, not a value: put {_PLACEHOLDERS[value]} there"
        )


def _one_stream(pages: list[_Page], stream: str | None) -> str:
    """The stream the pages hold; pages of another stream are an error."""
    expected = get_stream(stream).name if stream is not None else None
    for page in pages:
        if page.stream is None:
            continue
        if expected is None:
            expected = page.stream
        elif page.stream != expected:
            held = "audits (ticket_events)" if page.stream == "ticket_events" else "metric events"
            raise PageError(
                f"page {page.label} holds {held}, not {expected}: read each stream's pages "
                "separately (stream=...)"
            )
    return expected or "metric_events"


def _table(pages: list[_Page], stream: str) -> pa.Table:
    """The pages parsed by the fetch's own parsers, in the stream's storage schema."""
    bodies = [p.body for p in pages]
    labels = [p.label for p in pages]
    if not pages:
        return empty_table(stream)
    if stream == "metric_events":
        return normalize.metric_events_table(bodies, labels)
    audits, _ = normalize.ticket_events_table(bodies, labels)  # only audit pages are given
    return audits

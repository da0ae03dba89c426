"""Ticket-event pages -> audits (one row each, child events nested) -> ticket changes.

Audits are far less dense than metric events and polymorphic, so each page is parsed with
:func:`json.loads` and built column-wise into :data:`zdevents.schema.TICKET_EVENTS_SCHEMA`;
:func:`ticket_changes` explodes them to one row per change or comment
(:data:`zdevents.schema.TICKET_CHANGES_SCHEMA`). Metric-event records that arrive in this
export (Zendesk's documented example shows them) are handed to
:func:`~zdevents.export.metric_events.metric_events_table`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..schema import CHILD_EVENT_TYPE, TICKET_CHANGES_SCHEMA, TICKET_EVENTS_SCHEMA, TIME_TYPE
from .envelope import RECORDS_KEYS
from .metric_events import BadPage, metric_events_table, page_error, struct_columns

__all__ = ["is_metric_event", "ticket_changes", "ticket_events_table"]

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
                raise BadPage("the page mixes audits and metric events")
            mark = builder.mark()
            try:
                for n, record in enumerate(records):
                    builder.add(record, n)
            except BadPage:
                builder.rollback(mark)
                raise
        except BadPage as exc:
            raise page_error(exc, urls, i) from None
    metric = None
    if metric_bodies:
        metric = metric_events_table(metric_bodies, metric_urls if urls is not None else None)
    return builder.table(), metric


def _audit_records(body: bytes) -> list[Any]:
    try:
        page = json.loads(body)
    except UnicodeDecodeError as exc:
        raise BadPage(f"invalid UTF-8 at byte {exc.start}") from None
    except (json.JSONDecodeError, TypeError) as exc:
        raise BadPage(f"invalid JSON ({exc})") from None
    if not isinstance(page, dict):
        raise BadPage(f"the body is a JSON {type(page).__name__}, not an object")
    records: list[Any] = []
    for key in RECORDS_KEYS:
        value = page.get(key)
        if value is None:
            continue
        if not isinstance(value, list):
            raise BadPage(f"is a {type(value).__name__}, not a list", key)
        records.extend(value)
    for n, record in enumerate(records):
        if not isinstance(record, dict):
            raise BadPage(f"record #{n + 1} is a {type(record).__name__}, not an object")
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
        raise BadPage("integer out of range", field)
    raise BadPage(f"expected an integer, got {type(value).__name__} {value!r:.40}", field)


def _bool(value: Any, field: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise BadPage(f"expected true/false, got {type(value).__name__} {value!r:.40}", field)


def _channel(via: Any) -> str | None:
    if isinstance(via, dict):
        return _text(via.get("channel"))
    return _text(via)


def _time_ms(record: dict, field: str) -> int:
    stamp = record.get("timestamp")
    if stamp is not None:
        if isinstance(stamp, bool) or not isinstance(stamp, int | float):
            raise BadPage(f"expected Unix seconds, got {stamp!r:.40}", f"{field}.timestamp")
        return int(round(stamp * 1000))
    created = record.get("created_at")
    if created is None:
        raise BadPage("the audit has neither 'timestamp' nor 'created_at'", f"{field}.timestamp")
    if not isinstance(created, str):
        raise BadPage(f"expected an ISO-8601 time, got {created!r:.40}", f"{field}.created_at")
    try:
        when = datetime.fromisoformat(created)
    except ValueError:
        raise BadPage(f"not an ISO-8601 time: {created!r:.40}", f"{field}.created_at") from None
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
            raise BadPage(f"the audit has no {missing!r}", f"{where}.{missing}")
        self.audit["id"].append(audit_id)
        self.audit["ticket_id"].append(ticket_id)
        self.audit["time"].append(_time_ms(record, where))
        self.audit["updater_id"].append(_int(record.get("updater_id"), f"{where}.updater_id"))
        self.audit["via_channel"].append(_channel(record.get("via")))
        self.audit["event_type"].append(_text(record.get("event_type")))
        children = record.get("child_events") or []
        if not isinstance(children, list):
            raise BadPage("expected a list", f"{where}.child_events")
        for k, child in enumerate(children):
            if not isinstance(child, dict):
                raise BadPage("a child event is not an object", f"{where}.child_events[{k}]")
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
    child = struct_columns(pc.list_flatten(lists))
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

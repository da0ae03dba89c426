"""Normalisation of hand-written Zendesk pages (metric events and ticket events)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pyarrow as pa
import pytest

from zdevents.errors import PageError
from zdevents.export.parse import (
    metric_events_frame,
    metric_events_table,
    ticket_changes,
    ticket_events_table,
)
from zdevents.schema import (
    METRIC_EVENTS_SCHEMA,
    TICKET_CHANGES_SCHEMA,
    TICKET_EVENTS_SCHEMA,
    empty_table,
    to_pandas,
)

URL = "https://acme.zendesk.com/api/v2/incremental/ticket_metric_events?start_time=1"
TE_URL = "https://acme.zendesk.com/api/v2/incremental/ticket_events?start_time=1"


def page(records: list, key: str = "ticket_metric_events", **envelope) -> bytes:
    return json.dumps({"count": len(records), key: records, **envelope}).encode()


def event(id: int, **fields) -> dict:
    base = {
        "id": id,
        "ticket_id": 100,
        "metric": "reply_time",
        "instance_id": 1,
        "type": "activate",
        "time": "2024-01-31T23:59:59Z",
    }
    return {**base, **fields}


SLA = {
    "target": 60,
    "business_hours": True,
    "policy": {"id": 7, "title": "Gold", "description": "unused"},
}


# ------------------------------------------------------------------------------ metric events
def test_metric_columns_and_types_follow_the_contract():
    table = metric_events_table([page([event(1)])])
    assert table.schema == METRIC_EVENTS_SCHEMA
    assert table.schema.names == [
        "id", "ticket_id", "metric", "instance_id", "type", "time", "sla_kind",
        "sla_target_minutes", "sla_business_hours", "policy_id", "policy_title",
        "status_calendar_minutes", "status_business_minutes", "deleted",
    ]  # fmt: skip
    frame = to_pandas(table, "metric_events")
    expected = {
        "id": "Int64",
        "ticket_id": "Int64",
        "metric": "category",
        "instance_id": "Int32",
        "type": "category",
        "time": "datetime64[ms, UTC]",
        "sla_kind": "category",
        "sla_target_minutes": "Int32",
        "sla_business_hours": "boolean",
        "policy_id": "Int64",
        "policy_title": "string",
        "status_calendar_minutes": "Int32",
        "status_business_minutes": "Int32",
        "deleted": "boolean",
    }
    assert {c: str(t) for c, t in frame.dtypes.items()} == expected
    assert frame["policy_title"].dtype == pd.StringDtype("pyarrow")
    assert frame.loc[0, "time"] == pd.Timestamp("2024-01-31 23:59:59", tz="UTC")


def test_sla_group_sla_target_in_seconds_status_and_deleted():
    records = [
        event(1, type="apply_sla", sla=SLA),
        event(
            2,
            type="apply_group_sla",
            group_sla={
                "target_in_seconds": 5400,
                "business_hours": False,
                "policy": {"id": 8, "title": "Tier 2"},
            },
        ),
        event(3, type="update_status", status={"calendar": 125, "business": 30}),
        event(4, type="breach", deleted=True),
        event(5, type="breach"),
        event(
            6,
            type="apply_sla",
            sla={
                "target": 30,
                "target_in_seconds": 1800,
                "business_hours": False,
                "policy": {"id": 9, "title": "T"},
            },
        ),
    ]
    rows = metric_events_table([page(records)]).to_pylist()
    assert [r["sla_kind"] for r in rows] == ["sla", "group_sla", None, None, None, "sla"]
    assert [r["sla_target_minutes"] for r in rows] == [60, 90, None, None, None, 30]
    assert [r["sla_business_hours"] for r in rows] == [True, False, None, None, None, False]
    assert [r["policy_id"] for r in rows] == [7, 8, None, None, None, 9]
    assert [r["policy_title"] for r in rows] == ["Gold", "Tier 2", None, None, None, "T"]
    assert [r["status_calendar_minutes"] for r in rows] == [None, None, 125, None, None, None]
    assert [r["status_business_minutes"] for r in rows] == [None, None, 30, None, None, None]
    assert [r["deleted"] for r in rows] == [None, None, None, True, None, None]


def test_missing_sla_gives_nulls_not_values_of_other_rows():
    # the StructArray.field() pitfall: children under a null parent must read as null
    records = [event(1, type="apply_sla", sla=SLA), event(2), event(3, sla=None), event(4)]
    table = metric_events_table([page(records)])
    assert table["sla_target_minutes"].to_pylist() == [60, None, None, None]
    assert table["policy_title"].to_pylist() == ["Gold", None, None, None]
    assert table["sla_business_hours"].to_pylist() == [True, None, None, None]
    assert table["sla_kind"].to_pylist() == ["sla", None, None, None]


def test_unknown_metric_and_type_are_kept_and_unknown_fields_ignored():
    records = [event(1, metric="ai_agent_time", type="teleport", extra={"x": [1, 2]})]
    frame = metric_events_frame([page(records)])
    assert frame.loc[0, "metric"] == "ai_agent_time"
    assert frame.loc[0, "type"] == "teleport"


def test_metric_objects_under_the_ticket_events_key_load_as_metric_events():
    body = page([event(1), event(2)], key="ticket_events")
    assert metric_events_table([body])["id"].to_pylist() == [1, 2]


def test_several_pages_keep_page_order_and_duplicates():
    table = metric_events_table([page([event(1), event(2)]), page([event(2), event(3)])])
    assert table["id"].to_pylist() == [1, 2, 2, 3]


def test_fractional_seconds_and_offsets_are_tolerated():
    records = [
        event(1, time="2024-01-02T03:04:05.678Z"),
        event(2, time="2024-01-02T03:04:05.123456Z"),
        event(3, time="2024-01-02T05:04:05+02:00"),
    ]
    times = metric_events_table([page(records)])["time"].to_pylist()
    assert [pd.Timestamp(t) for t in times] == [
        pd.Timestamp("2024-01-02 03:04:05.678", tz="UTC"),
        pd.Timestamp("2024-01-02 03:04:05.123", tz="UTC"),
        pd.Timestamp("2024-01-02 03:04:05", tz="UTC"),
    ]


def test_empty_pages_and_no_pages_give_empty_typed_tables():
    assert metric_events_table([]).schema == METRIC_EVENTS_SCHEMA
    empty = metric_events_table([page([]), b'{"ticket_metric_events": null}', b"{}"])
    assert empty.num_rows == 0 and empty.schema == METRIC_EVENTS_SCHEMA


def test_types_do_not_depend_on_batch_content():
    only_activate = metric_events_table([page([event(1)])])
    with_sla = metric_events_table([page([event(2, type="apply_sla", sla=SLA)])])
    assert only_activate.schema == with_sla.schema == METRIC_EVENTS_SCHEMA


def test_pretty_printed_multiline_body_is_read():
    body = json.dumps({"ticket_metric_events": [event(1), event(2)]}, indent=2).encode()
    body = body.replace(b"\n", b"\r\n")
    other = page([event(3)])
    assert metric_events_table([body, other])["id"].to_pylist() == [1, 2, 3]


def test_pages_parsed_in_parallel_chunks_give_the_table_of_one_read(monkeypatch):
    import zdevents.export.metric_events as normalize_module

    pages = [page([event(3 * n + k, type=("measure", "apply_sla")[k % 2]) for k in range(3)])
             for n in range(7)]  # fmt: skip
    pages[4] = page([event(100, sla=SLA, type="apply_sla"), event(101)], key="ticket_events")
    whole = metric_events_table(pages)
    monkeypatch.setattr(normalize_module, "PARSE_PAGES", 2)  # 4 chunks on the parse threads
    chunked = metric_events_table(pages)
    assert chunked.schema == whole.schema == METRIC_EVENTS_SCHEMA
    assert chunked.to_pylist() == whole.to_pylist()
    assert chunked["id"].to_pylist()[12:14] == [100, 101]  # page order kept across chunks


def test_a_bad_page_in_a_later_chunk_is_named(monkeypatch):
    import zdevents.export.metric_events as normalize_module

    monkeypatch.setattr(normalize_module, "PARSE_PAGES", 2)
    pages = [page([event(n)]) for n in range(5)]
    pages[3] = page([event(3, ticket_id="x")])
    urls = [f"{URL}&page={n}" for n in range(5)]
    with pytest.raises(PageError, match=re.escape(urls[3])) as info:
        metric_events_table(pages, urls)
    assert info.value.url == urls[3]
    assert "'ticket_metric_events[].ticket_id'" in str(info.value)


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({**event(1), "id": "abc"}, "ticket_metric_events[].id"),
        (event(1, time=5), "ticket_metric_events[].time"),
        (event(1, sla=5), "ticket_metric_events[].sla"),
        (event(1, instance_id=1.5), None),
        (5, "ticket_metric_events[]"),
    ],
)
def test_wrong_types_raise_page_error_naming_the_failing_page_and_field(record, field):
    good = page([event(10)])
    bad = page([event(11), record])
    urls = [URL, URL + "&page=2", URL + "&page=3"]
    with pytest.raises(PageError) as info:
        metric_events_table([good, bad, good], urls)
    assert info.value.url == urls[1]
    assert urls[1] in str(info.value)
    if field is not None:
        assert repr(field) in str(info.value)


@pytest.mark.parametrize("missing", ["id", "ticket_id", "metric", "type", "time"])
def test_records_without_required_fields_raise_naming_the_field(missing):
    record = event(1)
    del record[missing]
    with pytest.raises(PageError, match=rf"{re.escape(URL)}.*'records\[\]\.{missing}'") as info:
        metric_events_table([page([event(0)]), page([record])], [URL + "&a", URL])
    assert info.value.url == URL


def test_null_record_is_an_error_not_a_dropped_row():
    with pytest.raises(PageError, match="'id'"):
        metric_events_table([b'{"ticket_metric_events": [null]}'], [URL])


@pytest.mark.parametrize(
    "body",
    [
        b'{"ticket_metric_events": [{"id": 1',  # truncated
        b"<html>503</html>",
        b"",
        b'{"ticket_metric_events": []}{"count": 0}',  # two objects in one body
        b'[{"id": 1}]',
    ],
)
def test_invalid_json_raises_page_error(body):
    with pytest.raises(PageError) as info:
        metric_events_table([page([event(1)]), body], [URL + "&ok", URL])
    assert info.value.url == URL


def test_invalid_utf8_raises_page_error_even_in_an_ignored_field():
    body = b'{"ticket_metric_events": [], "note": "caf\xe9"}'
    with pytest.raises(PageError, match="UTF-8") as info:
        metric_events_table([body], [URL])
    assert info.value.url == URL
    with pytest.raises(PageError, match="UTF-8"):
        ticket_events_table([body], [TE_URL])


def test_valid_utf8_text_is_kept():
    records = [event(1, type="apply_sla", sla={**SLA, "policy": {"id": 1, "title": "Priorité ☎"}})]
    table = metric_events_table(
        [json.dumps({"ticket_metric_events": records}, ensure_ascii=False).encode()]
    )
    assert table["policy_title"].to_pylist() == ["Priorité ☎"]


def test_instance_id_out_of_int32_range_is_an_error():
    with pytest.raises(PageError, match="instance_id"):
        metric_events_table([page([event(1, instance_id=2**40)])], [URL])


# ------------------------------------------------------------------------------ ticket events
def audit(id: int, children: list, **fields) -> dict:
    base = {
        "id": id,
        "ticket_id": 42,
        "timestamp": 1704164645,
        "created_at": "2024-01-02T03:04:05Z",
        "updater_id": 9,
        "via": "Web form",
        "event_type": "Audit",
        "child_events": children,
    }
    return {**base, **fields}


def test_audits_table_columns_and_via_string_or_object():
    body = page(
        [
            audit(1, [], via="Web form"),
            audit(2, [], via={"channel": "email", "source": {"from": {}}}, timestamp=None),
        ],
        key="ticket_events",
    )
    audits, metric = ticket_events_table([body], [TE_URL])
    assert metric is None
    assert audits.schema == TICKET_EVENTS_SCHEMA
    assert audits["via_channel"].to_pylist() == ["Web form", "email"]
    assert audits["time"].cast(pa.int64()).to_pylist() == [1704164645000, 1704164645000]
    frame = to_pandas(audits, "ticket_events")
    assert "child_events" not in frame.columns
    assert str(frame["time"].dtype) == "datetime64[ms, UTC]"
    assert str(frame["updater_id"].dtype) == "Int64"
    assert "child_events" in to_pandas(audits, "ticket_events", child_events=True).columns


def test_child_events_to_long_form_hand_computed():
    children = [
        {
            "id": 11,
            "via": "Web form",
            "via_reference_id": None,
            "subject": "Printer",
            "event_type": "Create",
        },
        {
            "id": 12,
            "via": "Web form",
            "status": "open",
            "previous_value": "new",
            "event_type": "Change",
        },
        {
            "id": 13,
            "tags": ["vip", "billing"],
            "added_tags": ["billing"],
            "removed_tags": [],
            "previous_value": ["vip"],
            "event_type": "Change",
        },
        {"id": 14, "type": "incident", "previous_value": None, "event_type": "Change"},
        {"id": 15, "comment_present": True, "comment_public": False, "event_type": "Comment"},
        {
            "id": 16,
            "via": "Rule",
            "subject": "Your request",
            "body": "Hi",
            "recipients": [5],
            "event_type": "Notification",
        },
        {
            "id": 17,
            "custom_field": {"a": 1},
            "is_public": True,
            "group_id": 360,
            "event_type": "Change",
        },
    ]
    audits, _ = ticket_events_table([page([audit(1, children)], key="ticket_events")])
    changes = ticket_changes(audits)
    assert changes.schema == TICKET_CHANGES_SCHEMA
    got = changes.select(
        ["event_id", "event_type", "field", "value", "previous_value", "public", "body"]
    ).to_pylist()
    keys = ["event_id", "event_type", "field", "value", "previous_value", "public", "body"]
    expected = [
        (11, "Create", "subject", "Printer", None, None, None),
        (12, "Change", "status", "open", "new", None, None),
        (13, "Change", "tags", "vip billing", "vip", None, None),
        (13, "Change", "added_tags", "billing", None, None, None),
        (13, "Change", "removed_tags", "", None, None, None),
        (14, "Change", "type", "incident", None, None, None),
        (15, "Comment", "comment", None, None, False, None),
        (16, "Notification", None, None, None, None, "Hi"),
        (17, "Change", "custom_field", '{"a":1}', None, None, None),
        (17, "Change", "is_public", "true", None, None, None),
        (17, "Change", "group_id", "360", None, None, None),
    ]
    assert got == [dict(zip(keys, row, strict=True)) for row in expected]
    assert set(changes["audit_id"].to_pylist()) == {1}
    assert set(changes["ticket_id"].to_pylist()) == {42}
    assert set(changes["via_channel"].to_pylist()) == {"Web form"}
    frame = to_pandas(changes, "ticket_changes")
    assert str(frame["field"].dtype) == "category"
    assert str(frame["value"].dtype) == "string"


def test_full_comment_objects_with_include_comment_events():
    comment = {
        "id": 21, "type": "Comment", "author_id": 77, "body": "Thanks!", "html_body": "<p>Thanks!</p>",
        "plain_body": "Thanks!", "public": True, "attachments": [], "audit_id": 3,
        "created_at": "2024-01-02T03:04:05Z", "via": {"channel": "web", "source": {}},
    }  # fmt: skip
    with_event_type = {**comment, "id": 22, "event_type": "Comment", "public": False}
    audits, _ = ticket_events_table(
        [page([audit(3, [comment, with_event_type])], key="ticket_events")]
    )
    rows = (
        ticket_changes(audits)
        .select(["event_id", "event_type", "field", "author_id", "public", "body"])
        .to_pylist()
    )
    assert rows == [
        {
            "event_id": 21,
            "event_type": "Comment",
            "field": "comment",
            "author_id": 77,
            "public": True,
            "body": "Thanks!",
        },
        {
            "event_id": 22,
            "event_type": "Comment",
            "field": "comment",
            "author_id": 77,
            "public": False,
            "body": "Thanks!",
        },
    ]
    assert audits["child_events"][0].as_py()[0]["via_channel"] == "web"


def test_audits_without_child_events_give_no_change_rows_and_time_from_created_at():
    record = audit(5, [], timestamp=None, created_at="2024-03-01T00:00:01Z")
    del record["child_events"]
    audits, _ = ticket_events_table([page([record], key="ticket_events")])
    assert audits["time"].cast(pa.int64()).to_pylist() == [1709251201000]
    assert ticket_changes(audits).num_rows == 0


def test_ticket_events_page_of_metric_objects_returns_a_metric_table():
    bodies = [
        page(
            [audit(1, [{"id": 2, "status": "open", "event_type": "Change"}])], key="ticket_events"
        ),
        page([event(7), event(8)], key="ticket_events"),
    ]
    audits, metric = ticket_events_table(bodies, [TE_URL + "&a", TE_URL + "&b"])
    assert audits["id"].to_pylist() == [1]
    assert metric is not None and metric["id"].to_pylist() == [7, 8]
    assert metric.schema == METRIC_EVENTS_SCHEMA


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"ticket_id": 1, "timestamp": 1}, "records[0].id"),
        ({"id": "x", "ticket_id": 1, "timestamp": 1}, "records[0].id"),
        ({"id": 1, "ticket_id": 1, "timestamp": "soon"}, "records[0].timestamp"),
        ({"id": 1, "ticket_id": 1}, "records[0].timestamp"),
        (
            {"id": 1, "ticket_id": 1, "timestamp": 1, "child_events": [{"id": "z"}]},
            "records[0].child_events[0].id",
        ),
    ],
)
def test_ticket_event_wrong_types_raise_naming_page_and_field(record, field):
    good = page([audit(9, [])], key="ticket_events")
    with pytest.raises(PageError) as info:
        ticket_events_table([good, page([record], key="ticket_events")], [TE_URL + "&a", TE_URL])
    assert info.value.url == TE_URL
    assert repr(field) in str(info.value)


@pytest.mark.parametrize("body", [b'{"ticket_events": [', b'{"ticket_events": [5]}', b"[]"])
def test_ticket_event_invalid_pages_raise(body):
    with pytest.raises(PageError) as info:
        ticket_events_table([body], [TE_URL])
    assert info.value.url == TE_URL


def test_page_mixing_audits_and_metric_events_is_refused():
    body = page([audit(1, []), event(2)], key="ticket_events")
    with pytest.raises(PageError, match="mixes"):
        ticket_events_table([body], [TE_URL])


def test_empty_tables_per_stream():
    assert empty_table("ticket_events").schema == TICKET_EVENTS_SCHEMA
    assert ticket_changes(empty_table("ticket_events")).schema == TICKET_CHANGES_SCHEMA
    audits, metric = ticket_events_table([page([], key="ticket_events")])
    assert audits.num_rows == 0 and metric is None
    with pytest.raises(ValueError, match="unknown stream"):
        empty_table("tickets")

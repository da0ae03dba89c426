"""Ticket attribute timelines and the as-of join onto SLA targets."""

from __future__ import annotations

import pandas as pd
import pytest

from zdevents.analysis.tickets import ATTRIBUTE_COLUMNS, attach_ticket_attributes, ticket_attributes

T0 = pd.Timestamp("2024-03-04 09:00", tz="UTC")
MS = pd.Timedelta(milliseconds=1)


def hours(h: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=h)


def changes(*rows: tuple) -> pd.DataFrame:
    """Long-form changes from (ticket_id, audit_id, time, via_channel, event_type, field, value)."""
    df = pd.DataFrame(
        rows,
        columns=["ticket_id", "audit_id", "time", "via_channel", "event_type", "field", "value"],
    )
    df.insert(4, "event_id", range(100, 100 + len(df)))
    return df.astype(
        {
            "ticket_id": "Int64",
            "audit_id": "Int64",
            "event_id": "Int64",
            "time": "datetime64[ms, UTC]",
            "via_channel": "string",
            "event_type": "string",
            "field": "string",
            "value": "string",
        }
    )


TICKET_1 = (
    (1, 10, hours(0), "email", "Create", "status", "new"),
    (1, 10, hours(0), "email", "Create", "priority", "normal"),
    (1, 10, hours(0), "email", "Create", "group_id", "5"),
    (1, 10, hours(0), "email", "Create", "brand_id", "1"),
    (1, 10, hours(0), "email", "Create", "ticket_form_id", "9"),
    (1, 10, hours(0), "email", "Comment", "comment", None),
    (1, 11, hours(1), "web", "Change", "priority", "high"),
    (1, 12, hours(2), "web", "Change", "assignee_id", "42"),
    (1, 13, hours(3), "api", "Change", "assignee_id", None),  # unassigned
    (1, 14, hours(4), "web", "Comment", "comment", None),  # no tracked change: no row
    (1, 15, hours(5), "web", "Change", "tags", "vip"),  # untracked field: no row
)


def test_timeline_forward_fills_and_keeps_cleared_values_null():
    att = ticket_attributes(changes(*TICKET_1))
    assert list(att.columns) == list(ATTRIBUTE_COLUMNS)
    assert att["valid_from"].tolist() == [hours(0), hours(1), hours(2), hours(3)]
    assert att["status"].tolist() == ["new"] * 4
    assert att["priority"].tolist() == ["normal", "high", "high", "high"]
    assert att["group_id"].tolist() == [5, 5, 5, 5]
    assert att["assignee_id"].isna().tolist() == [True, True, False, True]
    assert att.loc[2, "assignee_id"] == 42
    assert att["channel"].tolist() == ["email"] * 4  # channel of creation, not of the change
    assert att["group_id"].dtype == "Int64" and att["priority"].dtype == "string"
    assert att["valid_from"].dtype == "datetime64[ms, UTC]"


def test_same_timestamp_changes_last_event_wins():
    att = ticket_attributes(
        changes(
            (1, 10, hours(0), "web", "Create", "priority", "low"),
            (1, 11, hours(0), "web", "Change", "priority", "urgent"),
        )
    )
    assert att["priority"].tolist() == ["urgent"]


def test_channel_without_create_is_first_audits_and_untracked_ticket_gets_a_row():
    att = ticket_attributes(
        changes(
            (2, 20, hours(1), "api", "Change", "priority", "low"),
            (2, 21, hours(2), "web", "Change", "priority", "high"),
            (3, 30, hours(0), "mobile", "Change", "tags", "x"),
            (4, 40, hours(0), "api", "Change", "status", "open"),  # older, not the creation
            (4, 41, hours(1), "email", "Create", "status", "new"),
        )
    )
    by_ticket = att.groupby("ticket_id")["channel"].agg(list).to_dict()
    assert by_ticket == {2: ["api", "api"], 3: ["mobile"], 4: ["email", "email"]}
    three = att[att["ticket_id"] == 3].iloc[0]
    assert three.valid_from == hours(0) and pd.isna(three.priority)


def test_empty_changes_give_empty_typed_timeline():
    att = ticket_attributes(changes())
    assert att.empty and list(att.columns) == list(ATTRIBUTE_COLUMNS)
    assert att["group_id"].dtype == "Int64"


def _targets() -> pd.DataFrame:
    t = pd.DataFrame(
        {
            "ticket_id": pd.array([1, 1, 1, 99, 1, 1], dtype="Int64"),
            "applied_at": pd.Series(
                [hours(1) + MS, hours(1) - MS, hours(1), hours(1), pd.NaT, hours(-1)],
                dtype="datetime64[ms, UTC]",
            ),
            "outcome": ["a", "b", "c", "d", "e", "f"],
        }
    )
    return t.set_axis([50, 40, 30, 20, 10, 0])


def test_as_of_join_at_exact_boundaries_keeps_rows_order_and_index():
    targets = _targets()
    out = attach_ticket_attributes(targets, changes(*TICKET_1), groups={5: "Support"})
    assert out.index.tolist() == [50, 40, 30, 20, 10, 0]
    assert out["outcome"].tolist() == ["a", "b", "c", "d", "e", "f"]
    # change to "high" at hours(1): in force at hours(1) and after, not 1 ms before
    assert out["priority"].tolist()[:3] == ["high", "normal", "high"]
    assert out["priority"].isna().tolist()[3:] == [True, True, True]  # no ticket, NaT, before
    assert out["channel"].tolist()[:3] == ["email"] * 3
    assert out["group_name"].tolist()[:3] == ["Support"] * 3
    assert out["group_id"].dtype == "Int64" and out["priority"].dtype == "string"
    assert "assignee_id" in out.columns and "status" in out.columns
    pd.testing.assert_frame_equal(targets, _targets())  # input untouched


def test_attach_accepts_a_prebuilt_timeline_and_chosen_fields():
    timeline = ticket_attributes(changes(*TICKET_1))
    out = attach_ticket_attributes(_targets(), timeline, fields=["assignee_id"])
    assert list(out.columns) == ["ticket_id", "applied_at", "outcome", "assignee_id"]
    later = _targets().assign(applied_at=hours(2.5))
    assert attach_ticket_attributes(later, timeline, fields=["assignee_id"])[
        "assignee_id"
    ].tolist()[:3] == [42, 42, 42]


def test_attach_at_another_time_column_and_bad_arguments():
    targets = _targets().assign(fulfilled_at=hours(3))
    out = attach_ticket_attributes(
        targets, changes(*TICKET_1), at="fulfilled_at", fields=["assignee_id"]
    )
    assert out["assignee_id"].isna().tolist()[:3] == [True, True, True]  # cleared at hours(3)
    with pytest.raises(ValueError, match="unknown attribute"):
        attach_ticket_attributes(targets, changes(*TICKET_1), fields=["colour"])
    with pytest.raises(ValueError, match="group_id"):
        attach_ticket_attributes(targets, changes(*TICKET_1), fields=["priority"], groups={})


def test_channels_have_one_spelling_each():
    from zdevents.analysis.tickets import normalize_channels

    raw = pd.Series(
        [
            "Web form",
            "web",
            "Mail",
            "email",
            "Web service",
            "api",
            "Mobile SDK",
            "mobile_sdk",
            "Chat",
            " Voicemail ",
            "Something New",
            None,
        ],
        dtype="string",
    )
    assert normalize_channels(raw).tolist() == [
        "web",
        "web",
        "email",
        "email",
        "api",
        "api",
        "mobile_sdk",
        "mobile_sdk",
        "chat",
        "voice",
        "something_new",
        pd.NA,
    ]
    att = ticket_attributes(
        changes(
            (1, 10, hours(0), "Web form", "Create", "status", "new"),
            (2, 20, hours(0), "web", "Create", "status", "new"),
            (3, 30, hours(0), "Mail", "Create", "status", "new"),
        )
    )
    assert att["channel"].tolist() == ["web", "web", "email"]


def test_group_and_brand_names_from_mappings_unknown_ids_as_numbers():
    rows = (
        *TICKET_1,
        (2, 20, hours(0), "web", "Create", "group_id", "7"),
        (2, 20, hours(0), "web", "Create", "brand_id", "3"),
    )
    targets = pd.DataFrame(
        {
            "ticket_id": pd.array([1, 2, 99], dtype="Int64"),
            "applied_at": pd.Series([hours(1)] * 3, dtype="datetime64[ms, UTC]"),
        }
    )
    out = attach_ticket_attributes(
        targets, changes(*rows), groups={5: "Support"}, brands={1: "Acme", 2: "Acme Pay"}
    )
    assert out["group_name"].tolist() == ["Support", "7", pd.NA]  # 7 is not in the list
    assert out["brand_name"].tolist() == ["Acme", "3", pd.NA]
    assert out["brand_name"].dtype == "string"
    with pytest.raises(ValueError, match="brand_id"):
        attach_ticket_attributes(targets, changes(*rows), fields=["priority"], brands={})

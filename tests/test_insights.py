"""Lateness, due targets, trend verdicts, periodic/pausable pairs and funnel tables.

Every expected number here is worked out by hand from the few events of each test.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

import zdevents as zd
from zdevents.analysis.insights import (
    due_summary,
    due_targets,
    format_due,
    funnel_table,
    lateness,
    lateness_summary,
    trend_verdicts,
    update_pairing_summary,
    update_pairs,
)

T0 = pd.Timestamp("2024-01-01 09:00", tz="UTC")  # a Monday


def at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def events(rows: list[tuple]) -> pd.DataFrame:
    """Metric events from ``(ticket, metric, instance, type, minute, extra)`` tuples."""
    out = []
    for i, row in enumerate(rows, start=1):
        ticket, metric, instance, kind, minute, *extra = row
        record = {
            "id": i,
            "ticket_id": ticket,
            "metric": metric,
            "instance_id": instance,
            "type": kind,
            "time": at(minute),
        }
        if extra:
            record.update(extra[0])
        out.append(record)
    frame = pd.DataFrame(out)
    for col in ("sla_target_minutes", "sla_business_hours", "deleted", "policy_title"):
        if col not in frame:
            frame[col] = None
    frame["sla_target_minutes"] = frame["sla_target_minutes"].astype("Int64")
    frame["sla_business_hours"] = frame["sla_business_hours"].astype("boolean")
    frame["deleted"] = frame["deleted"].astype("boolean")
    frame["policy_title"] = frame["policy_title"].astype("string")
    return frame


def apply(ticket, metric, instance, minute, target=60, business=False, policy="P"):
    return (
        ticket,
        metric,
        instance,
        "apply_sla",
        minute,
        {"sla_target_minutes": target, "sla_business_hours": business, "policy_title": policy},
    )


# ---------------------------------------------------------------- lateness


def test_lateness_measures_fulfilled_to_fulfilment_and_open_to_as_of():
    ev = events(
        [
            (1, "reply_time", 1, "activate", 0),
            apply(1, "reply_time", 1, 0),
            (1, "reply_time", 1, "breach", 60),
            (1, "reply_time", 1, "fulfill", 105),
            (2, "reply_time", 1, "activate", 0),
            apply(2, "reply_time", 1, 0),
            (2, "reply_time", 1, "breach", 60),  # still open at as_of
            (3, "reply_time", 1, "activate", 0),
            apply(3, "reply_time", 1, 0),
            (3, "reply_time", 1, "fulfill", 30),  # achieved: not late
        ]
    )
    targets = zd.sla_targets(ev, as_of=at(300))
    late = lateness(targets)
    assert late["ticket_id"].tolist() == [1, 2]
    assert late["late_minutes"].tolist() == [45.0, 240.0]
    assert late["open"].tolist() == [False, True]
    assert late["late_until"].iloc[1] == at(300)
    assert late.attrs["zdevents_as_of"] == at(300)


def test_lateness_of_a_breach_exactly_at_fulfilment_is_zero_not_dropped():
    ev = events(
        [
            (1, "reply_time", 1, "activate", 0),
            apply(1, "reply_time", 1, 0),
            (1, "reply_time", 1, "breach", 60),
            (1, "reply_time", 1, "fulfill", 60),
        ]
    )
    late = lateness(zd.sla_targets(ev, as_of=at(600)))
    assert len(late) == 1
    assert late["late_minutes"].tolist() == [0.0]
    assert late["open"].tolist() == [False]


def test_lateness_treats_a_fulfilment_after_as_of_as_open_and_one_at_as_of_as_closed():
    targets = pd.DataFrame(
        {
            "outcome": ["breached", "breached"],
            "breached_at": [at(10), at(10)],
            "fulfilled_at": [at(100), at(99)],
        }
    )
    late = lateness(targets, as_of=at(99))
    assert late["late_minutes"].tolist() == [89.0, 89.0]
    assert late["open"].tolist() == [True, False]


def test_lateness_at_an_earlier_as_of_leaves_out_later_breaches():
    targets = pd.DataFrame(
        {
            "outcome": ["breached", "breached"],
            "breached_at": [at(10), at(50)],
            "fulfilled_at": [pd.NaT, pd.NaT],
        }
    )
    late = lateness(targets, as_of=at(50))
    assert late["late_minutes"].tolist() == [40.0, 0.0]  # a breach at as_of is 0 min late
    assert lateness(targets, as_of=at(49))["late_minutes"].tolist() == [39.0]


def test_lateness_needs_an_as_of():
    targets = pd.DataFrame(
        {"outcome": ["breached"], "breached_at": [at(0)], "fulfilled_at": [pd.NaT]}
    )
    with pytest.raises(ValueError, match="as_of is unknown"):
        lateness(targets)


def test_lateness_summary_median_and_linear_p90():
    late = pd.DataFrame(
        {
            "metric_label": ["A"] * 5 + ["B"],
            "late_minutes": [40.0, 0.0, 30.0, 10.0, 20.0, 7.0],
            "open": [True, False, False, False, False, False],
        }
    )
    out = lateness_summary(late)
    assert out["metric_label"].tolist() == ["A", "B"]
    assert out["breached"].tolist() == [5, 1]
    assert out["open"].tolist() == [1, 0]
    assert out["median_minutes"].tolist() == [20.0, 7.0]
    # sorted 0,10,20,30,40: position 0.9 * 4 = 3.6 -> 30 + 0.6 * 10
    assert out["p90_minutes"].tolist() == [pytest.approx(36.0), 7.0]
    assert out["max_minutes"].tolist() == [40.0, 7.0]


# ---------------------------------------------------------------- due targets


def test_due_time_from_scheduled_breach_then_calendar_target_then_unknown():
    ev = events(
        [
            # 1: a breach scheduled ahead (and a deleted one earlier): due at its time
            (1, "reply_time", 1, "activate", 0),
            apply(1, "reply_time", 1, 0, target=480),
            (1, "reply_time", 1, "breach", 90, {"deleted": True}),
            (1, "reply_time", 1, "breach", 150),
            # 2: calendar target, nothing scheduled: applied + target
            (2, "reply_time", 1, "activate", 10),
            apply(2, "reply_time", 1, 10, target=120),
            # 3: business-hour target: unknown
            (3, "reply_time", 1, "activate", 0),
            apply(3, "reply_time", 1, 0, business=True),
            # 4: fulfilled: not in the queue
            (4, "reply_time", 1, "activate", 0),
            apply(4, "reply_time", 1, 0),
            (4, "reply_time", 1, "fulfill", 5),
        ]
    )
    due = due_targets(ev, as_of=at(100))
    assert due["ticket_id"].tolist() == [2, 1, 3]
    assert due["due_at"].tolist()[:2] == [at(130), at(150)]
    assert pd.isna(due["due_at"].iloc[2])
    assert due["due_source"].tolist() == [
        "applied + target",
        "scheduled breach",
        "unknown (business hours)",
    ]
    assert due["minutes_to_due"].tolist()[:2] == [30.0, 50.0]
    assert (due["as_of"] == at(100)).all()


def test_a_breach_exactly_at_as_of_has_happened_one_just_after_is_due():
    ev = events(
        [
            (1, "reply_time", 1, "activate", 0),
            apply(1, "reply_time", 1, 0),
            (1, "reply_time", 1, "breach", 60),
        ]
    )
    assert due_targets(ev, as_of=at(60)).empty  # breached at as_of: not "about to breach"
    just_before = due_targets(ev, as_of=at(60) - pd.Timedelta(seconds=1))
    assert just_before["due_at"].tolist() == [at(60)]
    assert just_before["due_source"].tolist() == ["scheduled breach"]
    assert just_before["minutes_to_due"].tolist() == [pytest.approx(1 / 60)]


def test_due_targets_ignore_events_without_a_key_and_keep_extra_target_columns():
    ev = events(
        [
            (1, "reply_time", 1, "activate", 0),
            apply(1, "reply_time", 1, 0),
            (1, "reply_time", 1, "breach", 200),
        ]
    )
    stray = ev.iloc[[2]].assign(id=99, ticket_id=None, time=at(150))
    ev = pd.concat([ev, stray], ignore_index=True)
    ev["ticket_id"] = ev["ticket_id"].astype("Int64")
    targets = zd.sla_targets(ev, as_of=at(100)).assign(group_id=7)
    due = due_targets(ev, as_of=at(100), targets=targets)
    assert due["due_at"].tolist() == [at(200)]
    assert due["group_id"].tolist() == [7]


def test_a_paused_clock_has_no_due_time():
    ev = events(
        [
            (1, "requester_wait_time", 1, "activate", 0),
            apply(1, "requester_wait_time", 1, 0, target=60),
            (1, "requester_wait_time", 1, "pause", 20),
            (2, "requester_wait_time", 1, "activate", 0),
            apply(2, "requester_wait_time", 1, 0, target=60),
            (2, "requester_wait_time", 1, "pause", 20),
            (2, "requester_wait_time", 1, "activate", 30),
        ]
    )
    due = due_targets(ev, as_of=at(40)).set_index("ticket_id")
    assert due.loc[1, "due_source"] == "paused" and pd.isna(due.loc[1, "due_at"])
    assert due.loc[2, "due_source"] == "applied + target" and due.loc[2, "due_at"] == at(60)


def test_due_summary_counts_the_horizon_inclusively_by_group_and_assignee():
    as_of = at(0)
    due = pd.DataFrame(
        {
            "group_id": pd.array([1, 1, 1, 2, 2, 2], dtype="Int64"),
            "assignee_id": pd.array([10, 10, 11, 20, None, 20], dtype="Int64"),
            "due_at": [as_of, at(240), at(241), at(-5), at(60), pd.NaT],
            "as_of": [as_of] * 6,
        }
    )
    out = due_summary(
        due, "4h", groups={1: "Tier 1", 2: "Billing"}, assignees={10: "Ada", 11: "Alan"}
    )
    rows = {(r.group_name, r.assignee_name): r for r in out.itertuples()}
    assert rows[("Tier 1", "Ada")].due == 2  # at as_of and at as_of + 4h
    assert rows[("Tier 1", "Ada")].next_due_at == as_of
    assert ("Tier 1", "Alan") not in rows  # 1 minute past the horizon
    assert rows[("Billing", "20")].overdue_estimate == 1  # unknown id: shown as the id
    assert rows[("Billing", "20")].unknown_due == 1
    assert rows[("Billing", "(none)")].due == 1
    assert out.iloc[0]["group_name"] == "Tier 1"  # soonest first


def test_format_due_headline_table_and_soonest_list():
    as_of = at(0)
    due = pd.DataFrame(
        {
            "ticket_id": [1, 2, 3, 4, 5],
            "metric_label": ["First reply", "Next reply", "Resolution", "Agent work", "Resolution"],
            "group_id": pd.array([1, 1, 2, 2, 2], dtype="Int64"),
            "due_at": [as_of, at(90), at(-30), pd.NaT, at(300)],
            "minutes_to_due": [0.0, 90.0, -30.0, float("nan"), 300.0],
            "due_source": [
                "scheduled breach",
                "applied + target",
                "applied + target",
                "unknown (business hours)",
                "applied + target",
            ],
            "as_of": [as_of] * 5,
        }
    )
    due.attrs["zdevents_as_of"] = as_of
    text = format_due(due, "90min")
    lines = text.splitlines()
    assert lines[0] == (
        "2 SLA targets due within 90 min of 2024-01-01 09:00 UTC (5 active: 1 past their "
        "estimated due time, 1 due later, 1 business-hour targets with no scheduled breach, "
        "0 paused)"
    )  # 2 + 1 + 1 + 1 + 0: every active target is counted once
    assert lines[2].split() == [
        "group",
        "id",
        "due",
        "within",
        "90",
        "min",
        "past",
        "estimated",
        "due",
        "next",
        "due",
        "(UTC)",
    ]
    assert lines[3].split() == ["1", "2", "0", "01-01", "09:00"]
    assert lines[5] == "soonest:"
    assert lines[7].split()[:5] == ["01-01", "09:00", "0", "min", "1"]
    assert lines[8].split()[:5] == ["01-01", "10:30", "90", "min", "2"]
    assert len(lines) == 9
    assert format_due(due.iloc[0:0], "4h") == "no active SLA targets at 2024-01-01 09:00 UTC"


def test_due_summary_rejects_a_negative_horizon():
    due = pd.DataFrame({"due_at": [at(0)], "as_of": [at(0)]})
    with pytest.raises(ValueError, match="within"):
        due_summary(due, "-1h")


# ---------------------------------------------------------------- trend verdicts


def weekly_targets(counts: list[tuple[int, int, int]], metric="reply_time") -> pd.DataFrame:
    """Targets from ``(breached, achieved, active)`` per week, week 0 starting at T0."""
    rows = []
    for week, (b, a, o) in enumerate(counts):
        applied = T0 + pd.Timedelta(weeks=week, hours=1)
        rows += [("breached", applied)] * b + [("achieved", applied)] * a
        rows += [("active", applied)] * o
    return pd.DataFrame(
        {
            "metric_label": metric,
            "outcome": [r[0] for r in rows],
            "applied_at": [r[1] for r in rows],
        }
    )


def test_trend_verdict_two_proportion_test_by_hand():
    # Baseline weeks 0-1: 20/100 each (40/200); latest week 2: 10/100.
    targets = weekly_targets([(20, 80, 0), (20, 80, 0), (10, 90, 0)])
    week3 = T0.normalize() + pd.Timedelta(weeks=3)
    out = trend_verdicts(targets, k=2, as_of=week3)
    row = out.iloc[0]
    pooled = 50 / 300
    z = (0.1 - 0.2) / math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 200))
    assert row["latest_period"] == T0.normalize() + pd.Timedelta(weeks=2)
    assert (row["latest_breached"], row["latest_completed"]) == (10, 100)
    assert (row["baseline_breached"], row["baseline_completed"]) == (40, 200)
    assert row["baseline_periods"] == 2
    assert row["rate_change"] == pytest.approx(-0.1)
    assert row["relative_change"] == pytest.approx(-0.5)
    assert row["z"] == pytest.approx(z) and z == pytest.approx(-2.19089, abs=1e-5)
    assert row["p_value"] == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))
    assert row["p_value"] == pytest.approx(0.028459, abs=1e-5)
    assert row["cohens_h"] == pytest.approx(2 * math.asin(0.1**0.5) - 2 * math.asin(0.2**0.5))
    assert row["verdict"] == "better"
    worse = trend_verdicts(
        weekly_targets([(10, 90, 0), (10, 90, 0), (25, 75, 0)]), k=2, as_of=week3
    )
    assert worse["verdict"].iloc[0] == "worse"
    same = trend_verdicts(weekly_targets([(20, 80, 0), (20, 80, 0), (18, 82, 0)]), k=2, as_of=week3)
    assert same["verdict"].iloc[0] == "no significant change"


def test_a_week_ending_exactly_at_as_of_is_complete_one_millisecond_later_it_is_not():
    targets = weekly_targets([(20, 80, 0), (20, 80, 0), (10, 90, 0)])
    end_of_week2 = T0.normalize() + pd.Timedelta(weeks=3)
    on_time = trend_verdicts(targets, k=1, as_of=end_of_week2).iloc[0]
    assert on_time["latest_period"] == T0.normalize() + pd.Timedelta(weeks=2)
    early = trend_verdicts(targets, k=1, as_of=end_of_week2 - pd.Timedelta(milliseconds=1))
    assert early["latest_period"].iloc[0] == T0.normalize() + pd.Timedelta(weeks=1)
    assert early["baseline_breached"].iloc[0] == 20


def test_weeks_with_open_targets_are_never_used():
    # Week 2 has an open target: the latest complete week is week 1, baseline week 0.
    targets = weekly_targets([(30, 70, 0), (10, 90, 0), (0, 50, 1)])
    out = trend_verdicts(targets, k=4, as_of=T0 + pd.Timedelta(weeks=10)).iloc[0]
    assert out["latest_period"] == T0.normalize() + pd.Timedelta(weeks=1)
    assert out["baseline_periods"] == 1
    assert out["baseline_breached"] == 30


def test_trend_without_a_baseline_says_not_enough_data():
    out = trend_verdicts(weekly_targets([(5, 5, 0)]), as_of=T0 + pd.Timedelta(weeks=2))
    assert out["verdict"].tolist() == ["not enough data"]
    assert out["latest_rate"].tolist() == [0.5]
    assert math.isnan(out["p_value"].iloc[0])


def test_monthly_periods_and_one_verdict_per_group():
    targets = pd.concat(
        [
            weekly_targets([(1, 1, 0)], metric="A"),
            weekly_targets([(1, 3, 0)], metric="B").assign(
                applied_at=pd.Timestamp("2024-02-10", tz="UTC")
            ),
        ]
    )
    out = trend_verdicts(targets, freq="M", as_of="2024-03-01")
    assert out["metric_label"].tolist() == ["A", "B"]
    assert out["latest_period"].tolist() == [
        pd.Timestamp("2024-01-01", tz="UTC"),
        pd.Timestamp("2024-02-01", tz="UTC"),
    ]
    assert out["latest_rate"].tolist() == [0.5, 0.25]


# ---------------------------------------------------------------- periodic vs pausable


def test_update_pairs_per_ticket_instance_from_events():
    P, Q = "periodic_update_time", "pausable_update_time"
    ev = events(
        [
            # ticket 1 instance 1: periodic breached exactly at fulfilment, pausable achieved
            (1, P, 1, "activate", 0),
            apply(1, P, 1, 0),
            (1, P, 1, "breach", 60),
            (1, P, 1, "fulfill", 60),
            (1, Q, 1, "activate", 0),
            apply(1, Q, 1, 0),
            (1, Q, 1, "fulfill", 60),
            # ticket 1 instance 2: both breached
            (1, P, 2, "activate", 60),
            apply(1, P, 2, 60),
            (1, P, 2, "breach", 120),
            (1, Q, 2, "activate", 60),
            apply(1, Q, 2, 60),
            (1, Q, 2, "breach", 130),
            (1, P, 2, "fulfill", 200),
            (1, Q, 2, "fulfill", 200),
            # ticket 2: pausable breached only; ticket 3: open; ticket 4: periodic alone
            (2, P, 1, "activate", 0),
            apply(2, P, 1, 0, policy="Q"),
            (2, P, 1, "fulfill", 50),
            (2, Q, 1, "activate", 0),
            apply(2, Q, 1, 0, policy="Q"),
            (2, Q, 1, "breach", 40),
            (2, Q, 1, "fulfill", 50),
            (3, P, 1, "activate", 0),
            apply(3, P, 1, 0),
            (3, Q, 1, "activate", 0),
            apply(3, Q, 1, 0),
            (4, P, 1, "activate", 0),
            apply(4, P, 1, 0),
            (4, P, 1, "fulfill", 5),
        ]
    )
    pairs = update_pairs(zd.sla_targets(ev, as_of=at(300)))
    got = {(r.ticket_id, r.instance_id): r.pairing for r in pairs.itertuples()}
    assert got == {
        (1, 1): "periodic only",
        (1, 2): "both breached",
        (2, 1): "pausable only",
        (3, 1): "open",
    }
    assert pairs.loc[pairs["ticket_id"] == 1, "periodic_breached_at"].tolist() == [at(60), at(120)]

    by_policy = update_pairing_summary(pairs, by="policy_title").set_index("policy_title")
    assert by_policy.loc["P", "pairs"] == 3
    assert by_policy.loc["P", "periodic only"] == 1
    assert by_policy.loc["P", "both breached"] == 1
    assert by_policy.loc["P", "periodic_breached"] == 2
    assert by_policy.loc["P", "explained_by_waiting"] == 0.5
    assert by_policy.loc["Q", "pausable only"] == 1
    assert math.isnan(by_policy.loc["Q", "explained_by_waiting"])
    overall = update_pairing_summary(pairs, by=None)
    assert overall[["pairs", "both achieved", "open"]].iloc[0].tolist() == [4, 0, 1]


def test_update_pairs_ignore_group_slas_and_keep_attribute_columns():
    targets = pd.DataFrame(
        {
            "ticket_id": [1, 1, 1],
            "instance_id": [1, 1, 1],
            "metric": ["periodic_update_time", "pausable_update_time", "pausable_update_time"],
            "sla_kind": ["sla", "sla", "group_sla"],
            "group_name": ["Billing", "Billing", "X"],
            "outcome": ["achieved", "breached", "achieved"],
            "breached_at": [pd.NaT] * 3,
        }
    )
    pairs = update_pairs(targets)
    assert pairs["pairing"].tolist() == ["pausable only"]
    assert update_pairing_summary(pairs, by="group_name")["group_name"].tolist() == ["Billing"]


# ---------------------------------------------------------------- funnel tables


def test_funnel_limits_positions_and_ranks_by_hand():
    rates = pd.DataFrame(
        {
            "group": ["A", "B", "C", "D"],
            "breached": [30, 10, 20, 1],
            "achieved": [70, 90, 80, 2],
        }
    )
    out = funnel_table(rates, by="group", min_targets=10, shrink=False).set_index("group")
    p0 = 61 / 303
    se = math.sqrt(p0 * (1 - p0) / 100)
    assert out.loc["A", "overall_rate"] == pytest.approx(p0)
    assert out.loc["A", "upper_95"] == pytest.approx(p0 + 1.959964 * se, abs=1e-6)
    assert out.loc["A", "upper_998"] == pytest.approx(p0 + 3.090232 * se, abs=1e-6)
    # A: 0.30 > upper 95 (0.2801) but < upper 99.8 (0.3252);
    # B: 0.10 < lower 95 (0.1227) but > lower 99.8 (0.0774)
    assert out.loc["A", "position"] == "above 95% limit"
    assert out.loc["B", "position"] == "below 95% limit"
    assert out.loc["C", "position"] == "within limits"
    assert out.loc["D", "position"] == "too few targets"
    assert out.loc[["A", "B", "C"], "rank"].tolist() == [3, 1, 2]
    assert pd.isna(out.loc["D", "rank"])
    assert list(out.index) == ["B", "C", "A", "D"]  # ranked first, unranked last


def test_funnel_min_targets_is_inclusive_and_a_breach_at_fulfilment_counts():
    ev = events(
        [
            (1, "reply_time", 1, "activate", 0),
            apply(1, "reply_time", 1, 0),
            (1, "reply_time", 1, "breach", 60),
            (1, "reply_time", 1, "fulfill", 60),
            (2, "reply_time", 1, "activate", 0),
            apply(2, "reply_time", 1, 0),
            (2, "reply_time", 1, "fulfill", 59),
            (3, "reply_time", 1, "activate", 0),
            apply(3, "reply_time", 1, 0),
            (3, "reply_time", 1, "fulfill", 1),
        ]
    )
    targets = zd.sla_targets(ev, as_of=at(100)).assign(group=["X", "X", "Y"])
    out = funnel_table(targets, by="group", min_targets=2).set_index("group")
    assert out.loc["X", "breached"] == 1 and out.loc["X", "completed"] == 2
    assert out.loc["X", "rank"] == 1
    assert pd.isna(out.loc["Y", "rank"]) and out.loc["Y", "position"] == "too few targets"
    assert out.loc["X", "overall_rate"] == pytest.approx(1 / 3)


def test_funnel_shrinks_towards_the_overall_rate_by_the_method_of_moments():
    rates = pd.DataFrame(
        {"unit": ["a", "b", "c"], "breached": [10, 30, 50], "achieved": [90, 70, 50]}
    )
    out = funnel_table(rates, by="unit", min_targets=1).set_index("unit")
    p0 = 0.3
    tau2 = 0.04 - p0 * (1 - p0) / 100  # sample variance of 0.1, 0.3, 0.5 is 0.04
    m = p0 * (1 - p0) / tau2 - 1
    assert out.loc["a", "shrunk_rate"] == pytest.approx((10 + p0 * m) / (100 + m))
    assert out.loc["b", "shrunk_rate"] == pytest.approx(0.3)
    assert 0.1 < out.loc["a", "shrunk_rate"] < 0.3 < out.loc["c", "shrunk_rate"] < 0.5
    flat = pd.DataFrame({"unit": ["a", "b"], "breached": [10, 10], "achieved": [90, 90]})
    assert funnel_table(flat, by="unit", min_targets=1)["shrunk_rate"].tolist() == [0.1, 0.1]


def test_funnel_leaves_out_rows_without_a_unit():
    targets = pd.DataFrame(
        {
            "assignee_id": pd.array([1, None, 1], dtype="Int64"),
            "outcome": ["breached", "breached", "achieved"],
        }
    )
    out = funnel_table(targets, by="assignee_id", min_targets=1)
    assert out["assignee_id"].tolist() == [1]
    assert out["overall_rate"].tolist() == [0.5]


def test_trend_takeaway_names_the_week_of_each_metric_when_they_differ():
    from zdevents.viz.takeaways import trend_takeaway

    week = pd.Timestamp("2024-06-17", tz="UTC")
    verdicts = pd.DataFrame(
        {
            # Agent work's newest week still has open targets: its latest complete week is earlier
            "metric_label": ["Agent work", "Next reply", "First reply"],
            "verdict": ["no significant change", "better", "no significant change"],
            "latest_period": [week - pd.Timedelta(weeks=1), week, week],
            "latest_rate": [0.1, 0.05, 0.2],
            "baseline_rate": [0.1, 0.15, 0.2],
            "p_value": [0.9, 0.048, 0.7],
        }
    )
    assert trend_takeaway(verdicts) == (
        "Week of 17 Jun 2024 (week of 10 Jun 2024 for Agent work) vs the weeks before: "
        "Next reply better (5.0% vs 15.0%, p=0.048); no significant change on 2 other metrics."
    )
    same = verdicts.assign(latest_period=week)
    assert trend_takeaway(same).startswith("Week of 17 Jun 2024 vs the weeks before: ")

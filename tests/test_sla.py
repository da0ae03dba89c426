"""SLA targets and breach rates: every outcome rule on hand-built events, every engine."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from zdevents.analysis.sla import (
    METRIC_LABELS,
    TARGET_COLUMNS,
    WindowedEventsWarning,
    applied_between,
    breach_rates,
    metric_label,
    sla_targets,
)

T0 = pd.Timestamp("2024-03-04 09:00", tz="UTC")  # a Monday
AS_OF = T0 + pd.Timedelta(days=30)
KEY = ["ticket_id", "metric", "instance_id", "sla_kind"]


def at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def ev(
    type_,
    minute,
    *,
    ticket=1,
    metric="reply_time",
    inst=1,
    target=None,
    bh=None,
    policy=None,
    title=None,
    kind=None,
    cal=None,
    bus=None,
    deleted=None,
):
    """One metric event as a dict (the id is assigned by `events`)."""
    if type_ in ("apply_sla", "apply_group_sla") and kind is None:
        kind = "group_sla" if type_ == "apply_group_sla" else "sla"
    return {
        "ticket_id": ticket,
        "metric": metric,
        "instance_id": inst,
        "type": type_,
        "minute": minute,
        "sla_kind": kind,
        "sla_target_minutes": target,
        "sla_business_hours": bh,
        "policy_id": policy,
        "policy_title": title,
        "status_calendar_minutes": cal,
        "status_business_minutes": bus,
        "deleted": deleted,
    }


def apply(minute, target=60, policy=1, title="Standard", bh=False, **kw):
    return ev("apply_sla", minute, target=target, policy=policy, title=title, bh=bh, **kw)


def events(*rows: dict) -> pd.DataFrame:
    """Metric events with the cache contract's dtypes."""
    df = pd.DataFrame(list(rows))
    df.insert(0, "id", range(1, len(df) + 1))
    df.insert(5, "time", T0 + pd.to_timedelta(df.pop("minute"), unit="min"))
    return df.astype(
        {
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
    )


def one(df: pd.DataFrame, **match) -> pd.Series:
    """The single target row matching the given column values."""
    mask = np.ones(len(df), dtype=bool)
    for col, val in match.items():
        mask &= (df[col] == val).to_numpy(dtype=bool, na_value=False)
    assert mask.sum() == 1, df
    return df[mask].iloc[0]


# --- sla_targets: the rules ------------------------------------------------------------


def test_achieved_target_has_policy_fulfilment_status_and_elapsed():
    df = sla_targets(
        events(
            ev("activate", 0),
            apply(0, target=60, policy=11, title="Gold"),
            ev("fulfill", 30),
            ev("update_status", 30, cal=30, bus=20),
        ),
        as_of=AS_OF,
    )
    assert list(df.columns) == list(TARGET_COLUMNS)
    assert len(df) == 1
    row = df.iloc[0]
    assert (row.ticket_id, row.metric, row.instance_id, row.sla_kind) == (1, "reply_time", 1, "sla")
    assert (row.policy_id, row.policy_title, row.target_minutes) == (11, "Gold", 60)
    assert not row.business_hours
    assert row.applied_at == at(0) and row.fulfilled_at == at(30)
    assert pd.isna(row.breached_at)
    assert row.outcome == "achieved"
    assert (row.status_calendar_minutes, row.status_business_minutes) == (30, 20)
    assert row.elapsed_minutes == 30.0 and row.elapsed_ratio == 0.5
    assert row.reply_kind == "first_reply" and row.metric_label == "First reply"
    assert df["applied_at"].dtype == "datetime64[ms, UTC]"


def test_deleted_breach_does_not_count():
    df = sla_targets(
        events(
            ev("activate", 0),
            apply(0),
            ev("breach", 60, deleted=True),
            ev("fulfill", 90),
        ),
        as_of=AS_OF,
    )
    assert df.loc[0, "outcome"] == "achieved"
    assert pd.isna(df.loc[0, "breached_at"])


def test_deleted_breach_is_ignored_and_a_later_live_breach_still_counts():
    df = sla_targets(
        events(
            ev("activate", 0),
            apply(0),
            ev("breach", 40, deleted=True),
            ev("breach", 60),
            ev("fulfill", 90),
        ),
        as_of=AS_OF,
    )
    assert df.loc[0, "outcome"] == "breached"
    assert df.loc[0, "breached_at"] == at(60)  # not 40: the deleted one is not the earliest


def test_deleted_apply_sla_is_ignored():
    # A re-apply at minute 10 (120-minute target, policy 2) is deleted: policy 1 stays in
    # force, so fulfilling at 90 against a 60-minute target gives an elapsed ratio of 1.5.
    df = sla_targets(
        events(
            ev("activate", 0),
            apply(0, target=60, policy=1, title="Standard"),
            apply(10, target=120, policy=2, title="Deleted", deleted=True),
            ev("fulfill", 90),
        ),
        as_of=AS_OF,
    )
    assert len(df) == 1
    row = df.iloc[0]
    assert (row.policy_id, row.policy_title, row.target_minutes) == (1, "Standard", 60)
    assert row.applied_at == at(0)
    assert row.elapsed_minutes == 90.0 and row.elapsed_ratio == 1.5


def test_target_whose_only_apply_is_deleted_is_not_a_target():
    df = sla_targets(
        events(
            ev("activate", 0),
            apply(0, deleted=True),
            ev("breach", 60),
            ev("fulfill", 90),
            ev("activate", 0, ticket=2),
            apply(0, ticket=2),
            ev("fulfill", 30, ticket=2),
        ),
        as_of=AS_OF,
    )
    assert df["ticket_id"].tolist() == [2]
    assert df["outcome"].tolist() == ["achieved"]


def test_deleted_fulfill_leaves_the_target_open_and_a_later_breach_counts():
    # Were the fulfil at 30 counted, the breach at 60 would come after it: achieved.
    rows = (ev("activate", 0), apply(0), ev("fulfill", 30, deleted=True))
    open_target = sla_targets(events(*rows), as_of=AS_OF).iloc[0]
    assert open_target.outcome == "active" and pd.isna(open_target.fulfilled_at)
    breached = sla_targets(events(*rows, ev("breach", 60)), as_of=AS_OF).iloc[0]
    assert breached.outcome == "breached" and breached.breached_at == at(60)
    assert pd.isna(breached.fulfilled_at)


def test_deleted_activate_does_not_reopen_a_fulfilled_target():
    df = sla_targets(
        events(
            ev("activate", 0),
            apply(0),
            ev("fulfill", 30),
            ev("activate", 45, deleted=True),
            ev("breach", 60),
        ),
        as_of=AS_OF,
    )
    assert df.loc[0, "outcome"] == "achieved" and df.loc[0, "fulfilled_at"] == at(30)


def test_future_breach_counts_only_once_as_of_reaches_it():
    rows = (ev("activate", 0), apply(0), ev("breach", 60))
    assert sla_targets(events(*rows), as_of=at(59)).loc[0, "outcome"] == "active"
    at_breach = sla_targets(events(*rows), as_of=at(60))
    assert at_breach.loc[0, "outcome"] == "breached"  # as_of is inclusive
    assert at_breach.loc[0, "breached_at"] == at(60)


def test_breach_after_fulfilment_is_ignored_but_one_at_fulfilment_counts():
    after = sla_targets(events(apply(0), ev("breach", 60), ev("fulfill", 30)), as_of=AS_OF)
    assert after.loc[0, "outcome"] == "achieved"
    same = sla_targets(events(apply(0), ev("breach", 30), ev("fulfill", 30)), as_of=AS_OF)
    assert same.loc[0, "outcome"] == "breached"


def test_breached_then_fulfilled_stays_breached():
    df = sla_targets(
        events(
            ev("activate", 0),
            apply(0),
            ev("breach", 60),
            ev("fulfill", 90),
        ),
        as_of=AS_OF,
    )
    row = df.iloc[0]
    assert row.outcome == "breached"
    assert row.breached_at == at(60) and row.fulfilled_at == at(90)


def test_target_in_force_is_last_apply_at_or_before_fulfilment():
    df = sla_targets(
        events(
            apply(0, target=60, policy=1, title="Old"),
            apply(20, target=120, policy=2, title="New"),
            ev("fulfill", 50),
            apply(70, target=30, policy=3, title="After"),  # re-apply after fulfilment: ignored
        ),
        as_of=AS_OF,
    )
    row = df.iloc[0]
    assert (row.policy_id, row.policy_title, row.target_minutes) == (2, "New", 120)
    assert row.applied_at == at(20)


def test_apply_at_the_fulfilment_instant_is_in_force():
    df = sla_targets(
        events(apply(0, policy=1), apply(50, policy=2), ev("fulfill", 50)), as_of=AS_OF
    )
    assert df.loc[0, "policy_id"] == 2


def test_applies_at_one_timestamp_tie_break_on_larger_id():
    df = sla_targets(events(apply(0, policy=1), apply(0, policy=2)), as_of=AS_OF)
    assert len(df) == 1 and df.loc[0, "policy_id"] == 2


def test_open_target_uses_last_apply_up_to_as_of():
    rows = (apply(0, policy=1), apply(100, policy=2))
    assert sla_targets(events(*rows), as_of=at(50)).loc[0, "policy_id"] == 1
    assert sla_targets(events(*rows), as_of=at(100)).loc[0, "policy_id"] == 2


def test_fulfilled_before_any_sla_applied_is_not_a_target():
    df = sla_targets(
        events(
            ev("activate", 0),
            ev("fulfill", 10),
            apply(20),  # ticket 1: applied too late
            ev("activate", 0, ticket=2),
            ev("fulfill", 10, ticket=2),  # ticket 2: no SLA at all
        ),
        as_of=AS_OF,
    )
    assert df.empty
    assert list(df.columns) == list(TARGET_COLUMNS)


def test_reply_time_instances_split_first_and_next_replies():
    df = sla_targets(
        events(
            apply(0, inst=1),
            ev("fulfill", 10, inst=1),
            apply(20, inst=2),
            ev("breach", 80, inst=2),
            ev("fulfill", 100, inst=2),
            apply(120, inst=3),
        ),
        as_of=AS_OF,
    )
    assert df["instance_id"].tolist() == [1, 2, 3]
    assert df["reply_kind"].tolist() == ["first_reply", "next_reply", "next_reply"]
    assert df["metric_label"].tolist() == ["First reply", "Next reply", "Next reply"]
    assert df["outcome"].tolist() == ["achieved", "breached", "active"]


def test_periodic_and_pausable_update_targets():
    df = sla_targets(
        events(
            apply(0, metric="periodic_update_time", inst=1),
            ev("fulfill", 30, metric="periodic_update_time", inst=1),
            apply(30, metric="periodic_update_time", inst=2),
            ev("breach", 90, metric="periodic_update_time", inst=2),
            apply(0, metric="pausable_update_time", inst=1, target=45),
            ev("pause", 10, metric="pausable_update_time", inst=1),
            ev("activate", 100, metric="pausable_update_time", inst=1),
            ev("fulfill", 120, metric="pausable_update_time", inst=1),
        ),
        as_of=AS_OF,
    )
    periodic = df[df["metric"] == "periodic_update_time"]
    assert periodic["outcome"].tolist() == ["achieved", "breached"]
    assert set(periodic["metric_label"]) == {"Periodic update"}
    assert periodic["reply_kind"].isna().all()
    pausable = one(df, metric="pausable_update_time")
    assert pausable.outcome == "achieved" and pausable.metric_label == "Pausable update"
    # no update_status: elapsed falls back to first activate -> fulfilment (calendar)
    assert pausable.elapsed_minutes == 20.0
    assert pausable.elapsed_ratio == pytest.approx(20 / 45)


def test_reopened_target_is_active_until_fulfilled_again():
    base = (ev("activate", 0), apply(0), ev("fulfill", 30), ev("activate", 100))
    reopened = sla_targets(events(*base), as_of=AS_OF).iloc[0]
    assert reopened.outcome == "active" and pd.isna(reopened.fulfilled_at)
    assert pd.isna(reopened.elapsed_minutes)
    refulfilled = sla_targets(events(*base, ev("fulfill", 150)), as_of=AS_OF).iloc[0]
    assert refulfilled.outcome == "achieved" and refulfilled.fulfilled_at == at(150)
    # a breach between the two fulfilments counts: it is before the (last) fulfilment
    late = sla_targets(events(*base, ev("breach", 120), ev("fulfill", 150)), as_of=AS_OF)
    assert late.loc[0, "outcome"] == "breached"


def test_activate_at_the_fulfilment_instant_does_not_reopen():
    df = sla_targets(events(apply(0), ev("activate", 0), ev("fulfill", 0)), as_of=AS_OF)
    assert df.loc[0, "outcome"] == "achieved" and df.loc[0, "fulfilled_at"] == at(0)


def test_group_sla_is_a_separate_target():
    g = {"metric": "group_ownership_time"}
    df = sla_targets(
        events(
            ev("activate", 0, **g),
            ev("apply_group_sla", 0, target=240, policy=7, title="Tier 2", bh=False, **g),
            apply(0, target=480, policy=1, **g),
            ev("breach", 240, kind="group_sla", **g),  # marked for the group SLA only
            ev("breach", 300, **g),  # unmarked: counts for both
            ev("fulfill", 600, **g),
        ),
        as_of=AS_OF,
    )
    assert df["sla_kind"].tolist() == ["group_sla", "sla"]
    group, sla = df.iloc[0], df.iloc[1]
    assert (group.policy_id, group.target_minutes, group.metric_label) == (
        7,
        240,
        "Group ownership",
    )
    assert group.breached_at == at(240) and sla.breached_at == at(300)
    assert (group.outcome, sla.outcome) == ("breached", "breached")


def test_unknown_metric_and_type_pass_through():
    df = sla_targets(
        events(
            apply(0, metric="custom_wait_time"),
            ev("teleport", 5, metric="custom_wait_time"),
            ev("fulfill", 10, metric="custom_wait_time"),
            ev("teleport", 5),
        ),
        as_of=AS_OF,
    )
    row = df.iloc[0]
    assert len(df) == 1
    assert (row.metric, row.metric_label, row.outcome) == (
        "custom_wait_time",
        "Custom Wait Time",
        "achieved",
    )


def test_business_hours_target_uses_business_minutes():
    df = sla_targets(
        events(
            apply(0, target=40, bh=True),
            ev("fulfill", 90),
            ev("update_status", 90, cal=90, bus=10),
        ),
        as_of=AS_OF,
    )
    assert df.loc[0, "elapsed_minutes"] == 10.0 and df.loc[0, "elapsed_ratio"] == 0.25


def test_as_of_comes_from_attrs_and_events_after_it_are_ignored():
    frame = events(
        ev("activate", 0), apply(0), ev("breach", 60), ev("fulfill", 90), apply(40, ticket=2)
    )
    frame.attrs["zdevents_as_of"] = at(30)
    df = sla_targets(frame)
    assert df["outcome"].tolist() == ["active"]  # ticket 2's apply is after as_of
    assert df.attrs["zdevents_as_of"] == at(30)
    explicit = sla_targets(frame, as_of="2024-03-04 10:00")  # naive: read as UTC
    assert explicit["outcome"].tolist() == ["breached", "active"]
    assert explicit.attrs["zdevents_as_of"] == at(60)


def test_events_loaded_for_a_window_warn_that_targets_need_the_whole_history():
    frame = events(ev("activate", 0), apply(0))
    frame.attrs["zdevents_window"] = (T0, None)
    with pytest.warns(
        WindowedEventsWarning, match=r"loaded with since='2024-03-04T09:00:00\+00:00', a window"
    ) as seen:
        sla_targets(frame, as_of=AS_OF)
    assert seen[0].filename == __file__  # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error", WindowedEventsWarning)
        sla_targets(events(ev("activate", 0), apply(0)), as_of=AS_OF)


def test_default_as_of_is_now():
    future = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1)).floor("s")
    frame = events(apply(0), ev("breach", 0))
    frame["time"] = frame["time"].astype("datetime64[us, UTC]")
    frame.loc[1, "time"] = future
    assert sla_targets(frame).loc[0, "outcome"] == "active"


def test_missing_required_column_is_a_clear_error():
    with pytest.raises(ValueError, match="instance_id"):
        sla_targets(events(apply(0)).drop(columns="instance_id"), as_of=AS_OF)


def test_minimal_pandas_frame_without_optional_columns():
    df = pd.DataFrame(
        {
            "id": [1, 2],
            "ticket_id": [5, 5],
            "metric": "resolution_time",
            "instance_id": 0,
            "type": ["apply_sla", "breach"],
            "time": [at(0), at(5)],
        }
    )
    out = sla_targets(df, as_of=AS_OF)
    assert out["outcome"].tolist() == ["breached"]
    assert out.loc[0, "metric_label"] == "Resolution"


def test_metric_label():
    assert metric_label("reply_time", 1) == "First reply"
    assert metric_label("reply_time", 2) == "Next reply"
    assert metric_label("reply_time") == "Reply"
    assert metric_label("requester_wait_time", 0) == "Requester wait"
    assert metric_label("agent_work_time") == "Agent work"
    assert metric_label("brand_new_thing") == "Brand New Thing"
    assert METRIC_LABELS["periodic_update_time"] == "Periodic update"


# --- breach_rates ----------------------------------------------------------------------


def targets_frame(outcomes, *, metric="reply_time", applied_at=None, **cols):
    df = pd.DataFrame({"metric": metric, "outcome": outcomes, **cols})
    df["applied_at"] = pd.Series(
        applied_at if applied_at is not None else [T0] * len(df), dtype="datetime64[ms, UTC]"
    )
    return df


def test_breach_rates_counts_rates_and_nan_without_completed_targets():
    t = pd.concat(
        [
            targets_frame(["breached", "achieved", "achieved", "achieved", "active"]),
            targets_frame(["active", "active"], metric="resolution_time"),
        ],
        ignore_index=True,
    )
    r = breach_rates(t)
    assert r["metric"].tolist() == ["reply_time", "resolution_time"]
    assert r[["targets", "breached", "achieved", "active"]].values.tolist() == [
        [5, 1, 3, 1],
        [2, 0, 0, 2],
    ]
    assert r.loc[0, "breach_rate"] == 0.25 and r.loc[0, "achievement_rate"] == 0.75
    for col in ("breach_rate", "achievement_rate", "ci_low", "ci_high"):
        assert pd.isna(r.loc[1, col])


@pytest.mark.parametrize(
    ("breached", "achieved", "low", "high"),
    [(5, 5, 0.2366, 0.7634), (0, 10, 0.0, 0.2775), (10, 0, 0.7225, 1.0)],
)
def test_wilson_interval_known_values(breached, achieved, low, high):
    r = breach_rates(targets_frame(["breached"] * breached + ["achieved"] * achieved))
    assert r.loc[0, "ci_low"] == pytest.approx(low, abs=5e-5)
    assert r.loc[0, "ci_high"] == pytest.approx(high, abs=5e-5)


def test_wilson_confidence_level():
    r = breach_rates(targets_frame(["breached"] * 5 + ["achieved"] * 5), confidence=0.99)
    # z = 2.5758: (0.5 + z^2/20 -+ z*sqrt(0.025 + z^2/400)) / (1 + z^2/10)
    z = 2.5758293035489
    denom = 1 + z * z / 10
    half = z * math.sqrt(0.025 + z * z / 400) / denom
    assert r.loc[0, "ci_low"] == pytest.approx(0.5 - half, abs=1e-9)
    with pytest.raises(ValueError):
        breach_rates(targets_frame(["breached"]), confidence=1.5)


def test_breach_rates_by_list_of_columns_sorted():
    t = targets_frame(
        ["breached", "achieved", "achieved", "breached"],
        metric=["reply_time", "reply_time", "agent_work_time", "reply_time"],
        policy_title=["Gold", "Bronze", "Gold", "Gold"],
    )
    r = breach_rates(t, by=["metric", "policy_title"])
    assert r[["metric", "policy_title", "targets", "breached"]].values.tolist() == [
        ["agent_work_time", "Gold", 1, 0],
        ["reply_time", "Bronze", 1, 0],
        ["reply_time", "Gold", 2, 2],
    ]


EDGES = [
    "2024-03-10 23:59:59.999",  # Sunday: week of Mon 03-04
    "2024-03-11 00:00:00",  # Monday: week of 03-11
    "2024-02-29 23:59:59.999",  # leap day: month 02-01, week of 02-26
    "2024-03-01 00:00:00",  # month 03-01, week of 02-26
]


def _to_pandas(native) -> pd.DataFrame:
    if isinstance(native, pd.DataFrame):
        return native
    if hasattr(native, "compute"):  # dask
        return native.compute()
    if hasattr(native, "collect"):  # polars lazy
        native = native.collect()
    if hasattr(native, "df"):  # duckdb relation
        return native.df()
    return native.to_pandas()


def _engines(df: pd.DataFrame) -> dict:
    import dask.dataframe as dd
    import polars as pl

    out = {"pandas": df, "polars": pl.from_pandas(df), "polars_lazy": pl.from_pandas(df).lazy()}
    out["dask"] = dd.from_pandas(df, npartitions=2)
    return out


@pytest.mark.parametrize(
    "engine", ["pandas", "polars", "polars_lazy", pytest.param("dask", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize(
    ("freq", "expected"),
    [
        ("W", {"2024-02-26": 2, "2024-03-04": 1, "2024-03-11": 1}),
        ("M", {"2024-02-01": 1, "2024-03-01": 3}),
    ],
)
def test_freq_buckets_at_week_and_month_edges_in_utc(engine, freq, expected):
    t = targets_frame(
        ["breached", "achieved", "achieved", "achieved"],
        applied_at=pd.to_datetime(EDGES, utc=True, format="ISO8601"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # narwhals: dask moving out
        r = _to_pandas(breach_rates(_engines(t)[engine], freq=freq))
    assert r["period"].dtype == "datetime64[ms, UTC]"
    got = {p.strftime("%Y-%m-%d"): n for p, n in zip(r["period"], r["targets"], strict=True)}
    assert got == expected
    assert r["period"].is_monotonic_increasing


# --- the same answers on every engine --------------------------------------------------

METRICS = [
    "reply_time",
    "periodic_update_time",
    "pausable_update_time",
    "requester_wait_time",
    "agent_work_time",
    "resolution_time",
    "custom_metric_time",
]
RECURRING = {"reply_time", "periodic_update_time", "pausable_update_time"}


def synthetic_events(n_tickets: int = 2000, seed: int = 20240304) -> pd.DataFrame:
    """Random but valid event sequences, minute resolution so ties happen."""
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    for ticket in range(1, n_tickets + 1):
        start = int(rng.integers(0, 60 * 24 * 40))
        for metric in rng.choice(METRICS, size=int(rng.integers(1, 4)), replace=False):
            instances = int(rng.integers(1, 4)) if metric in RECURRING else 1
            for inst in range(1, instances + 1):
                t = start + int(rng.integers(0, 600))
                k = {"ticket": ticket, "metric": str(metric), "inst": inst}
                rows.append(ev("activate", t, **k))
                target = int(rng.choice([30, 60, 240]))
                applied = rng.random() < 0.85
                if applied:
                    policy = int(rng.integers(1, 4))
                    rows.append(
                        apply(
                            t + int(rng.choice([0, 0, 5])),
                            target=target,
                            policy=policy,
                            title=f"Policy {policy}",
                            bh=bool(rng.random() < 0.3),
                            **k,
                        )
                    )
                    if rng.random() < 0.2:
                        rows.append(
                            apply(
                                t + int(rng.integers(0, 120)),
                                target=target * 2,
                                policy=9,
                                title="Escalated",
                                bh=False,
                                **k,
                            )
                        )
                duration = int(rng.integers(0, 400))
                fulfilled = rng.random() < 0.8
                if applied:
                    rows.append(
                        ev(
                            "breach",
                            t + target,
                            deleted=bool(fulfilled and duration < target and rng.random() < 0.9),
                            **k,
                        )
                    )
                if fulfilled:
                    rows.append(ev("fulfill", t + duration, **k))
                    if rng.random() < 0.5:
                        cal = duration
                        rows.append(ev("update_status", t + duration, cal=cal, bus=cal // 2, **k))
                    if rng.random() < 0.1:
                        rows.append(ev("activate", t + duration + 60, **k))
                        if rng.random() < 0.5:
                            rows.append(ev("fulfill", t + duration + 90, **k))
                    if rng.random() < 0.05:
                        rows.append(apply(t + duration + 1, policy=8, title="Late", **k))
        if rng.random() < 0.15:  # a deleted event of another type: ignored by every engine
            kind = str(rng.choice(["apply_sla", "fulfill", "activate", "update_status"]))
            k = {"ticket": ticket, "metric": str(metric), "inst": 1, "deleted": True}
            minute = start + int(rng.integers(0, 300))
            rows.append(
                apply(minute, target=15, policy=7, title="Deleted", **k)
                if kind == "apply_sla"
                else ev(kind, minute, cal=1, bus=1, **k)
            )
        if rng.random() < 0.2:
            g = {"ticket": ticket, "metric": "group_ownership_time", "inst": 1}
            rows.append(ev("activate", start, **g))
            rows.append(
                ev("apply_group_sla", start, target=120, policy=50, title="Tier 2", bh=False, **g)
            )
            rows.append(ev("breach", start + 120, deleted=bool(rng.random() < 0.5), **g))
            if rng.random() < 0.7:
                rows.append(ev("fulfill", start + int(rng.integers(0, 300)), **g))
    order = rng.permutation(len(rows))  # engines must not depend on row order
    return events(*[rows[i] for i in order])


def normalized(native) -> pd.DataFrame:
    df = _to_pandas(native)
    for col in df.columns:
        if isinstance(df[col].dtype, pd.DatetimeTZDtype):
            df[col] = df[col].astype("datetime64[ms, UTC]")
    df = df.sort_values([c for c in KEY if c in df.columns] or list(df.columns[:2])).reset_index(
        drop=True
    )
    return df.astype(object).where(df.notna(), None)


@pytest.mark.slow
def test_every_engine_matches_pandas_on_synthetic_events():
    import dask.dataframe as dd
    import duckdb
    import polars as pl
    import pyarrow as pa

    frame = synthetic_events()
    as_of = T0 + pd.Timedelta(days=35)
    expected_targets = sla_targets(frame, as_of=as_of)
    assert set(expected_targets["outcome"]) == {"achieved", "breached", "active"}
    assert set(expected_targets["sla_kind"]) == {"sla", "group_sla"}
    expected = {
        "targets": normalized(expected_targets),
        "by_metric": breach_rates(expected_targets, by=["metric_label", "sla_kind"]),
        "weekly": breach_rates(expected_targets, by="metric", freq="W"),
        "monthly": breach_rates(expected_targets, by="policy_title", freq="M"),
    }
    expected = {k: normalized(v) if k != "targets" else v for k, v in expected.items()}

    natives = {
        "polars": pl.from_pandas(frame),
        "polars_lazy": pl.from_pandas(frame).lazy(),
        "dask": dd.from_pandas(frame, npartitions=2),
    }
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # DuckDB truncates days in the session's zone
    natives["duckdb"] = con.from_arrow(pa.Table.from_pandas(frame, preserve_index=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # narwhals: dask moving out
        for name, native in natives.items():
            targets = sla_targets(native, as_of=as_of)
            got = {"targets": normalized(targets)}
            if name == "dask":  # compute sla_targets once, then breach_rates on Dask again
                targets = dd.from_pandas(_to_pandas(targets), npartitions=2)
            got["by_metric"] = normalized(breach_rates(targets, by=["metric_label", "sla_kind"]))
            got["weekly"] = normalized(breach_rates(targets, by="metric", freq="W"))
            got["monthly"] = normalized(breach_rates(targets, by="policy_title", freq="M"))
            for part, exp in expected.items():
                pd.testing.assert_frame_equal(got[part], exp, obj=f"{name} {part}")


def test_applied_between_is_half_open_in_utc():
    applied = pd.to_datetime(
        [
            "2024-01-31T23:59:59Z",
            "2024-02-01T00:00:00Z",
            "2024-02-29T23:59:59Z",
            "2024-03-01T00:00:00Z",
        ]
    ).astype("datetime64[ms, UTC]")
    targets = pd.DataFrame({"applied_at": applied, "n": [1, 2, 3, 4]})
    # naive bounds are UTC; the end is exclusive
    assert applied_between(targets, "2024-02-01", "2024-03-01")["n"].tolist() == [2, 3]
    assert applied_between(targets, since="2024-02-01T01:00:00+01:00")["n"].tolist() == [2, 3, 4]
    assert applied_between(targets, until="2024-02-01")["n"].tolist() == [1]


def test_default_path_in_ticket_ranges_gives_the_targets_of_one_query(monkeypatch):
    frame = synthetic_events(n_tickets=300)
    as_of = T0 + pd.Timedelta(days=35)
    whole = sla_targets(frame, as_of=as_of)
    # large inputs run the query once per range of ticket ids: force about ten ranges here
    monkeypatch.setattr("zdevents.analysis.targets_sql._SPAN_ROWS", len(frame) // 10)
    split = sla_targets(frame, as_of=as_of)
    assert len(whole) > 500
    pd.testing.assert_frame_equal(split, whole)  # same rows, in the same order

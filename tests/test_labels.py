"""Metric labels: one table; the same label for a row, a frame, the targets and the narwhals plan."""

from __future__ import annotations

import pandas as pd
import pytest

from zdevents.analysis.engines import nw
from zdevents.analysis.labels import (
    METRIC_LABELS,
    METRIC_ORDER,
    metric_label,
    metric_labels,
    metric_sort_key,
)
from zdevents.analysis.sla import sla_targets
from zdevents.analysis.targets_frame import metric_label_expr


def test_the_order_lists_first_and_next_reply_first_and_each_label_once():
    assert METRIC_ORDER[:3] == ("First reply", "Next reply", "Reply")
    assert METRIC_ORDER[-1] == "Group ownership"
    assert len(METRIC_ORDER) == len(set(METRIC_LABELS.values()))
    assert sorted(["Zebra", "Resolution", "Next reply"], key=metric_sort_key) == [
        "Next reply",
        "Resolution",
        "Zebra",
    ]


@pytest.mark.parametrize("categorical", [False, True])
def test_frame_labels_equal_row_labels(categorical):
    metric = ["reply_time", "reply_time", "reply_time", "agent_work_time", "custom_time", None]
    frame = pd.DataFrame(
        {
            "metric": pd.Categorical(metric) if categorical else metric,
            "instance_id": pd.array([1, 2, None, 1, 3, 1], dtype="Int64"),
        },
        index=[5, 4, 3, 2, 1, 0],
    )
    expected = [metric_label(m, i) for m, i in zip(metric, frame["instance_id"], strict=True)]
    assert expected == [
        "First reply",
        "Next reply",
        "Reply",
        "Agent work",
        "Custom Time",
        "Unknown",
    ]
    labels = metric_labels(frame)
    assert labels.tolist() == expected
    assert labels.index.tolist() == [5, 4, 3, 2, 1, 0]


def test_a_label_column_wins_over_the_instance():
    frame = pd.DataFrame(
        {
            "metric": ["reply_time", "reply_time", "reply_time", "resolution_time"],
            "instance_id": [1, 1, 2, 1],
            "reply_kind": ["next_reply", None, "reply_time", "Custom words"],
        }
    )
    assert metric_labels(frame).tolist() == [
        "Next reply",
        "First reply",
        "Next reply",
        "Custom words",
    ]


METRICS = ["reply_time", "reply_time", "reply_time", "my_new_metric", "first_reply"]
INSTANCES = [1, 2, 0, 1, 1]
EXPECTED = ["First reply", "Next reply", "Reply", "My New Metric", "First reply"]


def test_targets_label_each_metric_as_metric_label_does():
    assert [metric_label(m, i) for m, i in zip(METRICS, INSTANCES, strict=True)] == EXPECTED
    events = pd.DataFrame(
        {
            "id": range(1, 6),
            "ticket_id": 7,
            "metric": METRICS,
            "instance_id": INSTANCES,
            "type": "apply_sla",
            "time": pd.Timestamp("2024-01-01", tz="UTC"),
            "sla_target_minutes": pd.array([60] * 5, dtype="Int32"),
            "sla_business_hours": pd.array([False] * 5, dtype="boolean"),
        }
    )
    targets = sla_targets(events, as_of="2024-02-01")  # pandas: the DuckDB query
    got = {(r.metric, r.instance_id): r.metric_label for r in targets.itertuples()}
    assert got == dict(zip(zip(METRICS, INSTANCES, strict=True), EXPECTED, strict=True))


def test_the_narwhals_label_expression_equals_metric_label():
    frame = pd.DataFrame({"metric": METRICS, "instance_id": INSTANCES})
    labelled = nw.from_native(frame).select(metric_label_expr().alias("label")).to_native()
    assert labelled["label"].tolist() == EXPECTED

"""Charts of lateness, periodic vs pausable pairs and funnel plots: what they draw."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import zdevents as zd
from zdevents.analysis.insights import funnel_table, lateness, update_pairing_summary
from zdevents.viz.charts import METRIC_COLOURS
from zdevents.viz.insight_charts import (
    format_minutes,
    plot_funnel,
    plot_lateness,
    plot_update_pairing,
)

pytestmark = pytest.mark.usefixtures("no_plt_show")

T0 = pd.Timestamp("2024-01-01", tz="UTC")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_format_minutes_picks_the_readable_unit():
    assert [format_minutes(m) for m in (0, 59, 60, 47 * 60, 48 * 60, float("nan"))] == [
        "0 min",
        "59 min",
        "1.0 h",
        "47.0 h",
        "2.0 d",
        "n/a",
    ]


def test_plot_lateness_one_box_per_metric_with_median_p90_and_open_counts():
    targets = pd.DataFrame(
        {
            "metric_label": ["First reply"] * 3 + ["Resolution"],
            "outcome": "breached",
            "breached_at": [T0] * 4,
            # 0 (breach at the fulfilment), 30, 90 minutes; the resolution one is still open
            "fulfilled_at": [
                T0,
                T0 + pd.Timedelta(minutes=30),
                T0 + pd.Timedelta(minutes=90),
                pd.NaT,
            ],
        }
    )
    before = dict(mpl.rcParams)
    ax = plot_lateness(lateness(targets, as_of=T0 + pd.Timedelta(hours=50)))
    assert dict(mpl.rcParams) == before  # no global style change
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Resolution", "First reply"]
    notes = [t.get_text() for t in ax.texts]
    assert "median 30 min · p90 1.3 h · n=3" in notes  # p90 of 0, 30, 90 = 78 min
    assert "median 2.1 d · p90 2.1 d · n=1 (1 open)" in notes
    assert ax.get_xscale() == "log"
    assert ax.get_xlim()[0] < 1.0  # the breach at the fulfilment (0 min) is drawn at 1 min


def test_plot_lateness_axis_reads_whole_units_and_open_targets_run_to_as_of():
    targets = pd.DataFrame(
        {
            "metric_label": ["First reply"],
            "outcome": "breached",
            "breached_at": [T0],
            "fulfilled_at": [T0 + pd.Timedelta(days=20)],
        }
    )
    ax = plot_lateness(lateness(targets, as_of=T0 + pd.Timedelta(days=30)))
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[:3] == ["≤1 min", "10 min", "1 h"] and "4 d" in ticks and "14 d" in ticks
    assert not any(".0 " in t for t in ticks)  # not "1.0 h", "24.0 h"
    assert "open: until the as-of time" in ax.get_xlabel()


def test_plot_lateness_of_nothing_says_so_and_draws_on_a_given_axes():
    fig, given = plt.subplots()
    empty = pd.DataFrame({"metric_label": [], "late_minutes": [], "open": []})
    ax = plot_lateness(empty, ax=given)
    assert ax is given
    assert [t.get_text() for t in ax.texts] == ["no breached SLA targets"]


def test_plot_update_pairing_bars_are_the_explained_share():
    pairs = pd.DataFrame(
        {
            "policy_title": ["A"] * 4 + ["B"] * 2,
            "pairing": [
                "periodic only",
                "both breached",
                "both breached",
                "both breached",
                "periodic only",
                "pausable only",
            ],
        }
    )
    summary = update_pairing_summary(pairs)
    ax = plot_update_pairing(summary)
    widths = {}
    labels = [t.get_text() for t in ax.get_yticklabels()]
    explained = ax.containers[0]
    for label, bar in zip(labels, explained, strict=True):
        widths[label] = bar.get_width()
    assert widths == {"A": pytest.approx(0.25), "B": pytest.approx(1.0)}
    notes = [t.get_text() for t in ax.texts]
    assert "25% of 4 explained · 0 pausable-only" in notes
    assert "100% of 1 explained · 1 pausable-only" in notes
    assert labels[-1] == "B"  # the most explained group on top


def test_plot_update_pairing_without_periodic_breaches_says_so():
    summary = update_pairing_summary(
        pd.DataFrame({"policy_title": ["A"], "pairing": ["both achieved"]})
    )
    ax = plot_update_pairing(summary)
    assert [t.get_text() for t in ax.texts] == ["no periodic update breaches"]


def test_plot_funnel_points_limits_and_named_outliers():
    rates = pd.DataFrame(
        {"group": ["A", "B", "C", "D"], "breached": [30, 10, 20, 1], "achieved": [70, 90, 80, 2]}
    )
    table = funnel_table(rates, by="group", min_targets=10)
    ax = plot_funnel(table, by="group")
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    assert sorted(map(tuple, points.tolist())) == sorted(
        [(100.0, 0.3), (100.0, 0.1), (100.0, 0.2), (3.0, 1 / 3)]
    )
    assert {t.get_text() for t in ax.texts} == {"A", "B", "C", "D"}  # few units: all named
    overall = [line for line in ax.lines if line.get_linestyle() == ":"]
    assert overall and overall[0].get_ydata()[0] == pytest.approx(61 / 303)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "too few targets (not ranked)" in legend and "above 95%" in legend


def test_plot_funnel_names_only_99_8_outliers_when_there_are_many_units():
    rates = pd.DataFrame(
        {
            "unit": [f"u{i}" for i in range(10)],
            "breached": [20] * 9 + [60],
            "achieved": [80] * 9 + [40],
        }
    )
    ax = plot_funnel(funnel_table(rates, by="unit", min_targets=1))
    assert [t.get_text() for t in ax.texts] == ["u9"]


@pytest.mark.slow
def test_charts_export_through_save_figure(tmp_path):
    rates = pd.DataFrame({"g": ["A", "B"], "breached": [3, 1], "achieved": [7, 9]})
    written = zd.save_figure(
        plot_funnel(funnel_table(rates, by="g", min_targets=1)), tmp_path / "funnel"
    )
    assert [p.suffix for p in written] == [".png", ".svg"]
    assert written[0].stat().st_size > 5_000


def test_plot_lateness_draws_each_metric_in_its_fixed_colour():
    targets = pd.DataFrame(
        {
            "metric_label": ["First reply", "Resolution"],
            "outcome": "breached",
            "breached_at": [T0, T0],
            "fulfilled_at": [T0 + pd.Timedelta(minutes=30)] * 2,
        }
    )
    ax = plot_lateness(lateness(targets, as_of=T0 + pd.Timedelta(hours=1)))
    boxes = [p for p in ax.patches]  # bottom to top: Resolution, First reply
    edges = [mpl.colors.to_hex(b.get_edgecolor()) for b in boxes]
    assert edges == [METRIC_COLOURS["Resolution"].lower(), METRIC_COLOURS["First reply"].lower()]


def test_plot_update_pairing_uses_the_two_update_metrics_colours():
    summary = update_pairing_summary(
        pd.DataFrame({"policy_title": ["A", "A"], "pairing": ["periodic only", "both breached"]})
    )
    ax = plot_update_pairing(summary)
    explained, also = ax.containers
    assert mpl.colors.to_hex(explained[0].get_facecolor()) == (
        METRIC_COLOURS["Periodic update"].lower()
    )
    assert mpl.colors.to_hex(also[0].get_edgecolor()) == (METRIC_COLOURS["Pausable update"].lower())


def _subtitles(ax) -> list[str]:
    return [
        t.get_text()
        for t in ax.texts
        if isinstance(t, mpl.text.Annotation) and t.get_text().startswith(("acme", "SLAs"))
    ]


def test_every_insight_chart_takes_a_subtitle_under_a_left_aligned_title():
    line = "acme · SLAs applied 2024-01-01 to 2024-01-31 · data as of 2024-02-01 00:00 UTC"
    late = lateness(
        pd.DataFrame(
            {
                "metric_label": ["First reply"],
                "outcome": ["breached"],
                "breached_at": [T0],
                "fulfilled_at": [T0],
            }
        ),
        as_of=T0,
    )
    pairing = update_pairing_summary(
        pd.DataFrame({"policy_title": ["A"], "pairing": ["periodic only"]})
    )
    funnel = funnel_table(
        pd.DataFrame({"g": ["A", "B"], "breached": [3, 1], "achieved": [7, 9]}),
        by="g",
        min_targets=1,
    )
    for ax in (
        plot_lateness(late, subtitle=line),
        plot_update_pairing(pairing, subtitle=line),
        plot_funnel(funnel, subtitle=line),
    ):
        assert _subtitles(ax) == [line]
        assert ax.get_title(loc="left") and not ax.get_title()  # title on the left


def test_plot_lateness_subtitle_defaults_to_the_period_and_as_of_of_its_frame():
    targets = pd.DataFrame(
        {
            "metric_label": ["First reply"] * 2,
            "outcome": "breached",
            "applied_at": [T0, T0 + pd.Timedelta(days=9)],
            "breached_at": [T0 + pd.Timedelta(hours=1)] * 2,
            "fulfilled_at": [T0 + pd.Timedelta(hours=2)] * 2,
        }
    )
    ax = plot_lateness(lateness(targets, as_of="2024-01-20 06:00"))
    assert _subtitles(ax) == [
        "SLAs applied 2024-01-01 to 2024-01-10 · data as of 2024-01-20 06:00 UTC"
    ]

"""Charts: labels, rendering to files, ax handling, NaN rates, censoring marks, export."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from zdevents.viz import charts
from zdevents.viz.charts import (
    metric_label,
    metric_labels,
    plot_breach_heatmap,
    plot_breach_rates,
    plot_breach_trend,
    plot_fulfilment_ratio,
    save_figure,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.usefixtures("no_plt_show")


def rates_row(metric, breached, achieved, active=0, ci=(np.nan, np.nan), **keys):
    n = breached + achieved
    return {
        "metric": metric,
        **keys,
        "breached": breached,
        "achieved": achieved,
        "active": active,
        "targets": n + active,
        "breach_rate": breached / n if n else np.nan,
        "achievement_rate": achieved / n if n else np.nan,
        "ci_low": ci[0],
        "ci_high": ci[1],
    }


@pytest.fixture
def rates():
    # Breach rates worked out by hand: 1/4 = 25%, 3/4 = 75%, 1/2 = 50%, none completed.
    return pd.DataFrame(
        [
            rates_row("reply_time", 1, 3, reply_kind="first_reply", ci=(0.0456, 0.6994)),
            rates_row("reply_time", 3, 1, reply_kind="next_reply", ci=(0.3006, 0.9544)),
            rates_row("periodic_update_time", 1, 1, reply_kind=None, ci=(0.0945, 0.9055)),
            rates_row("pausable_update_time", 0, 0, active=2, reply_kind=None),
        ]
    )


def svg_text(path: Path) -> str:
    root = ET.parse(path).getroot()  # raises if the SVG is not well-formed XML
    return " ".join("".join(el.itertext()) for el in root.iter() if el.tag.endswith("text"))


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize(
    ("metric", "kwargs", "label"),
    [
        ("periodic_update_time", {}, "Periodic update"),
        ("pausable_update_time", {}, "Pausable update"),
        ("requester_wait_time", {}, "Requester wait"),
        ("agent_work_time", {}, "Agent work"),
        ("resolution_time", {}, "Resolution"),
        ("group_ownership_time", {}, "Group ownership"),
        ("reply_time", {"instance_id": 1}, "First reply"),
        ("reply_time", {"instance_id": 2}, "Next reply"),
        ("reply_time", {"reply_kind": "next_reply"}, "Next reply"),
        ("reply_time", {}, "Reply"),
        ("custom_metric_time", {}, "Custom Metric Time"),
        (None, {}, "Unknown"),
    ],
)
def test_metric_label(metric, kwargs, label):
    assert metric_label(metric, **kwargs) == label


def test_metric_labels_uses_label_column_then_instance_id():
    frame = pd.DataFrame(
        {
            "metric": pd.Categorical(["reply_time", "reply_time", "reply_time", "agent_work_time"]),
            "instance_id": [1, 2, 2, 1],
            "label": ["first reply", "Next reply", None, None],
        }
    )
    assert metric_labels(frame).tolist() == [
        "First reply",
        "Next reply",
        "Next reply",
        "Agent work",
    ]
    no_split = pd.DataFrame({"metric": ["reply_time", "resolution_time"]})
    assert metric_labels(no_split).tolist() == ["Reply", "Resolution"]


# ---------------------------------------------------------------- breach rate bars


def test_breach_rates_renders_png_and_svg_with_labels_and_counts(rates, tmp_path):
    ax = plot_breach_rates(rates)
    png, svg = save_figure(ax, tmp_path / "bars")
    assert png.read_bytes().startswith(PNG_MAGIC)
    text = svg_text(svg)
    for expected in (
        "Periodic update",
        "Pausable update",
        "First reply",
        "Next reply",
        "25% (n=4)",
        "75% (n=4)",
        "50% (n=2)",
        "no completed targets",
    ):
        assert expected in text


def test_breach_rates_sorted_by_rate_and_nan_has_no_bar(rates):
    ax = plot_breach_rates(rates)
    top_to_bottom = [t.get_text() for t in ax.get_yticklabels()][::-1]
    assert top_to_bottom == ["Next reply", "Periodic update", "First reply", "Pausable update"]
    widths = sorted(round(p.get_width(), 6) for p in ax.patches)
    assert widths == [0.25, 0.5, 0.75]  # three bars: the NaN rate draws none
    assert ax.xaxis.get_major_formatter()(0.25, 0) == "25%"


def test_breach_rates_draws_on_given_ax(rates):
    fig, (left, right) = plt.subplots(1, 2)
    assert plot_breach_rates(rates, ax=right, title="Mine") is right
    assert right.get_title(loc="left") == "Mine"
    assert not left.has_data()
    assert plt.gcf() is fig


def test_breach_rates_by_other_column_and_duplicates_rejected():
    by_policy = pd.DataFrame(
        [
            rates_row("reply_time", 1, 1, policy_title="Gold"),
            rates_row("reply_time", 0, 2, policy_title="Silver"),
        ]
    )
    ax = plot_breach_rates(by_policy, by="policy_title")
    assert [t.get_text() for t in ax.get_yticklabels()][::-1] == ["Gold", "Silver"]
    with pytest.raises(ValueError, match="several rows for 'Reply'"):
        plot_breach_rates(by_policy, by="metric")


def _global_state() -> dict:
    return {
        "rc": dict(matplotlib.rcParams),
        "interactive": matplotlib.is_interactive(),
        "backend": matplotlib.get_backend(),
    }


@pytest.mark.slow
def test_every_chart_function_leaves_matplotlib_global_state_alone(rates, tmp_path):
    calls = {
        "plot_breach_rates": lambda: plot_breach_rates(rates),
        "plot_breach_trend": lambda: plot_breach_trend(weekly(), as_of="2024-02-05"),
        "plot_breach_heatmap": lambda: plot_breach_heatmap(heat_rates()),
        "plot_fulfilment_ratio": lambda: plot_fulfilment_ratio(targets_frame()),
        "save_figure": lambda: save_figure(plot_breach_rates(rates), tmp_path / "c", "png"),
    }
    for interactive in (False, True):
        matplotlib.interactive(interactive)
        try:
            for name, call in calls.items():
                before = _global_state()
                call()
                assert _global_state() == before, name
        finally:
            matplotlib.interactive(False)


# A backend that, like Jupyter's inline backend, turns interactive mode on when it loads
# (which happens when the first figure is made, inside the first chart function).
_INTERACTIVE_BACKEND = """
import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg as FigureCanvas  # noqa: F401
matplotlib.interactive(True)
"""
_FIRST_CHART = """
import matplotlib, pandas as pd
import zdevents as zd
rates = pd.DataFrame({"metric": ["reply_time"], "breached": [1], "achieved": [3],
    "active": [0], "targets": [4], "breach_rate": [0.25], "achievement_rate": [0.75],
    "ci_low": [0.05], "ci_high": [0.7]})
zd.plot_breach_rates(rates)
print(matplotlib.is_interactive())
"""


@pytest.mark.slow
def test_first_chart_keeps_what_the_backend_set_when_it_loaded(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "inline_like_backend.py").write_text(_INTERACTIVE_BACKEND)
    env = {
        **os.environ,
        "MPLBACKEND": "module://inline_like_backend",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_CHART],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "True", done.stderr


def test_empty_rates_say_so():
    empty = pd.DataFrame(columns=list(rates_row("x", 0, 0)))
    ax = plot_breach_rates(empty)
    assert [t.get_text() for t in ax.texts] == ["no SLA targets"]


# ---------------------------------------------------------------- weekly trend


def weekly(active_weeks=("2024-01-22",)):
    rows = []
    for week in ("2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22"):
        period = pd.Timestamp(week, tz="UTC")
        active = 1 if week in active_weeks else 0
        rows.append(
            rates_row("periodic_update_time", 1, 3, active=active, period=period, ci=(0.05, 0.70))
        )
        rows.append(rates_row("reply_time", 1, 1, period=period, instance_id=1, ci=(0.09, 0.91)))
    return pd.DataFrame(rows)


def incomplete_start(ax):
    spans = [p for p in ax.patches if p.get_hatch() == "///"]
    return None if not spans else mdates.num2date(spans[0].get_x()).date().isoformat()


def panels(ax):
    return [a for a in ax.figure.axes if a.get_visible()]


def test_trend_is_one_panel_per_metric_on_shared_axes_with_bands_and_censoring(tmp_path):
    ax = plot_breach_trend(weekly(), as_of="2024-02-05")
    first, second = panels(ax)
    assert first is ax
    assert [p.get_title(loc="left") for p in (first, second)] == ["First reply", "Periodic update"]
    assert [[line.get_label() for line in p.get_lines()] for p in (first, second)] == [
        ["First reply"],
        ["Periodic update"],
    ]
    # One colour per metric; the same colours as the bar chart's.
    assert first.get_lines()[0].get_color() == charts.METRIC_COLOURS["First reply"]
    assert second.get_lines()[0].get_color() == charts.METRIC_COLOURS["Periodic update"]
    assert len(first.collections) == 1 and len(second.collections) == 1  # a CI band each
    assert first.get_shared_x_axes().joined(first, second)
    assert first.get_shared_y_axes().joined(first, second)
    assert incomplete_start(first) == incomplete_start(second) == "2024-01-22"
    legend = [t.get_text() for t in ax.figure.legends[0].texts]
    assert "incomplete: targets still open" in legend and "95% CI" in legend
    texts = [t.get_text() for t in ax.figure.texts]
    assert "Weekly SLA breach rate by metric" in texts
    assert "SLAs applied 2024-01-01 to 2024-01-28 · data as of 2024-02-05 00:00 UTC" in texts
    png, svg = save_figure(ax, tmp_path / "trend.png")
    assert png.read_bytes().startswith(PNG_MAGIC)
    text = svg_text(svg)
    assert "Periodic update" in text and "incomplete: targets still open" in text
    ax.figure.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ticks[0] == "1 Jan\n2024" and "8 Jan" in ticks


def test_trend_lays_out_many_metrics_in_a_wide_grid_with_dates_under_each_column():
    rows = [
        rates_row(metric, 1, 3, period=pd.Timestamp(week, tz="UTC"), ci=(0.05, 0.7))
        for metric in (
            "reply_time",
            "periodic_update_time",
            "pausable_update_time",
            "requester_wait_time",
            "agent_work_time",
            "resolution_time",
            "group_ownership_time",
        )
        for week in ("2024-01-01", "2024-01-08")
    ]
    ax = plot_breach_trend(pd.DataFrame(rows), as_of="2024-06-01")
    shown = panels(ax)
    assert len(shown) == 7
    lefts = sorted({round(p.get_position().x0, 3) for p in shown})
    tops = sorted({round(p.get_position().y0, 3) for p in shown})
    assert (len(lefts), len(tops)) == (4, 2)  # 2 rows of 4, not 7 lines on one axes
    ax.figure.canvas.draw()
    # The fourth panel of the first row has no panel below it: it shows its dates.
    fourth = max(shown, key=lambda p: (p.get_position().y0, p.get_position().x0))
    assert any(t.get_text() for t in fourth.get_xticklabels())


@pytest.mark.parametrize(
    ("freq", "title", "axis"),
    [
        ("M", "Monthly SLA breach rate by metric", "Month the SLA applied (UTC)"),
        (None, "Monthly SLA breach rate by metric", "Month the SLA applied (UTC)"),
        ("W", "Weekly SLA breach rate by metric", "Week the SLA applied (weeks start Monday, UTC)"),
    ],
)
def test_trend_names_the_period_from_freq(freq, title, axis):
    monthly = pd.DataFrame(
        [
            rates_row("resolution_time", 1, 3, period=pd.Timestamp(month, tz="UTC"))
            for month in ("2024-01-01", "2024-02-01", "2024-03-01")
        ]
    )
    ax = plot_breach_trend(monthly, freq=freq, as_of="2024-06-01")
    texts = [t.get_text() for t in ax.get_figure().texts] + [
        ax.get_title(loc="left"),
        ax.get_xlabel(),
    ]
    assert title in texts and axis in texts
    with pytest.raises(ValueError, match="freq"):
        plot_breach_trend(monthly, freq="D")


@pytest.mark.parametrize(
    ("active_weeks", "as_of", "start"),
    [
        # The as-of window (2 weeks before 2024-02-05) reaches only the last week.
        ((), "2024-02-05", "2024-01-22"),
        # Open targets in the last two weeks extend the mark; an isolated old one does not.
        (("2024-01-01", "2024-01-15", "2024-01-22"), "2024-02-12", "2024-01-15"),
        # Without as_of the last incomplete_weeks periods are marked.
        ((), None, "2024-01-15"),
        # Everything closed and as_of far later: no mark.
        ((), "2024-06-01", None),
    ],
)
def test_trend_marks_censored_weeks(active_weeks, as_of, start):
    ax = plot_breach_trend(weekly(active_weeks), as_of=as_of)
    assert incomplete_start(ax) == start


def test_trend_needs_period_and_uses_given_ax():
    fig, ax = plt.subplots()
    one_metric = weekly()[lambda f: f["metric"] == "reply_time"]
    assert plot_breach_trend(one_metric, ax=ax) is ax  # one metric: drawn in ax itself
    assert ax.get_title(loc="left") == "Weekly SLA breach rate by metric"
    fig, (left, right) = plt.subplots(1, 2)
    first = plot_breach_trend(weekly(), ax=right)  # two metrics: ax's area holds the panels
    assert right not in fig.axes and left in fig.axes
    assert first.get_title(loc="left") == "First reply"
    assert first.get_window_extent().x0 > left.get_window_extent().x1
    with pytest.raises(ValueError, match="period"):
        plot_breach_trend(weekly().drop(columns="period"))


# ---------------------------------------------------------------- colours and subtitles


def test_one_colour_per_metric_in_every_chart(rates):
    bars = plot_breach_rates(rates)
    by_label = {t.get_text(): None for t in bars.get_yticklabels()}
    colours = [matplotlib.colors.to_hex(p.get_facecolor()) for p in bars.patches]
    # Bars are drawn bottom-up in the order of the tick labels that have a rate.
    drawn = [label for label in list(by_label)[::-1] if label != "Pausable update"][::-1]
    assert colours == [charts.METRIC_COLOURS[label].lower() for label in drawn]
    ratio = plot_fulfilment_ratio(targets_frame())
    boxes = [matplotlib.colors.to_hex(p.get_edgecolor()) for p in ratio.patches]
    assert boxes == [
        charts.METRIC_COLOURS[label].lower()
        for label in ("Periodic update", "Next reply", "First reply")
    ]
    heat = plot_breach_heatmap(heat_rates())  # rows keyed by a strip in the metric's colour
    strips = [matplotlib.colors.to_hex(p.get_facecolor()) for p in heat.patches]
    assert strips == [
        charts.METRIC_COLOURS[label].lower() for label in ("First reply", "Periodic update")
    ]
    assert len(set(charts.METRIC_COLOURS.values())) == len(charts.METRIC_COLOURS) - 1  # Reply


def test_bars_by_metric_label_keep_each_metric_colour():
    # the README's zd.breach_rates(targets, by="metric_label"): no "metric" column
    rates = pd.DataFrame(
        {
            "metric_label": ["Resolution", "First reply"],
            "breached": [1, 3],
            "achieved": [3, 1],
            "breach_rate": [0.25, 0.75],
            "ci_low": [0.05, 0.3],
            "ci_high": [0.7, 0.95],
        }
    )
    ax = plot_breach_rates(rates, by="metric_label")
    colours = [matplotlib.colors.to_hex(p.get_facecolor()) for p in ax.patches]
    # bottom-up: Resolution (25%) under First reply (75%)
    assert colours == [
        charts.METRIC_COLOURS["Resolution"].lower(),
        charts.METRIC_COLOURS["First reply"].lower(),
    ]


def test_every_chart_carries_the_subtitle(rates):
    line = charts.chart_subtitle(
        account="acme", since="2024-01-01", until="2024-07-01", as_of="2024-07-01T06:00:00Z"
    )
    assert line == "acme · SLAs applied 2024-01-01 to 2024-06-30 · data as of 2024-07-01 06:00 UTC"
    drawn = [
        plot_breach_rates(rates, subtitle=line),
        plot_breach_heatmap(heat_rates(), subtitle=line),
        plot_fulfilment_ratio(targets_frame(), subtitle=line),
        plot_breach_trend(weekly(), subtitle=line),
    ]
    for ax in drawn:
        texts = [t.get_text() for t in (*ax.texts, *ax.figure.texts)]
        assert line in texts


def test_subtitle_defaults_to_what_the_frame_says():
    frame = targets_frame()
    frame.attrs["zdevents_as_of"] = pd.Timestamp("2024-01-03 12:00", tz="UTC")
    frame["applied_at"] = pd.to_datetime(
        ["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02", "2024-01-02 10:00"],
        utc=True,
        format="ISO8601",
    )
    ax = plot_fulfilment_ratio(frame)
    assert "SLAs applied 2024-01-01 to 2024-01-02 · data as of 2024-01-03 12:00 UTC" in [
        t.get_text() for t in ax.texts
    ]


# ---------------------------------------------------------------- heatmap


def heat_rates():
    return pd.DataFrame(
        [
            rates_row("reply_time", 1, 3, instance_id=1, policy_title="<Gold & Co>"),
            rates_row("reply_time", 2, 0, instance_id=1, policy_title="Silver"),
            rates_row("periodic_update_time", 0, 0, active=3, instance_id=1, policy_title="Silver"),
        ]
    )


def test_heatmap_annotations_colourbar_and_missing_cells(tmp_path):
    ax = plot_breach_heatmap(heat_rates())
    texts = sorted(t.get_text() for t in ax.texts)
    # First reply: 1/(1+3) = 25% of 4; 2/2 = 100%; periodic/Silver has only open targets;
    # periodic/<Gold & Co> has no targets at all.
    assert texts == ["100% (n=2)", "25% (n=4)", "no completed targets", "no targets"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["First reply", "Periodic update"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["<Gold & Co>", "Silver"]
    colourbar = ax.figure.axes[-1]
    assert colourbar is not ax
    assert colourbar.yaxis.get_major_formatter()(0.5, 0) == "50%"
    image = ax.get_images()[0]
    assert np.ma.is_masked(image.get_array()[1, 0])  # missing cells are masked (drawn grey)
    png, svg = save_figure(ax.figure, tmp_path / "heat")
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert "25% (n=4)" in svg_text(svg) and "<Gold & Co>" in svg_text(svg)


def test_heatmap_pools_rows_sharing_a_cell_and_uses_given_ax():
    fig, ax = plt.subplots()
    pooled = pd.DataFrame(
        [
            rates_row("resolution_time", 1, 0, policy_title="Gold"),
            rates_row("resolution_time", 0, 3, policy_title="Gold"),
        ]
    )
    assert plot_breach_heatmap(pooled, ax=ax) is ax
    assert [t.get_text() for t in ax.texts] == ["25% (n=4)"]


# ---------------------------------------------------------------- fulfilment ratio


def targets_frame():
    at = pd.Timestamp("2024-01-01", tz="UTC")
    return pd.DataFrame(
        {
            "ticket_id": [1, 2, 3, 4, 5],
            "metric": [
                "reply_time",
                "reply_time",
                "reply_time",
                "periodic_update_time",
                "periodic_update_time",
            ],
            "instance_id": [1, 1, 2, 1, 1],
            "outcome": ["achieved", "breached", "achieved", "achieved", "active"],
            "fulfilled_at": [at, at, at, at, pd.NaT],
            "elapsed_ratio": [0.5, 2.0, 0.25, 0.8, 3.0],  # the active target's ratio is ignored
        }
    )


def test_fulfilment_ratio_log_scale_target_line_and_counts(tmp_path):
    ax = plot_fulfilment_ratio(targets_frame())
    assert ax.get_xscale() == "log"
    # n = fulfilled targets with a ratio, of the completed (breached + achieved) ones.
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "Periodic update (n=1 of 1)",
        "Next reply (n=1 of 1)",
        "First reply (n=2 of 2)",
    ]
    texts = [t.get_text() for t in ax.texts]
    assert "target" in texts
    assert texts.count("50% over target") == 1  # first reply: 1 of 2 past the target
    assert any(list(line.get_xdata()) == [1.0, 1.0] for line in ax.get_lines())
    png, svg = save_figure(ax, tmp_path / "ratio", formats=("png", "svg"))
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert "First reply (n=2 of 2)" in svg_text(svg)


def test_fulfilment_ratio_from_minutes_and_given_ax():
    frame = (
        targets_frame()
        .drop(columns="elapsed_ratio")
        .assign(elapsed_minutes=[30, 120, 15, 48, np.nan], target_minutes=[60, 60, 60, 60, 60])
    )
    fig, ax = plt.subplots()
    assert plot_fulfilment_ratio(frame, ax=ax) is ax
    assert "50% over target" in [t.get_text() for t in ax.texts]


# ---------------------------------------------------------------- save_figure


@pytest.mark.slow
def test_save_figure_with_and_without_suffix_and_pdf(rates, tmp_path):
    ax = plot_breach_rates(rates)
    written = save_figure(ax, tmp_path / "a" / "b" / "chart.png", ("png", "svg", "pdf"))
    assert written == [tmp_path / "a" / "b" / f"chart.{ext}" for ext in ("png", "svg", "pdf")]
    assert written[0].read_bytes().startswith(PNG_MAGIC)
    assert written[2].read_bytes().startswith(b"%PDF")
    assert save_figure(ax.figure, str(tmp_path / "plain"), "svg") == [tmp_path / "plain.svg"]
    assert save_figure(ax, tmp_path / "v1.0", "png") == [tmp_path / "v1.0.png"]


@pytest.mark.slow
def test_save_figure_is_reproducible_and_rejects_unknown_formats(rates, tmp_path):
    ax = plot_breach_rates(rates)
    first = save_figure(ax, tmp_path / "one", ("svg", "png"))
    second = save_figure(ax, tmp_path / "two", ("svg", "png"))
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    with pytest.raises(ValueError, match="formats"):
        save_figure(ax, tmp_path / "x", ("png", "gif"))


def test_what_an_analyst_adds_to_a_chart_comes_in_the_charts_palette(rates):
    drawn = {
        "plot_breach_rates": plot_breach_rates(rates),
        "plot_breach_trend": plot_breach_trend(weekly()),
        "plot_breach_heatmap": plot_breach_heatmap(heat_rates()),
        "plot_fulfilment_ratio": plot_fulfilment_ratio(targets_frame()),
    }
    palette = [colour.lower() for colour in charts.OKABE_ITO[:3]]
    for name, ax in drawn.items():
        # a reference line drawn on the returned Axes: the next colours of the palette
        added = [matplotlib.colors.to_hex(ax.plot([0, 1], [0, 1])[0].get_color()) for _ in palette]
        assert added == palette, name
    # a figure made outside the charts keeps matplotlib's own colours
    _, own = plt.subplots()
    (line,) = own.plot([0, 1], [0, 1])
    default = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"][0]
    assert matplotlib.colors.to_hex(line.get_color()) == matplotlib.colors.to_hex(default)
    assert matplotlib.colors.to_hex(line.get_color()) != palette[0]

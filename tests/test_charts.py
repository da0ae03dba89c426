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

from zdevents import charts
from zdevents.charts import (
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
        "metric": metric, **keys, "breached": breached, "achieved": achieved, "active": active,
        "targets": n + active, "breach_rate": breached / n if n else np.nan,
        "achievement_rate": achieved / n if n else np.nan, "ci_low": ci[0], "ci_high": ci[1],
    }


@pytest.fixture
def rates():
    # Breach rates worked out by hand: 1/4 = 25%, 3/4 = 75%, 1/2 = 50%, none completed.
    return pd.DataFrame([
        rates_row("reply_time", 1, 3, reply_kind="first_reply", ci=(0.0456, 0.6994)),
        rates_row("reply_time", 3, 1, reply_kind="next_reply", ci=(0.3006, 0.9544)),
        rates_row("periodic_update_time", 1, 1, reply_kind=None, ci=(0.0945, 0.9055)),
        rates_row("pausable_update_time", 0, 0, active=2, reply_kind=None),
    ])


def svg_text(path: Path) -> str:
    root = ET.parse(path).getroot()  # raises if the SVG is not well-formed XML
    return " ".join("".join(el.itertext()) for el in root.iter() if el.tag.endswith("text"))


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize(("metric", "kwargs", "label"), [
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
])
def test_metric_label(metric, kwargs, label):
    assert metric_label(metric, **kwargs) == label


def test_metric_labels_uses_label_column_then_instance_id():
    frame = pd.DataFrame({
        "metric": pd.Categorical(["reply_time", "reply_time", "reply_time", "agent_work_time"]),
        "instance_id": [1, 2, 2, 1],
        "label": ["first reply", "Next reply", None, None],
    })
    assert metric_labels(frame).tolist() == ["First reply", "Next reply", "Next reply",
                                             "Agent work"]
    no_split = pd.DataFrame({"metric": ["reply_time", "resolution_time"]})
    assert metric_labels(no_split).tolist() == ["Reply", "Resolution"]


# ---------------------------------------------------------------- breach rate bars


def test_breach_rates_renders_png_and_svg_with_labels_and_counts(rates, tmp_path):
    ax = plot_breach_rates(rates)
    png, svg = save_figure(ax, tmp_path / "bars")
    assert png.read_bytes().startswith(PNG_MAGIC)
    text = svg_text(svg)
    for expected in ("Periodic update", "Pausable update", "First reply", "Next reply",
                     "25% (n=4)", "75% (n=4)", "50% (n=2)", "no completed targets"):
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
    by_policy = pd.DataFrame([rates_row("reply_time", 1, 1, policy_title="Gold"),
                              rates_row("reply_time", 0, 2, policy_title="Silver")])
    ax = plot_breach_rates(by_policy, by="policy_title")
    assert [t.get_text() for t in ax.get_yticklabels()][::-1] == ["Gold", "Silver"]
    with pytest.raises(ValueError, match="several rows for 'Reply'"):
        plot_breach_rates(by_policy, by="metric")


def _global_state() -> dict:
    return {"rc": dict(matplotlib.rcParams), "interactive": matplotlib.is_interactive(),
            "backend": matplotlib.get_backend()}


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


def test_first_chart_keeps_what_the_backend_set_when_it_loaded(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "inline_like_backend.py").write_text(_INTERACTIVE_BACKEND)
    env = {**os.environ, "MPLBACKEND": "module://inline_like_backend",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _FIRST_CHART], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
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
        rows.append(rates_row("periodic_update_time", 1, 3, active=active, period=period,
                              ci=(0.05, 0.70)))
        rows.append(rates_row("reply_time", 1, 1, period=period, instance_id=1,
                              ci=(0.09, 0.91)))
    return pd.DataFrame(rows)


def incomplete_start(ax):
    marks = [t for t in ax.texts if "incomplete: targets still open" in t.get_text()]
    return None if not marks else mdates.num2date(marks[0].get_position()[0]).date().isoformat()


def test_trend_renders_with_lines_band_and_censoring_mark(tmp_path):
    ax = plot_breach_trend(weekly(), as_of="2024-02-05")
    assert [line.get_label() for line in ax.get_lines()] == ["First reply", "Periodic update"]
    assert "incomplete: targets still open" in [t.get_text() for t in ax.get_legend().texts]
    png, svg = save_figure(ax, tmp_path / "trend.png")
    assert png.read_bytes().startswith(PNG_MAGIC)
    text = svg_text(svg)
    assert "Periodic update" in text and "incomplete: targets still open" in text
    ax.figure.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ticks[0] == "1 Jan\n2024" and "8 Jan" in ticks


@pytest.mark.parametrize(("active_weeks", "as_of", "start"), [
    # The as-of window (2 weeks before 2024-02-05) reaches only the last week.
    ((), "2024-02-05", "2024-01-22"),
    # Open targets in the last two weeks extend the mark; an isolated old one does not.
    (("2024-01-01", "2024-01-15", "2024-01-22"), "2024-02-12", "2024-01-15"),
    # Without as_of the last incomplete_weeks periods are marked.
    ((), None, "2024-01-15"),
    # Everything closed and as_of far later: no mark.
    ((), "2024-06-01", None),
])
def test_trend_marks_censored_weeks(active_weeks, as_of, start):
    ax = plot_breach_trend(weekly(active_weeks), as_of=as_of)
    assert incomplete_start(ax) == start


def test_trend_needs_period_and_uses_given_ax():
    fig, ax = plt.subplots()
    assert plot_breach_trend(weekly(), ax=ax) is ax
    with pytest.raises(ValueError, match="period"):
        plot_breach_trend(weekly().drop(columns="period"))


# ---------------------------------------------------------------- heatmap


def heat_rates():
    return pd.DataFrame([
        rates_row("reply_time", 1, 3, instance_id=1, policy_title="<Gold & Co>"),
        rates_row("reply_time", 2, 0, instance_id=1, policy_title="Silver"),
        rates_row("periodic_update_time", 0, 0, active=3, instance_id=1, policy_title="Silver"),
    ])


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
    pooled = pd.DataFrame([rates_row("resolution_time", 1, 0, policy_title="Gold"),
                           rates_row("resolution_time", 0, 3, policy_title="Gold")])
    assert plot_breach_heatmap(pooled, ax=ax) is ax
    assert [t.get_text() for t in ax.texts] == ["25% (n=4)"]


# ---------------------------------------------------------------- fulfilment ratio


def targets_frame():
    at = pd.Timestamp("2024-01-01", tz="UTC")
    return pd.DataFrame({
        "ticket_id": [1, 2, 3, 4, 5],
        "metric": ["reply_time", "reply_time", "reply_time", "periodic_update_time",
                   "periodic_update_time"],
        "instance_id": [1, 1, 2, 1, 1],
        "outcome": ["achieved", "breached", "achieved", "achieved", "active"],
        "fulfilled_at": [at, at, at, at, pd.NaT],
        "elapsed_ratio": [0.5, 2.0, 0.25, 0.8, 3.0],  # the active target's ratio is ignored
    })


def test_fulfilment_ratio_log_scale_target_line_and_counts(tmp_path):
    ax = plot_fulfilment_ratio(targets_frame())
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "Periodic update (n=1)", "Next reply (n=1)", "First reply (n=2)"]
    texts = [t.get_text() for t in ax.texts]
    assert "target" in texts
    assert texts.count("50% over target") == 1  # first reply: 1 of 2 past the target
    assert any(list(line.get_xdata()) == [1.0, 1.0] for line in ax.get_lines())
    png, svg = save_figure(ax, tmp_path / "ratio", formats=("png", "svg"))
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert "First reply (n=2)" in svg_text(svg)


def test_fulfilment_ratio_from_minutes_and_given_ax():
    frame = targets_frame().drop(columns="elapsed_ratio").assign(
        elapsed_minutes=[30, 120, 15, 48, np.nan], target_minutes=[60, 60, 60, 60, 60])
    fig, ax = plt.subplots()
    assert plot_fulfilment_ratio(frame, ax=ax) is ax
    assert "50% over target" in [t.get_text() for t in ax.texts]


# ---------------------------------------------------------------- save_figure


def test_save_figure_with_and_without_suffix_and_pdf(rates, tmp_path):
    ax = plot_breach_rates(rates)
    written = save_figure(ax, tmp_path / "a" / "b" / "chart.png", ("png", "svg", "pdf"))
    assert written == [tmp_path / "a" / "b" / f"chart.{ext}" for ext in ("png", "svg", "pdf")]
    assert written[0].read_bytes().startswith(PNG_MAGIC)
    assert written[2].read_bytes().startswith(b"%PDF")
    assert save_figure(ax.figure, str(tmp_path / "plain"), "svg") == [tmp_path / "plain.svg"]
    assert save_figure(ax, tmp_path / "v1.0", "png") == [tmp_path / "v1.0.png"]


def test_save_figure_is_reproducible_and_rejects_unknown_formats(rates, tmp_path):
    ax = plot_breach_rates(rates)
    first = save_figure(ax, tmp_path / "one", ("svg", "png"))
    second = save_figure(ax, tmp_path / "two", ("svg", "png"))
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    with pytest.raises(ValueError, match="formats"):
        save_figure(ax, tmp_path / "x", ("png", "gif"))


def test_style_is_one_shared_dict():
    assert charts.STYLE["svg.fonttype"] == "none"
    assert list(charts.STYLE["axes.prop_cycle"].by_key()["color"]) == list(charts.OKABE_ITO)

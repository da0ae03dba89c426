"""Charts for the questions of :mod:`zdevents.analysis.insights`: lateness, periodic vs pausable, funnels.

Same contract as :mod:`zdevents.viz.charts`: each ``plot_*`` takes a frame computed by
:mod:`zdevents.analysis.insights`, draws on ``ax`` (a new figure when None) inside
:func:`zdevents.viz.style.chart_style` and returns the Axes. Nothing here calls ``plt.show()``
or changes matplotlib's global settings. Export with :func:`zdevents.save_figure`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from ..analysis.labels import metric_labels, metric_sort_key
from .style import (
    HORIZONTAL,
    METRIC_COLOURS,
    MUTED,
    OKABE_ITO,
    auto_subtitle,
    chart_style,
    heading,
    metric_colour,
    new_axes,
    note,
    tidy,
)

__all__ = ["format_minutes", "plot_funnel", "plot_lateness", "plot_update_pairing"]

_BLUE, _ORANGE, _GREEN, _RED, _SKY = OKABE_ITO[:5]
_NEUTRAL = "#4d4d4d"


def format_minutes(minutes: float) -> str:
    """A duration in the unit a manager reads: "45 min", "5.2 h", "3.1 d".

    Examples
    --------
    >>> format_minutes(45), format_minutes(312), format_minutes(4464)
    ('45 min', '5.2 h', '3.1 d')
    """
    if minutes is None or not np.isfinite(minutes):
        return "n/a"
    if minutes < 60:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    ax = new_axes(ax, size)
    tidy(ax)
    return ax


def _labels(frame: pd.DataFrame, by: str) -> pd.Series:
    if by not in frame.columns:
        raise ValueError(f"the frame has no column {by!r}; its columns: {list(frame)}")
    if by == "metric":
        return metric_labels(frame)
    return frame[by].astype(object).map(lambda v: "(none)" if pd.isna(v) else str(v))


# ---------------------------------------------------------------- lateness

_LATE_FLOOR = 1.0  # minutes: a breach at the fulfilment (0 min) is drawn at 1 min on the log axis
_TICKS = (1, 10, 60, 240, 1440, 4 * 1440, 14 * 1440, 60 * 1440)


def plot_lateness(
    late: pd.DataFrame,
    *,
    by: str = "metric_label",
    ax: Axes | None = None,
    title: str | None = None,
    subtitle: str | None = None,
) -> Axes:
    """How late breached targets end up, per metric: box plot of minutes past the target.

    Boxes span the quartiles, whiskers the 5th to 95th percentiles, on a log time axis
    (lateness under a minute, including breaches at the fulfilment, is drawn at 1 minute).
    The right margin gives the median, the p90 and how many are still open (their
    lateness keeps growing, so it is a lower bound).

    Parameters
    ----------
    late : DataFrame
        Output of :func:`zdevents.lateness` (``late_minutes``, ``open`` and ``by``).
    by : str, default "metric_label"
        One box per value.
    ax : Axes, optional
    title : str, optional
    subtitle : str, optional
        The grey line under the title (:func:`zdevents.chart_subtitle`: account, period,
        as-of); by default what the frame says (the span of ``applied_at``, the as-of time
        in its ``attrs``).

    Returns
    -------
    Axes

    Examples
    --------
    >>> ax = plot_lateness(zd.lateness(targets))  # doctest: +SKIP
    """
    with chart_style():
        if "late_minutes" not in late.columns:
            raise ValueError("late needs 'late_minutes' (use zd.lateness(targets))")
        frame = late.reset_index(drop=True)
        labels = _labels(frame, by) if len(frame) else pd.Series([], dtype=object)
        minutes = pd.to_numeric(frame["late_minutes"], errors="coerce").to_numpy(float)
        keep = np.isfinite(minutes)
        data = pd.DataFrame(
            {
                "label": labels[keep].to_numpy(),
                "minutes": minutes[keep],
                "open": frame.loc[keep, "open"].to_numpy(bool) if "open" in frame else False,
            }
        )
        groups = sorted(data["label"].unique(), key=metric_sort_key, reverse=True)  # first on top
        ax = _axes(ax, (9.0, max(2.8, 0.55 * len(groups) + 1.6)))
        heading(
            ax,
            title if title is not None else "How late breached SLA targets end up",
            auto_subtitle(late, subtitle),
        )
        if not groups:
            note(ax, "no breached SLA targets")
            return ax
        values = [data.loc[data["label"] == g, "minutes"].to_numpy() for g in groups]
        drawn = ax.boxplot(
            [np.clip(v, _LATE_FLOOR, None) for v in values],
            **HORIZONTAL,
            whis=(5, 95),
            showfliers=False,
            widths=0.55,
            patch_artist=True,
            manage_ticks=False,
            medianprops={"linewidth": 2},
        )
        # Each metric in its own colour (the same in every chart); other groupings in grey.
        by_metric = by in ("metric_label", "metric")
        for i, group in enumerate(groups):
            colour = metric_colour(group) if by_metric else _NEUTRAL
            drawn["boxes"][i].set(facecolor=mpl.colors.to_rgba(colour, 0.3), edgecolor=colour)
            drawn["medians"][i].set_color(colour)
            for part in ("whiskers", "caps"):
                for line in drawn[part][2 * i : 2 * i + 2]:
                    line.set_color(colour)
        ax.set_xscale("log")
        ax.set_yticks(range(1, len(groups) + 1), list(groups))
        ax.tick_params(axis="y", length=0)
        side = ax.get_yaxis_transform()
        for i, (group, v) in enumerate(zip(groups, values, strict=True), start=1):
            open_n = int(data.loc[data["label"] == group, "open"].sum())
            text = (
                f"median {format_minutes(float(np.median(v)))} · "
                f"p90 {format_minutes(float(np.quantile(v, 0.9)))} · n={len(v):,}"
            )
            if open_n:
                text += f" ({open_n} open)"
            ax.text(1.01, i, text, transform=side, va="center", fontsize=8.5, color=MUTED)
        top = max(float(np.max(np.concatenate(values))), 60.0)
        ticks = [t for t in _TICKS if t <= top * 1.5]
        ax.set_xlim(_LATE_FLOOR * 0.8, top * 1.5)
        # whole ticks read "1 h", "4 d", not "1.0 h", "4.0 d"
        ax.set_xticks(
            ticks, [format_minutes(t).replace(".0 ", " ") if t > 1 else "≤1 min" for t in ticks]
        )
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.xaxis.grid(True)
        ax.set_xlabel(
            "Time past the target until fulfilment (open: until the as-of time), log scale; "
            "boxes: quartiles, whiskers: 5th-95th pct"
        )
        return ax


# ---------------------------------------------------------------- periodic vs pausable


def plot_update_pairing(
    summary: pd.DataFrame,
    *,
    by: str = "policy_title",
    ax: Axes | None = None,
    title: str | None = None,
    subtitle: str | None = None,
) -> Axes:
    """Periodic-update breaches split by what the pausable update did on the same instance.

    One bar per group, as shares of its periodic breaches: "pausable achieved" (the breach
    is explained by time waiting on the customer) and "pausable also breached". The
    right margin gives the share explained, the count of periodic breaches and the
    pausable-only breaches (which waiting cannot explain).

    Parameters
    ----------
    summary : DataFrame
        Output of :func:`zdevents.update_pairing_summary` grouped by ``by``.
    by : str, default "policy_title"
    ax : Axes, optional
    title : str, optional
    subtitle : str, optional
        The grey line under the title (:func:`zdevents.chart_subtitle`: account, period,
        as-of); by default what the frame says (the span of ``applied_at``, the as-of time
        in its ``attrs``).

    Returns
    -------
    Axes

    Examples
    --------
    >>> pairs = zd.update_pairs(targets)  # doctest: +SKIP
    >>> plot_update_pairing(zd.update_pairing_summary(pairs, by="group_name"),
    ...                     by="group_name")  # doctest: +SKIP
    """
    with chart_style():
        needed = ["periodic only", "both breached", "pausable only", "periodic_breached"]
        missing = [c for c in needed if c not in summary.columns]
        if missing:
            raise ValueError(f"summary needs {missing[0]!r} (use zd.update_pairing_summary())")
        frame = summary.reset_index(drop=True)
        labels = (
            _labels(frame, by)
            if by in frame.columns
            else pd.Series(["All"] * len(frame), dtype=object)
        )
        ax = _axes(ax, (9.0, max(2.6, 0.6 * len(frame) + 1.8)))
        heading(
            ax,
            title
            if title is not None
            else "Periodic update breaches: does waiting on the customer explain them?",
            auto_subtitle(summary, subtitle),
        )
        total = frame["periodic_breached"].to_numpy(float)
        shown = total > 0
        if not shown.any():
            note(ax, "no periodic update breaches")
            return ax
        order = np.argsort(
            -np.where(shown, frame["periodic only"] / np.where(shown, total, 1), -1.0),
            kind="stable",
        )[::-1]
        frame, labels, total = frame.iloc[order], labels.iloc[order], total[order]
        y = np.arange(len(frame))
        with np.errstate(invalid="ignore", divide="ignore"):
            explained = np.where(total > 0, frame["periodic only"].to_numpy(float) / total, 0.0)
        # The metrics' own colours: periodic alone breached, or pausable breached as well.
        ax.barh(
            y,
            explained,
            height=0.6,
            color=METRIC_COLOURS["Periodic update"],
            zorder=2,
            label="pausable achieved: waiting explains the breach",
        )
        ax.barh(
            y,
            1.0 - explained,
            left=explained,
            height=0.6,
            zorder=2,
            color=mpl.colors.to_rgba(METRIC_COLOURS["Pausable update"], 0.35),
            edgecolor=METRIC_COLOURS["Pausable update"],
            linewidth=0.8,
            label="pausable also breached",
        )
        side = ax.get_yaxis_transform()
        for yi, (_, row), share, n in zip(y, frame.iterrows(), explained, total, strict=True):
            if n == 0:
                text = "no periodic breaches"
            else:
                text = f"{share:.0%} of {int(n):,} explained"
            pausable_only = int(row["pausable only"])
            text += f" · {pausable_only:,} pausable-only"
            ax.text(1.01, yi, text, transform=side, va="center", fontsize=8.5, color=MUTED)
        ax.set_yticks(y, labels.tolist())
        ax.tick_params(axis="y", length=0)
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.6, len(frame) - 0.4)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.xaxis.grid(True)
        ax.set_xlabel("Share of periodic update breaches (same ticket and instance)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
        return ax


# ---------------------------------------------------------------- funnel plot

_NAME_ALL = 8
_OUTSIDE = {
    "above 99.8% limit": (_RED, "above 99.8%"),
    "above 95% limit": (_ORANGE, "above 95%"),
    "within limits": (_BLUE, "within limits"),
    "below 95% limit": (_SKY, "below 95%"),
    "below 99.8% limit": (_GREEN, "below 99.8%"),
    "too few targets": ("#b0b0b0", "too few targets (not ranked)"),
}


def plot_funnel(
    funnel: pd.DataFrame,
    *,
    by: str | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    subtitle: str | None = None,
    label: Sequence[str] = ("above 99.8% limit", "below 99.8% limit"),
) -> Axes:
    """Funnel plot: each unit's breach rate against its number of completed targets.

    The overall rate is the dashed line; the 95% (inner) and 99.8% (outer) control limits
    narrow as the number of targets grows. Units outside a limit are coloured, units with
    too few targets are grey (hollow), and units outside the 99.8% limits are named (all
    units when there are at most eight). The vertical axis is zoomed to the funnel.

    Parameters
    ----------
    funnel : DataFrame
        Output of :func:`zdevents.funnel_table`.
    by : str, optional
        The unit column (default: the first column of ``funnel``).
    ax : Axes, optional
    title : str, optional
    subtitle : str, optional
        The grey line under the title (:func:`zdevents.chart_subtitle`: account, period,
        as-of); by default what the frame says (the span of ``applied_at``, the as-of time
        in its ``attrs``).
    label : sequence of str
        Positions whose units are named on the plot.

    Returns
    -------
    Axes

    Examples
    --------
    >>> plot_funnel(zd.funnel_table(targets, by="group_name"))  # doctest: +SKIP
    """
    with chart_style():
        needed = ["completed", "breach_rate", "overall_rate", "position"]
        missing = [c for c in needed if c not in funnel.columns]
        if missing:
            raise ValueError(f"funnel needs {missing[0]!r} (use zd.funnel_table())")
        frame = funnel.reset_index(drop=True)
        unit = by if by is not None else str(frame.columns[0])
        ax = _axes(ax, (9.0, 5.0))
        noun = unit.replace("_name", "").replace("_id", "").replace("_", " ")
        heading(
            ax,
            title if title is not None else f"Breach rate by {noun}: funnel plot",
            auto_subtitle(funnel, subtitle),
        )
        if frame.empty:
            note(ax, "no completed SLA targets")
            return ax
        n = frame["completed"].to_numpy(float)
        rate = frame["breach_rate"].to_numpy(float)
        p0 = float(frame["overall_rate"].iloc[0])
        low_n = max(1.0, math.floor(n.min() * 0.7))
        grid = np.geomspace(low_n, max(math.ceil(n.max() * 1.3), low_n + 2), 200)
        se = np.sqrt(p0 * (1 - p0) / grid)
        for z, style in ((NormalDist().inv_cdf(0.975), "--"), (NormalDist().inv_cdf(0.999), "-")):
            for sign in (1, -1):
                ax.plot(
                    grid,
                    np.clip(p0 + sign * z * se, 0, 1),
                    color="#8c8c8c",
                    ls=style,
                    lw=1.0,
                    zorder=1,
                )
        ax.axhline(p0, color="#333333", ls=":", lw=1.2, zorder=1)
        positions = frame["position"].astype(str)
        for position, (colour, _) in _OUTSIDE.items():
            hit = (positions == position).to_numpy()
            if hit.any():
                hollow = position == "too few targets"
                ax.scatter(
                    n[hit],
                    rate[hit],
                    s=36,
                    zorder=3,
                    linewidths=1.2,
                    clip_on=False,
                    facecolors="none" if hollow else colour,
                    edgecolors=colour,
                )
        names = frame[unit].astype(str) if unit in frame.columns else pd.Series([""] * len(frame))
        named = [
            i
            for i in range(len(frame))
            if positions.iloc[i] in set(label) or len(frame) <= _NAME_ALL
        ]
        for i in named:
            ax.annotate(
                names.iloc[i],
                (n[i], rate[i]),
                xytext=(7, 0),
                va="center",
                textcoords="offset points",
                fontsize=8.5,
                color="#222222",
                annotation_clip=False,
            )
        if n.max() / max(n.min(), 1.0) > 20:
            ax.set_xscale("log")
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 2.5, 5, 10]))
        ax.xaxis.set_major_formatter(
            FuncFormatter(lambda x, _: f"{x:,.0f}" if abs(x - round(x)) < 1e-9 else f"{x:g}")
        )
        widest = NormalDist().inv_cdf(0.999) * math.sqrt(p0 * (1 - p0) / grid[0])
        finite = rate[np.isfinite(rate)]
        low = min(float(finite.min()) if finite.size else p0, p0 - widest)
        high = max(float(finite.max()) if finite.size else p0, p0 + widest)
        pad = 0.08 * (high - low) if high > low else 0.05
        ax.set_ylim(max(0.0, low - pad), min(1.0, high + pad))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
        ax.yaxis.grid(True)
        ax.set_xlabel("Completed SLA targets (breached + achieved)")
        ax.set_ylabel("Breach rate")
        present = [p for p in _OUTSIDE if (positions == p).any()]
        handles = [
            Line2D([], [], color="#333333", ls=":", label=f"overall {p0:.1%}"),
            Line2D([], [], color="#8c8c8c", ls="--", label="95% limits"),
            Line2D([], [], color="#8c8c8c", ls="-", label="99.8% limits"),
        ]
        handles += [
            Patch(
                facecolor="none" if p == "too few targets" else _OUTSIDE[p][0],
                edgecolor=_OUTSIDE[p][0],
                label=_OUTSIDE[p][1],
            )
            for p in present
        ]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return ax

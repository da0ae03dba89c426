"""Breach-rate bars and the fulfilment-to-target box plot: how often, and by how much.

:func:`plot_breach_rates` draws a ``breach_rates`` frame; :func:`plot_fulfilment_ratio` the
targets themselves. Both follow the contract of :mod:`zdevents.viz.charts`. The frame
helpers (:func:`row_labels`, :func:`completed_counts`, :func:`as_float`) serve the heatmap too.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator, PercentFormatter

from ..analysis.labels import metric_labels, metric_sort_key
from .style import (
    BAR_COLOUR,
    HORIZONTAL,
    MUTED,
    SUBTITLE_COLOUR,
    TARGET_COLOUR,
    auto_subtitle,
    chart_style,
    heading,
    metric_colour,
    new_axes,
    note,
    pct,
    tidy,
)

__all__ = [
    "as_float",
    "completed_counts",
    "plot_breach_rates",
    "plot_fulfilment_ratio",
    "row_labels",
]

_COUNT_COLUMNS = ("breached", "achieved")


def _present(value: object) -> bool:
    if value is None:
        return False
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):
        return True


def row_labels(frame: pd.DataFrame, by: str | Sequence[str]) -> pd.Series:
    """Labels of the ``by`` column(s), joined by " · "; ``metric`` gets human labels."""
    keys = [by] if isinstance(by, str) else list(by)
    missing = [k for k in keys if k not in frame.columns]
    if missing:
        raise ValueError(f"the frame has no column {missing[0]!r}; its columns: {list(frame)}")
    parts = []
    for key in keys:
        if key == "metric":
            parts.append(metric_labels(frame))
        else:
            col = frame[key].astype(object)
            parts.append(col.map(lambda v: "(none)" if not _present(v) else str(v)))
    out = parts[0]
    for part in parts[1:]:
        out = out + " · " + part
    return out


def completed_counts(frame: pd.DataFrame) -> pd.Series:
    """Completed targets (breached + achieved) of each row of a rates frame."""
    missing = [c for c in _COUNT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"the rates frame has no {missing[0]!r} column (use breach_rates())")
    return (frame["breached"].fillna(0) + frame["achieved"].fillna(0)).astype("int64")


def as_float(series: pd.Series) -> np.ndarray:
    """A column as float64 values, NaN where missing or not a number."""
    return pd.to_numeric(series, errors="coerce").astype("float64").to_numpy(na_value=np.nan)


# ---------------------------------------------------------------- breach rate bars


def plot_breach_rates(
    rates: pd.DataFrame,
    *,
    by: str | Sequence[str] = "metric",
    ax: Axes | None = None,
    title: str | None = None,
    subtitle: str | None = None,
) -> Axes:
    """Horizontal bars of breach rate with 95% CI whiskers and the completed count on each.

    Bars are sorted by breach rate, highest at the top. Each bar is annotated
    "23% (n=140)" where n = breached + achieved (active targets are not counted). Groups with
    no completed target have no bar and say "no completed targets".

    Parameters
    ----------
    rates : DataFrame
        Output of ``breach_rates(targets, by=...)``: the ``by`` column(s) and ``breached``,
        ``achieved``, ``breach_rate``, ``ci_low``, ``ci_high``; one row per bar.
    by : str or list of str
        The group column(s); ``"metric"`` is shown with human labels (first/next reply split
        when the frame carries it).
    ax : Axes, optional
        Where to draw; a new figure when None.
    title : str, optional
        Defaults to "SLA breach rate by <by>".
    subtitle : str, optional
        The grey line under the title; :func:`chart_subtitle` builds one with the account,
        period and as-of. Default: the as-of time that ``rates.attrs`` carries, if any.

    Returns
    -------
    Axes

    Examples
    --------
    >>> rates = breach_rates(targets, by=["metric", "metric_label"])  # doctest: +SKIP
    >>> plot_breach_rates(rates).figure.savefig("breach.png")  # doctest: +SKIP
    """
    with chart_style():
        frame = rates.reset_index(drop=True)
        labels = row_labels(frame, by) if len(frame) else pd.Series([], dtype=object)
        dupes = labels[labels.duplicated()].unique().tolist()
        if dupes:
            raise ValueError(
                f"rates has several rows for {dupes[0]!r}: pass rates grouped by {by!r} "
                "only, or name every group column in by="
            )
        rate = as_float(frame["breach_rate"]) if len(frame) else np.array([])
        order = sorted(
            range(len(frame)),
            key=lambda i: (
                math.isnan(rate[i]),
                -rate[i] if not math.isnan(rate[i]) else 0.0,
                metric_sort_key(labels.iloc[i]),
            ),
        )
        height = max(2.5, 0.45 * len(frame) + 1.4)
        ax = new_axes(ax, (8.0, height))
        tidy(ax)
        noun = by if isinstance(by, str) else " and ".join(by)
        heading(
            ax,
            title if title is not None else f"SLA breach rate by {noun.replace('_', ' ')}",
            auto_subtitle(rates, subtitle),
        )
        if not len(frame):
            note(ax, "no SLA targets")
            return ax
        frame = frame.iloc[order[::-1]].reset_index(drop=True)  # barh draws bottom-up
        labels = labels.iloc[order[::-1]].reset_index(drop=True)
        rate = as_float(frame["breach_rate"])
        low = as_float(frame["ci_low"]) if "ci_low" in frame else np.full(len(frame), np.nan)
        high = as_float(frame["ci_high"]) if "ci_high" in frame else np.full(len(frame), np.nan)
        n = completed_counts(frame).to_numpy()
        y = np.arange(len(frame))
        shown = ~np.isnan(rate)
        keys = [by] if isinstance(by, str) else list(by)
        if "metric" in keys:  # each metric in its own colour, as in every other chart
            colours = np.array([metric_colour(m) for m in metric_labels(frame)])
        elif "metric_label" in keys:  # by="metric_label": the labels name the colours
            colours = np.array([metric_colour(str(m)) for m in frame["metric_label"]])
        else:
            colours = np.array([BAR_COLOUR] * len(frame))
        ax.barh(y[shown], rate[shown], height=0.62, color=colours[shown], zorder=2)
        has_ci = shown & ~np.isnan(low) & ~np.isnan(high)
        if has_ci.any():
            ax.errorbar(
                rate[has_ci],
                y[has_ci],
                xerr=[
                    np.clip(rate[has_ci] - low[has_ci], 0, None),
                    np.clip(high[has_ci] - rate[has_ci], 0, None),
                ],
                fmt="none",
                ecolor="#333333",
                elinewidth=1.1,
                capsize=3,
                zorder=3,
            )
        right = np.nanmax(np.where(np.isnan(high), rate, high)) if shown.any() else 0.0
        right = min(1.0, max(right, 0.05))
        for i in range(len(frame)):
            if shown[i]:
                end = high[i] if not np.isnan(high[i]) else rate[i]
                ax.annotate(
                    f"{pct(rate[i])} (n={n[i]:,})",
                    (end, y[i]),
                    xytext=(5, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=9,
                    color="#222222",
                )
            else:
                ax.annotate(
                    "no completed targets",
                    (0, y[i]),
                    xytext=(5, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=9,
                    color=MUTED,
                    style="italic",
                )
        ax.set_yticks(y, labels.tolist())
        ax.tick_params(axis="y", length=0)
        ax.set_ylim(-0.6, len(frame) - 0.4)
        ax.set_xlim(0, right * 1.3)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.xaxis.grid(True)
        ax.set_xlabel("Breach rate: breached / completed targets (whiskers: 95% CI)")
        return ax


# ---------------------------------------------------------------- fulfilment vs target

_RATIO_FLOOR = 0.01


def plot_fulfilment_ratio(
    targets: pd.DataFrame,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    subtitle: str | None = None,
) -> Axes:
    """Time to fulfilment relative to the target, per metric (box plot, log scale).

    Only fulfilled targets with a known ratio count (``fulfilled_at`` set and
    ``elapsed_ratio`` > 0; ``elapsed_minutes / target_minutes`` when the ratio column is
    absent). Boxes span the quartiles, whiskers the 5th to 95th percentiles; ratios below
    1% of the target are drawn at 1%. The dashed line at 1.0 is the target, and the share of
    targets past it is written on the right.

    The chart says on its face which targets it counts, so that its n reconciles with the
    breach-rate chart's (breached + achieved): each row reads "n=… of … completed", and a
    note under the axis names what the difference is (breached targets not fulfilled yet,
    fulfilments without a measured time).

    Parameters
    ----------
    targets : DataFrame
        Output of ``sla_targets(events)``.
    ax : Axes, optional
    title : str, optional
    subtitle : str, optional
        As in :func:`plot_breach_rates`; by default the span of ``applied_at`` and the
        as-of time of ``targets.attrs``.

    Returns
    -------
    Axes

    Examples
    --------
    >>> plot_fulfilment_ratio(sla_targets(events))  # doctest: +SKIP
    """
    with chart_style():
        frame = targets.reset_index(drop=True)
        if "elapsed_ratio" in frame.columns:
            ratio = as_float(frame["elapsed_ratio"])
        elif {"elapsed_minutes", "target_minutes"} <= set(frame.columns):
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = as_float(frame["elapsed_minutes"]) / as_float(frame["target_minutes"])
        else:
            raise ValueError(
                "targets needs 'elapsed_ratio' (or elapsed_minutes and target_minutes)"
            )
        fulfilled = (
            frame["fulfilled_at"].notna().to_numpy()
            if "fulfilled_at" in frame.columns
            else np.ones(len(frame), dtype=bool)
        )
        keep = np.isfinite(ratio) & (ratio > 0) & fulfilled
        if "outcome" in frame.columns:
            outcome = frame["outcome"].astype(object).to_numpy()
            completed = (outcome == "breached") | (outcome == "achieved")
        else:
            completed = fulfilled
        labels = metric_labels(frame) if len(frame) else pd.Series([], dtype=object)
        data = pd.DataFrame({"label": labels[keep].to_numpy(), "ratio": ratio[keep]})
        totals = pd.Series(completed, index=labels.to_numpy()).groupby(level=0).sum()
        groups = sorted(data["label"].unique(), key=metric_sort_key, reverse=True)  # first on top
        ax = new_axes(ax, (8.0, max(3.2, 0.5 * len(groups) + 2.2)))
        tidy(ax)
        heading(
            ax,
            title if title is not None else "Time to fulfilment relative to SLA target",
            auto_subtitle(targets, subtitle),
        )
        if not groups:
            note(ax, "no fulfilled SLA targets with elapsed time")
            return ax
        values = [
            np.clip(data.loc[data["label"] == g, "ratio"].to_numpy(), _RATIO_FLOOR, None)
            for g in groups
        ]
        boxes = ax.boxplot(
            values,
            **HORIZONTAL,
            whis=(5, 95),
            showfliers=False,
            widths=0.55,
            patch_artist=True,
            manage_ticks=False,
            medianprops={"color": "#222222", "linewidth": 2},
        )
        for i, g in enumerate(groups):
            colour = metric_colour(g)
            boxes["boxes"][i].set(facecolor=mpl.colors.to_rgba(colour, 0.35), edgecolor=colour)
            for part in ("whiskers", "caps"):
                for line in boxes[part][2 * i : 2 * i + 2]:
                    line.set_color(colour)
        ax.set_xscale("log")
        ax.axvline(1.0, color=TARGET_COLOUR, ls="--", lw=1.5, zorder=1)
        ax.text(
            1.0,
            1.0,
            "target",
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            color=TARGET_COLOUR,
            fontsize=9,
            fontweight="bold",
        )
        ax.set_yticks(
            range(1, len(groups) + 1),
            [
                f"{g} (n={len(v):,} of {int(totals.get(g, len(v))):,})"
                for g, v in zip(groups, values, strict=True)
            ],
        )
        ax.tick_params(axis="y", length=0)
        over = ax.get_yaxis_transform()
        for i, v in enumerate(values, start=1):
            ax.text(
                1.01,
                i,
                f"{np.mean(v > 1.0):.0%} over target",
                transform=over,
                va="center",
                fontsize=8.5,
                color=MUTED,
            )
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}×"))
        ax.xaxis.grid(True, which="major")
        ax.set_xlabel(
            "Time to fulfilment ÷ SLA target (log scale; boxes: quartiles, whiskers: 5th-95th pct)"
        )
        counted = int(keep.sum())
        all_completed = int(completed.sum())
        open_breached = int(np.sum(completed & ~fulfilled))
        unmeasured = int(np.sum(completed & fulfilled & ~keep))
        missing = []
        if open_breached:
            missing.append(f"{open_breached:,} breached but not yet fulfilled")
        if unmeasured:
            missing.append(f"{unmeasured:,} fulfilled without a measured time")
        footnote = (
            f"n = fulfilled targets with a measured time, of the completed (breached + "
            f"achieved) targets that the breach-rate chart counts: {counted:,} of "
            f"{all_completed:,} in all"
        )
        footnote += f"; not shown: {' and '.join(missing)}." if missing else "."
        footnote += (
            ' "Over target" is the share fulfilled after the target time, in the '
            "target's own clock (business hours where the policy uses them)."
        )
        footnote = "\n".join(textwrap.wrap(footnote, 110, break_on_hyphens=False))
        ax.annotate(
            footnote,
            xy=(0, 0),
            xycoords="axes fraction",
            xytext=(0, -44),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize=8,
            color=SUBTITLE_COLOUR,
            annotation_clip=False,
        )
        return ax

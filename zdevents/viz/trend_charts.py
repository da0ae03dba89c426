"""Breach rates over time and across two keys: the weekly trend and the heatmap.

:func:`plot_breach_trend` draws small multiples (one panel per metric, censored weeks
hatched); :func:`plot_breach_heatmap` a rows x cols grid. Both follow the contract of
:mod:`zdevents.viz.charts`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

from ..analysis.labels import metric_labels, metric_sort_key
from ..dates import to_utc
from .rate_charts import as_float, completed_counts, row_labels
from .style import (
    MISSING_COLOUR,
    MUTED,
    STYLE,
    SUBTITLE_COLOUR,
    auto_subtitle,
    chart_style,
    chart_subtitle,
    heading,
    metric_colour,
    new_axes,
    note,
    pct,
    tidy,
)

__all__ = ["plot_breach_heatmap", "plot_breach_trend"]


# ---------------------------------------------------------------- trend (small multiples)

#: Period names by ``freq`` of ``breach_rates``: (title word, axis noun).
_PERIODS: dict[str, tuple[str, str]] = {
    "W": ("Weekly", "Week the SLA applied (weeks start Monday, UTC)"),
    "M": ("Monthly", "Month the SLA applied (UTC)"),
}
_INCOMPLETE = "incomplete: targets still open"
_HATCH = {"facecolor": "#f2f2f2", "edgecolor": "#9a9a9a", "hatch": "///", "lw": 0}


def _infer_freq(periods: pd.DatetimeIndex) -> str:
    """``"M"`` when periods are a month apart (or one period on the 1st, not a Monday)."""
    if len(periods) >= 2:
        return "M" if pd.Series(periods).diff().median() >= pd.Timedelta(days=27) else "W"
    first = periods[0]
    return "M" if first.day == 1 and first.dayofweek != 0 else "W"


def _period_step(freq: str) -> pd.DateOffset | pd.Timedelta:
    return pd.DateOffset(months=1) if freq == "M" else pd.Timedelta(days=7)


def _incomplete_from(
    frame: pd.DataFrame,
    periods: pd.DatetimeIndex,
    step: Any,
    as_of: pd.Timestamp | None,
    incomplete_weeks: int,
) -> pd.Timestamp | None:
    """First period of the trailing run of censored periods (None when none is)."""
    flagged: set[pd.Timestamp] = set()
    if "active" in frame.columns:
        active = frame.groupby("_period")["active"].sum()
        for p in reversed(periods):  # the trailing run of periods with open targets
            if active.get(p, 0) > 0:
                flagged.add(p)
            else:
                break
    reference = as_of if as_of is not None else periods[-1] + step
    window = reference - pd.Timedelta(weeks=incomplete_weeks)
    flagged.update(p for p in periods if p + step > window)
    return min(flagged) if flagged else None


def _grid(n: int) -> tuple[int, int]:
    """Rows and columns for ``n`` panels, wide rather than tall (a slide is 16:9)."""
    if n <= 3:
        return 1, max(1, n)
    if n == 4:
        return 2, 2
    cols = 3 if n <= 6 else 4
    return math.ceil(n / cols), cols


def plot_breach_trend(
    rates: pd.DataFrame,
    *,
    ax: Axes | None = None,
    freq: str | None = None,
    incomplete_weeks: int = 2,
    as_of: object = None,
    title: str | None = None,
    subtitle: str | None = None,
) -> Axes:
    """Breach rate per period as small multiples: one panel per metric, on shared axes.

    Each panel draws one metric in its fixed colour (:data:`METRIC_COLOURS`) with its 95%
    interval as a band; every panel has the same time and rate axes, so panels compare at a
    glance. Periods that are still incomplete are hatched in every panel.

    Censoring: a target applied recently that is still open is left out of its period's
    rate, so the newest periods look better than they will. The chart hatches, from the
    first such period to the end, (a) the trailing run of periods that still have active
    targets and (b) every period ending after ``as_of - incomplete_weeks`` weeks
    (``as_of`` defaults to the end of the last period).

    Parameters
    ----------
    rates : DataFrame
        Output of ``breach_rates(targets, by="metric", freq="W")`` (or ``freq="M"``):
        ``metric``, ``period`` (UTC bucket start), counts, ``breach_rate``, ``ci_low``,
        ``ci_high``.
    ax : Axes, optional
        Where to draw. A new figure when None. With several metrics, the area of ``ax``
        (a subplot) is split into the panels and ``ax`` itself is removed.
    freq : {"W", "M"}, optional
        The ``freq`` the rates were computed with; names the period in the title ("Weekly",
        "Monthly") and on the axis. Inferred from the spacing of ``period`` when None.
    incomplete_weeks : int
        Weeks before ``as_of`` whose targets may still be open.
    as_of : str, datetime or Timestamp, optional
        The data's as-of time (naive = UTC); default ``rates.attrs["zdevents_as_of"]``.
    title : str, optional
        Default "Weekly SLA breach rate by metric" (or "Monthly ...").
    subtitle : str, optional
        The grey line under the title (:func:`chart_subtitle`); by default the span of the
        periods and the as-of time.

    Returns
    -------
    Axes
        The first (top-left) panel; ``ax.figure.axes`` holds every panel.

    Examples
    --------
    >>> weekly = breach_rates(targets, by="metric", freq="W")  # doctest: +SKIP
    >>> plot_breach_trend(weekly, as_of="2024-07-01").figure.savefig("trend.png")  # doctest: +SKIP
    """
    if "period" not in rates.columns:
        raise ValueError("rates has no 'period' column: use breach_rates(..., freq='W' or 'M')")
    if freq is not None and freq not in _PERIODS:
        raise ValueError(f'freq must be "W" or "M", got {freq!r}')
    if as_of is None:
        as_of = rates.attrs.get("zdevents_as_of")
    with chart_style():
        frame = rates.reset_index(drop=True).copy()
        if not len(frame):
            ax = new_axes(ax, (9.0, 4.8))
            tidy(ax)
            word = _PERIODS[freq or "W"][0]
            heading(
                ax,
                title if title is not None else f"{word} SLA breach rate by metric",
                auto_subtitle(rates, subtitle, as_of=as_of),
            )
            note(ax, "no SLA targets")
            return ax
        frame["_period"] = (
            pd.to_datetime(frame["period"], utc=True).dt.tz_localize(None).astype("datetime64[ns]")
        )
        frame["_label"] = metric_labels(frame) if "metric" in frame.columns else "All metrics"
        periods = pd.DatetimeIndex(sorted(frame["_period"].unique()))
        freq = freq or _infer_freq(periods)
        step = _period_step(freq)
        cutoff = to_utc(as_of, name="as_of")  # type: ignore[arg-type]
        start = _incomplete_from(
            frame,
            periods,
            step,
            cutoff.tz_localize(None) if cutoff is not None else None,
            incomplete_weeks,
        )
        labels = sorted(frame["_label"].unique(), key=metric_sort_key)
        word, axis_text = _PERIODS[freq]
        chart_title = title if title is not None else f"{word} SLA breach rate by metric"
        if subtitle is None:
            last = periods[-1] + step
            subtitle = chart_subtitle(
                since=periods[0].tz_localize("UTC"), until=last.tz_localize("UTC"), as_of=cutoff
            )

        rows, cols = _grid(len(labels))
        container: Figure | SubFigure | None
        if ax is None:
            container = plt.figure(figsize=(max(8.0, 3.2 * cols + 1.0), 2.4 * rows + 2.0))
        elif len(labels) == 1:
            container = None
        else:
            spec = ax.get_subplotspec()
            if spec is None:
                raise ValueError(
                    "ax must be a subplot (from plt.subplots) to hold one panel "
                    "per metric; or pass ax=None"
                )
            container = ax.figure.add_subfigure(spec)
            ax.remove()
        panels = (
            np.array([ax])
            if container is None
            else container.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
        )

        top = 0.0
        for panel, label in zip(panels, labels, strict=False):
            tidy(panel)
            part = frame[frame["_label"] == label].sort_values("_period")
            part = part.set_index("_period").reindex(periods)  # gaps stay gaps
            x = part.index.to_numpy()
            rate = as_float(part["breach_rate"])
            colour = metric_colour(label)
            if start is not None:
                panel.axvspan(
                    mdates.date2num(start), mdates.date2num(periods[-1] + step), zorder=1, **_HATCH
                )
            if "ci_low" in part and "ci_high" in part:
                low, high = as_float(part["ci_low"]), as_float(part["ci_high"])
                panel.fill_between(x, low, high, color=colour, alpha=0.2, lw=0, zorder=2)
                top = max(top, np.nanmax(high, initial=0.0))
            panel.plot(x, rate, color=colour, lw=2.0, marker="o", ms=3.2, label=label, zorder=3)
            top = max(top, np.nanmax(rate, initial=0.0))
            if container is not None:
                panel.set_title(
                    label, loc="left", fontsize=10.5, fontweight="bold", pad=4, color="#222222"
                )
            panel.yaxis.grid(True)
        for i, panel in enumerate(panels):
            if i >= len(labels):
                panel.set_visible(False)
            elif i + cols >= len(labels):  # nothing drawn below it: it shows the dates
                panel.xaxis.set_tick_params(labelbottom=True)
        first = panels[0]
        first.set_ylim(0, min(1.0, top * 1.1) if top > 0 else 1.0)
        first.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        _date_axis(first, periods, step, max_ticks=8 if cols == 1 else 4)

        handles = [
            Line2D(
                [],
                [],
                color="#555555",
                lw=2.0,
                marker="o",
                ms=3.2,
                label="breach rate (breached ÷ completed)",
            ),
            Patch(facecolor="#555555", alpha=0.2, label="95% CI"),
        ]
        if start is not None:
            handles.append(Patch(label=_INCOMPLETE, **_HATCH))
        if container is None:
            heading(first, chart_title, subtitle)
            first.set_xlabel(axis_text)
            first.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
            return first
        _panel_layout(container, chart_title, subtitle, axis_text, handles)
        return first


def _panel_layout(
    container: Figure | SubFigure, title: str, subtitle: str, axis_text: str, handles: list[Any]
) -> None:
    """Title, subtitle, axis label and legend around a grid of panels (sizes in inches)."""
    dpi = container.figure.dpi if isinstance(container, SubFigure) else container.dpi
    width, height = container.bbox.width / dpi, container.bbox.height / dpi
    container.subplots_adjust(
        left=0.7 / width,
        right=1 - 0.15 / width,
        top=1 - 1.0 / height,
        bottom=1.3 / height,
        hspace=0.5,
        wspace=0.08,
    )
    container.text(
        0.55 / width,
        1 - 0.12 / height,
        title,
        ha="left",
        va="top",
        fontsize=STYLE["axes.titlesize"],
        fontweight="bold",
    )
    container.text(
        0.55 / width,
        1 - 0.45 / height,
        subtitle,
        ha="left",
        va="top",
        fontsize=9,
        color=SUBTITLE_COLOUR,
    )
    container.text(
        0.5,
        0.62 / height,
        axis_text,
        ha="center",
        va="top",
        fontsize=STYLE["axes.labelsize"],
        color="#333333",
    )
    container.legend(
        handles=handles,
        loc="lower center",
        ncol=len(handles),
        bbox_to_anchor=(0.5, 0.02 / height),
        frameon=False,
    )


class _DayMonthFormatter(mdates.DateFormatter):
    """Ticks like "8 Jan" ("Jan" for months), with the year under the first tick of each year."""

    def __init__(self, *, monthly: bool) -> None:
        super().__init__("%b" if monthly else "%d %b", tz="UTC")
        self._monthly = monthly

    def __call__(self, x: float, pos: int | None = 0) -> str:
        day = mdates.num2date(x, tz=self.tz)
        return f"{day:%b}" if self._monthly else f"{day.day} {day:%b}"

    def format_ticks(self, values: Sequence[float]) -> list[str]:
        labels = [self(v) for v in values]
        years = [mdates.num2date(v, tz=self.tz).year for v in values]
        return [
            f"{label}\n{year}" if i == 0 or year != years[i - 1] else label
            for i, (label, year) in enumerate(zip(labels, years, strict=True))
        ]


def _date_axis(ax: Axes, periods: pd.DatetimeIndex, step: Any, *, max_ticks: int = 8) -> None:
    """At most ``max_ticks`` date ticks: Mondays for a few weeks, month starts beyond that."""
    span = (periods[-1] + step) - periods[0]
    months = max(1, round(span.days / 30.4))
    if isinstance(step, pd.DateOffset) or span.days > 7 * max_ticks * 1.5:
        locator: mdates.DateLocator = mdates.MonthLocator(
            interval=max(1, math.ceil(months / max_ticks))
        )
        monthly = True
    else:
        weeks = max(1, len(periods))
        locator = mdates.WeekdayLocator(
            byweekday=mdates.MO, interval=max(1, math.ceil(weeks / max_ticks))
        )
        monthly = False
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(_DayMonthFormatter(monthly=monthly))
    pad = pd.Timedelta(days=2)
    ax.set_xlim(periods[0] - pad, periods[-1] + step + pad)


# ---------------------------------------------------------------- heatmap


def plot_breach_heatmap(
    rates: pd.DataFrame,
    *,
    rows: str = "metric",
    cols: str = "policy_title",
    ax: Axes | None = None,
    title: str | None = None,
    subtitle: str | None = None,
) -> Axes:
    """A rows x cols grid of breach rates annotated "23% (n=140)"; grey where nothing completed.

    The rate of a cell is recomputed from its counts (breached / (breached + achieved)), so
    rows of ``rates`` that share a cell are pooled.

    Parameters
    ----------
    rates : DataFrame
        Output of ``breach_rates(targets, by=["metric", "policy_title"])``.
    rows, cols : str
        Columns for the grid's rows and columns; ``"metric"`` gets human labels.
    ax : Axes, optional
    title : str, optional
    subtitle : str, optional
        As in :func:`plot_breach_rates`.

    Returns
    -------
    Axes

    Examples
    --------
    >>> rates = breach_rates(targets, by=["metric", "policy_title"])  # doctest: +SKIP
    >>> plot_breach_heatmap(rates)  # doctest: +SKIP
    """
    with chart_style():
        frame = rates.reset_index(drop=True)
        row_names = row_labels(frame, rows) if len(frame) else pd.Series([], dtype=object)
        col_names = row_labels(frame, cols) if len(frame) else pd.Series([], dtype=object)
        counts = pd.DataFrame(
            {
                "row": row_names,
                "col": col_names,
                "breached": frame["breached"].fillna(0).astype("int64") if len(frame) else [],
                "completed": completed_counts(frame) if len(frame) else [],
            }
        )
        row_order = sorted(counts["row"].unique(), key=metric_sort_key)
        col_order = sorted(counts["col"].unique(), key=str)
        grid_b = counts.pivot_table(
            index="row", columns="col", values="breached", aggfunc="sum"
        ).reindex(index=row_order, columns=col_order)
        grid_n = counts.pivot_table(
            index="row", columns="col", values="completed", aggfunc="sum"
        ).reindex(index=row_order, columns=col_order)
        size = (max(6.0, 1.55 * len(col_order) + 3.2), max(3.0, 0.55 * len(row_order) + 1.8))
        ax = new_axes(ax, size)
        noun = f"{rows.replace('_', ' ')} and {cols.replace('_', ' ')}"
        heading(
            ax,
            title if title is not None else f"SLA breach rate by {noun}",
            auto_subtitle(rates, subtitle),
        )
        if not len(frame):
            tidy(ax)
            note(ax, "no SLA targets")
            return ax
        n = grid_n.to_numpy(dtype="float64", na_value=np.nan)
        b = grid_b.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(n > 0, b / n, np.nan)
        finite = value[np.isfinite(value)]
        vmax = max(0.1, math.ceil(finite.max() * 10) / 10) if finite.size else 1.0
        cmap = mpl.colormaps["YlOrRd"].with_extremes(bad=MISSING_COLOUR)
        norm = mpl.colors.Normalize(vmin=0.0, vmax=min(1.0, vmax))
        image = ax.imshow(np.ma.masked_invalid(value), cmap=cmap, norm=norm, aspect="auto")
        for (r, c), v in np.ndenumerate(value):
            if np.isfinite(v):
                red, green, blue, _ = cmap(norm(v))
                dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.55
                text = f"{pct(v)} (n={int(n[r, c]):,})"
                ax.text(
                    c,
                    r,
                    text,
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if dark else "#222222",
                )
            else:
                text = "no completed targets" if n[r, c] == 0 else "no targets"
                ax.text(
                    c, r, text, ha="center", va="center", fontsize=7.5, color=MUTED, style="italic"
                )
        ax.set_xticks(
            range(len(col_order)),
            [str(c) for c in col_order],
            rotation=25 if len(col_order) > 3 else 0,
            ha="right" if len(col_order) > 3 else "center",
        )
        ax.set_yticks(range(len(row_order)), [str(r) for r in row_order])
        ax.tick_params(length=0)
        if rows == "metric":  # each metric's colour, as in the other charts, as a strip
            for r, label in enumerate(row_order):
                ax.add_patch(
                    mpl.patches.Rectangle(
                        (-0.5 - 0.09, r - 0.5),
                        0.06,
                        1.0,
                        facecolor=metric_colour(str(label)),
                        edgecolor="white",
                        lw=1.0,
                        clip_on=False,
                        zorder=3,
                    )
                )
            ax.tick_params(axis="y", pad=12)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_xticks(np.arange(-0.5, len(col_order)), minor=True)
        ax.set_yticks(np.arange(-0.5, len(row_order)), minor=True)
        ax.grid(which="minor", color="white", linewidth=2)
        ax.tick_params(which="minor", length=0)
        bar = ax.figure.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
        bar.ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        bar.set_label("Breach rate")
        bar.outline.set_visible(False)
        ax.set_xlabel(cols.replace("_", " ").capitalize())
        ax.set_ylabel("")
        return ax

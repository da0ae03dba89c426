"""Deck-ready matplotlib charts of SLA breach rates.

Every ``plot_*`` function takes the frames computed by :mod:`zdevents.sla` (it never computes
them), draws on ``ax`` (a new figure when ``ax`` is None) and returns the Axes. Nothing here
calls ``plt.show()`` or changes matplotlib's global settings: each function draws inside
:func:`chart_style`, which sets the keys of :data:`STYLE` and restores
only those (backend, interactive mode and every other setting are left alone). Export with
:func:`save_figure`.

Metric names are shown in the analyst's words (:func:`metric_label`): ``reply_time`` instance 1
is "First reply" and later instances are "Next reply" when the frame says which (a
``metric_label``/``label``/``reply_kind`` column, or ``instance_id``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator, PercentFormatter

from .sla import METRIC_LABELS as _SLA_METRIC_LABELS
from .sla import metric_label as sla_metric_label

__all__ = [
    "METRIC_LABELS",
    "OKABE_ITO",
    "STYLE",
    "chart_style",
    "metric_label",
    "metric_labels",
    "plot_breach_heatmap",
    "plot_breach_rates",
    "plot_breach_trend",
    "plot_fulfilment_ratio",
    "save_figure",
]

logger = logging.getLogger(__name__)

#: Okabe & Ito's colour-blind-safe palette, ordered so that the hard-to-see yellow comes last.
OKABE_ITO: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#56B4E9",  # sky blue
    "#CC79A7",  # reddish purple
    "#000000",  # black
    "#F0E442",  # yellow
)
# Lines and bands: yellow is too faint as a line on white, so grey takes its place.
_LINE_COLOURS: tuple[str, ...] = (*OKABE_ITO[:7], "#8c8c8c")
_BAR = OKABE_ITO[0]
_TARGET = OKABE_ITO[3]
_MUTED = "#6b6b6b"
_MISSING = "#d9d9d9"

#: The one look of every chart (``rcParams`` keys; see :func:`chart_style`).
STYLE: dict[str, Any] = {
    "figure.figsize": (8.0, 4.5),
    "figure.dpi": 100,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.dpi": 150,
    "font.size": 10,
    "axes.titlesize": 13,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.titlepad": 10,
    "axes.labelsize": 10,
    "axes.labelcolor": "#333333",
    "axes.edgecolor": "#888888",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "axes.axisbelow": True,
    "axes.prop_cycle": cycler(color=list(OKABE_ITO)),
    "grid.color": "#dddddd",
    "grid.linewidth": 0.8,
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "legend.frameon": False,
    "legend.fontsize": 9,
    # Text stays text in SVG (searchable, editable in a deck, smaller files).
    "svg.fonttype": "none",
    "svg.hashsalt": "zdevents",  # stable element ids: the same figure gives the same SVG
    "pdf.fonttype": 42,
}

#: Human labels of Zendesk's metric names (and of the first/next reply split); the names
#: themselves are defined once, in :data:`zdevents.sla.METRIC_LABELS`.
METRIC_LABELS: dict[str, str] = {
    "first_reply": "First reply",
    "next_reply": "Next reply",
    **_SLA_METRIC_LABELS,
}
_ORDER = list(dict.fromkeys(METRIC_LABELS.values()))
# Columns that may already say which label (or which reply) a row is, most specific first.
_LABEL_COLUMNS = ("metric_label", "label", "reply_kind")
_COUNT_COLUMNS = ("breached", "achieved")


@contextmanager
def chart_style() -> Iterator[None]:
    """Draw (or save) with :data:`STYLE`, then put back exactly the settings it changed.

    Only the keys of :data:`STYLE` are set and restored. ``matplotlib.rc_context`` would
    restore *every* setting instead, and so undo what happened inside it: in Jupyter the
    first figure loads the inline backend, which turns interactive mode on; restoring the
    whole of ``rcParams`` turned it off again, and later charts stopped showing inline.

    Examples
    --------
    >>> with chart_style():  # doctest: +SKIP
    ...     fig, ax = plt.subplots()
    """
    saved = {key: mpl.rcParams[key] for key in STYLE}
    mpl.rcParams.update(STYLE)
    try:
        yield
    finally:
        mpl.rcParams.update(saved)


# ---------------------------------------------------------------- labels


def _key(text: str) -> str:
    return text.strip().lower().replace(" ", "_").replace("-", "_")


def metric_label(metric: object, *, instance_id: object = None, reply_kind: object = None) -> str:
    """The analyst's name of a metric.

    ``reply_time`` becomes "First reply" (instance 1 or ``reply_kind="first_reply"``) or
    "Next reply" (later instances); without either it stays "Reply". Unknown metrics are
    title-cased ("custom_time" -> "Custom Time"); a missing metric is "Unknown".

    Examples
    --------
    >>> metric_label("periodic_update_time")
    'Periodic update'
    >>> metric_label("reply_time", instance_id=2)
    'Next reply'
    """
    if metric is None or (not isinstance(metric, str) and pd.isna(metric)):
        return "Unknown"
    name = str(metric)
    if _key(name) == "reply_time":
        if _present(reply_kind):
            kind = _key(str(reply_kind))
            if kind in ("first_reply", "next_reply"):
                return METRIC_LABELS[kind]
        if _present(instance_id):
            return METRIC_LABELS["first_reply" if int(instance_id) <= 1 else "next_reply"]
    return sla_metric_label(_key(name) if _key(name) in METRIC_LABELS else name)


def _present(value: object) -> bool:
    if value is None:
        return False
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):
        return True


def _label_from_column(value: object, metric: object, instance_id: object) -> str:
    """A label column's value in human words (it may hold keys or finished labels)."""
    if _present(value):
        text = str(value)
        key = _key(text)
        if key in ("first_reply", "next_reply"):
            return METRIC_LABELS[key]
        if key in METRIC_LABELS and key != "reply_time":
            return METRIC_LABELS[key]
        if key != "reply_time" and not key.endswith("_time"):
            return text  # already a human label
    return metric_label(metric, instance_id=instance_id)


def metric_labels(frame: pd.DataFrame) -> pd.Series:
    """Human metric labels for every row of a targets or rates frame.

    Uses, in this order: a ``metric_label``, ``label`` or ``reply_kind`` column (keys such as
    ``first_reply`` or finished labels), then ``instance_id`` (for ``reply_time``), then the
    ``metric`` name alone.

    Examples
    --------
    >>> frame = pd.DataFrame({"metric": ["reply_time", "reply_time"], "instance_id": [1, 3]})
    >>> metric_labels(frame).tolist()
    ['First reply', 'Next reply']
    """
    if "metric" not in frame.columns:
        raise ValueError("the frame has no 'metric' column to label")
    metrics = frame["metric"].astype(object).tolist()
    instances = (
        frame["instance_id"].astype(object).tolist()
        if "instance_id" in frame.columns
        else [None] * len(frame)
    )
    column = next((c for c in _LABEL_COLUMNS if c in frame.columns), None)
    values = frame[column].astype(object).tolist() if column else [None] * len(frame)
    labels = [
        _label_from_column(v, m, i) for v, m, i in zip(values, metrics, instances, strict=True)
    ]
    return pd.Series(labels, index=frame.index, name="metric_label", dtype=object)


def _row_labels(frame: pd.DataFrame, by: str | Sequence[str]) -> pd.Series:
    """Labels of the ``by`` column(s); ``metric`` gets human labels."""
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


def _order_key(label: str) -> tuple[int, str]:
    return (_ORDER.index(label) if label in _ORDER else len(_ORDER), label)


def _completed(frame: pd.DataFrame) -> pd.Series:
    missing = [c for c in _COUNT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"the rates frame has no {missing[0]!r} column (use breach_rates())")
    return (frame["breached"].fillna(0) + frame["achieved"].fillna(0)).astype("int64")


def _float(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").astype("float64").to_numpy(na_value=np.nan)


def _pct(rate: float) -> str:
    if 0 < rate < 0.005:
        return "<1%"
    if 0.995 < rate < 1:
        return ">99%"
    return f"{rate:.0%}"


def _new_axes(ax: Axes | None, size: tuple[float, float] | None = None) -> Axes:
    if ax is not None:
        return ax
    _, new = plt.subplots(figsize=size)
    return new


def _tidy(ax: Axes) -> None:
    """The parts of :data:`STYLE` that apply only to axes created under it."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color=_MUTED)


# ---------------------------------------------------------------- breach rate bars


def plot_breach_rates(
    rates: pd.DataFrame,
    *,
    by: str | Sequence[str] = "metric",
    ax: Axes | None = None,
    title: str | None = None,
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
        labels = _row_labels(frame, by) if len(frame) else pd.Series([], dtype=object)
        dupes = labels[labels.duplicated()].unique().tolist()
        if dupes:
            raise ValueError(
                f"rates has several rows for {dupes[0]!r}: pass rates grouped by {by!r} "
                "only, or name every group column in by="
            )
        rate = _float(frame["breach_rate"]) if len(frame) else np.array([])
        order = sorted(
            range(len(frame)),
            key=lambda i: (math.isnan(rate[i]), -rate[i] if not math.isnan(rate[i]) else 0.0,
                           _order_key(labels.iloc[i])),
        )
        height = max(2.5, 0.45 * len(frame) + 1.4)
        ax = _new_axes(ax, (8.0, height))
        _tidy(ax)
        noun = by if isinstance(by, str) else " and ".join(by)
        ax.set_title(title if title is not None else f"SLA breach rate by {noun.replace('_', ' ')}")
        if not len(frame):
            _note(ax, "no SLA targets")
            return ax
        frame = frame.iloc[order[::-1]].reset_index(drop=True)  # barh draws bottom-up
        labels = labels.iloc[order[::-1]].reset_index(drop=True)
        rate = _float(frame["breach_rate"])
        low = _float(frame["ci_low"]) if "ci_low" in frame else np.full(len(frame), np.nan)
        high = _float(frame["ci_high"]) if "ci_high" in frame else np.full(len(frame), np.nan)
        n = _completed(frame).to_numpy()
        y = np.arange(len(frame))
        shown = ~np.isnan(rate)
        ax.barh(y[shown], rate[shown], height=0.62, color=_BAR, zorder=2)
        has_ci = shown & ~np.isnan(low) & ~np.isnan(high)
        if has_ci.any():
            ax.errorbar(
                rate[has_ci], y[has_ci],
                xerr=[np.clip(rate[has_ci] - low[has_ci], 0, None),
                      np.clip(high[has_ci] - rate[has_ci], 0, None)],
                fmt="none", ecolor="#333333", elinewidth=1.1, capsize=3, zorder=3,
            )
        right = np.nanmax(np.where(np.isnan(high), rate, high)) if shown.any() else 0.0
        right = min(1.0, max(right, 0.05))
        for i in range(len(frame)):
            if shown[i]:
                end = high[i] if not np.isnan(high[i]) else rate[i]
                ax.annotate(
                    f"{_pct(rate[i])} (n={n[i]:,})", (end, y[i]), xytext=(5, 0),
                    textcoords="offset points", va="center", fontsize=9, color="#222222",
                )
            else:
                ax.annotate(
                    "no completed targets", (0, y[i]), xytext=(5, 0), textcoords="offset points",
                    va="center", fontsize=9, color=_MUTED, style="italic",
                )
        ax.set_yticks(y, labels.tolist())
        ax.tick_params(axis="y", length=0)
        ax.set_ylim(-0.6, len(frame) - 0.4)
        ax.set_xlim(0, right * 1.3)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.xaxis.grid(True)
        ax.set_xlabel("Breach rate: breached / completed targets (whiskers: 95% CI)")
        return ax


# ---------------------------------------------------------------- weekly trend


def _period_step(periods: pd.DatetimeIndex) -> pd.DateOffset | pd.Timedelta:
    if len(periods) >= 2 and pd.Series(periods).diff().median() >= pd.Timedelta(days=27):
        return pd.DateOffset(months=1)
    return pd.Timedelta(days=7)


def _incomplete_from(
    frame: pd.DataFrame, periods: pd.DatetimeIndex, step: Any, as_of: pd.Timestamp | None,
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


def plot_breach_trend(
    weekly_rates: pd.DataFrame,
    *,
    ax: Axes | None = None,
    incomplete_weeks: int = 2,
    as_of: object = None,
    title: str | None = None,
) -> Axes:
    """Breach rate per metric over time, with a shaded 95% CI and censored weeks marked.

    Censoring: a target applied recently that is still open is left out of its week's rate, so
    the newest weeks look better than they will. The chart hatches, from the first such week
    to the end, (a) the trailing run of weeks that still have active targets and (b) every week
    ending after ``as_of - incomplete_weeks`` weeks (``as_of`` defaults to the end of the last
    period), labelled "incomplete: targets still open".

    With many metrics the chart gets busy: for a slide, filter ``weekly_rates`` to the few
    metrics the story is about.

    Parameters
    ----------
    weekly_rates : DataFrame
        Output of ``breach_rates(targets, by="metric", freq="W")`` (``"M"`` works too):
        ``metric``, ``period`` (UTC bucket start), counts, ``breach_rate``, ``ci_low``,
        ``ci_high``.
    ax : Axes, optional
    incomplete_weeks : int
        Weeks before ``as_of`` whose targets may still be open.
    as_of : str, datetime or Timestamp, optional
        The data's as-of time (naive = UTC).
    title : str, optional

    Returns
    -------
    Axes

    Examples
    --------
    >>> weekly = breach_rates(targets, by="metric", freq="W")  # doctest: +SKIP
    >>> plot_breach_trend(weekly, as_of="2024-07-01")  # doctest: +SKIP
    """
    from .dates import to_utc

    with chart_style():
        ax = _new_axes(ax, (9.0, 4.8))
        _tidy(ax)
        ax.set_title(title if title is not None else "Weekly SLA breach rate by metric")
        if "period" not in weekly_rates.columns:
            raise ValueError("weekly_rates has no 'period' column: use breach_rates(freq='W')")
        frame = weekly_rates.reset_index(drop=True).copy()
        if not len(frame):
            _note(ax, "no SLA targets")
            return ax
        frame["_period"] = (
            pd.to_datetime(frame["period"], utc=True).dt.tz_localize(None).astype("datetime64[ns]")
        )
        frame["_label"] = metric_labels(frame) if "metric" in frame.columns else "All metrics"
        periods = pd.DatetimeIndex(sorted(frame["_period"].unique()))
        step = _period_step(periods)
        cutoff = to_utc(as_of, name="as_of")  # type: ignore[arg-type]
        start = _incomplete_from(
            frame, periods, step, cutoff.tz_localize(None) if cutoff is not None else None,
            incomplete_weeks,
        )
        labels = sorted(frame["_label"].unique(), key=_order_key)
        band = 0.18 if len(labels) <= 3 else 0.07  # many overlapping bands turn to mud
        top = 0.0
        for i, label in enumerate(labels):
            part = frame[frame["_label"] == label].sort_values("_period")
            part = part.set_index("_period").reindex(periods)  # gaps stay gaps
            x = part.index.to_numpy()
            rate = _float(part["breach_rate"])
            colour = _LINE_COLOURS[i % len(_LINE_COLOURS)]
            ax.plot(x, rate, color=colour, lw=1.8, marker="o", ms=3.5, label=label, zorder=3)
            if "ci_low" in part and "ci_high" in part:
                low, high = _float(part["ci_low"]), _float(part["ci_high"])
                ax.fill_between(x, low, high, color=colour, alpha=band, lw=0, zorder=2)
                top = max(top, np.nanmax(high, initial=0.0))
            top = max(top, np.nanmax(rate, initial=0.0))
        handles, names = ax.get_legend_handles_labels()
        if start is not None:
            start_x, end_x = mdates.date2num(start), mdates.date2num(periods[-1] + step)
            ax.axvspan(start_x, end_x, facecolor="#f2f2f2", edgecolor="#9a9a9a", hatch="///",
                       lw=0, zorder=1)
            ax.text(start_x, 1.0, " incomplete: targets still open", transform=ax.get_xaxis_transform(),
                    ha="left", va="bottom", fontsize=8.5, color=_MUTED, clip_on=False)
            handles.append(Patch(facecolor="#f2f2f2", edgecolor="#9a9a9a", hatch="///",
                                 label="incomplete: targets still open"))
            names.append("incomplete: targets still open")
        handles.append(Patch(facecolor="#999999", alpha=0.3, label="95% CI"))
        names.append("95% CI")
        ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_ylim(0, min(1.0, top * 1.1) if top > 0 else 1.0)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.yaxis.grid(True)
        ax.set_ylabel("Breach rate")
        _date_axis(ax, periods, step)
        return ax


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
        return [f"{label}\n{year}" if i == 0 or year != years[i - 1] else label
                for i, (label, year) in enumerate(zip(labels, years, strict=True))]


def _date_axis(ax: Axes, periods: pd.DatetimeIndex, step: Any) -> None:
    if isinstance(step, pd.DateOffset):
        months = max(1, len(periods))
        locator: mdates.DateLocator = mdates.MonthLocator(interval=max(1, math.ceil(months / 12)))
        ax.set_xlabel("Month the SLA applied (UTC)")
    else:
        weeks = max(1, len(periods))
        locator = mdates.WeekdayLocator(byweekday=mdates.MO, interval=max(1, math.ceil(weeks / 10)))
        ax.set_xlabel("Week the SLA applied (starting Monday, UTC)")
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(_DayMonthFormatter(monthly=isinstance(step, pd.DateOffset)))
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
        row_labels = _row_labels(frame, rows) if len(frame) else pd.Series([], dtype=object)
        col_labels = _row_labels(frame, cols) if len(frame) else pd.Series([], dtype=object)
        counts = pd.DataFrame({
            "row": row_labels, "col": col_labels,
            "breached": frame["breached"].fillna(0).astype("int64") if len(frame) else [],
            "completed": _completed(frame) if len(frame) else [],
        })
        row_order = sorted(counts["row"].unique(), key=_order_key)
        col_order = sorted(counts["col"].unique(), key=str)
        grid_b = counts.pivot_table(index="row", columns="col", values="breached",
                                    aggfunc="sum").reindex(index=row_order, columns=col_order)
        grid_n = counts.pivot_table(index="row", columns="col", values="completed",
                                    aggfunc="sum").reindex(index=row_order, columns=col_order)
        size = (max(6.0, 1.55 * len(col_order) + 3.2), max(3.0, 0.55 * len(row_order) + 1.8))
        ax = _new_axes(ax, size)
        noun = f"{rows.replace('_', ' ')} and {cols.replace('_', ' ')}"
        ax.set_title(title if title is not None else f"SLA breach rate by {noun}")
        if not len(frame):
            _tidy(ax)
            _note(ax, "no SLA targets")
            return ax
        n = grid_n.to_numpy(dtype="float64", na_value=np.nan)
        b = grid_b.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(n > 0, b / n, np.nan)
        finite = value[np.isfinite(value)]
        vmax = max(0.1, math.ceil(finite.max() * 10) / 10) if finite.size else 1.0
        cmap = mpl.colormaps["YlOrRd"].with_extremes(bad=_MISSING)
        norm = mpl.colors.Normalize(vmin=0.0, vmax=min(1.0, vmax))
        image = ax.imshow(np.ma.masked_invalid(value), cmap=cmap, norm=norm, aspect="auto")
        for (r, c), v in np.ndenumerate(value):
            if np.isfinite(v):
                red, green, blue, _ = cmap(norm(v))
                dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.55
                text = f"{_pct(v)} (n={int(n[r, c]):,})"
                ax.text(c, r, text, ha="center", va="center", fontsize=9,
                        color="white" if dark else "#222222")
            else:
                text = "no completed targets" if n[r, c] == 0 else "no targets"
                ax.text(c, r, text, ha="center", va="center", fontsize=7.5, color=_MUTED,
                        style="italic")
        ax.set_xticks(range(len(col_order)), [str(c) for c in col_order],
                      rotation=25 if len(col_order) > 3 else 0,
                      ha="right" if len(col_order) > 3 else "center")
        ax.set_yticks(range(len(row_order)), [str(r) for r in row_order])
        ax.tick_params(length=0)
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


# ---------------------------------------------------------------- fulfilment vs target

_RATIO_FLOOR = 0.01
# ``vert=False`` became ``orientation="horizontal"`` in matplotlib 3.10.
_HORIZONTAL: dict[str, Any] = (
    {"orientation": "horizontal"}
    if tuple(int(p) for p in mpl.__version__.split(".")[:2]) >= (3, 10)
    else {"vert": False}
)


def plot_fulfilment_ratio(
    targets: pd.DataFrame,
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Time to fulfilment relative to the target, per metric (box plot, log scale).

    Only fulfilled targets with a known ratio count (``fulfilled_at`` set and
    ``elapsed_ratio`` > 0; ``elapsed_minutes / target_minutes`` when the ratio column is
    absent). Boxes span the quartiles, whiskers the 5th to 95th percentiles; ratios below
    1% of the target are drawn at 1%. The dashed line at 1.0 is the target, and the share of
    targets past it is written on the right.

    Parameters
    ----------
    targets : DataFrame
        Output of ``sla_targets(events)``.
    ax : Axes, optional
    title : str, optional

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
            ratio = _float(frame["elapsed_ratio"])
        elif {"elapsed_minutes", "target_minutes"} <= set(frame.columns):
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = _float(frame["elapsed_minutes"]) / _float(frame["target_minutes"])
        else:
            raise ValueError("targets needs 'elapsed_ratio' (or elapsed_minutes and target_minutes)")
        keep = np.isfinite(ratio) & (ratio > 0)
        if "fulfilled_at" in frame.columns:
            keep &= frame["fulfilled_at"].notna().to_numpy()
        labels = metric_labels(frame) if len(frame) else pd.Series([], dtype=object)
        data = pd.DataFrame({"label": labels[keep].to_numpy(), "ratio": ratio[keep]})
        groups = sorted(data["label"].unique(), key=_order_key, reverse=True)  # first on top
        ax = _new_axes(ax, (8.0, max(2.8, 0.5 * len(groups) + 1.6)))
        _tidy(ax)
        ax.set_title(title if title is not None else "Time to fulfilment relative to SLA target")
        if not groups:
            _note(ax, "no fulfilled SLA targets with elapsed time")
            return ax
        values = [np.clip(data.loc[data["label"] == g, "ratio"].to_numpy(), _RATIO_FLOOR, None)
                  for g in groups]
        ax.boxplot(
            values, **_HORIZONTAL, whis=(5, 95), showfliers=False, widths=0.55,
            patch_artist=True, manage_ticks=False,
            boxprops={"facecolor": "#cfe3f1", "edgecolor": _BAR},
            medianprops={"color": _BAR, "linewidth": 2},
            whiskerprops={"color": _BAR}, capprops={"color": _BAR},
        )
        ax.set_xscale("log")
        ax.axvline(1.0, color=_TARGET, ls="--", lw=1.5, zorder=1)
        ax.text(1.0, 1.0, "target", transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", color=_TARGET, fontsize=9, fontweight="bold")
        ax.set_yticks(range(1, len(groups) + 1),
                      [f"{g} (n={len(v):,})" for g, v in zip(groups, values, strict=True)])
        ax.tick_params(axis="y", length=0)
        over = ax.get_yaxis_transform()
        for i, v in enumerate(values, start=1):
            ax.text(1.01, i, f"{np.mean(v > 1.0):.0%} over target", transform=over, va="center",
                    fontsize=8.5, color=_MUTED)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}×"))
        ax.xaxis.grid(True, which="major")
        ax.set_xlabel("Time to fulfilment ÷ SLA target (log scale; boxes: quartiles, "
                      "whiskers: 5th-95th pct)")
        return ax


# ---------------------------------------------------------------- export

_FORMATS = ("png", "svg", "pdf")
_METADATA: dict[str, dict[str, Any]] = {
    "png": {"Software": None},
    "svg": {"Date": None},
    "pdf": {"CreationDate": None, "ModDate": None},
}


def save_figure(
    fig_or_ax: Figure | Axes,
    path: str | Path,
    formats: str | Iterable[str] = ("png", "svg"),
    *,
    dpi: int = 150,
) -> list[Path]:
    """Write a figure as PNG, SVG and/or PDF with a tight bounding box.

    ``path`` may end in one of the formats' suffixes or none (``charts/breach`` and
    ``charts/breach.png`` both write ``charts/breach.png`` and ``charts/breach.svg``).
    Parent folders are created. Files carry no creation date, so re-running gives the same
    bytes for the same figure.

    Parameters
    ----------
    fig_or_ax : Figure or Axes
    path : str or Path
    formats : str or iterable of {"png", "svg", "pdf"}
    dpi : int
        Resolution of raster output.

    Returns
    -------
    list of Path
        The files written, in the order of ``formats``.

    Examples
    --------
    >>> save_figure(plot_breach_rates(rates), "out/breach")  # doctest: +SKIP
    [PosixPath('out/breach.png'), PosixPath('out/breach.svg')]
    """
    fmts = [formats] if isinstance(formats, str) else list(formats)
    fmts = [f.lower().lstrip(".") for f in fmts]
    unknown = [f for f in fmts if f not in _FORMATS]
    if unknown or not fmts:
        raise ValueError(f"formats must be some of {_FORMATS}, got {formats!r}")
    figure: Any = fig_or_ax if isinstance(fig_or_ax, Figure | SubFigure) else fig_or_ax.figure
    while isinstance(figure, SubFigure):
        figure = figure.figure
    target = Path(path)
    if target.suffix.lower().lstrip(".") in _FORMATS:
        target = target.with_suffix("")
    target.parent.mkdir(parents=True, exist_ok=True)
    written = []
    with chart_style():
        for fmt in dict.fromkeys(fmts):
            out = target.with_name(f"{target.name}.{fmt}")
            figure.savefig(out, format=fmt, dpi=dpi, bbox_inches="tight",
                           metadata=_METADATA[fmt])
            logger.debug("wrote %s", out)
            written.append(out)
    return written

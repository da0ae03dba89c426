"""Deck-ready matplotlib charts of SLA breach rates.

Every ``plot_*`` function takes the frames computed by :mod:`zdevents.analysis.sla` (it never computes
them), draws on ``ax`` (a new figure when ``ax`` is None) and returns the Axes. Nothing here
calls ``plt.show()`` or changes matplotlib's global settings: each function draws inside
:func:`chart_style`, which sets the keys of :data:`STYLE` and restores
only those (backend, interactive mode and every other setting are left alone). Export with
:func:`save_figure`.

Metric names are shown in the analyst's words (:func:`zdevents.analysis.labels.metric_label`): ``reply_time`` instance 1
is "First reply" and later instances are "Next reply" when the frame says which (a
``metric_label``/``label``/``reply_kind`` column, or ``instance_id``).
"""

from __future__ import annotations

import logging
import math
import textwrap
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
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator, PercentFormatter

from ..analysis.labels import METRIC_LABELS, metric_label, metric_labels, metric_sort_key

__all__ = [
    "METRIC_COLOURS",
    "METRIC_LABELS",
    "OKABE_ITO",
    "STYLE",
    "chart_style",
    "chart_subtitle",
    "metric_colour",
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

_COUNT_COLUMNS = ("breached", "achieved")

#: One colour per metric, the same in every chart (Okabe & Ito's palette, plus Tol's wine
#: and a grey, so that the nine labels stay apart). Related metrics get related hues: the
#: two replies are blues, the two update metrics orange and vermillion.
METRIC_COLOURS: dict[str, str] = {
    "First reply": "#0072B2",
    "Next reply": "#56B4E9",
    "Reply": "#0072B2",
    "Periodic update": "#E69F00",
    "Pausable update": "#D55E00",
    "Requester wait": "#009E73",
    "Agent work": "#CC79A7",
    "Resolution": "#882255",
    "Group ownership": "#7f7f7f",
}
_OTHER_METRIC = "#4d4d4d"
_SUBTITLE = "#555555"


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


# ---------------------------------------------------------------- colours and headings


def metric_colour(label: str) -> str:
    """The fixed colour of a metric's human label (:data:`METRIC_COLOURS`); dark grey if unknown.

    Examples
    --------
    >>> metric_colour("First reply")
    '#0072B2'
    """
    return METRIC_COLOURS.get(label, _OTHER_METRIC)


def _day(value: object) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def chart_subtitle(
    *,
    account: str | None = None,
    since: object = None,
    until: object = None,
    as_of: object = None,
    targets: pd.DataFrame | None = None,
) -> str:
    """The line under a chart's title: account, period covered and the data's as-of time.

    The period is ``[since, until)`` when given (``until`` is exclusive, so the last day
    shown is the day before it); otherwise the span of ``targets["applied_at"]``.
    ``as_of`` defaults to ``targets.attrs["zdevents_as_of"]``. Parts that are unknown are
    left out.

    Examples
    --------
    >>> chart_subtitle(account="acme", since="2024-01-01", until="2024-07-01",
    ...                as_of="2024-07-01 06:00")
    'acme · SLAs applied 2024-01-01 to 2024-06-30 · data as of 2024-07-01 06:00 UTC'
    """
    from ..dates import to_utc

    parts = []
    if account:
        parts.append(str(account))
    start = to_utc(since, name="since") if since is not None else None
    end = to_utc(until, name="until") if until is not None else None
    if (start is None or end is None) and targets is not None and "applied_at" in targets:
        applied = pd.to_datetime(targets["applied_at"], utc=True).dropna()
        if len(applied):
            start = start if start is not None else applied.min()
            last = applied.max()
            end = end if end is not None else last + pd.Timedelta(milliseconds=1)
    if start is not None and end is not None:
        parts.append(f"SLAs applied {_day(start)} to {_day(end - pd.Timedelta(milliseconds=1))}")
    elif start is not None:
        parts.append(f"SLAs applied from {_day(start)}")
    elif end is not None:
        parts.append(f"SLAs applied before {_day(end)}")
    if as_of is None and targets is not None:
        as_of = targets.attrs.get("zdevents_as_of")
    if as_of is not None:
        stamp = to_utc(as_of, name="as_of")
        parts.append(f"data as of {stamp.strftime('%Y-%m-%d %H:%M')} UTC")
    return " · ".join(parts)


def _auto_subtitle(frame: pd.DataFrame, subtitle: str | None, **known: object) -> str:
    """``subtitle`` as given, else what the frame itself says (period, as-of)."""
    if subtitle is not None:
        return subtitle
    as_of = known.get("as_of")
    if as_of is None:
        as_of = frame.attrs.get("zdevents_as_of")
    return chart_subtitle(
        targets=frame if "applied_at" in frame else None,
        as_of=as_of,
        since=known.get("since"),
        until=known.get("until"),
    )


# Points above the axes: the subtitle's baseline, and the title's pad when there is one.
_SUBTITLE_RAISE = 14
_TITLE_PAD_WITH_SUBTITLE = 30


def _heading(ax: Axes, title: str, subtitle: str) -> None:
    """A bold title with a grey subtitle under it, both left-aligned on the axes."""
    ax.set_title(title, loc="left", pad=_TITLE_PAD_WITH_SUBTITLE if subtitle else None)
    if subtitle:
        ax.annotate(
            subtitle,
            xy=(0, 1),
            xycoords="axes fraction",
            xytext=(0, _SUBTITLE_RAISE),
            textcoords="offset points",
            ha="left",
            va="bottom",
            fontsize=9,
            color=_SUBTITLE,
            annotation_clip=False,
        )


# ---------------------------------------------------------------- labels


def _present(value: object) -> bool:
    if value is None:
        return False
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):
        return True


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
            key=lambda i: (
                math.isnan(rate[i]),
                -rate[i] if not math.isnan(rate[i]) else 0.0,
                metric_sort_key(labels.iloc[i]),
            ),
        )
        height = max(2.5, 0.45 * len(frame) + 1.4)
        ax = _new_axes(ax, (8.0, height))
        _tidy(ax)
        noun = by if isinstance(by, str) else " and ".join(by)
        _heading(
            ax,
            title if title is not None else f"SLA breach rate by {noun.replace('_', ' ')}",
            _auto_subtitle(rates, subtitle),
        )
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
        keys = [by] if isinstance(by, str) else list(by)
        if "metric" in keys:  # each metric in its own colour, as in every other chart
            colours = np.array([metric_colour(m) for m in metric_labels(frame)])
        elif "metric_label" in keys:  # by="metric_label": the labels name the colours
            colours = np.array([metric_colour(str(m)) for m in frame["metric_label"]])
        else:
            colours = np.array([_BAR] * len(frame))
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
                    f"{_pct(rate[i])} (n={n[i]:,})",
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
                    color=_MUTED,
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
    from ..dates import to_utc

    if "period" not in rates.columns:
        raise ValueError("rates has no 'period' column: use breach_rates(..., freq='W' or 'M')")
    if freq is not None and freq not in _PERIODS:
        raise ValueError(f'freq must be "W" or "M", got {freq!r}')
    if as_of is None:
        as_of = rates.attrs.get("zdevents_as_of")
    with chart_style():
        frame = rates.reset_index(drop=True).copy()
        if not len(frame):
            ax = _new_axes(ax, (9.0, 4.8))
            _tidy(ax)
            word = _PERIODS[freq or "W"][0]
            _heading(
                ax,
                title if title is not None else f"{word} SLA breach rate by metric",
                _auto_subtitle(rates, subtitle, as_of=as_of),
            )
            _note(ax, "no SLA targets")
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
        heading = title if title is not None else f"{word} SLA breach rate by metric"
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
            _tidy(panel)
            part = frame[frame["_label"] == label].sort_values("_period")
            part = part.set_index("_period").reindex(periods)  # gaps stay gaps
            x = part.index.to_numpy()
            rate = _float(part["breach_rate"])
            colour = metric_colour(label)
            if start is not None:
                panel.axvspan(
                    mdates.date2num(start), mdates.date2num(periods[-1] + step), zorder=1, **_HATCH
                )
            if "ci_low" in part and "ci_high" in part:
                low, high = _float(part["ci_low"]), _float(part["ci_high"])
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
            _heading(first, heading, subtitle)
            first.set_xlabel(axis_text)
            first.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
            return first
        _panel_layout(container, heading, subtitle, axis_text, handles)
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
        0.55 / width, 1 - 0.45 / height, subtitle, ha="left", va="top", fontsize=9, color=_SUBTITLE
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
        row_labels = _row_labels(frame, rows) if len(frame) else pd.Series([], dtype=object)
        col_labels = _row_labels(frame, cols) if len(frame) else pd.Series([], dtype=object)
        counts = pd.DataFrame(
            {
                "row": row_labels,
                "col": col_labels,
                "breached": frame["breached"].fillna(0).astype("int64") if len(frame) else [],
                "completed": _completed(frame) if len(frame) else [],
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
        ax = _new_axes(ax, size)
        noun = f"{rows.replace('_', ' ')} and {cols.replace('_', ' ')}"
        _heading(
            ax,
            title if title is not None else f"SLA breach rate by {noun}",
            _auto_subtitle(rates, subtitle),
        )
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
                    c, r, text, ha="center", va="center", fontsize=7.5, color=_MUTED, style="italic"
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
            ratio = _float(frame["elapsed_ratio"])
        elif {"elapsed_minutes", "target_minutes"} <= set(frame.columns):
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = _float(frame["elapsed_minutes"]) / _float(frame["target_minutes"])
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
        ax = _new_axes(ax, (8.0, max(3.2, 0.5 * len(groups) + 2.2)))
        _tidy(ax)
        _heading(
            ax,
            title if title is not None else "Time to fulfilment relative to SLA target",
            _auto_subtitle(targets, subtitle),
        )
        if not groups:
            _note(ax, "no fulfilled SLA targets with elapsed time")
            return ax
        values = [
            np.clip(data.loc[data["label"] == g, "ratio"].to_numpy(), _RATIO_FLOOR, None)
            for g in groups
        ]
        boxes = ax.boxplot(
            values,
            **_HORIZONTAL,
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
        ax.axvline(1.0, color=_TARGET, ls="--", lw=1.5, zorder=1)
        ax.text(
            1.0,
            1.0,
            "target",
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            color=_TARGET,
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
                color=_MUTED,
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
        note = (
            f"n = fulfilled targets with a measured time, of the completed (breached + "
            f"achieved) targets that the breach-rate chart counts: {counted:,} of "
            f"{all_completed:,} in all"
        )
        note += f"; not shown: {' and '.join(missing)}." if missing else "."
        note += (
            ' "Over target" is the share fulfilled after the target time, in the '
            "target's own clock (business hours where the policy uses them)."
        )
        note = "\n".join(textwrap.wrap(note, 110, break_on_hyphens=False))
        ax.annotate(
            note,
            xy=(0, 0),
            xycoords="axes fraction",
            xytext=(0, -44),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize=8,
            color=_SUBTITLE,
            annotation_clip=False,
        )
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
            figure.savefig(out, format=fmt, dpi=dpi, bbox_inches="tight", metadata=_METADATA[fmt])
            logger.debug("wrote %s", out)
            written.append(out)
    return written

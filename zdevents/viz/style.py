"""The one look of every chart: palette, metric colours, :data:`STYLE`, headings, export.

:func:`chart_style` draws with :data:`STYLE` and restores only its keys; every chart's
heading is a bold title with the grey :func:`chart_subtitle` under it; :func:`save_figure`
is the one export helper (PNG, SVG, PDF without creation dates). The small drawing helpers
(:func:`new_axes`, :func:`tidy`, :func:`note`, :func:`pct`) are shared by every chart module.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import pandas as pd
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

__all__ = [
    "BAR_COLOUR",
    "HORIZONTAL",
    "METRIC_COLOURS",
    "MISSING_COLOUR",
    "MUTED",
    "OKABE_ITO",
    "STYLE",
    "SUBTITLE_COLOUR",
    "TARGET_COLOUR",
    "auto_subtitle",
    "chart_style",
    "chart_subtitle",
    "heading",
    "metric_colour",
    "new_axes",
    "note",
    "pct",
    "save_figure",
    "tidy",
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
#: Bars of a chart that is not by metric.
BAR_COLOUR = OKABE_ITO[0]
#: The target line (1.0x the SLA target).
TARGET_COLOUR = OKABE_ITO[3]
#: Notes and secondary text.
MUTED = "#6b6b6b"
#: Cells with nothing to show.
MISSING_COLOUR = "#d9d9d9"

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
#: The grey line under a chart's title.
SUBTITLE_COLOUR = "#555555"


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


def auto_subtitle(frame: pd.DataFrame, subtitle: str | None, **known: object) -> str:
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


def heading(ax: Axes, title: str, subtitle: str) -> None:
    """A bold title with a grey subtitle under it, both left-aligned on the axes (every chart's
    heading)."""
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
            color=SUBTITLE_COLOUR,
            annotation_clip=False,
        )


def pct(rate: float) -> str:
    """A rate as a whole percentage for a chart label; "<1%" and ">99%" rather than 0% or 100%."""
    if 0 < rate < 0.005:
        return "<1%"
    if 0.995 < rate < 1:
        return ">99%"
    return f"{rate:.0%}"


def new_axes(ax: Axes | None, size: tuple[float, float] | None = None) -> Axes:
    """``ax`` itself, or the Axes of a new figure of ``size`` inches when ``ax`` is None."""
    if ax is not None:
        return ax
    _, new = plt.subplots(figsize=size)
    return new


def tidy(ax: Axes) -> None:
    """The parts of :data:`STYLE` that apply only to axes created under it."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def note(ax: Axes, text: str) -> None:
    """A grey note in the middle of the axes (for a chart with nothing to draw)."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color=MUTED)


#: ``boxplot`` keywords for horizontal boxes (``vert=False`` became
#: ``orientation="horizontal"`` in matplotlib 3.10).
HORIZONTAL: dict[str, Any] = (
    {"orientation": "horizontal"}
    if tuple(int(p) for p in mpl.__version__.split(".")[:2]) >= (3, 10)
    else {"vert": False}
)


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

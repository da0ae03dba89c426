"""The PowerPoint deck of the SLA story, drawn from a frame of targets: :func:`write_deck`.

The deck holds a title slide (account, period, as-of time, table version when known), one
slide per chart with a one-sentence takeaway computed from the data, a definitions slide
and an appendix table. Charts are embedded the way PowerPoint itself stores vector
pictures: an SVG (drawn by PowerPoint 2016 / Microsoft 365 and later) with a PNG at twice
the display resolution as the fallback for viewers that cannot draw SVG.

Written with `python-pptx <https://python-pptx.readthedocs.io>`_.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

from ..analysis import insights
from ..dates import TimeLike, time_range, to_utc
from ..files import write_atomic
from . import charts, insight_charts
from .takeaways import (
    funnel_takeaway,
    in_metric_order,
    lateness_takeaway,
    pairing_takeaway,
    pct,
    rates_takeaway,
    trend_takeaway,
)

__all__ = ["DECK_TITLES", "Slide", "deck_slides", "write_deck"]

logger = logging.getLogger(__name__)

_AS_OF_ATTR = "zdevents_as_of"
_VERSION_ATTR = "zdevents_table_version"
_SVG_EXT_URI = "{96DAC541-7B7A-43D3-8B79-37D633B846F1}"
_SVG_NS = "http://schemas.microsoft.com/office/drawing/2016/SVG/main"
_DISPLAY_DPI = 96
_WIDE = (13.333, 7.5)  # inches, 16:9

#: Titles of the chart slides, in deck order.
DECK_TITLES: tuple[str, ...] = (
    "Breach rate by metric",
    "Is it getting better?",
    "How late are breaches?",
    "Periodic vs pausable update",
    "Fair league table: groups",
)


@dataclass(frozen=True)
class Slide:
    """One chart slide: its title, the takeaway sentence and a function that draws it."""

    title: str
    takeaway: str
    draw: Callable[[], Axes]


# ---------------------------------------------------------------- the slides


_TREND_WEEKS = 12
_TREND_LINES = 3


def _trend_focus(weekly: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """The weekly rates a slide can show: the last weeks, and the metrics the story is about.

    Metrics whose verdict is "better" or "worse" first, then the busiest ones, three at most.
    """
    if weekly.empty:
        return weekly
    moved = verdicts.loc[verdicts["verdict"].isin(["better", "worse"]), "metric_label"].tolist()
    busiest = weekly.groupby("metric_label")["targets"].sum().sort_values(ascending=False)
    chosen = list(dict.fromkeys([*moved, *busiest.index]))[:_TREND_LINES]
    start = weekly["period"].max() - pd.Timedelta(weeks=_TREND_WEEKS - 1)
    keep = weekly["metric_label"].isin(chosen) & (weekly["period"] >= start)
    return weekly[keep].reset_index(drop=True)


def _resolve_as_of(targets: pd.DataFrame, as_of: TimeLike) -> pd.Timestamp:
    value = as_of if as_of is not None else targets.attrs.get(_AS_OF_ATTR)
    ts = to_utc(value, name="as_of") if value is not None else None
    if ts is None:
        raise ValueError("as_of is unknown: pass targets from zd.sla_targets (they carry it)")
    return ts


def _unit_column(targets: pd.DataFrame) -> str | None:
    return next(
        (
            c
            for c in ("group_name", "group_id")
            if c in targets.columns and targets[c].notna().any()
        ),
        None,
    )


def deck_slides(
    targets: pd.DataFrame,
    *,
    as_of: TimeLike = None,
    k: int = 4,
    min_targets: int = 30,
    subtitle: str | None = None,
) -> tuple[list[Slide], dict[str, pd.DataFrame]]:
    """The chart slides of the deck and the tables behind them, without writing anything.

    Parameters
    ----------
    targets : pandas.DataFrame
        Output of :func:`zdevents.sla_targets`, optionally with ticket attributes
        (``group_name`` or ``group_id`` give the league-table slide).
    as_of : time, optional
        Default: ``targets.attrs["zdevents_as_of"]``.
    k : int, default 4
        Weeks of the trend verdict's baseline.
    min_targets : int, default 30
        Completed targets a group needs to be ranked in the league table.
    subtitle : str, optional
        The grey line under every chart's title (:func:`zdevents.chart_subtitle`); by
        default the period the targets span and the as-of time.

    Returns
    -------
    (list of Slide, dict of str to DataFrame)
        The slides (titles :data:`DECK_TITLES`; the league table only when the targets
        have a group column) and the tables ``by_metric``, ``verdicts``, ``lateness``,
        ``pairing`` and ``funnel``.

    Examples
    --------
    >>> slides, tables = deck_slides(targets)  # doctest: +SKIP
    >>> [s.takeaway for s in slides]  # doctest: +SKIP
    """
    from ..analysis.sla import breach_rates

    cutoff = _resolve_as_of(targets, as_of)
    heading = (
        subtitle if subtitle is not None else charts.chart_subtitle(as_of=cutoff, targets=targets)
    )
    by_metric = breach_rates(targets, by=["metric_label"])
    weekly = breach_rates(targets, by=["metric", "metric_label"], freq="W")
    verdicts = insights.trend_verdicts(targets, by="metric_label", k=k, as_of=cutoff)
    late = insights.lateness(targets, as_of=cutoff)
    late_table = insights.lateness_summary(late, by="metric_label")
    pairs = insights.update_pairs(targets)
    by_policy = insights.update_pairing_summary(pairs, by="policy_title")
    overall = insights.update_pairing_summary(pairs, by=None)
    tables = {
        "by_metric": by_metric,
        "verdicts": verdicts,
        "lateness": late_table,
        "pairing": by_policy,
    }
    slides = [
        Slide(
            DECK_TITLES[0],
            rates_takeaway(by_metric),
            lambda: charts.plot_breach_rates(
                by_metric, by="metric_label", title="SLA breach rate by metric", subtitle=heading
            ),
        ),
        Slide(
            DECK_TITLES[1],
            trend_takeaway(verdicts),
            lambda: charts.plot_breach_trend(
                _trend_focus(weekly, verdicts), as_of=cutoff, incomplete_weeks=0, subtitle=heading
            ),
        ),
        Slide(
            DECK_TITLES[2],
            lateness_takeaway(late_table),
            lambda: insight_charts.plot_lateness(late, subtitle=heading),
        ),
        Slide(
            DECK_TITLES[3],
            pairing_takeaway(overall),
            lambda: insight_charts.plot_update_pairing(by_policy, subtitle=heading),
        ),
    ]
    unit = _unit_column(targets)
    if unit is not None:
        funnel = insights.funnel_table(targets, by=unit, min_targets=min_targets)
        tables["funnel"] = funnel
        slides.append(
            Slide(
                DECK_TITLES[4],
                funnel_takeaway(funnel, unit),
                lambda: insight_charts.plot_funnel(funnel, by=unit, subtitle=heading),
            )
        )
    return slides, tables


DEFINITIONS: tuple[tuple[str, str], ...] = (
    (
        "SLA target",
        "One (ticket, metric, instance) an SLA policy applied to; the target in "
        "force is the last one applied at or before fulfilment.",
    ),
    (
        "Breach rate",
        "breached / (breached + achieved). A breach counts when it happens at or "
        "before the fulfilment and at or before the as-of time.",
    ),
    (
        "Censoring",
        "Targets still open (active) are left out of rates, so the newest weeks look "
        "better than they will end up; trend verdicts use only complete weeks (ended, nothing "
        "open).",
    ),
    (
        "Intervals",
        "Breach rates carry 95% Wilson score intervals. Trend verdicts: two-sided "
        "two-proportion z-test, latest complete week vs the previous weeks pooled, p < 0.05.",
    ),
    (
        "League table",
        "Funnel plot: 95% and 99.8% control limits p0 ± z·sqrt(p0(1-p0)/n) around "
        "the overall rate; units with few targets are not ranked.",
    ),
    (
        "Lateness",
        "Calendar time from the breach to the fulfilment; open targets up to the "
        "as-of time (a lower bound).",
    ),
)


# ---------------------------------------------------------------- writing pptx


def _png(fig: Any, dpi: float) -> tuple[bytes, tuple[int, int]]:
    from PIL import Image

    out = io.BytesIO()
    fig.savefig(out, format="png", bbox_inches="tight", metadata={"Software": None}, dpi=dpi)
    with Image.open(io.BytesIO(out.getvalue())) as image:
        return out.getvalue(), image.size


def _figure_bytes(ax: Axes, box: tuple[float, float]) -> tuple[bytes, bytes, tuple[float, float]]:
    """SVG, PNG, and the size (inches) the chart takes when fitted into ``box``.

    The PNG has at least twice the display resolution at that size: it is drawn again,
    finer, when the chart is shown larger than drawn.
    """
    fig = ax.figure
    try:
        with charts.chart_style():
            svg = io.BytesIO()
            fig.savefig(svg, format="svg", bbox_inches="tight", metadata={"Date": None})
            dpi = 2 * _DISPLAY_DPI
            png, (w, h) = _png(fig, dpi)
            scale = min(box[0] * dpi / w, box[1] * dpi / h)
            if scale > 1.0:  # shown larger than drawn: draw the PNG finer (2% to spare)
                png, (w, h) = _png(fig, dpi * scale * 1.02)
    finally:
        plt.close(fig)
    # Fit the final PNG's aspect into the box, never wider than half its pixels.
    width = min(box[0], box[1] * w / h, w / dpi)
    return png, svg.getvalue(), (width, width * h / w)


def _add_picture(
    slide: Any,
    png: bytes,
    svg: bytes,
    box: tuple[float, float, float, float],
    size: tuple[float, float],
) -> Any:
    """Place the chart (``size`` inches) centred in ``box``: an SVG PowerPoint draws, with
    the PNG as the fallback (``a:blip`` with an ``asvg:svgBlip`` extension, as PowerPoint
    stores pictures inserted from SVG files)."""
    from lxml import etree
    from pptx.opc.constants import RELATIONSHIP_TYPE
    from pptx.opc.package import Part
    from pptx.oxml.ns import qn
    from pptx.util import Inches

    left, top, width, _ = box
    w, h = size
    picture = slide.shapes.add_picture(
        io.BytesIO(png), Inches(left + (width - w) / 2), Inches(top), Inches(w), Inches(h)
    )
    package = slide.part.package
    part = Part(package.next_partname("/ppt/media/image%d.svg"), "image/svg+xml", package, svg)
    rel_id = slide.part.relate_to(part, RELATIONSHIP_TYPE.IMAGE)
    blip = picture._element.blipFill.find(qn("a:blip"))
    ext_list = etree.SubElement(blip, qn("a:extLst"))
    ext = etree.SubElement(ext_list, qn("a:ext"), uri=_SVG_EXT_URI)
    svg_blip = etree.SubElement(ext, f"{{{_SVG_NS}}}svgBlip", nsmap={"asvg": _SVG_NS})
    svg_blip.set(qn("r:embed"), rel_id)
    return picture


def _text(
    slide: Any,
    text: str,
    box: tuple[float, float, float, float],
    size: int,
    bold: bool = False,
    colour: str = "333333",
) -> Any:
    from pptx.dml.color import RGBColor
    from pptx.util import Inches, Pt

    shape = slide.shapes.add_textbox(*(Inches(v) for v in box))
    frame = shape.text_frame
    frame.word_wrap = True
    run = frame.paragraphs[0].add_run()
    run.text = text
    run.font.size = Pt(size)
    run.font.bold = bold
    run.font.color.rgb = RGBColor.from_string(colour)
    return shape


def _title(slide: Any, text: str) -> None:
    """The slide's title across the wide slide (the default layouts are 4:3)."""
    from pptx.util import Inches, Pt

    title = slide.shapes.title
    title.left, title.top, title.width, title.height = (
        Inches(0.6),
        Inches(0.3),
        Inches(12.1),
        Inches(0.9),
    )
    title.text = text
    paragraph = title.text_frame.paragraphs[0]
    paragraph.font.size = Pt(30)
    paragraph.font.bold = True


def _period_text(targets: pd.DataFrame, since: Any, until: Any) -> str:
    start, end = time_range(since, until)
    applied = pd.to_datetime(targets["applied_at"]) if len(targets) else pd.Series([], dtype=object)
    first = start if start is not None else (applied.min() if len(applied) else None)
    last = (
        (end - pd.Timedelta(milliseconds=1))
        if end is not None
        else (applied.max() if len(applied) else None)
    )
    if first is None or last is None or pd.isna(first) or pd.isna(last):
        return "no targets"
    return f"{first:%d %b %Y} - {last:%d %b %Y}"


def _appendix_rows(tables: Mapping[str, pd.DataFrame]) -> list[list[str]]:
    rates = in_metric_order(tables["by_metric"])  # First reply ... Resolution, as elsewhere
    verdicts = tables["verdicts"].set_index("metric_label")
    late = tables["lateness"].set_index("metric_label")
    rows = [
        [
            "Metric",
            "Completed",
            "Breached",
            "Breach rate (95% CI)",
            "Active",
            "Latest week",
            "Median late",
        ]
    ]
    for r in rates.itertuples():
        label = r.metric_label
        verdict = verdicts["verdict"].get(label, "not enough data")
        median = late["median_minutes"].get(label, float("nan"))
        rows.append(
            [
                str(label),
                f"{int(r.breached + r.achieved):,}",
                f"{int(r.breached):,}",
                f"{pct(r.breach_rate)} ({pct(r.ci_low)}-{pct(r.ci_high)})",
                f"{int(r.active):,}",
                str(verdict),
                insight_charts.format_minutes(median) if pd.notna(median) else "-",
            ]
        )
    return rows


def _write_deck(
    path: Path,
    targets: pd.DataFrame,
    *,
    account: str,
    as_of: pd.Timestamp,
    period: str,
    subtitle: str,
    table_version: object,
    k: int,
    min_targets: int,
) -> Path:
    from pptx import Presentation
    from pptx.util import Inches, Pt

    slides, tables = deck_slides(
        targets, as_of=as_of, k=k, min_targets=min_targets, subtitle=subtitle
    )
    deck = Presentation()
    deck.slide_width, deck.slide_height = Inches(_WIDE[0]), Inches(_WIDE[1])
    title_layout, title_only = deck.slide_layouts[0], deck.slide_layouts[5]

    first = deck.slides.add_slide(title_layout)
    heading, details = first.shapes.title, first.placeholders[1]
    heading.left, heading.top, heading.width, heading.height = (
        Inches(0.8),
        Inches(2.2),
        Inches(11.7),
        Inches(1.5),
    )
    details.left, details.top, details.width, details.height = (
        Inches(0.8),
        Inches(3.9),
        Inches(11.7),
        Inches(1.8),
    )
    heading.text = f"SLA breaches: {account}"
    lines = [f"Targets applied {period}", f"Data as of {as_of:%Y-%m-%d %H:%M} UTC"]
    if table_version is not None:
        lines.append(f"Table version {table_version}")
    details.text = "\n".join(lines)

    for item in slides:
        slide = deck.slides.add_slide(title_only)
        _title(slide, item.title)
        _text(slide, item.takeaway, (0.6, 1.25, 12.1, 0.8), 16, colour="1a1a1a")
        png, svg, size = _figure_bytes(item.draw(), (12.1, 5.2))
        _add_picture(slide, png, svg, (0.6, 2.1, 12.1, 5.2), size)

    slide = deck.slides.add_slide(title_only)
    _title(slide, "Definitions")
    body = slide.shapes.add_textbox(Inches(0.6), Inches(1.4), Inches(12.1), Inches(5.6))
    frame = body.text_frame
    frame.word_wrap = True
    for i, (term, meaning) in enumerate(DEFINITIONS):
        paragraph = frame.paragraphs[0] if i == 0 else frame.add_paragraph()
        paragraph.space_after = Pt(8)
        head = paragraph.add_run()
        head.text = f"{term}: "
        head.font.bold, head.font.size = True, Pt(15)
        rest = paragraph.add_run()
        rest.text = meaning
        rest.font.size = Pt(15)

    slide = deck.slides.add_slide(title_only)
    _title(slide, "Appendix: breach rates by metric")
    rows = _appendix_rows(tables)
    shape = slide.shapes.add_table(
        len(rows), len(rows[0]), Inches(0.6), Inches(1.4), Inches(12.1), Inches(0.4 * len(rows))
    )
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            cell = shape.table.cell(r, c)
            cell.text = value
            cell.text_frame.paragraphs[0].font.size = Pt(12)

    write_atomic(path, deck.save)
    logger.debug("wrote %s", path)
    return path


def write_deck(
    path: str | Path,
    targets: pd.DataFrame,
    *,
    since: TimeLike = None,
    until: TimeLike = None,
    account: str | None = None,
    groups: Mapping[int, str] | None = None,
    k: int = 4,
    min_targets: int = 30,
) -> Path:
    """Write the SLA story of ``targets`` as a PowerPoint file (the deck of
    :func:`zdevents.build_deck`, which also reads the targets from the cache).

    Slides: a title (account, period, as-of time and the table version when the frame's
    ``attrs["zdevents_table_version"]`` has one); one slide per chart of
    :data:`DECK_TITLES`, each with a one-sentence takeaway computed from the data;
    definitions; an appendix table by metric.

    Parameters
    ----------
    path : str or Path
        The ``.pptx`` to write (parent folders are created; written atomically).
    targets : pandas.DataFrame
        Output of :func:`zdevents.sla_targets`, optionally with ticket attributes.
    since, until : time, optional
        Keep the targets whose SLA applied in ``[since, until)``.
    account : str, optional
        Name on the title slide (default "Zendesk account").
    groups : mapping of int to str, optional
        Group id -> name, for the league table of groups.
    k : int, default 4
        Weeks of the trend verdict's baseline.
    min_targets : int, default 30
        Completed targets a group needs to be ranked.

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> write_deck("reports/sla.pptx", targets, account="acme")  # doctest: +SKIP
    PosixPath('reports/sla.pptx')
    """
    from ..analysis.sla import applied_between

    if not isinstance(targets, pd.DataFrame):
        raise TypeError("build_deck needs a pandas DataFrame of targets (zd.sla_targets)")
    as_of = _resolve_as_of(targets, None)
    version = targets.attrs.get(_VERSION_ATTR)
    selected = applied_between(targets, since, until)
    selected.attrs = dict(targets.attrs)
    if groups is not None and "group_id" in selected.columns:
        names = selected["group_id"].map(
            lambda gid: groups.get(int(gid), str(int(gid))) if pd.notna(gid) else None
        )
        selected = selected.assign(group_name=names.astype("string"))
    return _write_deck(
        Path(path),
        selected,
        account=account or "Zendesk account",
        as_of=as_of,
        period=_period_text(selected, since, until),
        table_version=version,
        k=k,
        subtitle=charts.chart_subtitle(
            account=account or "Zendesk account",
            since=since,
            until=until,
            as_of=as_of,
            targets=selected,
        ),
        min_targets=min_targets,
    )

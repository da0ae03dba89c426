"""The PowerPoint deck of the SLA story, drawn from a frame of targets: :func:`write_deck`.

The deck holds a title slide (account, period, as-of time, table version when known), one
slide per chart with a one-sentence takeaway computed from the data, a definitions slide
and an appendix table. Charts are embedded the way PowerPoint itself stores vector
pictures: an SVG (drawn by PowerPoint 2016 / Microsoft 365 and later) with a PNG at twice
the display resolution as the fallback for viewers that cannot draw SVG.

The story itself (slides, takeaways, definitions, appendix) is :mod:`zdevents.viz.slides`.
Written with `python-pptx <https://python-pptx.readthedocs.io>`_.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

from ..dates import TimeLike, time_range
from ..files import write_atomic
from .slides import DECK_TITLES, DEFINITIONS, Slide, appendix_rows, deck_slides, resolve_as_of
from .style import chart_style, chart_subtitle

__all__ = ["DECK_TITLES", "Slide", "deck_slides", "write_deck"]  # the story: viz.slides

logger = logging.getLogger(__name__)

_VERSION_ATTR = "zdevents_table_version"
_SVG_EXT_URI = "{96DAC541-7B7A-43D3-8B79-37D633B846F1}"
_SVG_NS = "http://schemas.microsoft.com/office/drawing/2016/SVG/main"
_DISPLAY_DPI = 96
_WIDE = (13.333, 7.5)  # inches, 16:9

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
        with chart_style():
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
    rows = appendix_rows(tables)
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
    as_of = resolve_as_of(targets, None)
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
        subtitle=chart_subtitle(
            account=account or "Zendesk account",
            since=since,
            until=until,
            as_of=as_of,
            targets=selected,
        ),
        min_targets=min_targets,
    )

"""The PowerPoint deck: slides, titles, takeaways from the data, embedded SVG + 2x PNG.

Files are opened back with python-pptx; the end-to-end tests go through the local Zendesk
server, the cache and the command line.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest
from PIL import Image

pptx = pytest.importorskip("pptx")
from pptx import Presentation  # noqa: E402
from pptx.enum.shapes import MSO_SHAPE_TYPE  # noqa: E402

import zdevents as zd  # noqa: E402
from zdevents.viz.deck import DECK_TITLES, deck_slides  # noqa: E402

pytestmark = pytest.mark.usefixtures("no_plt_show")

T0 = pd.Timestamp("2024-01-01 09:00", tz="UTC")  # a Monday
SVG_NS = "http://schemas.microsoft.com/office/drawing/2016/SVG/main"


def small_targets() -> pd.DataFrame:
    """Reply targets over three weeks in two groups, through sla_targets.

    Week 0: A has a breach exactly at its fulfilment (counts) and an achieved target;
    weeks 1-2: B achieves everything. First reply: 1 breached of 4 completed.
    """
    rows, i = [], 0

    def add(ticket, minute, kind, **extra):
        nonlocal i
        i += 1
        rows.append(
            {
                "id": i,
                "ticket_id": ticket,
                "metric": "reply_time",
                "instance_id": 1,
                "type": kind,
                "time": T0 + pd.Timedelta(minutes=minute),
                **extra,
            }
        )

    for ticket, start, breach in (
        (1, 0, True),
        (2, 0, False),
        (3, 7 * 1440, False),
        (4, 14 * 1440, False),
    ):
        add(ticket, start, "activate")
        add(
            ticket,
            start,
            "apply_sla",
            sla_target_minutes=60,
            sla_business_hours=False,
            policy_title="Standard",
        )
        if breach:
            add(ticket, start + 60, "breach")
        add(ticket, start + (60 if breach else 30), "fulfill")
    events = pd.DataFrame(rows)
    targets = zd.sla_targets(events, as_of=T0 + pd.Timedelta(weeks=4))
    targets["group_name"] = ["A", "A", "B", "B"]
    return targets


def test_takeaways_are_computed_from_the_data():
    slides, tables = deck_slides(small_targets(), min_targets=1)
    assert [s.title for s in slides] == list(DECK_TITLES)
    takeaways = {s.title: s.takeaway for s in slides}
    # the breach at the fulfilment's timestamp counts: 1 of 4
    assert takeaways["Breach rate by metric"].startswith(
        "First reply breaches most often: 25.0% of 4 completed targets"
    )
    # one metric breached: no "latest" vs "least late" comparison of it with itself
    assert takeaways["How late are breaches?"] == (
        "Breached First reply targets end up a median 0 min past the target (p90 0 min)."
    )
    assert takeaways["Periodic vs pausable update"] == "No periodic update target has breached."
    assert (
        "within the 99.8% limits around the overall 25.0%" in takeaways["Fair league table: groups"]
    )
    assert tables["verdicts"]["verdict"].tolist() == ["no significant change"]


def test_appendix_lists_metrics_in_their_usual_order():
    from zdevents.viz.slides import appendix_rows

    rates = pd.DataFrame(
        {
            "metric_label": ["Agent work", "Resolution", "First reply"],
            "breached": [1, 2, 3],
            "achieved": [3, 2, 1],
            "active": [0, 0, 0],
            "breach_rate": [0.25, 0.5, 0.75],
            "ci_low": [0.1, 0.2, 0.3],
            "ci_high": [0.5, 0.8, 0.9],
        }
    )
    empty = pd.DataFrame({"metric_label": [], "verdict": [], "median_minutes": []})
    rows = appendix_rows({"by_metric": rates, "verdicts": empty, "lateness": empty})
    assert [r[0] for r in rows[1:]] == ["First reply", "Agent work", "Resolution"]


@pytest.mark.slow
def test_deck_without_a_group_column_has_no_league_table():
    slides, _ = deck_slides(small_targets().drop(columns="group_name"))
    assert [s.title for s in slides] == list(DECK_TITLES[:4])


def picture_parts(slide):
    """(png bytes, svg bytes, picture shape) of each picture on a slide."""
    out = []
    for shape in slide.shapes:
        if shape.shape_type != MSO_SHAPE_TYPE.PICTURE:
            continue
        blip = shape._element.blipFill.find(
            "{http://schemas.openxmlformats.org/drawingml/2006/main}blip"
        )
        svg_blip = blip.find(f".//{{{SVG_NS}}}svgBlip")
        assert svg_blip is not None, "the picture has no SVG"
        rid = svg_blip.get(
            "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}embed"
        )
        svg_part = slide.part.related_part(rid)
        assert svg_part.content_type == "image/svg+xml"
        out.append((shape.image.blob, svg_part.blob, shape))
    return out


def check_deck(path: Path, *, charts: int) -> list[str]:
    deck = Presentation(str(path))
    slides = list(deck.slides)
    titles = [s.shapes.title.text for s in slides]
    assert len(slides) == 1 + charts + 2
    assert titles[1 : 1 + charts] == list(DECK_TITLES[:charts])
    assert titles[-2:] == ["Definitions", "Appendix: breach rates by metric"]
    for slide in slides[1 : 1 + charts]:
        ((png, svg, shape),) = picture_parts(slide)
        assert png.startswith(b"\x89PNG") and b"<svg" in svg[:500]
        with Image.open(io.BytesIO(png)) as image:
            width_px = image.size[0]
        shown_in = shape.width / 914400  # EMU per inch
        assert width_px >= 2 * 96 * shown_in * 0.99, "PNG fallback below twice the display size"
        texts = [s.text_frame.text for s in slide.shapes if s.has_text_frame]
        assert any(t.endswith(".") and len(t) > 20 for t in texts[1:]), "no takeaway sentence"
    definitions = " ".join(s.text_frame.text for s in slides[-2].shapes if s.has_text_frame)
    for term in ("Breach rate", "Censoring", "Intervals"):
        assert term in definitions
    table = next(s for s in slides[-1].shapes if s.has_table).table
    assert table.cell(0, 0).text == "Metric"
    return [s.shapes.title.text for s in slides] + [slides[0].placeholders[1].text_frame.text]


@pytest.mark.slow
def test_build_deck_from_targets_title_slide_and_images(tmp_path):
    targets = small_targets()
    targets.attrs["zdevents_table_version"] = 7
    path = zd.build_deck(tmp_path / "out" / "sla.pptx", targets, account="acme")
    assert path == tmp_path / "out" / "sla.pptx"
    texts = check_deck(path, charts=5)
    assert texts[0] == "SLA breaches: acme"
    subtitle = texts[-1]
    assert "Targets applied 01 Jan 2024 - 15 Jan 2024" in subtitle
    assert "Data as of 2024-01-29 09:00 UTC" in subtitle
    assert "Table version 7" in subtitle
    assert not list(path.parent.glob("*.tmp"))
    assert path.stat().st_mode & 0o777 == 0o644  # shareable like the report beside it
    # every chart carries the account, period and as-of line under its title
    line = "acme · SLAs applied 2024-01-01 to 2024-01-15 · data as of 2024-01-29 09:00 UTC"
    charts = list(Presentation(str(path)).slides)[1:6]
    for slide in charts:
        ((_, svg, _),) = picture_parts(slide)
        assert line.encode() in svg, slide.shapes.title.text


@pytest.mark.slow
def test_deck_slides_pass_the_subtitle_to_every_chart():
    slides, _ = deck_slides(small_targets(), min_targets=1, subtitle="acme · one line")
    for slide in slides:
        ax = slide.draw()
        texts = [t.get_text() for t in ax.figure.findobj(matplotlib.text.Text)]
        assert "acme · one line" in texts, slide.title
        matplotlib.pyplot.close(ax.figure)


@pytest.mark.slow
def test_build_deck_keeps_targets_applied_in_since_until(tmp_path):
    path = zd.build_deck(
        tmp_path / "d.pptx", small_targets(), since="2024-01-08", until="2024-01-15"
    )
    deck = Presentation(str(path))
    subtitle = list(deck.slides)[0].placeholders[1].text_frame.text
    assert "Targets applied 08 Jan 2024 - 14 Jan 2024" in subtitle
    assert "Table version" not in subtitle
    table = next(s for s in list(deck.slides)[-1].shapes if s.has_table).table
    assert table.cell(1, 1).text == "1"  # one completed target applied that week


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def sample_cache(tmp_path_factory):
    data = tmp_path_factory.mktemp("deck-cache")
    settings = zd.prepare_sample(data, tickets=150, seed=5)
    return data, settings


@pytest.mark.e2e
def test_build_deck_from_the_cache_names_groups(sample_cache, tmp_path):
    _, settings = sample_cache
    path = zd.build_deck(
        tmp_path / "sla.pptx", settings=settings, groups={360001001: "Tier 1", 360001003: "Billing"}
    )
    check_deck(path, charts=5)
    deck = Presentation(str(path))
    assert list(deck.slides)[0].shapes.title.text == "SLA breaches: sample"

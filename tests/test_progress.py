"""The fetch progress bar: redrawn at every page and every wait, through the real client."""

from __future__ import annotations

import io
import re

import pytest

import zdevents as zd
from zdevents.export.progress import FetchProgress
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk


def frames(text: str) -> list[str]:
    """The successive states of a tqdm bar drawn on a file (one per carriage return)."""
    return [f.strip() for f in text.split("\r") if f.strip()]


@pytest.fixture(scope="module")
def server():
    with LocalZendesk(
        SampleAccount(tickets=120, seed=3), page_size=200, metric_end_of_stream=True
    ) as srv:
        yield srv


@pytest.mark.e2e
def test_bar_redraws_at_every_page_with_counts_caught_up_waits_and_eta(server, tmp_path, capsys):
    server.clear_faults()
    server.inject("rate_limit", retry_after=2, after=3, stream="metric_events")
    settings = server.settings(data_dir=tmp_path)
    result = zd.fetch("metric_events", settings=settings, progress=True)
    shown = frames(capsys.readouterr().err)
    assert result.pages >= 8

    # one redraw per page, in order: "1 page", "2 pages", ... up to the last
    counts = [
        int(m.group(1).replace(",", ""))
        for f in shown
        if (m := re.search(r"\| ([\d,]+) pages?, ", f))
    ]
    assert sorted(set(counts)) == list(range(1, result.pages + 1))
    assert counts == sorted(counts)
    page_frames = [f for f in shown if re.search(r"\| [\d,]+ pages?, ", f) and "; waiting" not in f]
    for frame in page_frames:
        assert re.search(
            r"[\d,]+ events, caught up to \d{4}-\d{2}-\d{2}, ETA \S+, [\d,]+ "
            r"waited on the rate limit$",
            frame,
        ), frame
    # the percentage moves between the first and the last page (not 0% then 100%)
    percents = [int(re.search(r"(\d+)%", f).group(1)) for f in page_frames]
    assert percents[-1] == 100 and any(0 < p < 100 for p in percents), percents
    assert any("ETA ?" not in f and "ETA done" not in f for f in page_frames[1:-1])
    assert all("\n" not in f for f in shown)  # redrawn in place, never a new line
    # the 429's Retry-After showed while it was waited for, and is counted afterwards
    waits = [i for i, f in enumerate(shown) if f.endswith("; waiting 2s (Retry-After of a 429)")]
    assert len(waits) == 1
    assert "3 pages" in shown[waits[0]]
    assert "1 waited on the rate limit" in page_frames[-1]
    assert ", " not in shown[-1].split("|")[-1][:2]  # no stray comma after the bar
    assert "ETA done" in page_frames[-1]


def test_wait_before_the_first_page_opens_the_bar():
    out = io.StringIO()
    bar = FetchProgress("ticket_events", 0, 10, file=out)
    bar.waiting(600.0, "Retry-After of an HTTP 503 (600 s)")
    bar.close()
    assert frames(out.getvalue())[-1].endswith(
        "| waiting for the first page; waiting 10min (Retry-After of an HTTP 503)"
    )


def test_disabled_bar_draws_nothing():
    out = io.StringIO()
    bar = FetchProgress("metric_events", 0, 10, file=out, enabled=False)
    bar.waiting(5, "pacing")
    bar.close()
    assert out.getvalue() == ""


@pytest.mark.notebooks
@pytest.mark.e2e
def test_in_jupyter_load_frame_shows_the_progress_as_a_widget(tmp_path):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    code = (
        "import zdevents as zd\n"
        "from zdevents.sample.account import SampleAccount\n"
        "from zdevents.sample.server import LocalZendesk\n"
        "with LocalZendesk(SampleAccount(tickets=20, seed=1)) as server:\n"
        f"    events = zd.load_frame(settings=server.settings(data_dir={str(tmp_path)!r}))\n"
        "print(len(events), 'events')\n"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    outputs = notebook.cells[0].outputs
    widgets = [
        o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(widgets) == 1, outputs  # one bar, drawn as a notebook widget
    assert "fetch metric_events" in widgets[0]["data"]["text/plain"]
    assert not any("\r" in o.get("text", "") for o in outputs)  # no text bar in the cell
    assert any("events" in o.get("text", "") for o in outputs)

"""The notebooks run top to bottom on a real Jupyter kernel against the sample account; they
ship as .ipynb paired with .py sources; charts stay inline in a real kernel."""

from __future__ import annotations

import re
from pathlib import Path

import pytest


def lib(name: str):
    """jupytext or nbclient, imported when a test first uses it rather than when this file is
    collected (they take seconds to import, and ``make test`` leaves these tests out)."""
    return pytest.importorskip(name)


pytestmark = [pytest.mark.notebooks, pytest.mark.e2e]

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(name: str, parameters: dict, cwd: Path):
    notebook = lib("jupytext").read(NOTEBOOKS / f"{name}.py")
    cells = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "exactly one cell is tagged 'parameters'"
    cells[0].source += "\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    client = lib("nbclient").NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return notebook


def warnings_printed(notebook) -> list[str]:
    """What the run wrote to stderr, or raised (a normal run prints no warnings)."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr" or output.get("output_type") == "error":
                found.append(output.get("text") or output.get("evalue", ""))
    return found


def outputs_text(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("notebook-data")


def test_sla_breach_rates_notebook(sample_dir, tmp_path):
    out = tmp_path / "charts"
    nb = run_notebook(
        "sla-breach-rates",
        {"data_dir": str(sample_dir), "use_sample": True, "out_dir": str(out), "since": None},
        tmp_path,
    )
    text = outputs_text(nb)
    assert "metric events" in text and "periodic_update_time" in text
    assert re.search(r"tickets; data as of \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC\n", text)
    assert warnings_printed(nb) == []
    assert "sample · SLAs applied" in text  # the subtitle every chart carries
    for name in (
        "breach_rate_by_metric",
        "breach_heatmap_metric_policy",
        "breach_rate_by_group",
        "breach_trend_weekly",
        "breach_trend_monthly",
        "fulfilment_vs_target",
    ):
        assert (out / f"{name}.png").stat().st_size > 10_000
        assert "sample · SLAs applied" in (out / f"{name}.svg").read_text()
    assert "Monthly SLA breach rate by metric" in (out / "breach_trend_monthly.svg").read_text()
    for name in ("update_pairing_by_policy", "lateness_by_metric"):  # the new story's charts
        assert (out / f"{name}.png").stat().st_size > 10_000
        assert "sample · SLAs applied" in (out / f"{name}.svg").read_text()
    # the trend verdict in words, per metric, from complete weeks
    assert "vs the weeks before:" in text
    assert "First reply: " in text and "complete weeks before" in text
    # periodic vs pausable pairing and the lateness view, stated from the data
    assert "Waiting on the customer explains" in text and "periodic-update breaches" in text
    assert "Breached " in text and "past the target (p90" in text
    by_group = (out / "breach_rate_by_group.svg").read_text()
    assert "Billing" in by_group and "Enterprise Success" in by_group  # names, not ids


def test_ticket_activity_notebook(sample_dir, tmp_path):
    out = tmp_path / "charts"
    nb = run_notebook(
        "ticket-activity",
        {"data_dir": str(sample_dir), "use_sample": True, "out_dir": str(out)},
        tmp_path,
    )
    text = outputs_text(nb)
    assert "audits with" in text and "priority changes" in text
    assert warnings_printed(nb) == []  # e.g. matplotlib's set_ticklabels warning
    per_day = (out / "changes_per_day.svg").read_text()
    for channel in ("web", "email", "api", "chat"):
        assert f">{channel}<" in per_day
    assert ">Web form<" not in per_day and ">Mail<" not in per_day  # one spelling each
    weekly = (out / "comments_per_week.svg").read_text()
    # The sample's 26 weeks, on a date axis labelled by month.
    assert "Comments per week (26 weeks, starting Monday, UTC)" in weekly
    assert ">Jan 2024<" in weekly and ">Jun 2024<" in weekly


def test_at_risk_queue_notebook(sample_dir, tmp_path):
    out = tmp_path / "charts"
    nb = run_notebook(
        "at-risk-queue",
        {"data_dir": str(sample_dir), "use_sample": True, "out_dir": str(out), "within": "4h"},
        tmp_path,
    )
    text = outputs_text(nb)
    assert warnings_printed(nb) == []
    assert "SLA targets active at" in text and "targets due within 4h" in text
    assert "scheduled breach" in text and "applied + target" in text
    assert (out / "due_next_24h.png").exists()


def images(cell) -> int:
    return sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))


def test_charts_stay_inline_after_a_zdevents_chart_on_a_real_kernel():
    nbformat = pytest.importorskip("nbformat")
    zdevents_chart = (
        "import matplotlib, pandas as pd\n"
        "import zdevents as zd\n"
        "rates = pd.DataFrame({'metric': ['reply_time'], 'breached': [1], 'achieved': [3],\n"
        "    'active': [0], 'targets': [4], 'breach_rate': [0.25], 'achievement_rate': [0.75],\n"
        "    'ci_low': [0.05], 'ci_high': [0.7]})\n"
        "zd.plot_breach_rates(rates);"
    )
    plain_chart = "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2, 3]);"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(zdevents_chart),
        nbformat.v4.new_code_cell(plain_chart),
        nbformat.v4.new_code_cell(zdevents_chart),
        nbformat.v4.new_code_cell("print(matplotlib.is_interactive())"),
    ]
    lib("nbclient").NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    assert [images(cell) for cell in notebook.cells] == [1, 1, 1, 0]
    assert notebook.cells[-1].outputs[0]["text"] == "True\n"


def cells(notebook) -> list[tuple[str, str, list[str]]]:
    return [
        (c.cell_type, c.source.strip(), c.get("metadata", {}).get("tags", []))
        for c in notebook.cells
    ]


def test_notebooks_ship_as_ipynb_paired_with_their_py_and_without_outputs():
    nbformat = pytest.importorskip("nbformat")
    scripts = sorted(p.stem for p in NOTEBOOKS.glob("*.py"))
    assert scripts == sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) != []
    for stem in scripts:
        script = NOTEBOOKS / f"{stem}.py"
        text = script.read_text()
        assert "# %%" in text and "formats: ipynb,py:percent" in text
        notebook = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
        assert notebook.metadata["jupytext"]["formats"] == "ipynb,py:percent"
        # Drift: the .ipynb holds exactly the cells of the .py (`jupytext --sync notebooks/*.py`).
        assert cells(notebook) == cells(lib("jupytext").read(script)), (
            f"{stem}.ipynb and .py differ"
        )
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, (
                    f"{stem}.ipynb is committed with outputs"
                )


def test_one_command_installs_jupyter_and_opens_the_notebooks():
    root = NOTEBOOKS.parent
    makefile = (root / "Makefile").read_text()
    target = makefile.split("\nnotebooks:", 1)[1].split("\n\n", 1)[0]
    assert '-e ".[notebooks]"' in target and "jupyter lab notebooks/" in target
    assert "make notebooks" in (root / "README.md").read_text()

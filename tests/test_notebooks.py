"""The notebooks run top to bottom on a real Jupyter kernel against the sample account."""

from __future__ import annotations

from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")

pytestmark = [pytest.mark.notebooks, pytest.mark.e2e]

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(name: str, parameters: dict, cwd: Path):
    notebook = jupytext.read(NOTEBOOKS / f"{name}.py")
    cells = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "exactly one cell is tagged 'parameters'"
    cells[0].source += "\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return notebook


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
    for name in ("breach_rate_by_metric", "breach_heatmap_metric_policy",
                 "breach_trend_weekly", "fulfilment_vs_target"):
        assert (out / f"{name}.png").stat().st_size > 10_000
        assert (out / f"{name}.svg").exists()


def test_ticket_activity_notebook(sample_dir, tmp_path):
    out = tmp_path / "charts"
    nb = run_notebook(
        "ticket-activity",
        {"data_dir": str(sample_dir), "use_sample": True, "out_dir": str(out)},
        tmp_path,
    )
    text = outputs_text(nb)
    assert "audits with" in text and "priority changes" in text
    assert (out / "changes_per_day.png").exists()
    assert (out / "comments_per_week.png").exists()


def test_at_risk_queue_notebook(sample_dir, tmp_path):
    out = tmp_path / "charts"
    nb = run_notebook(
        "at-risk-queue",
        {"data_dir": str(sample_dir), "use_sample": True, "out_dir": str(out), "within": "4h"},
        tmp_path,
    )
    text = outputs_text(nb)
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
    plain_chart = (
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots()\n"
        "ax.plot([1, 2, 3]);"
    )
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(zdevents_chart),
                      nbformat.v4.new_code_cell(plain_chart),
                      nbformat.v4.new_code_cell(zdevents_chart),
                      nbformat.v4.new_code_cell("print(matplotlib.is_interactive())")]
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    assert [images(cell) for cell in notebook.cells] == [1, 1, 1, 0]
    assert notebook.cells[-1].outputs[0]["text"] == "True\n"


def test_notebooks_are_stored_as_percent_scripts_without_outputs():
    for path in NOTEBOOKS.glob("*.py"):
        text = path.read_text()
        assert "# %%" in text and "format_name: percent" in text
    assert not list(NOTEBOOKS.glob("*.ipynb")), "commit the paired .py, not .ipynb with outputs"

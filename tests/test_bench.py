"""The benchmarks run end to end on a tiny size and print their ratio lines (nothing is timed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

# bench/ is not installed: make the repository root importable however pytest is started.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import BENCHMARKS
from bench.__main__ import main
from bench.common import peak_rss_mb, rss_probe, run_isolated, set_isolation
from bench.fetch import sliding_window_bound


@pytest.mark.slow
@pytest.mark.e2e
def test_every_benchmark_runs_on_the_small_size_and_prints_ratios(tmp_path, capsys):
    markdown = tmp_path / "BENCHMARKS.md"
    try:
        code = main(
            [
                "--size",
                "small",
                "--results-dir",
                str(tmp_path / "results"),
                "--markdown",
                str(markdown),
            ]
        )
    finally:
        set_isolation(True)
    out = capsys.readouterr().out
    assert code == 0, out  # 0: no failure (e.g. every engine's counts equal the SQL reference)
    for name in BENCHMARKS:
        assert f"=== {name}:" in out
        assert f"[{name}] machine: " in out
        assert any(line.startswith(f"[{name}] ratio ") for line in out.splitlines()), name
        raw = json.loads((tmp_path / "results" / f"{name}-small.json").read_text())
        assert raw["ratios"] and not raw["failures"]
    assert "counts = reference" in out and "**NO**" not in out
    text = markdown.read_text()
    assert all(f"## {name}:" in text for name in BENCHMARKS)
    assert "<!-- notes:" in text


@pytest.mark.slow
def test_isolated_peak_rss_is_the_child_process_own():
    # Linux carries a parent's peak RSS into ru_maxrss across fork + exec; the launcher must not.
    rss_probe(300)  # this process now peaks at least 300 MB above where a fresh one starts
    parent = peak_rss_mb()
    idle = run_isolated("bench.common:rss_probe", megabytes=0)
    busy = run_isolated("bench.common:rss_probe", megabytes=100)
    assert (idle["megabytes"], busy["megabytes"]) == (0, 100)
    # each child reports its own peak: below the parent's, and 100 MB apart, as touched
    assert busy["peak_rss_mb"] < parent
    assert 80 <= busy["peak_rss_mb"] - idle["peak_rss_mb"] <= 130


def test_sliding_window_bound():
    assert sliding_window_bound(0, 600) == 0.0
    assert sliding_window_bound(600, 600) == 0.0  # one burst fits in the first window
    assert sliding_window_bound(601, 600) == 60.0
    assert sliding_window_bound(1200, 600) == 60.0
    assert sliding_window_bound(1201, 600) == 120.0
    assert sliding_window_bound(1854, 600) == 180.0

"""`zdevents due`, `zdevents report --pptx` and the demo's deck, as real processes on the
sample account's cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from test_deck import check_deck

import zdevents as zd

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("no_plt_show")]


@pytest.fixture(scope="module")
def sample_cache(tmp_path_factory):
    data = tmp_path_factory.mktemp("insights-cli-cache")
    settings = zd.prepare_sample(data, tickets=150, seed=5)
    return data, settings


def run_cli(*args: str, data: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENDESK_", "ZDEVENTS_"))}
    env["ZENDESK_SUBDOMAIN"] = "sample"
    return subprocess.run(
        [sys.executable, "-m", "zdevents", *args, "--data-dir", str(data)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_cli_report_pptx_writes_the_deck(sample_cache, tmp_path):
    data, _ = sample_cache
    out = run_cli("report", "--out", str(tmp_path / "rep"), "--pptx", data=data, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"deck: {tmp_path / 'rep' / 'sla.pptx'}" in out.stdout
    check_deck(tmp_path / "rep" / "sla.pptx", charts=5)


def test_cli_due_prints_the_queue_and_rejects_a_bad_horizon(sample_cache, tmp_path):
    data, settings = sample_cache
    events = zd.load_frame(settings=settings, refresh="never")
    due = zd.due_targets(events)
    as_of = events.attrs["zdevents_as_of"]
    within = (
        due["due_at"].notna()
        & (due["due_at"] >= as_of)
        & (due["due_at"] <= as_of + pd.Timedelta(hours=24))
    )
    out = run_cli("due", "--within", "24h", data=data, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(
        f"{int(within.sum()):,} SLA targets due within 24h of "
        f"{as_of:%Y-%m-%d %H:%M} UTC ({len(due):,} active"
    )
    queue = run_cli("due", "--within", "24h", "--as-of", "2024-06-28", data=data, cwd=tmp_path)
    lines = queue.stdout.splitlines()  # 3 due at 06-28 12:22 on this account
    assert lines[0].startswith("3 SLA targets due within 24h of 2024-06-28 00:00 UTC")
    # the group by its name from the cached names file, not its id; columns in words
    assert lines[2].split() == [
        "group",
        "assignee",
        "id",
        "due",
        "within",
        "24h",
        "past",
        "estimated",
        "due",
        "next",
        "due",
        "(UTC)",
    ]
    assert lines[3].split()[0] == "Billing"
    bad = run_cli("due", "--within", "soon", data=data, cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "zdevents due: error: --within must be a duration such as 4h or 90min, got 'soon'"
    )


def test_demo_also_writes_the_deck(tmp_path):
    lines: list[str] = []
    zd.run_demo(
        out_dir=tmp_path / "demo",
        data_dir=tmp_path / "data",
        tickets=120,
        progress=False,
        echo=lines.append,
    )
    assert f"deck: {tmp_path / 'demo' / 'sla.pptx'}" in lines
    titles = check_deck(tmp_path / "demo" / "sla.pptx", charts=5)
    assert "Fair league table: groups" in titles

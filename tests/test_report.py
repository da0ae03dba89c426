"""The HTML report and the plain-text rates table, on hand-built targets."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import base64
import math
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from zdevents.report import CHART_NAMES, format_rates_table, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.usefixtures("no_plt_show")


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def reference_breach_rates(targets, by="metric", *, freq=None):
    """A small stand-in for zdevents.sla.breach_rates with the same output columns."""
    keys = [by] if isinstance(by, str) else list(by)
    frame = targets.copy()
    if freq == "W":
        applied = frame["applied_at"]
        frame["period"] = applied.dt.floor("D") - pd.to_timedelta(applied.dt.day_of_week, unit="D")
        keys.append("period")
    rows = []
    for key, group in frame.groupby(keys, sort=True, dropna=False, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        breached = int((group["outcome"] == "breached").sum())
        achieved = int((group["outcome"] == "achieved").sum())
        n = breached + achieved
        low, high = wilson(breached, n)
        rows.append({**dict(zip(keys, key, strict=True)), "breached": breached,
                     "achieved": achieved, "active": int((group["outcome"] == "active").sum()),
                     "targets": len(group), "breach_rate": breached / n if n else np.nan,
                     "achievement_rate": achieved / n if n else np.nan,
                     "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def target(ticket, metric, instance, outcome, policy, applied, ratio, **extra):
    applied = pd.Timestamp(applied, tz="UTC")
    done = outcome != "active"
    return {"ticket_id": ticket, "metric": metric, "instance_id": instance, "sla_kind": "sla",
            "policy_id": 1, "policy_title": policy, "target_minutes": 60,
            "business_hours": False, "applied_at": applied,
            "fulfilled_at": applied + pd.Timedelta(minutes=60 * ratio) if done else pd.NaT,
            "breached_at": applied + pd.Timedelta(hours=1) if outcome == "breached" else pd.NaT,
            "outcome": outcome, "elapsed_minutes": 60 * ratio if done else np.nan,
            "elapsed_ratio": ratio if done else np.nan, **extra}


@pytest.fixture
def targets():
    gold = "<Gold & Co>"
    return pd.DataFrame([
        # First reply: 1 breached of 4 completed = 25.0%, Wilson 4.6-69.9%.
        target(1, "reply_time", 1, "breached", gold, "2024-01-02 09:00", 1.5, priority="high",
               group_name="Tier 1"),
        target(2, "reply_time", 1, "achieved", gold, "2024-01-03 09:00", 0.5, priority="high",
               group_name="Tier 1"),
        target(3, "reply_time", 1, "achieved", "Silver", "2024-01-09 09:00", 0.2,
               priority="normal", group_name="Tier 2"),
        target(4, "reply_time", 1, "achieved", "Silver", "2024-01-10 09:00", 0.8,
               priority="normal", group_name=None),
        # Next reply: 1 breached of 1 = 100.0%.
        target(1, "reply_time", 2, "breached", gold, "2024-01-02 12:00", 2.0, priority="high",
               group_name="Tier 1"),
        # Periodic update: 1 of 2 = 50.0% (Wilson 9.5-90.5%), one still open.
        target(2, "periodic_update_time", 1, "breached", gold, "2024-01-03 10:00", 3.0,
               priority="high", group_name="Tier 1"),
        target(3, "periodic_update_time", 1, "achieved", "Silver", "2024-01-09 10:00", 0.9,
               priority="normal", group_name="Tier 2"),
        target(5, "periodic_update_time", 1, "active", "Silver", "2024-01-16 10:00", 0.0,
               priority="normal", group_name="Tier 2"),
    ])


def test_write_report_writes_charts_and_self_contained_html(targets, tmp_path):
    before = set(plt.get_fignums())
    result = write_report(targets, tmp_path / "out", as_of="2024-01-20T06:30:00Z",
                          breach_rates=reference_breach_rates)
    assert set(plt.get_fignums()) == before  # every figure closed
    expected = [tmp_path / "out" / f"{name}.{ext}" for name in CHART_NAMES for ext in ("png", "svg")]
    assert result.files == [*expected, tmp_path / "out" / "index.html"]
    assert all(p.stat().st_size > 0 for p in result.files)
    assert result.index.read_bytes().startswith(b"<!DOCTYPE html>")
    page = result.index.read_text(encoding="utf-8")
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 4
    assert all(base64.b64decode(img).startswith(PNG_MAGIC) for img in images)
    assert "<link" not in page and "<script" not in page and "src='http" not in page
    assert "Data as of: 2024-01-20 06:30 UTC." in page
    assert "from 2024-01-02 09:00 UTC to 2024-01-16 10:00 UTC" in page
    assert "8 SLA targets: 3 breached, 4 achieved, 1 still open." in page
    assert "censored" in page


def test_report_tables_hold_hand_computed_rates(targets, tmp_path):
    result = write_report(targets, tmp_path, as_of="2024-01-20",
                          breach_rates=reference_breach_rates)
    page = result.index.read_text(encoding="utf-8")
    cells = "<td class='num'>{}</td>"
    first_reply = ("<tr><td>First reply</td>" + cells.format("25.0%") + cells.format("4.6-69.9%")
                   + cells.format(1) + cells.format(3) + cells.format(0) + "</tr>")
    periodic = ("<tr><td>Periodic update</td>" + cells.format("50.0%")
                + cells.format("9.5-90.5%") + cells.format(1) + cells.format(1)
                + cells.format(1) + "</tr>")
    assert first_reply in page
    assert periodic in page
    assert "<tr><td>Next reply</td>" + cells.format("100.0%") in page
    # By policy: the title is escaped; first reply under <Gold & Co> is 1 of 2 = 50.0%.
    assert "<tr><td>First reply</td><td>&lt;Gold &amp; Co&gt;</td>" + cells.format("50.0%") in page
    assert "<Gold & Co>" not in page
    # By priority (all metrics): high = 3 breached of 4 = 75.0%; normal = 0 of 3 = 0.0%.
    assert "<tr><td>high</td>" + cells.format("75.0%") in page
    assert "<tr><td>normal</td>" + cells.format("0.0%") in page
    # By group: a missing group is its own row, not dropped.
    assert "<tr><td>(none)</td>" + cells.format("0.0%") in page
    by_metric = result.by_metric.set_index("metric_label")
    assert by_metric.loc["First reply", "breach_rate"] == 0.25
    assert set(result.tables) == {"by_metric", "by_policy", "by_priority", "weekly", "by_group"}


def test_report_filters_by_since_until_and_escapes_title(targets, tmp_path):
    result = write_report(targets, tmp_path, as_of="2024-01-20", since="2024-01-09",
                          until="2024-01-16", title="Q1 <draft> & notes",
                          breach_rates=reference_breach_rates, formats=("svg",))
    page = result.index.read_text(encoding="utf-8")
    assert "<title>Q1 &lt;draft&gt; &amp; notes</title>" in page
    assert "from 2024-01-09 00:00 UTC until 2024-01-16 00:00 UTC (exclusive)" in page
    assert "3 SLA targets: 0 breached, 3 achieved, 0 still open." in page
    assert [p.suffix for p in result.files] == [".svg"] * 4 + [".html"]
    assert len(re.findall("data:image/png;base64", page)) == 4  # PNG embedded even so


def test_report_without_priority_or_group_columns(targets, tmp_path):
    result = write_report(targets.drop(columns=["priority", "group_name"]), tmp_path,
                          as_of=None, breach_rates=reference_breach_rates)
    page = result.index.read_text(encoding="utf-8")
    assert "By priority" not in page and "By group" not in page
    assert "Data as of: not recorded." in page
    assert set(result.tables) == {"by_metric", "by_policy", "weekly"}


def test_report_with_no_targets(targets, tmp_path):
    result = write_report(targets.iloc[0:0], tmp_path, as_of="2024-01-20",
                          breach_rates=reference_breach_rates)
    page = result.index.read_text(encoding="utf-8")
    assert "0 SLA targets" in page and "no SLA targets" in page
    assert len(result.files) == 9


def test_report_rejects_since_after_until(targets, tmp_path):
    with pytest.raises(ValueError, match="after until"):
        write_report(targets, tmp_path, as_of=None, since="2024-02-01", until="2024-01-01",
                     breach_rates=reference_breach_rates)


def test_report_with_the_real_breach_rates(targets, tmp_path):
    pytest.importorskip("zdevents.sla")
    result = write_report(targets, tmp_path, as_of="2024-01-20")  # default: sla.breach_rates
    by_metric = result.by_metric.set_index("metric_label")
    assert by_metric.loc["First reply", ["breached", "achieved", "active"]].tolist() == [1, 3, 0]
    assert by_metric.loc["First reply", "breach_rate"] == 0.25
    assert by_metric.loc["First reply", "ci_low"] == pytest.approx(0.0456, abs=1e-4)
    assert by_metric.loc["Periodic update", "active"] == 1
    page = result.index.read_text(encoding="utf-8")
    assert ("<tr><td>First reply</td><td class='num'>25.0%</td>"
            "<td class='num'>4.6-69.9%</td>") in page
    assert "&lt;Gold &amp; Co&gt;" in page


def test_format_rates_table_exact():
    rates = reference_breach_rates(pd.DataFrame({
        "metric": ["reply_time"] * 4 + ["pausable_update_time"],
        "instance_id": [1, 1, 1, 1, 1],
        "outcome": ["breached", "achieved", "achieved", "achieved", "active"],
    }), by=["metric", "instance_id"])
    assert format_rates_table(rates) == (
        "metric           breach rate     95% CI  breached  achieved  active\n"
        "First reply            25.0%  4.6-69.9%         1         3       0\n"
        "Pausable update          n/a          -         0         0       1"
    )
    assert format_rates_table(rates.iloc[0:0]) == "no SLA targets"


def test_format_rates_table_other_keys_and_periods():
    rates = reference_breach_rates(pd.DataFrame({
        "priority": ["urgent", "low", "low"],
        "applied_at": pd.to_datetime(["2024-01-07 23:59", "2024-01-08 00:00", "2024-01-08 00:00"], utc=True),
        "outcome": ["breached", "achieved", "breached"],
    }), by="priority", freq="W")
    lines = format_rates_table(rates).splitlines()
    assert lines[0].split() == ["priority", "period", "breach", "rate", "95%", "CI", "breached",
                                "achieved", "active"]
    assert lines[1].split()[:3] == ["low", "2024-01-08", "50.0%"]
    assert lines[2].split()[:3] == ["urgent", "2024-01-01", "100.0%"]


def test_report_names_the_account_and_has_brand_tables(targets, tmp_path):
    frame = targets.assign(brand_name=["Acme"] * 5 + ["Acme Pay"] * 3)
    result = write_report(frame, tmp_path, as_of="2024-01-20", account="acme",
                          breach_rates=reference_breach_rates)
    page = result.index.read_text(encoding="utf-8")
    assert "Account: acme." in page
    # By brand: Acme = the first five rows (2 breached of 5 completed), Acme Pay = the last
    # three (1 breached of 2 completed, 1 open).
    assert "<tr><td>Acme</td><td class='num'>40.0%</td>" in page
    assert "<tr><td>Acme Pay</td><td class='num'>50.0%</td>" in page
    assert "by_brand" in result.tables
    line = "acme · SLAs applied 2024-01-02 to 2024-01-16 · data as of 2024-01-20 00:00 UTC"
    for name in CHART_NAMES:  # every chart says whose data, which period, as of when
        assert line in (tmp_path / f"{name}.svg").read_text(encoding="utf-8"), name


def test_build_report_shows_group_and_brand_names_fetched_from_zendesk(tmp_path):
    import zdevents as zd
    from zdevents.sample import BRANDS, GROUPS

    settings = zd.prepare_sample(tmp_path / "data", tickets=150)
    assert (tmp_path / "data" / "sample" / "names.json").exists()
    run = zd.build_report(tmp_path / "report", settings=settings)
    page = run.index.read_text(encoding="utf-8")
    for name in (*GROUPS.values(), *BRANDS.values()):
        assert f"<tr><td>{name}</td>" in page
    for number in (*GROUPS, *BRANDS):
        assert str(number) not in page
    svg = (tmp_path / "report" / "breach_trend_weekly.svg").read_text()
    assert "sample · SLAs applied" in svg and "data as of" in svg

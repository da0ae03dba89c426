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

from zdevents.viz.report import CHART_NAMES, format_rates_table, write_report

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
    """A small stand-in for zdevents.analysis.sla.breach_rates with the same output columns."""
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
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "breached": breached,
                "achieved": achieved,
                "active": int((group["outcome"] == "active").sum()),
                "targets": len(group),
                "breach_rate": breached / n if n else np.nan,
                "achievement_rate": achieved / n if n else np.nan,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(rows)


def target(ticket, metric, instance, outcome, policy, applied, ratio, **extra):
    applied = pd.Timestamp(applied, tz="UTC")
    done = outcome != "active"
    return {
        "ticket_id": ticket,
        "metric": metric,
        "instance_id": instance,
        "sla_kind": "sla",
        "policy_id": 1,
        "policy_title": policy,
        "target_minutes": 60,
        "business_hours": False,
        "applied_at": applied,
        "fulfilled_at": applied + pd.Timedelta(minutes=60 * ratio) if done else pd.NaT,
        "breached_at": applied + pd.Timedelta(hours=1) if outcome == "breached" else pd.NaT,
        "outcome": outcome,
        "elapsed_minutes": 60 * ratio if done else np.nan,
        "elapsed_ratio": ratio if done else np.nan,
        **extra,
    }


@pytest.fixture
def targets():
    gold = "<Gold & Co>"
    return pd.DataFrame(
        [
            # First reply: 1 breached of 4 completed = 25.0%, Wilson 4.6-69.9%.
            target(
                1,
                "reply_time",
                1,
                "breached",
                gold,
                "2024-01-02 09:00",
                1.5,
                priority="high",
                group_name="Tier 1",
            ),
            target(
                2,
                "reply_time",
                1,
                "achieved",
                gold,
                "2024-01-03 09:00",
                0.5,
                priority="high",
                group_name="Tier 1",
            ),
            target(
                3,
                "reply_time",
                1,
                "achieved",
                "Silver",
                "2024-01-09 09:00",
                0.2,
                priority="normal",
                group_name="Tier 2",
            ),
            target(
                4,
                "reply_time",
                1,
                "achieved",
                "Silver",
                "2024-01-10 09:00",
                0.8,
                priority="normal",
                group_name=None,
            ),
            # Next reply: 1 breached of 1 = 100.0%.
            target(
                1,
                "reply_time",
                2,
                "breached",
                gold,
                "2024-01-02 12:00",
                2.0,
                priority="high",
                group_name="Tier 1",
            ),
            # Periodic update: 1 of 2 = 50.0% (Wilson 9.5-90.5%), one still open.
            target(
                2,
                "periodic_update_time",
                1,
                "breached",
                gold,
                "2024-01-03 10:00",
                3.0,
                priority="high",
                group_name="Tier 1",
            ),
            target(
                3,
                "periodic_update_time",
                1,
                "achieved",
                "Silver",
                "2024-01-09 10:00",
                0.9,
                priority="normal",
                group_name="Tier 2",
            ),
            target(
                5,
                "periodic_update_time",
                1,
                "active",
                "Silver",
                "2024-01-16 10:00",
                0.0,
                priority="normal",
                group_name="Tier 2",
            ),
        ]
    )


@pytest.mark.slow
def test_write_report_writes_charts_and_self_contained_html(targets, tmp_path):
    before = set(plt.get_fignums())
    result = write_report(
        targets, tmp_path / "out", as_of="2024-01-20T06:30:00Z", breach_rates=reference_breach_rates
    )
    assert set(plt.get_fignums()) == before  # every figure closed
    # no ticket has both update metrics here: no periodic-vs-pausable chart
    written = [
        "breach_rate_by_metric",
        "breach_trend_weekly",
        "lateness_by_metric",
        "breach_heatmap_metric_policy",
        "funnel_by_group",
        "fulfilment_vs_target",
    ]
    assert [n for n in CHART_NAMES if n in written] == written  # the page's order
    expected = [tmp_path / "out" / f"{name}.{ext}" for name in written for ext in ("png", "svg")]
    assert result.files == [*expected, tmp_path / "out" / "index.html"]
    assert list(result.charts) == written
    assert all(p.stat().st_size > 0 for p in result.files)
    assert result.index.read_bytes().startswith(b"<!DOCTYPE html>")
    page = result.index.read_text(encoding="utf-8")
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 6
    assert all(base64.b64decode(img).startswith(PNG_MAGIC) for img in images)
    assert "<link" not in page and "<script" not in page and "src='http" not in page
    assert "Data as of: 2024-01-20 06:30 UTC." in page
    assert "from 2024-01-02 09:00 UTC to 2024-01-16 10:00 UTC" in page
    assert "8 SLA targets: 3 breached, 4 achieved, 1 still open." in page
    assert "censored" in page


@pytest.mark.slow
def test_report_tables_hold_hand_computed_rates(targets, tmp_path):
    result = write_report(
        targets, tmp_path, as_of="2024-01-20", breach_rates=reference_breach_rates
    )
    page = result.index.read_text(encoding="utf-8")
    cells = "<td class='num'>{}</td>"
    first_reply = (
        "<tr><td>First reply</td>"
        + cells.format("25.0%")
        + cells.format("4.6-69.9%")
        + cells.format(1)
        + cells.format(3)
        + cells.format(0)
        + "</tr>"
    )
    periodic = (
        "<tr><td>Periodic update</td>"
        + cells.format("50.0%")
        + cells.format("9.5-90.5%")
        + cells.format(1)
        + cells.format(1)
        + cells.format(1)
        + "</tr>"
    )
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
    assert set(result.tables) == {
        "by_metric",
        "by_policy",
        "by_priority",
        "weekly",
        "by_group",
        "verdicts",
        "lateness",
        "funnel",
    }


@pytest.mark.slow
def test_report_filters_by_since_until_and_escapes_title(targets, tmp_path):
    result = write_report(
        targets,
        tmp_path,
        as_of="2024-01-20",
        since="2024-01-09",
        until="2024-01-16",
        title="Q1 <draft> & notes",
        breach_rates=reference_breach_rates,
        formats=("svg",),
    )
    page = result.index.read_text(encoding="utf-8")
    assert "<title>Q1 &lt;draft&gt; &amp; notes</title>" in page
    assert "from 2024-01-09 00:00 UTC until 2024-01-16 00:00 UTC (exclusive)" in page
    assert "3 SLA targets: 0 breached, 3 achieved, 0 still open." in page
    assert [p.suffix for p in result.files] == [".svg"] * 6 + [".html"]
    assert len(re.findall("data:image/png;base64", page)) == 6  # PNG embedded even so


@pytest.mark.slow
def test_report_without_priority_or_group_columns(targets, tmp_path):
    result = write_report(
        targets.drop(columns=["priority", "group_name"]),
        tmp_path,
        as_of=None,
        breach_rates=reference_breach_rates,
    )
    page = result.index.read_text(encoding="utf-8")
    assert "By priority" not in page and "By group" not in page
    assert "Data as of: not recorded." in page
    assert set(result.tables) == {"by_metric", "by_policy", "weekly"}
    # sections that need the as-of time, both update metrics or due targets say why they
    # are empty instead of guessing
    assert page.count("not shown: the data&#x27;s as-of time is unknown.") == 2
    assert "no ticket has both a periodic and a pausable update target." in page
    assert "not shown: the queue needs the metric events" in page
    assert "lateness_by_metric" not in result.charts and "funnel_by_group" not in result.charts


@pytest.mark.slow
def test_report_with_no_targets(targets, tmp_path):
    result = write_report(
        targets.iloc[0:0], tmp_path, as_of="2024-01-20", breach_rates=reference_breach_rates
    )
    page = result.index.read_text(encoding="utf-8")
    assert "0 SLA targets" in page and "no SLA targets" in page
    assert len(result.files) == 6 * 2 + 1
    assert "No SLA target has breached." in page
    assert "No completed SLA targets to compare." in page


def test_report_rejects_since_after_until(targets, tmp_path):
    with pytest.raises(ValueError, match="after until"):
        write_report(
            targets,
            tmp_path,
            as_of=None,
            since="2024-02-01",
            until="2024-01-01",
            breach_rates=reference_breach_rates,
        )


@pytest.mark.slow
def test_report_with_the_real_breach_rates(targets, tmp_path):
    pytest.importorskip("zdevents.analysis.sla")
    result = write_report(targets, tmp_path, as_of="2024-01-20")  # default: sla.breach_rates
    by_metric = result.by_metric.set_index("metric_label")
    assert by_metric.loc["First reply", ["breached", "achieved", "active"]].tolist() == [1, 3, 0]
    assert by_metric.loc["First reply", "breach_rate"] == 0.25
    assert by_metric.loc["First reply", "ci_low"] == pytest.approx(0.0456, abs=1e-4)
    assert by_metric.loc["Periodic update", "active"] == 1
    page = result.index.read_text(encoding="utf-8")
    assert (
        "<tr><td>First reply</td><td class='num'>25.0%</td><td class='num'>4.6-69.9%</td>"
    ) in page
    assert "&lt;Gold &amp; Co&gt;" in page


def test_format_rates_table_exact():
    rates = reference_breach_rates(
        pd.DataFrame(
            {
                "metric": ["reply_time"] * 4 + ["pausable_update_time"],
                "instance_id": [1, 1, 1, 1, 1],
                "outcome": ["breached", "achieved", "achieved", "achieved", "active"],
            }
        ),
        by=["metric", "instance_id"],
    )
    assert format_rates_table(rates) == (
        "metric           breach rate     95% CI  breached  achieved  active\n"
        "First reply            25.0%  4.6-69.9%         1         3       0\n"
        "Pausable update          n/a          -         0         0       1"
    )
    assert format_rates_table(rates.iloc[0:0]) == "no SLA targets"


def test_format_rates_table_other_keys_and_periods():
    rates = reference_breach_rates(
        pd.DataFrame(
            {
                "priority": ["urgent", "low", "low"],
                "applied_at": pd.to_datetime(
                    ["2024-01-07 23:59", "2024-01-08 00:00", "2024-01-08 00:00"], utc=True
                ),
                "outcome": ["breached", "achieved", "breached"],
            }
        ),
        by="priority",
        freq="W",
    )
    lines = format_rates_table(rates).splitlines()
    assert lines[0].split() == [
        "priority",
        "period",
        "breach",
        "rate",
        "95%",
        "CI",
        "breached",
        "achieved",
        "active",
    ]
    assert lines[1].split()[:3] == ["low", "2024-01-08", "50.0%"]
    assert lines[2].split()[:3] == ["urgent", "2024-01-01", "100.0%"]


@pytest.mark.slow
def test_report_names_the_account_and_has_brand_tables(targets, tmp_path):
    frame = targets.assign(brand_name=["Acme"] * 5 + ["Acme Pay"] * 3)
    result = write_report(
        frame, tmp_path, as_of="2024-01-20", account="acme", breach_rates=reference_breach_rates
    )
    page = result.index.read_text(encoding="utf-8")
    assert "Account: acme." in page
    # By brand: Acme = the first five rows (2 breached of 5 completed), Acme Pay = the last
    # three (1 breached of 2 completed, 1 open).
    assert "<tr><td>Acme</td><td class='num'>40.0%</td>" in page
    assert "<tr><td>Acme Pay</td><td class='num'>50.0%</td>" in page
    assert "by_brand" in result.tables
    line = "acme · SLAs applied 2024-01-02 to 2024-01-16 · data as of 2024-01-20 00:00 UTC"
    for name in result.charts:  # every chart says whose data, which period, as of when
        assert line in (tmp_path / f"{name}.svg").read_text(encoding="utf-8"), name


@pytest.mark.slow
def test_build_report_shows_group_and_brand_names_fetched_from_zendesk(tmp_path):
    import zdevents as zd
    from zdevents.sample.account import BRANDS, GROUPS

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
    # the insight sections, each with its takeaway; the due-next queue from the events
    for heading in (
        "Is it getting better?",
        "How late are breaches?",
        "Periodic vs pausable update",
        "Fair league table",
        "Due next",
    ):
        assert heading in page
    assert page.count("<p class='takeaway'>") == 5
    assert "SLA targets fall due within 4h" in page or "No SLA target falls due" in page


# ---------------------------------------------------------------- the insight sections

AS_OF = pd.Timestamp("2024-02-05 06:00", tz="UTC")  # a Monday: the week of 5 Feb is open


@pytest.fixture
def insight_targets():
    """Hand-made targets whose insight tables are worked out in the tests.

    First reply: weeks of 1, 8, 15 and 22 Jan, 1 breached of 5 each (breached exactly at the
    fulfilment: 0 min late), group Tier 1; week of 29 Jan, 8 breached of 10 (60 min late),
    Tier 2; week of 5 Feb (not over at the as-of time): 1 achieved, Tier 2, and 1 active.
    Update metrics, 30 Jan: ticket 100 periodic breached / pausable achieved, 101 both
    breached, 102 periodic breached / pausable achieved, 103 both achieved.
    Resolution: one breach at 02:00 on 5 Feb still open at the as-of time (4 h late).
    """
    rows, ticket = [], 0
    for week in range(4):
        for i in range(5):
            ticket += 1
            breached = i == 0
            rows.append(
                target(
                    ticket,
                    "reply_time",
                    1,
                    "breached" if breached else "achieved",
                    "Gold",
                    pd.Timestamp("2024-01-01 09:00") + pd.Timedelta(weeks=week),
                    1.0 if breached else 0.5,
                    group_name="Tier 1",
                )
            )
    for i in range(10):
        ticket += 1
        breached = i < 8
        rows.append(
            target(
                ticket,
                "reply_time",
                1,
                "breached" if breached else "achieved",
                "Gold",
                "2024-01-29 09:00",
                2.0 if breached else 0.5,
                group_name="Tier 2",
            )
        )
    rows.append(
        target(
            90, "reply_time", 1, "achieved", "Gold", "2024-02-05 01:00", 0.5, group_name="Tier 2"
        )
    )
    rows.append(
        target(91, "reply_time", 1, "active", "Gold", "2024-02-05 02:00", 0.0, group_name="Tier 2")
    )
    for tkt, periodic, pausable, policy in (
        (100, "breached", "achieved", "Gold"),
        (101, "breached", "breached", "Gold"),
        (102, "breached", "achieved", "Silver"),
        (103, "achieved", "achieved", "Silver"),
    ):
        rows.append(
            target(
                tkt,
                "periodic_update_time",
                1,
                periodic,
                policy,
                "2024-01-30 10:00",
                3.0 if periodic == "breached" else 0.5,
                group_name=None,
            )
        )
        rows.append(
            target(
                tkt,
                "pausable_update_time",
                1,
                pausable,
                policy,
                "2024-01-30 10:00",
                1.5 if pausable == "breached" else 0.5,
                group_name=None,
            )
        )
    open_breach = target(
        200, "resolution_time", 1, "breached", "Gold", "2024-02-05 01:00", 0.0, group_name=None
    )
    open_breach.update(fulfilled_at=pd.NaT, elapsed_minutes=np.nan, elapsed_ratio=np.nan)
    rows.append(open_breach)
    return pd.DataFrame(rows)


def due_queue():
    """Due targets at AS_OF: Tier 1 / Ann has two due within 4h (30 min, 3 h) and one past its
    estimate; Tier 2 / Bo has one due exactly at the 4h edge (counts), one after it (does not)
    and one with no due time."""
    offsets = [30, 180, -10, 240, 300, None]
    return pd.DataFrame(
        {
            "ticket_id": range(1, 7),
            "metric": "reply_time",
            "group_name": ["Tier 1"] * 3 + ["Tier 2"] * 3,
            "assignee_name": ["Ann"] * 3 + ["Bo"] * 3,
            "due_at": [
                AS_OF + pd.Timedelta(minutes=m) if m is not None else pd.NaT for m in offsets
            ],
            "as_of": AS_OF,
        }
    )


@pytest.mark.slow
def test_report_states_trend_verdicts_in_words_from_complete_weeks_only(insight_targets, tmp_path):
    result = write_report(
        insight_targets, tmp_path, as_of=AS_OF, breach_rates=reference_breach_rates
    )
    page = result.index.read_text(encoding="utf-8")
    # Week of 29 Jan (8 of 10) against the 4 weeks before (4 of 20); the week of 5 Feb is not
    # over at the as-of time and is never used. Pooled 12/30: z = 0.6 / sqrt(.4 .6 (1/10 +
    # 1/20)) = 3.162, two-sided p = erfc(z / sqrt 2) = 0.0016.
    z = 0.6 / math.sqrt(0.4 * 0.6 * (1 / 10 + 1 / 20))
    p = math.erfc(z / math.sqrt(2))
    verdicts = result.tables["verdicts"].set_index("metric_label")
    assert verdicts.loc["First reply", "latest_period"] == pd.Timestamp("2024-01-29", tz="UTC")
    assert verdicts.loc["First reply", "p_value"] == pytest.approx(p)
    assert verdicts.loc["First reply", "verdict"] == "worse"
    sentence = (
        "First reply: worse. 80.0% breached (8 of 10) in the week of 29 Jan 2024, "
        "against 20.0% (4 of 20) in the 4 complete weeks before: 60.0 points more, "
        f"p = {p:.3f}."
    )
    assert f"<li>{sentence}</li>" in page
    assert result.takeaways["trend"] == (
        f"Week of 29 Jan 2024 vs the weeks before: First reply worse (80.0% vs 20.0%, p={p:.3f})."
    )
    assert f"<p class='takeaway'>{result.takeaways['trend']}</p>" in page
    # the update metrics have one complete week and nothing before it
    assert (
        "<li>Periodic update: not enough data to compare the week of 29 Jan 2024 with the "
        "ones before.</li>"
    ) in page
    # Resolution's only week (5 Feb) is not complete
    assert "<li>Resolution: not enough data, no complete week yet.</li>" in page


@pytest.mark.slow
def test_report_lateness_pairing_funnel_and_due_sections(insight_targets, tmp_path):
    result = write_report(
        insight_targets,
        tmp_path,
        as_of=AS_OF,
        account="acme",
        breach_rates=reference_breach_rates,
        due=due_queue(),
        min_targets=5,
    )
    page = result.index.read_text(encoding="utf-8")
    cells = "".join
    # How late: first reply 4 x 0 min and 8 x 60 min (median of 12 = 60 min); periodic 3 x
    # 120 min; pausable 30 min; the open resolution breach 02:00 -> 06:00 = 4 h.
    late = result.tables["lateness"].set_index("metric_label")
    assert late["median_minutes"].to_dict() == {
        "First reply": 60.0,
        "Periodic update": 120.0,
        "Pausable update": 30.0,
        "Resolution": 240.0,
    }
    assert late.loc["Resolution", "open"] == 1
    assert list(late.index) == [
        "First reply",
        "Periodic update",
        "Pausable update",
        "Resolution",
    ]  # the metrics' usual order
    assert (
        cells(
            [
                "<tr><td>Resolution</td>",
                "<td class='num'>1</td>",
                "<td class='num'>1</td>",
                "<td class='num'>4.0 h</td>",
            ]
        )
        in page
    )
    assert result.takeaways["lateness"] == (
        "Breached Resolution targets end up latest: median 4.0 h past the target (p90 4.0 h); "
        "Pausable update the least late (median 30 min)."
    )

    # Periodic vs pausable: 3 periodic breaches, 2 with the pausable achieved.
    assert result.takeaways["pairing"] == (
        "Waiting on the customer explains 2 of 3 periodic-update breaches (67%): the pausable "
        "update was achieved on them."
    )
    by_policy = result.tables["pairing_by_policy"].set_index("policy_title")
    assert by_policy["explained_by_waiting"].to_dict() == {"Gold": 0.5, "Silver": 1.0}
    num = "<td class='num'>{}</td>"
    assert (
        "<tr><td>Gold</td>"
        + num.format(2)
        + num.format(0)
        + num.format(1)
        + num.format(0)
        + num.format(1)
        + num.format(0)
        + num.format("50.0%")
        + "</tr>"
    ) in page
    assert "update_pairing_by_policy" in result.charts

    # League table of groups (targets without a group are not a unit): Tier 1 4 of 20,
    # Tier 2 8 of 11; overall 12/31. Tier 2's upper limits at n=11: 95% 0.387 + 1.96 se =
    # 0.675, 99.8% 0.387 + 3.09 se = 0.841 (se = sqrt(p0 (1 - p0) / 11)), so it is above
    # the 95% limit only.
    p0 = 12 / 31
    se = math.sqrt(p0 * (1 - p0) / 11)
    funnel = result.tables["funnel"].set_index("group_name")
    assert set(funnel.index) == {"Tier 1", "Tier 2"}
    assert funnel.loc["Tier 2", "upper_95"] == pytest.approx(p0 + 1.959964 * se)
    assert funnel.loc["Tier 2", "position"] == "above 95% limit"
    assert funnel.loc["Tier 1", "position"] == "within limits"
    assert result.takeaways["funnel"] == (
        "Every group is within the 99.8% limits around the overall 38.7%: differences are "
        "what chance alone gives."
    )
    assert "<tr><td>Tier 2</td>" + num.format(11) + num.format(8) + num.format("72.7%") in page

    # Due next: Ann 2 due (+1 past its estimate), Bo 1 due at exactly 4 h, 1 unknown.
    queue = result.tables["due"].set_index("assignee_name")
    assert queue[["due", "overdue_estimate", "unknown_due"]].to_dict("index") == {
        "Ann": {"due": 2, "overdue_estimate": 1, "unknown_due": 0},
        "Bo": {"due": 1, "overdue_estimate": 0, "unknown_due": 1},
    }
    assert result.takeaways["due"] == (
        "3 SLA targets fall due within 4h, the first at 2024-02-05 06:30 UTC; most in "
        "Tier 1 / Ann (2); 1 past its estimated due time, 1 with no due time yet (business "
        "hours or a paused clock)."
    )
    assert (
        "<tr><td>Tier 1</td><td>Ann</td>"
        + num.format(2)
        + num.format(1)
        + num.format(0)
        + num.format("2024-02-05 06:30")
        + "</tr>"
    ) in page

    # every section has its takeaway on the page, and every insight chart its subtitle
    for text in result.takeaways.values():
        assert f"<p class='takeaway'>{text}</p>" in page
    line = "acme · SLAs applied 2024-01-01 to 2024-02-05 · data as of 2024-02-05 06:00 UTC"
    for name in ("lateness_by_metric", "update_pairing_by_policy", "funnel_by_group"):
        assert line in (tmp_path / f"{name}.svg").read_text(encoding="utf-8"), name

"""One-sentence takeaways computed from the insight tables, shared by the deck and the report.

Each function takes a table computed by :mod:`zdevents.analysis.sla` or :mod:`zdevents.analysis.insights` and
returns plain text (no markup): the sentence a manager reads under a chart.
"""

from __future__ import annotations

import pandas as pd

from ..analysis.labels import metric_sort_key
from .insight_charts import format_minutes

__all__ = [
    "due_takeaway",
    "funnel_takeaway",
    "in_metric_order",
    "lateness_takeaway",
    "pairing_takeaway",
    "pct",
    "rates_takeaway",
    "trend_takeaway",
    "unit_noun",
    "verdict_sentences",
]


def pct(value: float) -> str:
    """A proportion as a percentage with one decimal; "n/a" when missing.

    Examples
    --------
    >>> pct(0.25), pct(float("nan"))
    ('25.0%', 'n/a')
    """
    return "n/a" if pd.isna(value) else f"{value:.1%}"


def unit_noun(unit: str) -> str:
    """The analyst's word for a unit column: ``group_name`` -> "group".

    Examples
    --------
    >>> unit_noun("group_name"), unit_noun("assignee_id")
    ('group', 'assignee')
    """
    return unit.replace("_name", "").replace("_id", "").replace("_", " ")


def in_metric_order(table: pd.DataFrame, column: str = "metric_label") -> pd.DataFrame:
    """The rows in the metrics' usual order (first reply ... resolution), unknown labels last.

    Examples
    --------
    >>> table = pd.DataFrame({"metric_label": ["Resolution", "Agent work", "First reply"]})
    >>> in_metric_order(table)["metric_label"].tolist()
    ['First reply', 'Agent work', 'Resolution']
    """
    if table.empty or column not in table.columns:
        return table
    rank = table[column].astype(str).map(lambda label: metric_sort_key(label)[0])
    ordered = table.assign(_rank=rank.to_numpy()).sort_values(["_rank", column], kind="mergesort")
    return ordered.drop(columns="_rank").reset_index(drop=True)


def rates_takeaway(rates: pd.DataFrame) -> str:
    """The metric that breaches most often (``zd.breach_rates(targets, by="metric_label")``).

    Examples
    --------
    >>> rates = pd.DataFrame({"metric_label": ["First reply"], "breached": [1],
    ...     "achieved": [3], "breach_rate": [0.25], "ci_low": [0.046], "ci_high": [0.699]})
    >>> rates_takeaway(rates)
    'First reply breaches most often: 25.0% of 4 completed targets (95% CI 4.6%-69.9%).'
    """
    done = rates[(rates["breached"] + rates["achieved"]) > 0]
    if done.empty:
        return "No SLA target has been completed yet."
    worst = done.sort_values(["breach_rate", "breached"], ascending=False).iloc[0]
    n = int(worst["breached"] + worst["achieved"])
    return (
        f"{worst['metric_label']} breaches most often: {pct(worst['breach_rate'])} of "
        f"{n:,} completed targets (95% CI {pct(worst['ci_low'])}-{pct(worst['ci_high'])})."
    )


def _period_word(verdicts: pd.DataFrame) -> str:
    method = str(verdicts.attrs.get("zdevents_method", ""))
    return "Month" if "complete month" in method else "Week"


def trend_takeaway(verdicts: pd.DataFrame) -> str:
    """The metrics whose latest complete period is significantly better or worse.

    ``verdicts`` is :func:`zdevents.trend_verdicts` by ``metric_label``; incomplete periods
    are never in it.

    Examples
    --------
    >>> verdicts = pd.DataFrame({"metric_label": ["First reply"], "verdict": ["worse"],
    ...     "latest_period": [pd.Timestamp("2024-03-04", tz="UTC")], "latest_rate": [0.5],
    ...     "baseline_rate": [0.2], "p_value": [0.012]})
    >>> trend_takeaway(verdicts)
    'Week of 04 Mar 2024 vs the weeks before: First reply worse (50.0% vs 20.0%, p=0.012).'
    """
    known = verdicts[verdicts["verdict"] != "not enough data"]
    word = _period_word(verdicts)
    if known.empty:
        return f"Not enough complete {word.lower()}s yet to say whether breach rates are changing."
    when = known["latest_period"].max()
    head = f"{word} of {when:%d %b %Y}"
    earlier = in_metric_order(known[known["latest_period"] != when])
    if not earlier.empty:  # a metric whose newest week is not complete yet: say which week
        spans = [
            f"{period:%d %b %Y} for " + " and ".join(rows["metric_label"].astype(str))
            for period, rows in earlier.groupby("latest_period", sort=True)
        ]
        head += f" ({word.lower()} of {'; '.join(spans)})"
    moved = known[known["verdict"].isin(["better", "worse"])]
    if moved.empty:
        return (
            f"{head} vs the {word.lower()}s before: no metric changed "
            "significantly (two-proportion z-test, p < 0.05)."
        )
    parts = [
        f"{r.metric_label} {r.verdict} ({pct(r.latest_rate)} vs {pct(r.baseline_rate)}, "
        f"p={r.p_value:.3f})"
        for r in moved.itertuples()
    ]
    rest = len(known) - len(moved)
    tail = (
        f"; no significant change on {rest} other metric{'s' if rest != 1 else ''}" if rest else ""
    )
    return f"{head} vs the {word.lower()}s before: " + "; ".join(parts) + tail + "."


def verdict_sentences(verdicts: pd.DataFrame, by: str = "metric_label") -> list[str]:
    """Each row of :func:`zdevents.trend_verdicts` stated in words, one sentence per metric
    (in the metrics' usual order).

    Examples
    --------
    >>> verdicts = pd.DataFrame({"metric_label": ["First reply"], "verdict": ["better"],
    ...     "latest_period": [pd.Timestamp("2024-03-04", tz="UTC")], "latest_breached": [2],
    ...     "latest_completed": [20], "latest_rate": [0.1], "baseline_periods": [4],
    ...     "baseline_breached": [20], "baseline_completed": [80], "baseline_rate": [0.25],
    ...     "rate_change": [-0.15], "p_value": [0.0021]})
    >>> print(verdict_sentences(verdicts)[0])
    First reply: better. 10.0% breached (2 of 20) in the week of 04 Mar 2024, against 25.0% (20 of 80) in the 4 complete weeks before: 15.0 points fewer, p = 0.002.
    """
    word = _period_word(verdicts).lower()
    out = []
    for row in in_metric_order(verdicts, by).to_dict("records"):
        name = row[by]
        if row["verdict"] == "not enough data":
            if pd.isna(row["latest_period"]):
                out.append(f"{name}: not enough data, no complete {word} yet.")
            else:
                out.append(
                    f"{name}: not enough data to compare the {word} of "
                    f"{row['latest_period']:%d %b %Y} with the ones before."
                )
            continue
        n_base = int(row["baseline_periods"])
        change = float(row["rate_change"]) * 100
        direction = "fewer" if change < 0 else "more"
        out.append(
            f"{name}: {row['verdict']}. {pct(row['latest_rate'])} breached "
            f"({int(row['latest_breached']):,} of {int(row['latest_completed']):,}) in the "
            f"{word} of {row['latest_period']:%d %b %Y}, against {pct(row['baseline_rate'])} "
            f"({int(row['baseline_breached']):,} of {int(row['baseline_completed']):,}) in the "
            f"{n_base} complete {word}{'s' if n_base != 1 else ''} before: "
            f"{abs(change):.1f} points {direction}, p = {row['p_value']:.3f}."
        )
    return out


def lateness_takeaway(summary: pd.DataFrame) -> str:
    """The latest and least late metric (:func:`zdevents.lateness_summary` by metric_label).

    Examples
    --------
    >>> summary = pd.DataFrame({"metric_label": ["First reply", "Resolution"],
    ...     "median_minutes": [45.0, 600.0], "p90_minutes": [90.0, 3000.0]})
    >>> lateness_takeaway(summary)
    'Breached Resolution targets end up latest: median 10.0 h past the target (p90 2.1 d); First reply the least late (median 45 min).'
    """
    if summary.empty:
        return "No SLA target has breached."
    worst = summary.sort_values("median_minutes", ascending=False).iloc[0]
    head = (
        f"median {format_minutes(worst['median_minutes'])} past the target "
        f"(p90 {format_minutes(worst['p90_minutes'])})"
    )
    if len(summary) == 1:
        return f"Breached {worst['metric_label']} targets end up a {head}."
    best = summary.sort_values("median_minutes").iloc[0]
    return (
        f"Breached {worst['metric_label']} targets end up latest: {head}; "
        f"{best['metric_label']} the least late (median "
        f"{format_minutes(best['median_minutes'])})."
    )


def pairing_takeaway(overall: pd.DataFrame) -> str:
    """How many periodic-update breaches waiting on the customer explains
    (:func:`zdevents.update_pairing_summary` with ``by=None``).

    Examples
    --------
    >>> overall = pd.DataFrame({"periodic only": [3], "periodic_breached": [4],
    ...                         "explained_by_waiting": [0.75]})
    >>> pairing_takeaway(overall)
    'Waiting on the customer explains 3 of 4 periodic-update breaches (75%): the pausable update was achieved on them.'
    """
    if overall.empty or int(overall["periodic_breached"].iloc[0]) == 0:
        return "No periodic update target has breached."
    row = overall.iloc[0]
    return (
        f"Waiting on the customer explains {int(row['periodic only']):,} of "
        f"{int(row['periodic_breached']):,} periodic-update breaches "
        f"({row['explained_by_waiting']:.0%}): the pausable update was achieved on them."
    )


def funnel_takeaway(table: pd.DataFrame, unit: str) -> str:
    """The units outside the 99.8% limits of :func:`zdevents.funnel_table`.

    Examples
    --------
    >>> table = pd.DataFrame({"group": ["A", "B"], "breach_rate": [0.1, 0.3],
    ...     "overall_rate": [0.2, 0.2], "position": ["within limits", "above 99.8% limit"]})
    >>> funnel_takeaway(table, "group")
    'Against the overall 20.0%, above the 99.8% limit: B (30.0%).'
    """
    if table.empty:
        return "No completed SLA targets to compare."
    p0 = table["overall_rate"].iloc[0]
    position = table["position"].astype(str)
    high = table[position.str.startswith("above 99.8")]
    low = table[position.str.startswith("below 99.8")]

    def names(part: pd.DataFrame) -> str:
        return ", ".join(f"{r[unit]} ({pct(r['breach_rate'])})" for _, r in part.iterrows())

    if high.empty and low.empty:
        return (
            f"Every {unit_noun(unit)} is within the 99.8% limits around the overall "
            f"{pct(p0)}: differences are what chance alone gives."
        )
    bits = []
    if not high.empty:
        bits.append(f"above the 99.8% limit: {names(high)}")
    if not low.empty:
        bits.append(f"below the 99.8% limit: {names(low)}")
    return f"Against the overall {pct(p0)}, " + "; ".join(bits) + "."


def due_takeaway(summary: pd.DataFrame, within: str) -> str:
    """What falls due next (:func:`zdevents.due_summary`), and where most of it is.

    Examples
    --------
    >>> summary = pd.DataFrame({"group_name": ["Tier 1", "Tier 2"], "due": [3, 1],
    ...     "overdue_estimate": [0, 1], "unknown_due": [2, 0],
    ...     "next_due_at": [pd.Timestamp("2024-01-01 10:15", tz="UTC"), pd.NaT]})
    >>> due_takeaway(summary, "4h")
    '4 SLA targets fall due within 4h, the first at 2024-01-01 10:15 UTC; most in Tier 1 (3); 1 past its estimated due time, 2 with no due time yet (business hours or a paused clock).'
    """
    due = int(summary["due"].sum()) if len(summary) else 0
    overdue = int(summary["overdue_estimate"].sum()) if len(summary) else 0
    unknown = int(summary["unknown_due"].sum()) if len(summary) else 0
    extra = []
    if overdue:
        extra.append(f"{overdue:,} past {'its' if overdue == 1 else 'their'} estimated due time")
    if unknown:
        extra.append(f"{unknown:,} with no due time yet (business hours or a paused clock)")
    tail = ("; " + ", ".join(extra)) if extra else ""
    if due == 0:
        return f"No SLA target falls due within {within}{tail}."
    first = summary["next_due_at"].min()
    keys = [
        c
        for c in summary.columns
        if c not in ("due", "overdue_estimate", "unknown_due", "next_due_at")
    ]
    where = ""
    if keys:
        top = summary.sort_values("due", ascending=False, kind="mergesort").iloc[0]
        name = " / ".join(str(top[k]) for k in keys)
        where = f"; most in {name} ({int(top['due']):,})"
    return (
        f"{due:,} SLA target{'s' if due != 1 else ''} fall{'' if due != 1 else 's'} due "
        f"within {within}, the first at {first:%Y-%m-%d %H:%M} UTC{where}{tail}."
    )

"""The HTML report's insight sections: how late, is it really better, periodic vs pausable,
the league table of groups and what is due next.

:func:`insight_tables` computes the tables (with :mod:`zdevents.analysis.insights`) and their
one-sentence takeaways (with :mod:`zdevents.viz.takeaways`, the same sentences as the deck);
:func:`insight_drawers` gives the charts; :func:`insight_html` renders each section as HTML.
Used by :func:`zdevents.viz.report.write_report`.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
from matplotlib.axes import Axes

from ..analysis import insights
from . import insight_charts, takeaways

__all__ = ["InsightTables", "insight_drawers", "insight_html", "insight_tables"]

_LABEL = "metric_label"
_NONE = "(none)"
_LATENESS = ("breached_at", "fulfilled_at", "outcome")
_PAIRS = ("ticket_id", "metric", "instance_id", "outcome", "breached_at")
_TREND = ("outcome", "applied_at")


@dataclass
class InsightTables:
    """The insight tables of one report, their takeaways, and why a section is left out."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    takeaways: dict[str, str] = field(default_factory=dict)
    #: The trend verdicts in words, one sentence per metric.
    verdict_sentences: list[str] = field(default_factory=list)
    #: Section -> why it has no table (missing as-of time, columns or due targets).
    notes: dict[str, str] = field(default_factory=dict)
    late: pd.DataFrame | None = None
    group_col: str | None = None
    within: str = "4h"
    k: int = 4


def _has(frame: pd.DataFrame, columns: Sequence[str]) -> bool:
    return all(c in frame.columns for c in columns)


def insight_tables(
    frame: pd.DataFrame,
    *,
    as_of: pd.Timestamp | None,
    group_col: str | None,
    due: pd.DataFrame | None,
    within: str = "4h",
    k: int = 4,
    min_targets: int = 30,
) -> InsightTables:
    """Compute every insight table of the report from its prepared targets.

    ``frame`` is the report's targets (``metric_label`` set; missing policies and groups
    read ``"(none)"``); ``due`` is :func:`zdevents.due_targets` output or None.

    Examples
    --------
    >>> found = insight_tables(targets, as_of=as_of, group_col="group_name", due=None)  # doctest: +SKIP
    >>> found.takeaways["lateness"]  # doctest: +SKIP
    """
    out = InsightTables(group_col=group_col, within=within, k=k)
    no_as_of = "not shown: the data's as-of time is unknown."
    if as_of is None or not _has(frame, (*_TREND, _LABEL)):
        out.notes["trend"] = no_as_of if as_of is None else "not shown: no applied_at column."
    else:
        verdicts = insights.trend_verdicts(frame, by=_LABEL, k=k, as_of=as_of)
        verdicts = takeaways.in_metric_order(verdicts)
        out.tables["verdicts"] = verdicts
        out.takeaways["trend"] = takeaways.trend_takeaway(verdicts)
        out.verdict_sentences = takeaways.verdict_sentences(verdicts)
    if as_of is None or not _has(frame, (*_LATENESS, _LABEL)):
        out.notes["lateness"] = (
            no_as_of if as_of is None else "not shown: no breached_at or fulfilled_at column."
        )
    else:
        out.late = insights.lateness(frame, as_of=as_of)
        summary = takeaways.in_metric_order(insights.lateness_summary(out.late, by=_LABEL))
        out.tables["lateness"] = summary
        out.takeaways["lateness"] = takeaways.lateness_takeaway(summary)
    if not _has(frame, _PAIRS):
        out.notes["pairing"] = "not shown: the targets lack the ticket and instance columns."
    else:
        pairs = insights.update_pairs(frame)
        if pairs.empty:
            out.notes["pairing"] = "no ticket has both a periodic and a pausable update target."
        else:
            overall = insights.update_pairing_summary(pairs, by=None)
            out.tables["pairing"] = overall
            out.takeaways["pairing"] = takeaways.pairing_takeaway(overall)
            if "policy_title" in pairs.columns:
                out.tables["pairing_by_policy"] = insights.update_pairing_summary(
                    pairs, by="policy_title"
                )
            if group_col is not None and group_col in pairs.columns:
                out.tables["pairing_by_group"] = insights.update_pairing_summary(
                    pairs, by=group_col
                )
    if group_col is None:
        out.notes["funnel"] = "not shown: the targets have no group column."
    else:
        # targets without a group are not a unit of the league table
        units = frame.assign(**{group_col: frame[group_col].where(frame[group_col] != _NONE)})
        funnel = insights.funnel_table(units, by=group_col, min_targets=min_targets)
        out.tables["funnel"] = funnel
        out.takeaways["funnel"] = takeaways.funnel_takeaway(funnel, group_col)
    if due is None:
        out.notes["due"] = (
            "not shown: the queue needs the metric events (zd.build_report "
            "and `zdevents report` include it)."
        )
    else:
        queue = insights.due_summary(due, within)
        out.tables["due"] = queue
        out.takeaways["due"] = takeaways.due_takeaway(queue, within)
    return out


def insight_drawers(found: InsightTables, subtitle: str) -> dict[str, Callable[[], Axes]]:
    """The insight charts the tables allow, keyed by their file stem."""
    drawers: dict[str, Callable[[], Axes]] = {}
    late = found.late
    if late is not None:
        drawers["lateness_by_metric"] = lambda: insight_charts.plot_lateness(
            late, subtitle=subtitle
        )
    pairing = found.tables.get("pairing_by_policy", found.tables.get("pairing"))
    if pairing is not None:
        drawers["update_pairing_by_policy"] = lambda: insight_charts.plot_update_pairing(
            pairing, subtitle=subtitle
        )
    funnel, unit = found.tables.get("funnel"), found.group_col
    if funnel is not None and unit is not None:
        drawers["funnel_by_group"] = lambda: insight_charts.plot_funnel(
            funnel, by=unit, subtitle=subtitle
        )
    return drawers


# ---------------------------------------------------------------- HTML


Grid = Callable[[str, Sequence[str], Sequence[Sequence[str]], Sequence[bool]], str]


def _pct(value: object) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{float(value):.1%}"


def _int(value: object) -> str:
    return "-" if value is None or pd.isna(value) else f"{int(value):,}"


def _minutes(value: object) -> str:
    return "-" if value is None or pd.isna(value) else insight_charts.format_minutes(float(value))


def _day(value: object) -> str:
    return "-" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d}"


def _takeaway(found: InsightTables, key: str) -> list[str]:
    if key in found.notes:
        return [f"<p class='note'>{html.escape(found.notes[key])}</p>"]
    return [f"<p class='takeaway'>{html.escape(found.takeaways[key])}</p>"]


def _trend(found: InsightTables, grid: Grid) -> list[str]:
    parts = _takeaway(found, "trend")
    verdicts = found.tables.get("verdicts")
    if verdicts is None:
        return parts
    parts.append(
        "<ul class='verdicts'>"
        + "".join(f"<li>{html.escape(s)}</li>" for s in found.verdict_sentences)
        + "</ul>"
    )
    rows = [
        [
            str(r[_LABEL]),
            str(r["verdict"]),
            _day(r["latest_period"]),
            f"{_pct(r['latest_rate'])} ({_int(r['latest_breached'])} of "
            f"{_int(r['latest_completed'])})",
            f"{_pct(r['baseline_rate'])} ({_int(r['baseline_breached'])} of "
            f"{_int(r['baseline_completed'])})",
            "-" if pd.isna(r["rate_change"]) else f"{r['rate_change'] * 100:+.1f} pts",
            "-" if pd.isna(r["p_value"]) else f"{r['p_value']:.3f}",
        ]
        for r in verdicts.to_dict("records")
    ]
    method = verdicts.attrs.get("zdevents_method", "")
    parts.append(
        grid(
            f"Trend verdicts by metric. Method: {method}",
            [
                "metric",
                "verdict",
                "latest complete week",
                "breach rate",
                "weeks before",
                "change",
                "p-value",
            ],
            rows,
            [False, False, False, True, True, True, True],
        )
    )
    return parts


def _lateness(found: InsightTables, grid: Grid, figure: Callable[[str], str]) -> list[str]:
    parts = _takeaway(found, "lateness")
    table = found.tables.get("lateness")
    if table is None:
        return parts
    rows = [
        [
            str(r[_LABEL]),
            _int(r["breached"]),
            _int(r["open"]),
            _minutes(r["median_minutes"]),
            _minutes(r["p90_minutes"]),
            _minutes(r["max_minutes"]),
        ]
        for r in table.to_dict("records")
    ]
    parts.append(
        grid(
            "Time past the target, breached targets (open ones up to the as-of time)",
            ["metric", "breached", "still open", "median", "p90", "longest"],
            rows,
            [False, True, True, True, True, True],
        )
    )
    parts.append(figure("lateness_by_metric"))
    return parts


def _pairing_rows(table: pd.DataFrame, key: str | None) -> list[list[str]]:
    rows = []
    for r in table.to_dict("records"):
        rows.append(
            [
                str(r[key]) if key else "all",
                _int(r["pairs"]),
                _int(r["both achieved"]),
                _int(r["periodic only"]),
                _int(r["pausable only"]),
                _int(r["both breached"]),
                _int(r["open"]),
                _pct(r["explained_by_waiting"]),
            ]
        )
    return rows


def _pairing(found: InsightTables, grid: Grid, figure: Callable[[str], str]) -> list[str]:
    parts = _takeaway(found, "pairing")
    headers = [
        "pairs",
        "both achieved",
        "periodic only",
        "pausable only",
        "both breached",
        "open",
        "explained by waiting",
    ]
    numeric = [False] + [True] * len(headers)
    for name, key, noun in (
        ("pairing_by_policy", "policy_title", "policy"),
        ("pairing_by_group", found.group_col, "group"),
    ):
        table = found.tables.get(name)
        if table is not None and key is not None:
            parts.append(
                grid(
                    f"Periodic and pausable update per ticket instance, by {noun}",
                    [noun, *headers],
                    _pairing_rows(table, key),
                    numeric,
                )
            )
    if "pairing" in found.tables:
        parts.append(figure("update_pairing_by_policy"))
    return parts


def _funnel(found: InsightTables, grid: Grid, figure: Callable[[str], str]) -> list[str]:
    parts = _takeaway(found, "funnel")
    table, unit = found.tables.get("funnel"), found.group_col
    if table is None or unit is None:
        return parts
    rows = [
        [
            str(r[unit]),
            _int(r["completed"]),
            _int(r["breached"]),
            _pct(r["breach_rate"]),
            f"{_pct(r['lower_95'])}-{_pct(r['upper_95'])}",
            f"{_pct(r['lower_998'])}-{_pct(r['upper_998'])}",
            str(r["position"]),
            _int(r["rank"]),
            _pct(r.get("shrunk_rate")),
        ]
        for r in table.to_dict("records")
    ]
    parts.append(
        grid(
            f"League table of groups. Method: {table.attrs.get('zdevents_method', '')}",
            [
                "group",
                "completed",
                "breached",
                "breach rate",
                "95% limits",
                "99.8% limits",
                "position",
                "rank",
                "shrunk rate",
            ],
            rows,
            [False, True, True, True, True, True, False, True, True],
        )
    )
    parts.append(figure("funnel_by_group"))
    return parts


def _due(found: InsightTables, grid: Grid) -> list[str]:
    parts = _takeaway(found, "due")
    table = found.tables.get("due")
    if table is not None:  # who has something due or overdue (unknown due times: the takeaway)
        table = table[(table["due"] + table["overdue_estimate"]) > 0]
    if table is None or table.empty:
        return parts
    keys = [
        c
        for c in table.columns
        if c not in ("due", "overdue_estimate", "unknown_due", "next_due_at")
    ]
    rows = [
        [
            *(str(r[k]) for k in keys),
            _int(r["due"]),
            _int(r["overdue_estimate"]),
            _int(r["unknown_due"]),
            "-" if pd.isna(r["next_due_at"]) else f"{r['next_due_at']:%Y-%m-%d %H:%M}",
        ]
        for r in table.to_dict("records")
    ]
    headers = [k.replace("_name", "").replace("_id", " id") for k in keys]
    parts.append(
        grid(
            f"Active targets falling due within {found.within} (or past their "
            "estimated due time), by group and assignee",
            [
                *headers,
                f"due within {found.within}",
                "past estimated due",
                "due time unknown",
                "next due (UTC)",
            ],
            rows,
            [False] * len(keys) + [True] * 4,
        )
    )
    return parts


def insight_html(
    found: InsightTables, section: str, grid: Grid, figure: Callable[[str], str]
) -> list[str]:
    """The HTML of one insight section (``trend``, ``lateness``, ``pairing``, ``funnel`` or
    ``due``), heading excluded."""
    if section == "trend":
        return _trend(found, grid)
    if section == "lateness":
        return _lateness(found, grid, figure)
    if section == "pairing":
        return _pairing(found, grid, figure)
    if section == "funnel":
        return _funnel(found, grid, figure)
    if section == "due":
        return _due(found, grid)
    raise ValueError(f"unknown report section {section!r}")

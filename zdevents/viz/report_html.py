"""The report's words: breach-rate tables as plain text and HTML, and the HTML page itself.

:func:`format_rates_table` is the command line's table; :func:`render_report_html` the
self-contained page that :func:`zdevents.viz.report.write_report` writes.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..analysis.labels import LABEL_COLUMNS, metric_labels, metric_sort_key
from .report_insights import InsightTables, insight_html

__all__ = [
    "CAPTIONS",
    "CSS",
    "NO_VALUE",
    "RATE_STATS",
    "format_rates_table",
    "html_grid",
    "html_rates_table",
    "period_text",
    "rates_rows",
    "render_report_html",
]

#: The statistic columns of a ``breach_rates`` frame; every other column is a group key.
RATE_STATS = (
    "breached",
    "achieved",
    "active",
    "targets",
    "breach_rate",
    "achievement_rate",
    "ci_low",
    "ci_high",
)
_PRIORITY_ORDER = ("low", "normal", "high", "urgent")
#: How a missing group key (no priority, no group...) reads in tables and charts.
NO_VALUE = "(none)"


def _key_columns(rates: pd.DataFrame) -> list[str]:
    return [c for c in rates.columns if c not in RATE_STATS]


def _percent(value: object, digits: int = 1) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    return f"{float(value) * 100:.{digits}f}%"


def _interval(low: object, high: object) -> str:
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return "-"
    return f"{float(low) * 100:.1f}-{float(high) * 100:.1f}%"


def _count(value: object) -> str:
    return "0" if value is None or pd.isna(value) else f"{int(value):,}"


def rates_rows(rates: pd.DataFrame) -> tuple[list[str], list[list[str]], list[bool]]:
    """Headers, rows of strings and which columns are numeric, in a readable order.

    Metric names get human labels; groups sort in metric order, priorities low to urgent.
    """
    keys = _key_columns(rates)
    frame = rates.reset_index(drop=True)
    shown: dict[str, pd.Series] = {}
    if "metric" in keys:
        shown["metric"] = metric_labels(frame) if len(frame) else pd.Series([], dtype=object)
        hidden = {"metric", "instance_id", *LABEL_COLUMNS}
    else:
        hidden = set()
    for key in keys:
        if key in hidden:
            continue
        col = frame[key]
        if key == "period":
            col = pd.to_datetime(col, utc=True).dt.strftime("%Y-%m-%d")
        shown[key.replace("_", " ")] = col.astype(object).map(
            lambda v: NO_VALUE if v is None or pd.isna(v) else str(v)
        )
    order = sorted(
        range(len(frame)),
        key=lambda i: tuple(_sort_key(name, s.iloc[i]) for name, s in shown.items()),
    )
    headers = [*shown, "breach rate", "95% CI", "breached", "achieved", "active"]
    rows = []
    for i in order:
        row = frame.iloc[i]
        rows.append(
            [
                *(str(s.iloc[i]) for s in shown.values()),
                _percent(row.get("breach_rate")),
                _interval(row.get("ci_low"), row.get("ci_high")),
                _count(row.get("breached")),
                _count(row.get("achieved")),
                _count(row.get("active")),
            ]
        )
    numeric = [False] * len(shown) + [True] * 5
    return headers, rows, numeric


def _sort_key(name: str, value: str) -> tuple[int, str]:
    if name == "metric":
        return metric_sort_key(value)
    if name == "priority" and value.lower() in _PRIORITY_ORDER:
        return (_PRIORITY_ORDER.index(value.lower()), value)
    return (len(_PRIORITY_ORDER) + (value == NO_VALUE), value)


def format_rates_table(rates: pd.DataFrame) -> str:
    """A plain-text table of breach rates (one line per group) for the command line.

    Metric names are shown with human labels; missing rates (no completed targets) read
    "n/a".

    Examples
    --------
    >>> rates = pd.DataFrame({"metric": ["reply_time"], "instance_id": [1], "breached": [1],
    ...     "achieved": [3], "active": [0], "targets": [4], "breach_rate": [0.25],
    ...     "achievement_rate": [0.75], "ci_low": [0.0456], "ci_high": [0.6994]})
    >>> print(format_rates_table(rates))
    metric       breach rate     95% CI  breached  achieved  active
    First reply        25.0%  4.6-69.9%         1         3       0
    """
    headers, rows, numeric = rates_rows(rates)
    if not rows:
        return "no SLA targets"
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def html_rates_table(rates: pd.DataFrame, caption: str) -> str:
    """A rates frame as an HTML table (:func:`rates_rows`), or a note when it is empty."""
    headers, rows, numeric = rates_rows(rates)
    if not rows:
        return f"<p class='note'>{html.escape(caption)}: no SLA targets.</p>"
    return html_grid(caption, headers, rows, numeric)


def html_grid(
    caption: str, headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool]
) -> str:
    """An HTML table of strings (escaped); numeric columns are right-aligned."""

    def cell(tag: str, text: str, num: bool) -> str:
        cls = " class='num'" if num else ""
        return f"<{tag}{cls}>{html.escape(text)}</{tag}>"

    head = "".join(cell("th", h, n) for h, n in zip(headers, numeric, strict=True))
    body = "\n".join(
        "<tr>" + "".join(cell("td", c, n) for c, n in zip(r, numeric, strict=True)) + "</tr>"
        for r in rows
    )
    return (
        f"<table>\n<caption>{html.escape(caption)}</caption>\n"
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"
    )


def period_text(targets: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None) -> str:
    """The period the report covers, in words: ``[start, end)`` or the span of ``applied_at``."""
    fmt = "%Y-%m-%d %H:%M UTC"
    if start is not None or end is not None:
        first = start.strftime(fmt) if start is not None else "the start of the data"
        last = end.strftime(fmt) if end is not None else "the end of the data"
        return f"targets whose SLA applied from {first} until {last} (exclusive)"
    if len(targets) and "applied_at" in targets.columns:
        applied = pd.to_datetime(targets["applied_at"], utc=True).dropna()
        if len(applied):
            return (
                f"targets whose SLA applied from {applied.min().strftime(fmt)} "
                f"to {applied.max().strftime(fmt)}"
            )
    return "no targets"


#: The page's inline style sheet.
CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;
max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}
h1{margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.meta{color:#555;margin:0}.note{background:#f6f6f6;border-left:4px solid #E69F00;
padding:.6em 1em;color:#333}
figure{margin:1.5em 0}figure img{max-width:100%;height:auto}
figcaption{color:#555;font-size:.9em}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
caption{text-align:left;font-weight:bold;padding:.3em 0}
th,td{padding:.3em .8em;border-bottom:1px solid #e3e3e3;text-align:left}
th{background:#f2f2f2}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:nth-child(even){background:#fafafa}
.takeaway{font-size:1.08em;font-weight:600;color:#1a1a1a}
ul.verdicts{padding-left:1.2em}ul.verdicts li{margin:.25em 0}
"""


#: The caption under each chart of the page, by chart name.
CAPTIONS = {
    "breach_rate_by_metric": "Breach rate by metric. Whiskers: 95% Wilson interval; "
    "n = completed (breached + achieved) targets.",
    "breach_trend_weekly": "Weekly breach rate, one panel per metric on shared axes (week the "
    "SLA applied). Shaded bands: 95% interval; hatched weeks still "
    "have open targets.",
    "breach_heatmap_metric_policy": "Breach rate by metric and SLA policy; grey cells have no "
    "completed targets.",
    "lateness_by_metric": "Time past the target of breached targets, per metric (log scale): "
    "boxes span the quartiles, whiskers the 5th-95th percentiles; "
    "targets still open count up to the as-of time.",
    "update_pairing_by_policy": "Periodic update breaches by what the pausable update did on "
    "the same ticket instance: achieved (the time waiting on the "
    "customer explains the breach) or also breached.",
    "funnel_by_group": "Breach rate of each group against its completed targets, with 95% and "
    "99.8% control limits around the overall rate; grey points have too "
    "few targets to be ranked.",
    "fulfilment_vs_target": "Time to fulfilment relative to the SLA target, fulfilled targets "
    "with a measured time only (n=K of N: K of the N completed targets "
    "the breach rates count); right of the dashed line is past the "
    "target.",
}


def render_report_html(
    title: str,
    targets: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    images: dict[str, bytes],
    as_of: pd.Timestamp | None,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    group_col: str | None,
    account: str | None = None,
    found: InsightTables | None = None,
    table_version: int | None = None,
) -> str:
    """The self-contained HTML page of the report: tables, the charts' PNGs inline, the
    insight sections of :mod:`zdevents.viz.report_insights` (``images`` by chart name)."""
    esc = html.escape
    outcome = targets["outcome"].astype(object) if "outcome" in targets.columns else pd.Series()
    counts = {k: int(np.sum(outcome == k)) for k in ("breached", "achieved", "active")}
    as_of_text = as_of.strftime("%Y-%m-%d %H:%M UTC") if as_of is not None else "not recorded"
    if table_version is not None:
        as_of_text += f" (Delta table version {int(table_version)})"

    found = found if found is not None else InsightTables()

    def figure(name: str) -> str:
        if name not in images:
            return ""
        data = base64.b64encode(images[name]).decode("ascii")
        caption = CAPTIONS[name]
        return (
            f"<figure><img alt='{esc(caption, quote=True)}' "
            f"src='data:image/png;base64,{data}'>"
            f"<figcaption>{esc(caption)}</figcaption></figure>"
        )

    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        *([f"<p class='meta'>Account: {esc(account)}.</p>"] if account else []),
        f"<p class='meta'>Period: {esc(period_text(targets, start, end))}.</p>",
        f"<p class='meta'>Data as of: {esc(as_of_text)}.</p>",
        f"<p class='meta'>{len(targets):,} SLA targets: {counts['breached']:,} breached, "
        f"{counts['achieved']:,} achieved, {counts['active']:,} still open.</p>",
        "<p class='note'>Breach rate = breached / (breached + achieved). Targets still open "
        "(active) are left out. Recent weeks are censored: targets that applied shortly "
        "before the as-of time and are already finished are mostly the quick ones, so those "
        "weeks look better than they will once every target closes. The weekly chart "
        "hatches them.</p>",
        "<h2>Breach rate by metric</h2>",
        html_rates_table(tables["by_metric"], "Breach rate by metric"),
        figure("breach_rate_by_metric"),
        "<h2>Is it getting better?</h2>",
        *insight_html(found, "trend", html_grid, figure),
        figure("breach_trend_weekly"),
        "<h2>How late are breaches?</h2>",
        *insight_html(found, "lateness", html_grid, figure),
        "<h2>By SLA policy</h2>",
        figure("breach_heatmap_metric_policy"),
    ]
    if "by_policy" in tables:
        parts.append(html_rates_table(tables["by_policy"], "Breach rate by metric and policy"))
    parts += [
        "<h2>Periodic vs pausable update</h2>",
        *insight_html(found, "pairing", html_grid, figure),
    ]
    if "by_priority" in tables:
        parts += [
            "<h2>By priority</h2>",
            html_rates_table(tables["by_priority"], "Breach rate by ticket priority (all metrics)"),
        ]
    if "by_group" in tables and group_col is not None:
        parts += [
            "<h2>By group</h2>",
            html_rates_table(tables["by_group"], "Breach rate by group (all metrics)"),
            "<h3>Fair league table</h3>",
            *insight_html(found, "funnel", html_grid, figure),
        ]
    if "by_brand" in tables:
        parts += [
            "<h2>By brand</h2>",
            html_rates_table(tables["by_brand"], "Breach rate by brand (all metrics)"),
        ]
    parts += [
        "<h2>Due next</h2>",
        *insight_html(found, "due", html_grid, figure),
        "<h2>Time to fulfilment</h2>",
        figure("fulfilment_vs_target"),
        "<p class='meta'>Generated by zdevents.</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"

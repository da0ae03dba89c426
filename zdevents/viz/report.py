"""The SLA breach report: its charts and one self-contained HTML page.

:func:`write_report` takes SLA targets (from ``sla_targets``, optionally with ticket attributes
such as ``priority`` and ``group_name``), computes breach-rate tables with ``breach_rates`` and
writes, into one folder:

- the charts of :data:`CHART_NAMES` as PNG and SVG: breach rate by metric, the weekly trend,
  lateness by metric, the heatmap by policy, periodic vs pausable update, the funnel plot of
  groups and the fulfilment-to-target ratio;
- ``index.html``: inline CSS, charts embedded as base64 PNG (the single file still works when
  attached to an email), tables of rates by metric, policy, priority and group with 95% CIs,
  the period covered, the data's as-of time and a note on censoring of recent weeks; and the
  insight sections of :mod:`zdevents.viz.report_insights` (trend verdicts in words, lateness,
  periodic vs pausable, league table of groups, due next), each with a one-sentence takeaway.

:func:`format_rates_table` renders a rates frame as plain text for the command line.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..analysis.labels import LABEL_COLUMNS, metric_labels, metric_sort_key
from ..analysis.sla import applied_between
from ..dates import TimeLike, time_range, to_utc
from ..files import write_atomic
from . import charts
from .report_insights import InsightTables, insight_drawers, insight_html, insight_tables

__all__ = ["CHART_NAMES", "ReportResult", "format_rates_table", "write_report"]

logger = logging.getLogger(__name__)

#: File stems of the report's charts, in the order the HTML shows them. The lateness chart
#: needs the as-of time, the funnel plot a group column; the others are always written.
CHART_NAMES: tuple[str, ...] = (
    "breach_rate_by_metric",
    "breach_trend_weekly",
    "lateness_by_metric",
    "breach_heatmap_metric_policy",
    "update_pairing_by_policy",
    "funnel_by_group",
    "fulfilment_vs_target",
)
_STATS = (
    "breached",
    "achieved",
    "active",
    "targets",
    "breach_rate",
    "achievement_rate",
    "ci_low",
    "ci_high",
)
_GROUP_COLUMNS = ("group_name", "group", "group_id")
_BRAND_COLUMNS = ("brand_name", "brand_id")
_PRIORITY_ORDER = ("low", "normal", "high", "urgent")
_LABEL = "metric_label"
_NONE = "(none)"

BreachRates = Callable[..., pd.DataFrame]


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` wrote.

    Attributes
    ----------
    out_dir : Path
    index : Path
        The self-contained ``index.html``.
    files : list of Path
        Every file written (charts in each format, then ``index.html``).
    charts : dict of str to list of Path
        The files of each chart written, keyed by its name in :data:`CHART_NAMES`.
    by_metric : DataFrame
        Breach rates by metric (``metric``, ``metric_label`` with first/next reply split).
    tables : dict of str to DataFrame
        Every rates table: ``by_metric``, ``by_policy``, ``weekly`` and, when the targets have
        the columns, ``by_priority``, ``by_group`` and ``by_brand``; the insight tables
        ``verdicts`` (:func:`zdevents.trend_verdicts` by metric) and ``lateness``
        (:func:`zdevents.lateness_summary` by metric) when the as-of time is known,
        ``pairing`` (:func:`zdevents.update_pairing_summary`, overall), ``pairing_by_policy``
        and ``pairing_by_group``, ``funnel`` (:func:`zdevents.funnel_table` of groups) and
        ``due`` (:func:`zdevents.due_summary`) when the due targets were given.
    takeaways : dict of str to str
        The one-sentence takeaway of each insight section (``trend``, ``lateness``,
        ``pairing``, ``funnel``, ``due``), computed from the data.
    table_version : int or None
        The Delta table version the data was read from (shown beside the as-of time); None
        for a Parquet cache or when unknown.
    """

    out_dir: Path
    index: Path
    files: list[Path]
    charts: dict[str, list[Path]]
    by_metric: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    takeaways: dict[str, str] = field(default_factory=dict)
    table_version: int | None = None


# ---------------------------------------------------------------- tables


def _key_columns(rates: pd.DataFrame) -> list[str]:
    return [c for c in rates.columns if c not in _STATS]


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


def _display(rates: pd.DataFrame) -> tuple[list[str], list[list[str]], list[bool]]:
    """Headers, rows of strings and which columns are numeric, in a readable order."""
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
            lambda v: _NONE if v is None or pd.isna(v) else str(v)
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
    return (len(_PRIORITY_ORDER) + (value == _NONE), value)


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
    headers, rows, numeric = _display(rates)
    if not rows:
        return "no SLA targets"
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def _html_table(rates: pd.DataFrame, caption: str) -> str:
    headers, rows, numeric = _display(rates)
    if not rows:
        return f"<p class='note'>{html.escape(caption)}: no SLA targets.</p>"
    return _grid(caption, headers, rows, numeric)


def _grid(
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


# ---------------------------------------------------------------- computing


def _default_breach_rates() -> BreachRates:
    from ..analysis.sla import breach_rates

    return breach_rates


def _prepare(
    targets: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> pd.DataFrame:
    frame = targets
    if "applied_at" in frame.columns and (start is not None or end is not None):
        frame = applied_between(frame, start, end)
    frame = frame.copy()
    frame[_LABEL] = metric_labels(frame) if len(frame) else pd.Series([], dtype=object)
    for key in ("policy_title", "priority", *_GROUP_COLUMNS, *_BRAND_COLUMNS):
        if key in frame.columns:  # a missing key must not drop its targets from the tables
            frame[key] = (
                frame[key]
                .astype(object)
                .map(lambda v: _NONE if v is None or pd.isna(v) else str(v))
                .astype("string")
            )
    return frame


def _rates(
    breach_rates: BreachRates, targets: pd.DataFrame, by: list[str], freq: str | None = None
) -> pd.DataFrame:
    if not len(targets):
        columns = [*by, *(["period"] if freq else []), *_STATS]
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    rates = breach_rates(targets, by=by[0] if len(by) == 1 else by, freq=freq)
    return rates.reset_index(drop=True)


def _period_text(
    targets: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> str:
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


# ---------------------------------------------------------------- writing


def _png_bytes(ax: Axes, written: list[Path]) -> bytes:
    png = next((p for p in written if p.suffix == ".png"), None)
    if png is not None:
        return png.read_bytes()
    buffer = io.BytesIO()
    with charts.chart_style():
        ax.figure.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    return buffer.getvalue()


def _write_text(path: Path, text: str) -> None:
    """Write atomically (readers never see half a page)."""
    write_atomic(path, text.encode("utf-8"))


_CSS = """
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


def write_report(
    targets: pd.DataFrame,
    out_dir: str | Path,
    *,
    as_of: TimeLike,
    since: TimeLike = None,
    until: TimeLike = None,
    title: str = "SLA breach report",
    account: str | None = None,
    breach_rates: BreachRates | None = None,
    formats: Iterable[str] = ("png", "svg"),
    due: pd.DataFrame | None = None,
    within: str = "4h",
    k: int = 4,
    min_targets: int = 30,
    table_version: int | None = None,
) -> ReportResult:
    """Write the SLA charts and a self-contained ``index.html`` into ``out_dir``.

    The page has the breach rates (by metric, week, policy, priority, group and brand), and
    the answers past them, each with a one-sentence takeaway computed from the data (the
    same sentences as :func:`zdevents.build_deck`): is it really getting better (trend
    verdicts in words, complete weeks only), how late breaches end up (table and chart),
    periodic vs pausable update (table by policy and group, chart), the groups' league
    table (funnel plot and outliers) and what is due next (when ``due`` is given).

    Parameters
    ----------
    targets : DataFrame
        One row per SLA target (``sla_targets``), optionally with ``priority``, a group
        column (``group_name``, ``group`` or ``group_id``, first found) and a brand column
        (``brand_name`` or ``brand_id``). A ``metric_label``
        column (first/next reply split) is added from ``instance_id`` when absent.
    out_dir : str or Path
        Created when missing; existing report files are overwritten.
    as_of : str, datetime, Timestamp, epoch seconds or None
        The data's as-of time (the export's horizon), shown in the report and used to mark
        the censored weeks of the trend; None when unknown.
    since, until : optional
        Keep targets whose SLA applied in ``[since, until)`` (naive = UTC); shown as the
        period covered (otherwise the span of ``applied_at``).
    title : str
        The page title.
    account : str, optional
        The account's name, shown on the page and in every chart's subtitle with the period
        and the as-of time.
    breach_rates : callable, optional
        ``breach_rates(targets, by=..., freq=...)``; defaults to
        :func:`zdevents.analysis.sla.breach_rates`.
    formats : iterable of {"png", "svg", "pdf"}
        Chart file formats. The HTML always embeds PNG.
    due : DataFrame, optional
        :func:`zdevents.due_targets` at ``as_of`` (with ``group_name``/``assignee_name`` or
        the ids when attached): the due-next section. Without it the section says so.
    within : str, default "4h"
        The due-next horizon.
    k : int, default 4
        Complete weeks before the latest that the trend verdict compares it with.
    min_targets : int, default 30
        Completed targets a group needs to be ranked in the league table.
    table_version : int, optional
        The Delta table version the events were read from, shown beside the as-of time.
        Default: ``targets.attrs["zdevents_table_version"]`` when present.

    Returns
    -------
    ReportResult

    Examples
    --------
    >>> result = write_report(targets, "reports", as_of="2024-07-01")  # doctest: +SKIP
    >>> print(format_rates_table(result.by_metric))  # doctest: +SKIP
    """
    rates_fn = breach_rates if breach_rates is not None else _default_breach_rates()
    cutoff = to_utc(as_of, name="as_of")
    if table_version is None:
        table_version = targets.attrs.get("zdevents_table_version")
    start, end = time_range(since, until)
    frame = _prepare(targets, start, end)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    metric_keys = ["metric", _LABEL]
    tables = {
        "by_metric": _rates(rates_fn, frame, metric_keys),
        "by_policy": _rates(rates_fn, frame, [*metric_keys, "policy_title"])
        if "policy_title" in frame.columns
        else None,
        "by_priority": _rates(rates_fn, frame, ["priority"])
        if "priority" in frame.columns
        else None,
        "weekly": _rates(rates_fn, frame, metric_keys, freq="W"),
    }
    group_col = next((c for c in _GROUP_COLUMNS if c in frame.columns), None)
    if group_col is not None:
        tables["by_group"] = _rates(rates_fn, frame, [group_col])
    brand_col = next((c for c in _BRAND_COLUMNS if c in frame.columns), None)
    if brand_col is not None:
        tables["by_brand"] = _rates(rates_fn, frame, [brand_col])
    tables = {k: v for k, v in tables.items() if v is not None}

    found = insight_tables(
        frame,
        as_of=cutoff,
        group_col=group_col,
        due=due,
        within=within,
        k=k,
        min_targets=min_targets,
    )
    tables.update(found.tables)

    subtitle = charts.chart_subtitle(
        account=account, since=start, until=end, as_of=cutoff, targets=frame
    )
    drawers: dict[str, Callable[[], Axes]] = {
        "breach_rate_by_metric": lambda: charts.plot_breach_rates(
            tables["by_metric"], by="metric", subtitle=subtitle
        ),
        "breach_trend_weekly": lambda: charts.plot_breach_trend(
            tables["weekly"], freq="W", as_of=cutoff, subtitle=subtitle
        ),
        "breach_heatmap_metric_policy": lambda: charts.plot_breach_heatmap(
            tables.get("by_policy", tables["by_metric"].assign(policy_title=_NONE)),
            subtitle=subtitle,
        ),
        "fulfilment_vs_target": lambda: charts.plot_fulfilment_ratio(frame, subtitle=subtitle),
        **insight_drawers(found, subtitle),
    }
    chart_files: dict[str, list[Path]] = {}
    images: dict[str, bytes] = {}
    for name in (n for n in CHART_NAMES if n in drawers):
        ax = drawers[name]()
        try:
            chart_files[name] = charts.save_figure(ax, out / name, formats)
            images[name] = _png_bytes(ax, chart_files[name])
        finally:
            plt.close(ax.figure)

    index = out / "index.html"
    _write_text(
        index,
        _render_html(
            title,
            frame,
            tables,
            images,
            cutoff,
            start,
            end,
            group_col,
            account,
            found,
            table_version,
        ),
    )
    files = [p for paths in chart_files.values() for p in paths] + [index]
    logger.info("report written to %s", index)
    return ReportResult(
        out_dir=out,
        index=index,
        files=files,
        charts=chart_files,
        by_metric=tables["by_metric"],
        tables=tables,
        takeaways=dict(found.takeaways),
        table_version=table_version,
    )


_CAPTIONS = {
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


def _render_html(
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
        caption = _CAPTIONS[name]
        return (
            f"<figure><img alt='{esc(caption, quote=True)}' "
            f"src='data:image/png;base64,{data}'>"
            f"<figcaption>{esc(caption)}</figcaption></figure>"
        )

    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        *([f"<p class='meta'>Account: {esc(account)}.</p>"] if account else []),
        f"<p class='meta'>Period: {esc(_period_text(targets, start, end))}.</p>",
        f"<p class='meta'>Data as of: {esc(as_of_text)}.</p>",
        f"<p class='meta'>{len(targets):,} SLA targets: {counts['breached']:,} breached, "
        f"{counts['achieved']:,} achieved, {counts['active']:,} still open.</p>",
        "<p class='note'>Breach rate = breached / (breached + achieved). Targets still open "
        "(active) are left out. Recent weeks are censored: targets that applied shortly "
        "before the as-of time and are already finished are mostly the quick ones, so those "
        "weeks look better than they will once every target closes. The weekly chart "
        "hatches them.</p>",
        "<h2>Breach rate by metric</h2>",
        _html_table(tables["by_metric"], "Breach rate by metric"),
        figure("breach_rate_by_metric"),
        "<h2>Is it getting better?</h2>",
        *insight_html(found, "trend", _grid, figure),
        figure("breach_trend_weekly"),
        "<h2>How late are breaches?</h2>",
        *insight_html(found, "lateness", _grid, figure),
        "<h2>By SLA policy</h2>",
        figure("breach_heatmap_metric_policy"),
    ]
    if "by_policy" in tables:
        parts.append(_html_table(tables["by_policy"], "Breach rate by metric and policy"))
    parts += [
        "<h2>Periodic vs pausable update</h2>",
        *insight_html(found, "pairing", _grid, figure),
    ]
    if "by_priority" in tables:
        parts += [
            "<h2>By priority</h2>",
            _html_table(tables["by_priority"], "Breach rate by ticket priority (all metrics)"),
        ]
    if "by_group" in tables and group_col is not None:
        parts += [
            "<h2>By group</h2>",
            _html_table(tables["by_group"], "Breach rate by group (all metrics)"),
            "<h3>Fair league table</h3>",
            *insight_html(found, "funnel", _grid, figure),
        ]
    if "by_brand" in tables:
        parts += [
            "<h2>By brand</h2>",
            _html_table(tables["by_brand"], "Breach rate by brand (all metrics)"),
        ]
    parts += [
        "<h2>Due next</h2>",
        *insight_html(found, "due", _grid, figure),
        "<h2>Time to fulfilment</h2>",
        figure("fulfilment_vs_target"),
        "<p class='meta'>Generated by zdevents.</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"

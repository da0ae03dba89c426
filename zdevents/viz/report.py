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

The tables and the page are rendered by :mod:`zdevents.viz.report_html`; its
:func:`format_rates_table` (the plain-text table of the command line) is re-exported here.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

from ..analysis.labels import metric_labels
from ..analysis.sla import applied_between
from ..dates import TimeLike, time_range, to_utc
from ..files import write_atomic
from . import charts
from .report_html import NO_VALUE, RATE_STATS, format_rates_table, render_report_html
from .report_insights import insight_drawers, insight_tables

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
_GROUP_COLUMNS = ("group_name", "group", "group_id")
_BRAND_COLUMNS = ("brand_name", "brand_id")
_LABEL = "metric_label"

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
                .map(lambda v: NO_VALUE if v is None or pd.isna(v) else str(v))
                .astype("string")
            )
    return frame


def _rates(
    breach_rates: BreachRates, targets: pd.DataFrame, by: list[str], freq: str | None = None
) -> pd.DataFrame:
    if not len(targets):
        columns = [*by, *(["period"] if freq else []), *RATE_STATS]
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    rates = breach_rates(targets, by=by[0] if len(by) == 1 else by, freq=freq)
    return rates.reset_index(drop=True)


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
            tables.get("by_policy", tables["by_metric"].assign(policy_title=NO_VALUE)),
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
        render_report_html(
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

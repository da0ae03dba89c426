"""The deck's story without PowerPoint: its chart slides, their takeaways and tables.

:func:`deck_slides` computes, from SLA targets, what each chart slide of
:data:`DECK_TITLES` shows and says; :data:`DEFINITIONS` and :func:`appendix_rows` give the
last two slides. :mod:`zdevents.viz.deck` lays them out in a ``.pptx``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd
from matplotlib.axes import Axes

from ..analysis import insights
from ..dates import TimeLike, to_utc
from . import insight_charts
from .rate_charts import plot_breach_rates
from .style import chart_subtitle
from .takeaways import (
    funnel_takeaway,
    in_metric_order,
    lateness_takeaway,
    pairing_takeaway,
    pct,
    rates_takeaway,
    trend_takeaway,
)
from .trend_charts import plot_breach_trend

__all__ = [
    "DECK_TITLES",
    "DEFINITIONS",
    "Slide",
    "appendix_rows",
    "deck_slides",
    "resolve_as_of",
]

_AS_OF_ATTR = "zdevents_as_of"

#: Titles of the chart slides, in deck order.
DECK_TITLES: tuple[str, ...] = (
    "Breach rate by metric",
    "Is it getting better?",
    "How late are breaches?",
    "Periodic vs pausable update",
    "Fair league table: groups",
)


@dataclass(frozen=True)
class Slide:
    """One chart slide: its title, the takeaway sentence and a function that draws it."""

    title: str
    takeaway: str
    draw: Callable[[], Axes]


# ---------------------------------------------------------------- the slides


_TREND_WEEKS = 12
_TREND_LINES = 3


def _trend_focus(weekly: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """The weekly rates a slide can show: the last weeks, and the metrics the story is about.

    Metrics whose verdict is "better" or "worse" first, then the busiest ones, three at most.
    """
    if weekly.empty:
        return weekly
    moved = verdicts.loc[verdicts["verdict"].isin(["better", "worse"]), "metric_label"].tolist()
    busiest = weekly.groupby("metric_label")["targets"].sum().sort_values(ascending=False)
    chosen = list(dict.fromkeys([*moved, *busiest.index]))[:_TREND_LINES]
    start = weekly["period"].max() - pd.Timedelta(weeks=_TREND_WEEKS - 1)
    keep = weekly["metric_label"].isin(chosen) & (weekly["period"] >= start)
    return weekly[keep].reset_index(drop=True)


def resolve_as_of(targets: pd.DataFrame, as_of: TimeLike) -> pd.Timestamp:
    """``as_of`` as a UTC Timestamp, else the targets' ``attrs["zdevents_as_of"]``; raises
    ValueError when neither is known."""
    value = as_of if as_of is not None else targets.attrs.get(_AS_OF_ATTR)
    ts = to_utc(value, name="as_of") if value is not None else None
    if ts is None:
        raise ValueError("as_of is unknown: pass targets from zd.sla_targets (they carry it)")
    return ts


def _unit_column(targets: pd.DataFrame) -> str | None:
    return next(
        (
            c
            for c in ("group_name", "group_id")
            if c in targets.columns and targets[c].notna().any()
        ),
        None,
    )


def deck_slides(
    targets: pd.DataFrame,
    *,
    as_of: TimeLike = None,
    k: int = 4,
    min_targets: int = 30,
    subtitle: str | None = None,
) -> tuple[list[Slide], dict[str, pd.DataFrame]]:
    """The chart slides of the deck and the tables behind them, without writing anything.

    Parameters
    ----------
    targets : pandas.DataFrame
        Output of :func:`zdevents.sla_targets`, optionally with ticket attributes
        (``group_name`` or ``group_id`` give the league-table slide).
    as_of : time, optional
        Default: ``targets.attrs["zdevents_as_of"]``.
    k : int, default 4
        Weeks of the trend verdict's baseline.
    min_targets : int, default 30
        Completed targets a group needs to be ranked in the league table.
    subtitle : str, optional
        The grey line under every chart's title (:func:`zdevents.chart_subtitle`); by
        default the period the targets span and the as-of time.

    Returns
    -------
    (list of Slide, dict of str to DataFrame)
        The slides (titles :data:`DECK_TITLES`; the league table only when the targets
        have a group column) and the tables ``by_metric``, ``verdicts``, ``lateness``,
        ``pairing`` and ``funnel``.

    Examples
    --------
    >>> slides, tables = deck_slides(targets)  # doctest: +SKIP
    >>> [s.takeaway for s in slides]  # doctest: +SKIP
    """
    from ..analysis.sla import breach_rates

    cutoff = resolve_as_of(targets, as_of)
    heading = subtitle if subtitle is not None else chart_subtitle(as_of=cutoff, targets=targets)
    by_metric = breach_rates(targets, by=["metric_label"])
    weekly = breach_rates(targets, by=["metric", "metric_label"], freq="W")
    verdicts = insights.trend_verdicts(targets, by="metric_label", k=k, as_of=cutoff)
    late = insights.lateness(targets, as_of=cutoff)
    late_table = insights.lateness_summary(late, by="metric_label")
    pairs = insights.update_pairs(targets)
    by_policy = insights.update_pairing_summary(pairs, by="policy_title")
    overall = insights.update_pairing_summary(pairs, by=None)
    tables = {
        "by_metric": by_metric,
        "verdicts": verdicts,
        "lateness": late_table,
        "pairing": by_policy,
    }
    slides = [
        Slide(
            DECK_TITLES[0],
            rates_takeaway(by_metric),
            lambda: plot_breach_rates(
                by_metric, by="metric_label", title="SLA breach rate by metric", subtitle=heading
            ),
        ),
        Slide(
            DECK_TITLES[1],
            trend_takeaway(verdicts),
            lambda: plot_breach_trend(
                _trend_focus(weekly, verdicts), as_of=cutoff, incomplete_weeks=0, subtitle=heading
            ),
        ),
        Slide(
            DECK_TITLES[2],
            lateness_takeaway(late_table),
            lambda: insight_charts.plot_lateness(late, subtitle=heading),
        ),
        Slide(
            DECK_TITLES[3],
            pairing_takeaway(overall),
            lambda: insight_charts.plot_update_pairing(by_policy, subtitle=heading),
        ),
    ]
    unit = _unit_column(targets)
    if unit is not None:
        funnel = insights.funnel_table(targets, by=unit, min_targets=min_targets)
        tables["funnel"] = funnel
        slides.append(
            Slide(
                DECK_TITLES[4],
                funnel_takeaway(funnel, unit),
                lambda: insight_charts.plot_funnel(funnel, by=unit, subtitle=heading),
            )
        )
    return slides, tables


#: The definitions slide: (term, meaning) in the order shown.
DEFINITIONS: tuple[tuple[str, str], ...] = (
    (
        "SLA target",
        "One (ticket, metric, instance) an SLA policy applied to; the target in "
        "force is the last one applied at or before fulfilment.",
    ),
    (
        "Breach rate",
        "breached / (breached + achieved). A breach counts when it happens at or "
        "before the fulfilment and at or before the as-of time.",
    ),
    (
        "Censoring",
        "Targets still open (active) are left out of rates, so the newest weeks look "
        "better than they will end up; trend verdicts use only complete weeks (ended, nothing "
        "open).",
    ),
    (
        "Intervals",
        "Breach rates carry 95% Wilson score intervals. Trend verdicts: two-sided "
        "two-proportion z-test, latest complete week vs the previous weeks pooled, p < 0.05.",
    ),
    (
        "League table",
        "Funnel plot: 95% and 99.8% control limits p0 ± z·sqrt(p0(1-p0)/n) around "
        "the overall rate; units with few targets are not ranked.",
    ),
    (
        "Lateness",
        "Calendar time from the breach to the fulfilment; open targets up to the "
        "as-of time (a lower bound).",
    ),
)


def appendix_rows(tables: Mapping[str, pd.DataFrame]) -> list[list[str]]:
    """The appendix table (header row first): one row per metric in the usual order, from the
    ``by_metric``, ``verdicts`` and ``lateness`` tables of :func:`deck_slides`."""
    rates = in_metric_order(tables["by_metric"])  # First reply ... Resolution, as elsewhere
    verdicts = tables["verdicts"].set_index("metric_label")
    late = tables["lateness"].set_index("metric_label")
    rows = [
        [
            "Metric",
            "Completed",
            "Breached",
            "Breach rate (95% CI)",
            "Active",
            "Latest week",
            "Median late",
        ]
    ]
    for r in rates.itertuples():
        label = r.metric_label
        verdict = verdicts["verdict"].get(label, "not enough data")
        median = late["median_minutes"].get(label, float("nan"))
        rows.append(
            [
                str(label),
                f"{int(r.breached + r.achieved):,}",
                f"{int(r.breached):,}",
                f"{pct(r.breach_rate)} ({pct(r.ci_low)}-{pct(r.ci_high)})",
                f"{int(r.active):,}",
                str(verdict),
                insight_charts.format_minutes(median) if pd.notna(median) else "-",
            ]
        )
    return rows

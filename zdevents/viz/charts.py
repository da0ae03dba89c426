"""Deck-ready matplotlib charts of SLA breach rates: the public names in one place.

Every ``plot_*`` function takes the frames computed by :mod:`zdevents.analysis.sla` (it never computes
them), draws on ``ax`` (a new figure when ``ax`` is None) and returns the Axes. Nothing here
calls ``plt.show()`` or changes matplotlib's global settings: each function draws inside
:func:`chart_style`, which sets the keys of :data:`STYLE` and restores
only those (backend, interactive mode and every other setting are left alone). Export with
:func:`save_figure`.

Metric names are shown in the analyst's words (:func:`zdevents.analysis.labels.metric_label`): ``reply_time`` instance 1
is "First reply" and later instances are "Next reply" when the frame says which (a
``metric_label``/``label``/``reply_kind`` column, or ``instance_id``).

The charts live in :mod:`~zdevents.viz.rate_charts` (rates, fulfilment ratio) and
:mod:`~zdevents.viz.trend_charts` (weekly trend, heatmap); the look and the export helper in
:mod:`~zdevents.viz.style`; the labels in :mod:`zdevents.analysis.labels`. This module
re-exports them (``zd.plot_breach_rates`` and friends load from here).
"""

from __future__ import annotations

from ..analysis.labels import METRIC_LABELS, metric_label, metric_labels
from .rate_charts import plot_breach_rates, plot_fulfilment_ratio
from .style import (
    METRIC_COLOURS,
    OKABE_ITO,
    STYLE,
    chart_style,
    chart_subtitle,
    metric_colour,
    save_figure,
)
from .trend_charts import plot_breach_heatmap, plot_breach_trend

__all__ = [
    "METRIC_COLOURS",
    "METRIC_LABELS",
    "OKABE_ITO",
    "STYLE",
    "chart_style",
    "chart_subtitle",
    "metric_colour",
    "metric_label",
    "metric_labels",
    "plot_breach_heatmap",
    "plot_breach_rates",
    "plot_breach_trend",
    "plot_fulfilment_ratio",
    "save_figure",
]

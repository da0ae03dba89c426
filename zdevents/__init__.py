"""zdevents: Zendesk's incremental exports as cached, analysis-ready pandas data.

>>> import zdevents as zd
>>> events = zd.load_frame(since="2024-01-01")  # doctest: +SKIP
>>> targets = zd.sla_targets(events)  # doctest: +SKIP
>>> rates = zd.breach_rates(targets, by="metric")  # doctest: +SKIP
"""

import sys

from . import _moved
from .analysis.insights import (
    due_summary,
    due_targets,
    funnel_table,
    lateness,
    lateness_summary,
    trend_verdicts,
    update_pairing_summary,
    update_pairs,
)
from .analysis.sla import applied_between, breach_rates, sla_targets
from .analysis.tickets import attach_ticket_attributes, normalize_channels, ticket_attributes
from .config import Settings
from .dates import time_range, to_utc
from .errors import (
    ApiError,
    AuthError,
    CacheError,
    CacheLocked,
    ConfigError,
    NotFound,
    PageError,
    PermissionDenied,
    RateLimited,
    ServerError,
    ZdEventsError,
)
from .export.fetch import FetchResult, fetch
from .export.names import fetch_names, load_names
from .pipeline import build_report, cache_status, run_demo
from .read.exports import read_export
from .read.frame import load_changes, load_frame, rebuild_cache
from .read.scan import scan, scan_as_of
from .version import __version__

_moved.install(sys.modules[__name__])

# Charts pull in matplotlib (seconds of import time): load them on first use, so the CLI's
# fetch and status start fast.
_CHARTS = (
    "chart_subtitle",
    "plot_breach_heatmap",
    "plot_breach_rates",
    "plot_breach_trend",
    "plot_fulfilment_ratio",
    "save_figure",
)
# The insight charts and the deck (matplotlib, python-pptx) load on first use too.
_LAZY = {
    "plot_funnel": "viz.insight_charts",
    "plot_lateness": "viz.insight_charts",
    "plot_update_pairing": "viz.insight_charts",
    "build_deck": "insight_pipeline",
    # the sample account's generator and server load on first use
    "prepare_sample": "sample.demo",
}


def __getattr__(name: str):
    if name in _CHARTS:
        from .viz import charts

        return getattr(charts, name)
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'zdevents' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_CHARTS) | set(_LAZY))


__all__ = [
    "ApiError",
    "AuthError",
    "CacheError",
    "CacheLocked",
    "ConfigError",
    "FetchResult",
    "NotFound",
    "PageError",
    "PermissionDenied",
    "RateLimited",
    "ServerError",
    "Settings",
    "ZdEventsError",
    "__version__",
    "applied_between",
    "attach_ticket_attributes",
    "breach_rates",
    "build_deck",
    "build_report",
    "cache_status",
    "chart_subtitle",
    "due_summary",
    "due_targets",
    "fetch",
    "fetch_names",
    "funnel_table",
    "lateness",
    "lateness_summary",
    "load_changes",
    "load_frame",
    "load_names",
    "normalize_channels",
    "plot_breach_heatmap",
    "plot_breach_rates",
    "plot_breach_trend",
    "plot_fulfilment_ratio",
    "plot_funnel",
    "plot_lateness",
    "plot_update_pairing",
    "prepare_sample",
    "read_export",
    "rebuild_cache",
    "run_demo",
    "save_figure",
    "scan",
    "scan_as_of",
    "sla_targets",
    "ticket_attributes",
    "time_range",
    "to_utc",
    "trend_verdicts",
    "update_pairing_summary",
    "update_pairs",
]

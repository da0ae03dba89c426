"""The public API is what __all__ says, and the README documents every public function."""

from pathlib import Path

import zdevents as zd

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()

EXPECTED = {
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
    "build_report",
    "cache_status",
    "chart_subtitle",
    "fetch",
    "fetch_names",
    "load_changes",
    "load_frame",
    "load_names",
    "normalize_channels",
    "plot_breach_heatmap",
    "plot_breach_rates",
    "plot_breach_trend",
    "plot_fulfilment_ratio",
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
    "lateness",
    "lateness_summary",
    "due_targets",
    "due_summary",
    "trend_verdicts",
    "update_pairs",
    "update_pairing_summary",
    "funnel_table",
    "plot_lateness",
    "plot_update_pairing",
    "plot_funnel",
    "build_deck",
}


def test_all_is_pinned():
    assert set(zd.__all__) == EXPECTED
    assert len(zd.__all__) == len(set(zd.__all__))
    for name in zd.__all__:
        assert hasattr(zd, name), name


def test_every_public_function_is_in_the_readme_with_its_name():
    for name in zd.__all__:
        if name.startswith("_") or name[0].isupper():
            continue
        assert f"zd.{name}" in README, f"zd.{name} is not documented in the README"


def test_every_error_is_one_tree():
    for name in zd.__all__:
        obj = getattr(zd, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, zd.ZdEventsError)

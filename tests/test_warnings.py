"""zdevents' own code warns only where the analyst must act, and then at the analyst's line."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import zdevents as zd
from zdevents.export.fetch import FetchResult


def test_monthly_breach_rates_raise_no_pandas_deprecation_warning():
    targets = pd.DataFrame(
        {
            "metric": ["reply_time", "reply_time", "reply_time"],
            "outcome": ["breached", "achieved", "achieved"],
            "applied_at": pd.to_datetime(
                ["2024-01-31 23:59", "2024-02-01 00:00", "2024-02-20 00:00"], utc=True
            ).astype("datetime64[ms, UTC]"),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rates = zd.breach_rates(targets, by="metric", freq="M")
    assert rates["period"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-01", "2024-02-01"]
    assert rates["breached"].tolist() == [1, 0]


def test_no_account_warning_points_at_the_callers_line(tmp_path, monkeypatch):
    for name in (
        "ZENDESK_SUBDOMAIN",
        "ZENDESK_BASE_URL",
        "ZENDESK_EMAIL",
        "ZENDESK_API_TOKEN",
        "ZENDESK_OAUTH_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = zd.Settings(data_dir=tmp_path / "somewhere-new")
    with pytest.warns(UserWarning, match="no Zendesk account configured") as caught:
        try:
            zd.load_frame(settings=settings)
        except zd.ZdEventsError:
            pass  # an empty cache: what matters here is where the warning points
    assert caught[0].filename == __file__


@pytest.mark.parametrize(
    ("pages", "events", "text"),
    [
        (1, 1, "metric_events: 1 page, 1 event received"),
        (2, 1000, "metric_events: 2 pages, 1,000 events received"),
    ],
)
def test_fetch_result_counts_read_as_english(pages, events, text):
    result = FetchResult(
        stream="metric_events",
        pages=pages,
        events_received=events,
        new_events=events,
        requests=pages,
        rate_limited=0,
        seconds_waited=0.0,
        cursor=None,
        rows=events,
        seconds=0.1,
    )
    assert str(result).startswith(text)


@pytest.mark.slow
def test_sla_analysis_on_dask_raises_no_warning():
    dd = pytest.importorskip("dask.dataframe")
    t = pd.to_datetime(["2024-01-01 09:00", "2024-01-01 09:30", "2024-01-01 10:00"], utc=True)
    events = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "ticket_id": [7, 7, 7],
            "metric": ["reply_time"] * 3,
            "instance_id": [1, 1, 1],
            "type": ["apply_sla", "breach", "fulfill"],
            "time": t.astype("datetime64[ms, UTC]"),
            "sla_kind": ["sla", None, None],
            "sla_target_minutes": pd.array([20, None, None], dtype="Int32"),
            "sla_business_hours": pd.array([False, None, None], dtype="boolean"),
            "policy_id": pd.array([1, None, None], dtype="Int64"),
            "policy_title": ["Standard", None, None],
            "status_calendar_minutes": pd.array([None, None, None], dtype="Int32"),
            "status_business_minutes": pd.array([None, None, None], dtype="Int32"),
            "deleted": pd.array([None, False, None], dtype="boolean"),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        targets = zd.sla_targets(dd.from_pandas(events, npartitions=1), as_of="2024-01-02")
        rates = zd.breach_rates(targets, by="metric").compute()
    assert rates["breached"].tolist() == [1]  # breach at 09:30 <= fulfilment at 10:00

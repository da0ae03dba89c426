"""SLA targets on a time window: the bias of a windowed load, reproduced, and the honest way.

The demo's sample account (3,000 tickets, seed 7) is served by the local Zendesk server and
fetched through the real client, as `make demo` does.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import zdevents as zd
from zdevents.analysis.sla import WindowedEventsWarning
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk

SINCE, UNTIL = "2024-02-01", "2024-02-08"
KEY = ["ticket_id", "metric", "instance_id", "sla_kind"]


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    with LocalZendesk(SampleAccount(tickets=3000, seed=7)) as server:
        settings = server.settings(data_dir=tmp_path_factory.mktemp("cache"))
        zd.fetch("metric_events", settings=settings, progress=False)
    return settings


def resolution(targets: pd.DataFrame) -> pd.Series:
    rates = zd.breach_rates(targets, by="metric").set_index("metric")
    return rates.loc["resolution_time"]


@pytest.mark.e2e
def test_a_windowed_load_biases_sla_targets_and_says_so(settings):
    window = zd.load_frame(SINCE, UNTIL, refresh="never", settings=settings)
    assert window.attrs["zdevents_window"] == (zd.to_utc(SINCE), zd.to_utc(UNTIL))
    with pytest.warns(
        WindowedEventsWarning,
        match=r"since='2024-02-01T00:00:00\+00:00', until="
        r".*zd\.applied_between",
    ):
        biased = zd.sla_targets(window)

    with warnings.catch_warnings():
        warnings.simplefilter("error", WindowedEventsWarning)  # the documented way is quiet
        full = zd.load_frame(refresh="never", settings=settings)
        honest = zd.applied_between(zd.sla_targets(full), SINCE, UNTIL)

    # The bias: targets fulfilled or breached after 8 February look active in the window.
    got, truth = resolution(biased), resolution(honest)
    print(
        f"\nresolution_time, SLAs applied {SINCE}..{UNTIL}: windowed load "
        f"{got.breach_rate:.3f} ({got.breached:.0f}/{got.breached + got.achieved:.0f}, "
        f"{got.active:.0f} active); whole history + applied_between {truth.breach_rate:.3f} "
        f"({truth.breached:.0f}/{truth.breached + truth.achieved:.0f}, {truth.active:.0f} "
        "active)"
    )
    assert got.active > truth.active
    assert got.breach_rate < truth.breach_rate - 0.02
    merged = biased.merge(honest, on=KEY, suffixes=("_window", "_full"))
    wrong = merged[merged["outcome_window"] != merged["outcome_full"]]
    assert len(wrong) > 0 and set(wrong["outcome_window"]) == {"active"}

    # The honest way: each target's outcome is the one its whole history gives.
    alone = zd.sla_targets(full)
    alone = alone[alone["applied_at"].between(zd.to_utc(SINCE), zd.to_utc(UNTIL),
                                              inclusive="left")]  # fmt: skip
    pd.testing.assert_frame_equal(honest.reset_index(drop=True), alone.reset_index(drop=True))
    assert truth.active == 0  # every February target was settled long before the horizon


@pytest.mark.e2e
def test_loads_that_leave_no_cached_event_out_do_not_warn(settings):
    full = zd.load_frame(refresh="never", settings=settings)
    first = full["time"].min()
    horizon = full.attrs["zdevents_as_of"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", WindowedEventsWarning)
        for since, until in [(None, None), (first, None), ("2000-01-01", None),
                             (None, horizon), (first, horizon + pd.Timedelta(days=1))]:  # fmt: skip
            frame = zd.load_frame(since, until, refresh="never", settings=settings)
            assert "zdevents_window" not in frame.attrs, (since, until)
            zd.sla_targets(frame)
    later = zd.load_frame(first + pd.Timedelta(milliseconds=1), refresh="never", settings=settings)
    assert later.attrs["zdevents_window"][1] is None
    with pytest.warns(WindowedEventsWarning, match=r"loaded with since="):
        zd.sla_targets(later)

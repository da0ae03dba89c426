"""SLA targets at scale: a real 1M-event cache, the default path against other engines.

The cache is built once per session the real way (sample account -> local Zendesk server ->
fetch -> Parquet). The default path (pandas in, one DuckDB query inside) is compared target
by target with Dask, which runs the engine-agnostic narwhals plan: two implementations of
the rules on two engines, on a million events.
"""

from __future__ import annotations

import pandas as pd
import pytest
from _engines import assert_same

from zdevents.analysis.sla import breach_rates, sla_targets
from zdevents.export.fetch import fetch
from zdevents.read.frame import load_frame
from zdevents.read.scan import scan, scan_as_of
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.filterwarnings("ignore:Dask support is moving out of Narwhals:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index"),  # dask's
]

KEY = ["ticket_id", "metric", "instance_id", "sla_kind"]
OUTCOME = [*KEY, "outcome", "applied_at", "fulfilled_at", "breached_at", "policy_id"]
TICKETS = 18_000  # about 56 metric events per sample ticket: just over a million events


@pytest.fixture(scope="session")
def million(tmp_path_factory):
    """Settings of a cache of about one million metric events (built once per session)."""
    with LocalZendesk(SampleAccount(tickets=TICKETS, seed=11)) as server:
        settings = server.settings(data_dir=tmp_path_factory.mktemp("zd-1m"))
        fetch("metric_events", settings=settings, progress=False)
    return settings


@pytest.fixture(scope="session")
def default_targets(million) -> pd.DataFrame:
    events = load_frame(refresh="never", settings=million)
    assert len(events) >= 1_000_000
    return sla_targets(events)


def test_per_target_outcomes_equal_dask_at_a_million_events(million, default_targets):
    dask = pytest.importorskip("dask")
    as_of = scan_as_of(settings=million)
    assert default_targets.attrs["zdevents_as_of"] == as_of
    with dask.config.set(scheduler="threads"):
        got = sla_targets(scan(settings=million, engine="dask"), as_of=as_of).compute()
    expected = default_targets[OUTCOME]
    assert_same(got[OUTCOME], expected, KEY)
    # every outcome occurs, so the comparison covers each branch of the rules
    assert set(expected["outcome"]) == {"breached", "achieved", "active"}


def test_lazy_duckdb_and_polars_frames_give_the_default_targets(million, default_targets):
    as_of = scan_as_of(settings=million)
    relation = sla_targets(scan(settings=million, engine="duckdb"), as_of=as_of)
    assert_same(relation.df(), default_targets, KEY)
    lazy = sla_targets(scan(settings=million, engine="polars"), as_of=as_of)
    assert type(lazy).__name__ == "LazyFrame"
    assert_same(lazy.collect().to_pandas(), default_targets, KEY)
    expected = breach_rates(default_targets, by=["metric_label", "policy_title"], freq="M")
    got = breach_rates(relation, by=["metric_label", "policy_title"], freq="M").df()
    assert got[["targets", "breached"]].sum().tolist() == (
        expected[["targets", "breached"]].sum().tolist()
    )

"""The distributed path: zd.scan over a real cache, SLA analysis on a 2-worker Dask cluster.

The cache is built the real way (sample account -> local Zendesk server -> fetch -> Parquet),
so the lazy frames read the same month-partitioned part files that load_frame reads.
"""

from __future__ import annotations

import logging
import sys

import pandas as pd
import pyarrow as pa
import pytest
from _engines import GROUPINGS, assert_rates_equal, assert_same, sample_cache

from zdevents.analysis.sla import breach_rates, sla_targets
from zdevents.config import Settings
from zdevents.errors import CacheError
from zdevents.read.frame import load_frame
from zdevents.read.scan import EngineUnavailable, scan, scan_as_of
from zdevents.store import open_store

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Dask support is moving out of Narwhals:FutureWarning"),
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    """A real cache of the sample account: six months, one part file per month."""
    return sample_cache(tmp_path_factory.mktemp("zd-dask-cache"))


@pytest.fixture(scope="module")
def events(settings) -> pd.DataFrame:
    return load_frame(refresh="never", settings=settings)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")  # imported here: seconds, and only when used
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("id", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- scan itself
def test_scan_reads_every_listed_file_with_load_frames_dtypes(client, settings, events):
    files = open_store(settings.data_dir, settings.account, "metric_events").state().files
    frame = scan(settings=settings)
    assert frame.npartitions == len(files) == 6  # one partition per part file
    # Lazy dtypes equal load_frame's; categoricals only say "category" (categories unknown).
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        c: str(t) for c, t in events.dtypes.items()
    }
    got = frame.compute()
    assert list(got.columns) == list(events.columns)  # no month=... column from the folders
    # values and dtypes; the order of a category's values is the order the files list them
    pd.testing.assert_frame_equal(_by_id(got), _by_id(events), check_categorical=False)


def test_scan_as_of_is_the_cursor_load_frame_reports(settings, events):
    assert scan_as_of(settings=settings) == events.attrs["zdevents_as_of"]


def test_one_month_opens_one_file_and_the_range_is_half_open(client, settings, events):
    march = scan("2024-03-01", "2024-04-01", settings=settings)
    assert march.npartitions == 1
    expected = load_frame("2024-03-01", "2024-04-01", refresh="never", settings=settings)
    assert sorted(march["id"].compute().tolist()) == sorted(expected["id"].tolist())

    # A boundary that falls on an event: since includes it, until excludes it.
    edge = events["time"].iloc[len(events) // 2]
    at_edge = int((events["time"] == edge).sum())
    after = scan(since=edge, columns=["time"], settings=settings).compute()
    before = scan(until=edge, columns=["time"], settings=settings).compute()
    assert after["time"].min() == edge
    assert before["time"].max() < edge
    assert len(after) == int((events["time"] >= edge).sum())
    assert len(before) + len(after) == len(events)
    assert at_edge >= 1


def test_columns_are_projected(settings):
    frame = scan("2024-02-01", "2024-03-01", columns=["metric", "id"], settings=settings)
    assert list(frame.columns) == ["metric", "id"]
    with pytest.raises(ValueError, match="no column"):
        scan(columns=["nope"], settings=settings)


def test_a_range_without_rows_is_an_empty_frame_with_the_schema(settings, events):
    frame = scan("2020-01-01", "2021-01-01", settings=settings).compute()  # before the sample
    assert len(frame) == 0
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        c: str(t) for c, t in events.dtypes.items()
    }


def test_an_empty_cache_is_a_cache_error_saying_what_to_do(tmp_path):
    empty = Settings(subdomain="sample", data_dir=tmp_path)
    with pytest.raises(CacheError, match="holds no events.*zdevents fetch"):
        scan(settings=empty)


def test_a_missing_engine_says_what_to_install(settings, monkeypatch):
    monkeypatch.setitem(sys.modules, "polars", None)  # makes `import polars` fail
    with pytest.raises(EngineUnavailable, match="pip install polars") as info:
        scan(engine="polars", settings=settings)
    assert isinstance(info.value, ImportError)
    with pytest.raises(ValueError, match="engine must be one of"):
        scan(engine="ray", settings=settings)


# --------------------------------------------------------------------------- SLA on Dask
def test_sla_on_a_two_worker_cluster_equals_pandas(client, settings, events):
    assert len(client.scheduler_info()["workers"]) == 2
    as_of = scan_as_of(settings=settings)
    expected_targets = sla_targets(events, as_of=as_of)

    targets = sla_targets(scan(settings=settings), as_of=as_of)
    # One compute for all results: the shared part of the graph runs once.
    dask = pytest.importorskip("dask")
    got_targets, *got_rates = dask.compute(
        targets, *(breach_rates(targets, by=by, freq=freq) for by, freq in GROUPINGS)
    )

    assert_same(got_targets, expected_targets, ["ticket_id", "metric", "instance_id", "sla_kind"])
    assert got_targets["outcome"].value_counts().to_dict() == (
        expected_targets["outcome"].value_counts().to_dict()
    )
    for (by, freq), got in zip(GROUPINGS, got_rates, strict=True):
        assert_rates_equal(got, breach_rates(expected_targets, by=by, freq=freq))


# --------------------------------------------------------------------------- polars, DuckDB
def test_polars_scan_equals_load_frame(settings, events):
    got = scan(settings=settings, engine="polars").collect().to_pandas()
    assert_same(got, events, ["id"])


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
@pytest.mark.parametrize("materialized", [False, True], ids=["lazy", "materialized"])
def test_sla_through_polars_and_duckdb_equals_pandas(engine, materialized, settings, events):
    as_of = scan_as_of(settings=settings)
    expected_targets = sla_targets(events, as_of=as_of)
    frame = scan(settings=settings, engine=engine)
    if materialized:  # an eager polars frame, or a pyarrow Table: accepted as well
        frame = frame.collect() if engine == "polars" else frame.to_arrow_table()
    targets = sla_targets(frame, as_of=as_of)
    for by, freq in GROUPINGS:
        rates = breach_rates(targets, by=by, freq=freq)
        if isinstance(rates, pa.Table):
            got = rates.to_pandas()
        elif engine == "polars":
            got = (rates if materialized else rates.collect()).to_pandas()
        else:
            got = rates.df()
        assert_rates_equal(got, breach_rates(expected_targets, by=by, freq=freq))

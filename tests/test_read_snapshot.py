"""One snapshot per read: the state is read once, and the rows and attrs describe it."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest

import zdevents as zd
from zdevents.export.parse import metric_events_table
from zdevents.store import DeltaCache, manifest
from zdevents.store.parquet import Cache


def events(*rows: tuple[int, str]) -> pa.Table:
    records = [
        {
            "id": id,
            "ticket_id": 1000 + id,
            "metric": "reply_time",
            "instance_id": 1,
            "type": "breach",
            "time": time,
        }
        for id, time in rows
    ]
    return metric_events_table([json.dumps({"ticket_metric_events": records}).encode()])


def ts(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").timestamp())


def commit(cache, table: pa.Table, since: str, until: str) -> None:
    with cache.lock():
        cache.commit(table, cursor=ts(until), covered_since=ts(since))


@pytest.fixture(params=["parquet", "delta"])
def store(request, tmp_path):
    kind = Cache if request.param == "parquet" else DeltaCache
    return kind(tmp_path, "acme", "metric_events")


def test_load_frame_reads_the_state_once(tmp_path, monkeypatch):
    cache = Cache(tmp_path, "acme", "metric_events")
    commit(
        cache,
        events((1, "2024-01-05T00:00:00Z"), (2, "2024-02-05T00:00:00Z")),
        "2024-01-01",
        "2024-03-01",
    )
    reads = []
    real = manifest.read_state

    def counting(*args, **kwargs):
        reads.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(manifest, "read_state", counting)
    settings = zd.Settings(subdomain="acme", data_dir=tmp_path, table_format="parquet")
    frame = zd.load_frame(since="2024-02-01", refresh="never", settings=settings)
    assert frame["id"].tolist() == [2]
    assert len(reads) == 1


def test_a_snapshot_keeps_its_rows_and_as_of_after_a_later_commit(store):
    commit(store, events((1, "2024-01-05T00:00:00Z")), "2024-01-01", "2024-01-10")
    snap = store.snapshot()
    before = snap.as_of
    commit(store, events((2, "2024-01-15T00:00:00Z")), "2024-01-10", "2024-01-20")
    assert store.snapshot().as_of > before  # the store moved on
    assert snap.read(["id"])["id"].to_pylist() == [1]
    assert snap.as_of == before == pd.Timestamp("2024-01-10", tz="UTC")
    assert store.read(columns=["id"])["id"].to_pylist() == [1, 2]


def test_load_frame_attrs_describe_the_rows_returned(store, tmp_path):
    commit(store, events((1, "2024-01-05T00:00:00Z")), "2024-01-01", "2024-01-10")
    commit(store, events((2, "2024-01-15T00:00:00Z")), "2024-01-10", "2024-01-20")
    form = "parquet" if isinstance(store, Cache) else "delta"
    settings = zd.Settings(subdomain="acme", data_dir=tmp_path, table_format=form)
    frame = zd.load_frame(refresh="never", settings=settings)
    assert frame["id"].tolist() == [1, 2]
    assert frame.attrs["zdevents_as_of"] == pd.Timestamp("2024-01-20", tz="UTC")
    assert frame["time"].max() < frame.attrs["zdevents_as_of"]
    if isinstance(store, DeltaCache):
        state = store.state()
        assert frame.attrs["zdevents_table_version"] == state.version
        old = zd.load_frame(refresh="never", settings=settings, version=state.version - 1)
        assert old["id"].tolist() == [1]
        assert old.attrs["zdevents_as_of"] == pd.Timestamp("2024-01-10", tz="UTC")
        assert old.attrs["zdevents_table_version"] == state.version - 1
    else:
        assert "zdevents_table_version" not in frame.attrs

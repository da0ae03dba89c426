"""The Delta Lake store: on local disk and on an S3-compatible server on 127.0.0.1.

Every test that names a ``location`` runs twice: against a local folder and against moto's
S3 server (``s3://``), through the same code. Fetches go through the real pipeline (the
local Zendesk server, the real client, ``zd.fetch``).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from _delta_s3 import BUCKET, s3_server
from _engines import assert_same
from _reliability import plain
from _reliability import small_disk as mounted_small_disk

import zdevents as zd
from zdevents.errors import CacheError, CacheLocked
from zdevents.pipeline import format_status
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk
from zdevents.schema import METRIC_EVENTS_SCHEMA
from zdevents.store import DeltaCache, open_store
from zdevents.store.parquet import Cache

pytest.importorskip("deltalake")

ACCOUNT = "acme"
STREAM = "metric_events"


@pytest.fixture(scope="session")
def s3():
    pytest.importorskip("moto.server")
    with s3_server() as env:
        yield env


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])
def location(request, tmp_path) -> str:
    """A fresh data dir: a local folder, or a fresh prefix in the S3 stand-in's bucket."""
    if request.param == "local":
        return str(tmp_path / "data")
    request.getfixturevalue("s3")
    return f"s3://{BUCKET}/{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def server():
    with LocalZendesk(SampleAccount(tickets=120, seed=7), page_size=200) as srv:
        srv.preload()
        yield srv


def delta_settings(server: LocalZendesk, location: str) -> zd.Settings:
    """Settings for ``location``; a local folder gets an (empty) Delta table first."""
    settings = server.settings(data_dir=location)
    if not location.startswith("s3://"):
        DeltaCache(location, settings.account, STREAM).create()
    return settings


def fetch_in_two_steps(server: LocalZendesk, settings: zd.Settings) -> None:
    """Fetch what the server held on 2024-03-01, then the rest: a table of 2+ versions."""
    server.now = pd.Timestamp("2024-03-01", tz="UTC").timestamp()
    try:
        zd.fetch(STREAM, settings=settings, progress=False)
    finally:
        server.now = None
    zd.fetch(STREAM, settings=settings, progress=False)


def rows(*items: tuple[int, str, str]) -> pa.Table:
    """Metric events ``(id, time, type)`` of ticket 7's reply_time, instance 1."""
    return pa.table(
        {
            "id": [i for i, _, _ in items],
            "ticket_id": [7] * len(items),
            "metric": ["reply_time"] * len(items),
            "instance_id": [1] * len(items),
            "type": [k for _, _, k in items],
            "time": pa.array(
                [pd.Timestamp(t, tz="UTC") for _, t, _ in items], pa.timestamp("ms", "UTC")
            ),
        }
    )


def conform(table: pa.Table) -> pa.Table:
    for field in METRIC_EVENTS_SCHEMA:
        if field.name not in table.column_names:
            table = table.append_column(field.name, pa.nulls(table.num_rows, field.type))
    return table.select(METRIC_EVENTS_SCHEMA.names).cast(METRIC_EVENTS_SCHEMA)


# ------------------------------------------------------------------ the store itself
def test_commits_dedupe_keep_last_against_the_table_and_time_travel(location):
    cache = DeltaCache(location, ACCOUNT, STREAM)
    first = conform(
        rows(
            (1, "2024-01-05", "activate"),
            (2, "2024-01-06", "activate"),
            (3, "2024-02-01", "activate"),
        )
    )
    again = conform(
        rows(
            (2, "2024-01-06", "fulfill"),
            (3, "2024-02-01", "activate"),
            (4, "2024-02-02", "activate"),
        )
    )
    with cache.lock():
        one = cache.commit(first, cursor=1706745600)
        two = cache.commit(again, cursor=1706832000)
    # id 2 changed (replaced), id 3 is an identical repeat (dropped), id 4 is new
    assert (one.new_rows, one.replaced_rows, one.rows_total) == (3, 0, 3)
    assert (two.new_rows, two.replaced_rows, two.rows_total) == (1, 2, 4)
    now = cache.read()
    assert now["id"].to_pylist() == [1, 2, 3, 4]
    assert now["type"].cast(pa.string()).to_pylist() == [
        "activate",
        "fulfill",
        "activate",
        "activate",
    ]
    assert now.schema == METRIC_EVENTS_SCHEMA.remove_metadata()
    state = cache.state()
    assert (state.version, state.rows, state.cursor) == (2, 4, 1706832000)
    assert {p.month for p in state.files} == {"2024-01", "2024-02"}
    # version 1 still reads as it was: the old row 2, no row 4
    old = cache.read(version=1)
    assert old["type"].cast(pa.string()).to_pylist() == ["activate"] * 3
    assert cache.state(version=1).cursor == 1706745600
    at = cache.state(version=1).committed_at
    assert cache.read(as_of_commit=at)["id"].to_pylist() == [1, 2, 3]
    with pytest.raises(CacheError, match="no version committed"):
        cache.read(as_of_commit="2001-01-01")


def test_each_commit_returns_the_state_a_fresh_read_of_the_table_gives(location):
    # the commit builds its state from what it committed, without reopening the table:
    # it must be what a reader opening the table right after finds, commit after commit
    cache = DeltaCache(location, ACCOUNT, STREAM)
    batches = [
        (rows((1, "2024-01-05", "activate"), (2, "2024-01-31T23:59:59", "activate")), 1706745600),
        (rows((2, "2024-01-31T23:59:59", "fulfill"), (3, "2024-02-01", "activate")), 1706832000),
        (rows((3, "2024-02-01", "activate")), 1706918400),  # an identical repeat only
        (rows(), 1707004800),  # no rows: the cursor alone moves
    ]
    with cache.lock():
        for number, (table, cursor) in enumerate(batches, start=1):
            got = cache.commit(conform(table), cursor=cursor).state
            fresh = DeltaCache(location, ACCOUNT, STREAM).state()
            assert (got.version, got.cursor, got.rows, got.files) == (
                number,
                cursor,
                fresh.rows,
                fresh.files,
            )
            assert got == fresh
            assert got.footers == fresh.footers
    assert [p.rows for p in fresh.files] == [1, 1, 1]
    assert fresh.rows == 3


def test_a_commit_that_would_change_nothing_but_its_time_writes_no_version(location):
    cache = DeltaCache(location, ACCOUNT, STREAM)
    with cache.lock():
        cache.commit(
            conform(rows((1, "2024-01-05", "activate"), (2, "2024-01-06", "activate"))),
            cursor=1704499200,
        )
        before = cache.state()
        # an identical repeat, the cursor where it was: what an up-to-date refresh commits
        again = cache.commit(conform(rows((2, "2024-01-06", "activate"))), cursor=1704499200)
        assert (again.new_rows, again.rows_total) == (0, 2)
        assert again.state == before
        assert cache.state() == before and cache.state().updated_at == before.updated_at
        # a cursor that moves is committed, with or without rows
        moved = cache.commit(conform(rows()), cursor=1704585600)
        assert (moved.state.version, moved.state.cursor) == (before.version + 1, 1704585600)
    assert cache.state().version == before.version + 1


def test_an_up_to_date_refresh_leaves_the_table_at_its_version(server, location):
    settings = delta_settings(server, location)
    zd.fetch(STREAM, settings=settings, progress=False)
    cache = open_store(settings.data_dir, settings.account, STREAM)
    before = cache.state()
    again = zd.fetch(STREAM, settings=settings, progress=False)
    assert (again.requests, again.new_events) == (1, 0)
    assert cache.state() == before
    got = plain(cache.read())
    assert sorted(got["id"].to_pylist()) == sorted(server.unique_ids(STREAM))


def test_a_reader_reads_its_version_while_a_writer_holds_the_lock_and_commits(tmp_path):
    cache = DeltaCache(tmp_path, ACCOUNT, STREAM)
    with cache.lock():
        cache.commit(conform(rows((1, "2024-01-05", "activate"))), cursor=1704500000)
    reader = DeltaCache(tmp_path, ACCOUNT, STREAM)
    snapshot = reader.state()
    with cache.lock():  # a writer holds the lock: the reader never waits
        assert reader.read()["id"].to_pylist() == [1]
        cache.commit(conform(rows((1, "2024-01-05", "fulfill"), (2, "2024-01-06", "x"))))
        assert reader.read(state=snapshot)["type"].cast(pa.string()).to_pylist() == ["activate"]
        assert reader.read()["id"].to_pylist() == [1, 2]
        with pytest.raises(CacheLocked):  # a second local writer is refused at once
            with reader.lock():
                pass


def test_the_state_rides_in_the_commit_metadata_and_lost_state_is_an_error(tmp_path):
    cache = DeltaCache(tmp_path, ACCOUNT, STREAM)
    with cache.lock():
        cache.commit(
            conform(rows((1, "2024-01-05", "activate"))),
            cursor=1704500000,
            covered_since=1704000000,
        )
    log = sorted((Path(cache.uri) / "_delta_log").glob("*.json"))
    info = [json.loads(line) for line in log[-1].read_text().splitlines()]
    meta = json.loads(next(a["commitInfo"] for a in info if "commitInfo" in a)["zdevents"])
    assert meta["cursor"] == 1704500000
    assert meta["coverage"] == [[1704000000, 1704500000]]
    assert set(meta) == {
        "schema_version",
        "stream",
        "cursor",
        "covered_since",
        "covered_until",
        "coverage",
        "horizon",
        "support_type_scope",
        "after_cursor",
        "updated_at",
        "footers",
    }
    # a commit by another tool, without zdevents' metadata, keeps the state of the last one
    from deltalake import write_deltalake

    extra = conform(rows((9, "2024-01-07", "activate")))
    delta_types = pa.schema(
        [
            pa.field(
                f.name,
                f.type.value_type
                if pa.types.is_dictionary(f.type)
                else (pa.timestamp("us", "UTC") if pa.types.is_timestamp(f.type) else f.type),
                f.nullable,
            )
            for f in extra.schema
        ]
    )
    write_deltalake(
        cache.uri,
        extra.cast(delta_types).append_column(
            pa.field("month", pa.string(), False), pa.array(["2024-01"])
        ),
        mode="append",
    )
    assert cache.state().cursor == 1704500000
    assert sorted(cache.read()["id"].to_pylist()) == [1, 9]
    # every commit without it (the log's zdevents entries gone): an error naming the rebuild
    for path in log:
        text = path.read_text().replace('"zdevents":', '"other":')
        path.write_text(text)
    with pytest.raises(CacheError, match="zdevents cache rebuild --stream metric_events"):
        cache.state()
    with cache.lock():
        rebuilt = cache.rebuild()
    assert (rebuilt.files, rebuilt.rows) == (2, 2)
    assert cache.state().cursor == pd.Timestamp("2024-01-07", tz="UTC").value // 10**9


def test_open_store_picks_delta_by_default_and_parquet_only_on_local_disk(tmp_path):
    assert isinstance(open_store(tmp_path / "a", ACCOUNT, STREAM), DeltaCache)
    assert isinstance(open_store(tmp_path / "b", ACCOUNT, STREAM, table_format="parquet"), Cache)
    assert isinstance(open_store(f"s3://{BUCKET}/x", ACCOUNT, STREAM), DeltaCache)
    with pytest.raises(zd.ConfigError, match="needs a local data dir"):
        open_store(f"s3://{BUCKET}/x", ACCOUNT, STREAM, table_format="parquet")
    with pytest.raises(zd.ConfigError, match="is not one of"):
        open_store(tmp_path, ACCOUNT, STREAM, table_format="iceberg")
    # Settings keeps a Path: s3://b/x prints as s3:/b/x, and still names the bucket
    assert DeltaCache(Path("s3://b/zd"), ACCOUNT, STREAM).uri == "s3://b/zd/acme/metric_events"
    DeltaCache(tmp_path / "b", ACCOUNT, STREAM).create()  # an existing table stays one
    assert isinstance(
        open_store(tmp_path / "b", ACCOUNT, STREAM, table_format="parquet"), DeltaCache
    )


@pytest.mark.slow
def test_a_second_writer_on_object_storage_fails_cleanly(s3):
    location = f"s3://{BUCKET}/{uuid.uuid4().hex}"
    first = DeltaCache(location, ACCOUNT, STREAM)
    second = DeltaCache(location, ACCOUNT, STREAM)
    with first.lock(), second.lock():  # object storage has no lock file: both start
        first.commit(conform(rows((1, "2024-01-05", "activate"))), cursor=1704500000)
        with pytest.raises(CacheLocked, match="another writer committed") as error:
            second.commit(conform(rows((2, "2024-01-06", "activate"))), cursor=1704600000)
        assert "\n" not in str(error.value)
        first.commit(conform(rows((3, "2024-01-07", "activate"))), cursor=1704700000)
    state = first.state()
    assert (state.version, state.cursor) == (2, 1704700000)
    assert first.read()["id"].to_pylist() == [1, 3]  # nothing of the second writer


# ------------------------------------------------------------------ the real pipeline
def test_fetch_load_frame_and_sla_targets_equal_the_parquet_cache(server, location, tmp_path):
    parquet = server.settings(data_dir=tmp_path / "parquet", table_format="parquet")
    zd.fetch(STREAM, settings=parquet, progress=False)
    expected = zd.load_frame(refresh="never", settings=parquet)

    settings = delta_settings(server, location)
    result = zd.fetch(STREAM, settings=settings, progress=False)
    cache = open_store(settings.data_dir, settings.account, STREAM)
    assert isinstance(cache, DeltaCache)
    assert result.rows == len(expected) == len(server.unique_ids(STREAM))
    events = zd.load_frame(refresh="never", settings=settings)
    assert_same(events, expected, ["id"])
    assert events.attrs["zdevents_as_of"] == expected.attrs["zdevents_as_of"]
    got = zd.sla_targets(events)
    want = zd.sla_targets(expected)
    assert_same(got, want, ["ticket_id", "metric", "instance_id", "sla_kind"])
    # an up-to-date refresh adds nothing and commits nothing new that changes rows
    version = cache.state().version
    again = zd.fetch(STREAM, settings=settings, progress=False)
    assert again.new_events == 0
    assert cache.state().rows == len(expected)
    assert cache.read(version=version).num_rows == len(expected)
    # secrets are in no commit, no log entry
    secrets = [s for s in settings.secrets() if s]
    assert secrets
    for name in DeltaCache(location, settings.account, STREAM).files():
        assert name.endswith(".parquet")
    log_text = _log_text(cache)
    for secret in secrets:
        assert secret not in log_text


def _log_text(cache: DeltaCache) -> str:
    fs, root = cache.filesystem()
    import pyarrow.fs as pafs

    text = ""
    for info in fs.get_file_info(pafs.FileSelector(f"{root}/_delta_log")):
        if info.path.endswith(".json"):
            with fs.open_input_stream(info.path) as fh:
                text += fh.read().decode()
    return text


def test_a_damaged_data_file_is_detected_then_repaired_by_a_forced_fetch(server, location):
    settings = delta_settings(server, location)
    zd.fetch(STREAM, settings=settings, progress=False)
    cache = open_store(settings.data_dir, settings.account, STREAM)
    truth = plain(cache.read())
    part = max(cache.state().files, key=lambda p: p.rows)
    fs, root = cache.filesystem()
    with fs.open_input_stream(f"{root}/{part.path}") as fh:
        data = bytearray(fh.read())
    data[len(data) // 3] ^= 0xFF  # one flipped byte inside a data page, same size
    with fs.open_output_stream(f"{root}/{part.path}") as out:
        out.write(bytes(data))
    with pytest.raises(CacheError, match=f"month {part.month}.*--force"):
        cache.read()
    zd.fetch(STREAM, since=f"{part.month}-01", force=True, settings=settings, progress=False)
    assert plain(cache.read()).equals(truth)


# ------------------------------------------------------------------ other engines
@pytest.fixture(scope="module")
def shared(server, tmp_path_factory):
    """One fetched table on the S3 stand-in (and its pandas truth from load_frame)."""
    with s3_server() as env:
        location = f"s3://{BUCKET}/shared"
        settings = server.settings(data_dir=location)
        zd.fetch(STREAM, settings=settings, progress=False)
        cache = open_store(settings.data_dir, settings.account, STREAM)
        yield cache, settings, zd.load_frame(refresh="never", settings=settings), env


@pytest.mark.slow
def test_polars_scan_delta_reads_the_table(shared):
    pl = pytest.importorskip("polars")
    cache, _, events, env = shared
    frame = pl.scan_delta(cache.uri, storage_options=env).collect()
    assert frame.height == len(events)
    assert sorted(frame["id"].to_list()) == sorted(events["id"].tolist())


@pytest.mark.slow
def test_duckdb_and_pandas_read_the_table_through_deltalake(shared):
    duckdb = pytest.importorskip("duckdb")
    from deltalake import DeltaTable

    cache, _, events, _ = shared
    dataset = DeltaTable(cache.uri).to_pyarrow_dataset()
    relation = duckdb.from_arrow(dataset)
    [(count, ids)] = relation.aggregate("count(*), count(distinct id)").fetchall()
    assert count == ids == len(events)
    frame = DeltaTable(cache.uri).to_pandas(columns=["id", "time"])
    assert sorted(frame["id"].tolist()) == sorted(events["id"].tolist())


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Dask support is moving out of Narwhals:FutureWarning")
def test_sla_on_a_two_worker_dask_cluster_reading_s3_equals_pandas(shared):
    distributed = pytest.importorskip("distributed")
    dd = pytest.importorskip("dask.dataframe")
    import logging

    import dask

    cache, _, events, _ = shared
    state = cache.state()
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        assert len(client.scheduler_info()["workers"]) == 2
        import pyarrow.fs as pafs

        fs, _ = pafs.FileSystem.from_uri(cache.uri)  # S3FileSystem, pickled to the workers
        frame = dd.read_parquet(
            [uri.removeprefix("s3://") for uri in cache.files(version=state.version)],
            filesystem=fs,
            dtype_backend="numpy_nullable",
            dataset={"partitioning": None},
        )
        targets = zd.sla_targets(frame, as_of=state.as_of)
        got = dask.compute(targets)[0]
    want = zd.sla_targets(events, as_of=state.as_of)
    assert len(got) == len(want)
    assert got["outcome"].value_counts().to_dict() == want["outcome"].value_counts().to_dict()
    assert pc.sum(pa.array(got["ticket_id"].astype("int64"))).as_py() == int(
        want["ticket_id"].sum()
    )


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB tmpfs (root only; skipped where mounting is not allowed)."""
    with mounted_small_disk(tmp_path / "disk") as disk:
        yield disk


def test_a_full_disk_is_a_clear_error_and_the_table_stays_at_its_version(server, small_disk):
    settings = delta_settings(server, str(small_disk / "data"))
    cache = open_store(settings.data_dir, settings.account, STREAM)
    half = pd.Timestamp("2024-03-01", tz="UTC").timestamp()
    server.now = half  # the first fetch sees the older events only
    try:
        zd.fetch(STREAM, settings=settings, progress=False)
    finally:
        server.now = None
    before = cache.state()
    before_rows = plain(cache.read())
    assert before.rows > 0
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)  # fill the disk: no data file fits
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    with pytest.raises(CacheError, match="the disk is full") as info:
        zd.fetch(STREAM, settings=settings, progress=False)
    assert "\n" not in str(info.value)
    after = cache.state()
    assert (after.version, after.cursor, after.rows) == (before.version, before.cursor, before.rows)
    assert plain(cache.read()).equals(before_rows)
    filler.unlink()
    zd.fetch(STREAM, settings=settings, progress=False)
    assert cache.state().rows == len(server.unique_ids(STREAM)) > before.rows


def test_ticket_events_with_nested_child_events_round_trip(server, location, tmp_path):
    parquet = server.settings(data_dir=tmp_path / "parquet", table_format="parquet")
    zd.fetch("ticket_events", settings=parquet, progress=False)
    settings = server.settings(data_dir=location)
    if not location.startswith("s3://"):
        DeltaCache(location, settings.account, "ticket_events").create()
    zd.fetch("ticket_events", settings=settings, progress=False)
    got = open_store(settings.data_dir, settings.account, "ticket_events").read()
    want = Cache(parquet.data_dir, parquet.account, "ticket_events").read()
    assert got.num_rows == want.num_rows > 0
    assert plain(got).equals(plain(want))
    changes = zd.load_changes(refresh="never", settings=settings)
    assert_same(changes, zd.load_changes(refresh="never", settings=parquet), ["event_id"])


def test_load_frame_reproduces_an_earlier_version_and_records_the_one_it_read(
    server, location, tmp_path
):
    settings = delta_settings(server, location)
    server.now = pd.Timestamp("2024-03-01", tz="UTC").timestamp()
    try:
        zd.fetch(STREAM, settings=settings, progress=False)
    finally:
        server.now = None
    cache = open_store(settings.data_dir, settings.account, STREAM)
    monday = cache.state()
    earlier = zd.load_frame(refresh="never", settings=settings)
    assert earlier.attrs["zdevents_table_version"] == monday.version
    zd.fetch(STREAM, settings=settings, progress=False)
    now = zd.load_frame(refresh="never", settings=settings)
    assert now.attrs["zdevents_table_version"] > monday.version
    assert len(now) > len(earlier)
    again = zd.load_frame(settings=settings, version=monday.version)
    assert_same(again, earlier, ["id"])
    assert again.attrs["zdevents_as_of"] == earlier.attrs["zdevents_as_of"]
    at = zd.load_frame(settings=settings, as_of_commit=monday.committed_at)
    assert at.attrs["zdevents_table_version"] == monday.version
    assert_same(at, earlier, ["id"])
    parquet = server.settings(data_dir=tmp_path / "parquet", table_format="parquet")
    with pytest.raises(zd.ConfigError, match="Parquet folder"):
        zd.load_frame(settings=parquet, version=1)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Dask support is moving out of Narwhals:FutureWarning")
@pytest.mark.parametrize("engine", ["polars", "duckdb", "dask"])
def test_zd_scan_reads_a_local_delta_table(server, tmp_path, engine):
    settings = delta_settings(server, str(tmp_path / "data"))
    zd.fetch(STREAM, settings=settings, progress=False)
    events = zd.load_frame(refresh="never", settings=settings)
    frame = zd.scan(settings=settings, engine=engine)
    targets = zd.sla_targets(frame, as_of=zd.scan_as_of(settings=settings))
    got = {
        "polars": lambda t: t.collect().to_pandas(),
        "duckdb": lambda t: t.df(),
        "dask": lambda t: t.compute(),
    }[engine](targets)
    want = zd.sla_targets(events)
    assert len(got) == len(want) > 0
    assert got["outcome"].value_counts().to_dict() == want["outcome"].value_counts().to_dict()


def test_migrate_converts_a_parquet_cache_once_with_the_same_rows_ids_and_state(server, tmp_path):
    from zdevents.store import migrate

    settings = server.settings(data_dir=tmp_path / "data", table_format="parquet")
    zd.fetch(STREAM, settings=settings, progress=False)
    old = Cache(settings.data_dir, settings.account, STREAM)
    before, rows_before = old.state(), plain(old.read())
    (old.dir / "my-notes.txt").write_text("mine")  # a file zdevents did not write
    result = migrate(settings.data_dir, settings.account, STREAM)
    cache = open_store(settings.data_dir, settings.account, STREAM)
    assert isinstance(cache, DeltaCache)
    assert result.rows == before.rows and not result.removed_old
    assert plain(cache.read()).equals(rows_before)
    state = cache.state()
    assert (state.cursor, state.coverage, state.horizon, state.as_of) == (
        before.cursor,
        before.coverage,
        before.horizon,
        before.as_of,
    )
    parked = old.dir.with_name(f"{STREAM}.parquet-old")
    assert sorted(p.name for p in parked.iterdir()) == ["my-notes.txt"]
    assert zd.fetch(STREAM, settings=settings, progress=False).new_events == 0
    with pytest.raises(CacheError, match="a Delta table already"):
        migrate(settings.data_dir, settings.account, STREAM)


def test_fetch_keeps_the_file_count_bounded_and_optimize_vacuum_keep_the_state(tmp_path):
    cache = DeltaCache(tmp_path, ACCOUNT, STREAM)
    day = pd.Timestamp("2024-01-01", tz="UTC")
    with cache.lock():
        for i in range(20):  # twenty small incremental commits into one month
            when = (day + pd.Timedelta(hours=i)).isoformat()
            cache.commit(
                conform(rows((i + 1, when, "activate"))),
                cursor=int((day + pd.Timedelta(hours=i + 1)).timestamp()),
            )
    state = cache.state()
    assert state.rows == 20
    assert len(state.files) <= 9  # compacted by the commits themselves
    old_version = state.version
    with cache.lock():
        cache.optimize()
        assert cache.vacuum() == []  # the default retention keeps every recent file
    after = cache.state()
    assert len(after.files) == 1
    assert (after.rows, after.cursor, after.coverage) == (20, state.cursor, state.coverage)
    assert cache.read(version=old_version)["id"].to_pylist() == list(range(1, 21))
    with cache.lock(), pytest.raises(ValueError, match="at least 1 hour"):
        cache.vacuum(retention_hours=0)


def test_the_cache_commands_migrate_optimize_and_vacuum(server, tmp_path, capsys, monkeypatch):
    from zdevents import cli

    settings = server.settings(data_dir=tmp_path / "data", table_format="parquet")
    zd.fetch(STREAM, settings=settings, progress=False)
    rows_before = Cache(settings.data_dir, settings.account, STREAM).state().rows
    root = ["--data-dir", str(tmp_path / "data")]
    monkeypatch.setenv("ZDEVENTS_TABLE_FORMAT", "parquet")  # kept a Parquet folder on purpose
    assert cli.main(["cache", "optimize", *root]) == 2  # still a Parquet folder: an error
    assert "zdevents cache migrate --stream metric_events" in capsys.readouterr().err
    assert cli.main(["cache", "migrate", *root]) == 0  # an explicit migrate still converts
    assert f"{rows_before:,} rows now in a Delta table" in capsys.readouterr().out
    assert cli.main(["cache", "migrate", *root]) == 0
    assert "already a Delta table" in capsys.readouterr().out
    monkeypatch.delenv("ZDEVENTS_TABLE_FORMAT")
    assert cli.main(["cache", "optimize", *root]) == 0
    assert "files compacted into" in capsys.readouterr().out
    assert cli.main(["cache", "vacuum", *root]) == 0
    assert "0 unreferenced files deleted" in capsys.readouterr().out
    assert open_store(settings.data_dir, settings.account, STREAM).state().rows == rows_before


def test_a_parquet_cache_becomes_a_delta_table_on_first_use(server, tmp_path, caplog):
    parquet = server.settings(data_dir=tmp_path / "data", table_format="parquet")
    zd.fetch(STREAM, settings=parquet, progress=False)
    old = Cache(parquet.data_dir, parquet.account, STREAM)
    before, cursor = zd.load_frame(refresh="never", settings=parquet), old.state().cursor
    settings = server.settings(data_dir=tmp_path / "data")  # the default: delta
    with caplog.at_level("WARNING", logger="zdevents.store"):
        after = zd.load_frame(refresh="never", settings=settings)
    assert "converting the Parquet cache" in caplog.text
    pd.testing.assert_frame_equal(
        after.sort_values("id", ignore_index=True), before.sort_values("id", ignore_index=True)
    )
    folder = tmp_path / "data" / settings.account / STREAM
    assert (folder / "_delta_log").is_dir() and not (folder / "state.json").exists()
    assert not (folder.parent / f"{STREAM}.parquet-old").exists()  # the old folder is gone
    table = DeltaCache(settings.data_dir, settings.account, STREAM)
    assert table.state().cursor == cursor  # the export resumes where the Parquet cache was
    requests_before = server.requests
    zd.fetch(STREAM, settings=settings, progress=False)  # up to date: one request
    assert server.requests - requests_before == 1
    assert table.state().rows == len(before)


def test_a_parquet_cache_being_fetched_is_read_as_it_is_and_converted_later(server, tmp_path):
    parquet = server.settings(data_dir=tmp_path / "data", table_format="parquet")
    zd.fetch(STREAM, settings=parquet, progress=False)
    old = Cache(parquet.data_dir, parquet.account, STREAM)
    settings = server.settings(data_dir=tmp_path / "data")
    with old.lock():  # a fetch holds the folder
        during = zd.load_frame(refresh="never", settings=settings)
        assert (old.dir / "state.json").exists() and not (old.dir / "_delta_log").exists()
    assert len(during) == old.state().rows
    zd.load_frame(refresh="never", settings=settings)
    assert (old.dir / "_delta_log").is_dir()


@pytest.mark.slow
def test_zd_scan_opens_an_earlier_table_version(server, tmp_path):
    settings = delta_settings(server, str(tmp_path / "data"))
    server.now = pd.Timestamp("2024-03-01", tz="UTC").timestamp()
    try:
        zd.fetch(STREAM, settings=settings, progress=False)
    finally:
        server.now = None
    earlier = zd.load_frame(refresh="never", settings=settings)
    version = earlier.attrs["zdevents_table_version"]
    zd.fetch(STREAM, settings=settings, progress=False)
    old = zd.scan(settings=settings, engine="polars", version=version).collect()
    new = zd.scan(settings=settings, engine="polars").collect()
    assert sorted(old["id"].to_list()) == sorted(earlier["id"].tolist())
    assert new.height > old.height
    parquet = server.settings(data_dir=tmp_path / "parquet", table_format="parquet")
    zd.fetch(STREAM, settings=parquet, progress=False)
    with pytest.raises(zd.ConfigError, match="Parquet folder"):
        zd.scan(settings=parquet, engine="polars", version=1)


def test_status_shows_the_table_version_rows_and_file_count(server, location, tmp_path, capsys):
    settings = delta_settings(server, location)
    fetch_in_two_steps(server, settings)
    cache = open_store(settings.data_dir, settings.account, STREAM)
    state = cache.state()
    assert state.version >= 2 and len(state.files) > 1
    [status] = [s for s in zd.cache_status(settings=settings) if s.stream == STREAM]
    assert (status.version, status.rows, status.files) == (
        state.version,
        state.rows,
        len(state.files),
    )
    assert status.bytes == sum(p.size for p in state.files)
    line = next(ln for ln in format_status([status]).splitlines() if STREAM in ln)
    assert line.split()[-2:] == [str(len(state.files)), str(state.version)]
    assert f"{state.rows:,}" in line.split()
    # the Parquet cache: the part files on disk, no version
    parquet = server.settings(data_dir=tmp_path / "parquet", table_format="parquet")
    zd.fetch(STREAM, settings=parquet, progress=False)
    on_disk = list((tmp_path / "parquet" / parquet.account / STREAM).rglob("*.parquet"))
    [status] = [s for s in zd.cache_status(settings=parquet) if s.stream == STREAM]
    assert (status.version, status.files) == (None, len(on_disk))
    line = next(ln for ln in format_status([status]).splitlines() if STREAM in ln)
    assert line.split()[-2:] == [str(len(on_disk)), "-"]


@pytest.mark.slow
def test_the_report_records_the_table_version_it_read(server, tmp_path):
    settings = delta_settings(server, str(tmp_path / "data"))
    fetch_in_two_steps(server, settings)
    version = open_store(settings.data_dir, settings.account, STREAM).state().version
    assert version >= 2
    run = zd.build_report(tmp_path / "report", settings=settings)
    assert run.table_version == version
    page = run.index.read_text(encoding="utf-8")
    [line] = [ln for ln in page.splitlines() if "Data as of:" in ln]
    assert f"UTC (Delta table version {version}).</p>" in line
    # an earlier version read by hand and passed on to write_report
    from zdevents.viz.report import write_report

    events = zd.load_frame(refresh="never", settings=settings, version=1)
    result = write_report(
        zd.sla_targets(events),
        tmp_path / "v1",
        as_of=events.attrs["zdevents_as_of"],
        table_version=events.attrs["zdevents_table_version"],
    )
    assert result.table_version == 1
    assert "(Delta table version 1)." in result.index.read_text(encoding="utf-8")
    # a Parquet cache has no version: none is shown
    parquet = server.settings(data_dir=tmp_path / "parquet", table_format="parquet")
    zd.fetch(STREAM, settings=parquet, progress=False)
    run = zd.build_report(tmp_path / "parquet-report", settings=parquet)
    assert run.table_version is None
    assert "Delta table version" not in run.index.read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Dask support is moving out of Narwhals:FutureWarning")
@pytest.mark.parametrize("engine", ["polars", "duckdb", "dask"])
def test_zd_scan_reads_an_s3_table(shared, engine, caplog):
    _, settings, events, env = shared
    caplog.set_level("DEBUG")
    as_of = zd.scan_as_of(settings=settings)
    frame = zd.scan(settings=settings, engine=engine)
    assert env["AWS_SECRET_ACCESS_KEY"] not in repr(frame) + caplog.text
    rates = zd.breach_rates(zd.sla_targets(frame, as_of=as_of))
    got = {
        "polars": lambda t: t.collect().to_pandas(),
        "duckdb": lambda t: t.df(),
        "dask": lambda t: t.compute(),
    }[engine](rates)
    want = zd.breach_rates(zd.sla_targets(events, as_of=as_of))
    assert len(want) > 0
    assert sorted(got["breached"].astype(int)) == sorted(want["breached"].astype(int))
    assert sorted(got["achieved"].astype(int)) == sorted(want["achieved"].astype(int))
    # a range and a projection on the object store
    since = events["time"].quantile(0.5)
    frame = zd.scan(since=since, settings=settings, engine=engine, columns=["id"])
    ids = {
        "polars": lambda t: t.collect()["id"].to_list(),
        "duckdb": lambda t: t.df()["id"].tolist(),
        "dask": lambda t: t.compute()["id"].tolist(),
    }[engine](frame)
    assert sorted(ids) == sorted(events.loc[events["time"] >= since, "id"].tolist())


@pytest.mark.slow
def test_zd_scan_with_spark_on_object_storage_names_the_delta_reader(shared):
    _, settings, _, _ = shared
    with pytest.raises(zd.ConfigError, match=r"spark.read.format\('delta'\)"):
        zd.scan(settings=settings, engine="spark")

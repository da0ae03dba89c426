"""The Parquet cache: commit, dedupe, months, atomic state, damage, locks, compaction, reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from zdevents.errors import CacheError, CacheLocked, ConfigError
from zdevents.export.parse import metric_events_table
from zdevents.schema import METRIC_EVENTS_SCHEMA
from zdevents.store import compaction
from zdevents.store.parquet import Cache


def events(*rows: tuple) -> pa.Table:
    """Metric events from (id, time[, type, deleted]) tuples."""
    records = []
    for row in rows:
        id, time, *rest = row
        record = {
            "id": id,
            "ticket_id": 1000 + id,
            "metric": "reply_time",
            "instance_id": 1,
            "type": rest[0] if rest else "breach",
            "time": time,
        }
        if len(rest) > 1:
            record["deleted"] = rest[1]
        records.append(record)
    return metric_events_table([json.dumps({"ticket_metric_events": records}).encode()])


def ts(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").timestamp())


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path, "acme", "metric_events")


def commit(cache: Cache, table: pa.Table, cursor: int = 1, **kw):
    with cache.lock():
        return cache.commit(table, cursor=cursor, **kw)


def test_commit_and_read_back_exactly(cache: Cache):
    table = events(
        (2, "2024-01-05T00:00:00Z"), (1, "2024-01-05T00:00:00Z"), (3, "2024-01-01T12:00:00Z")
    )
    result = commit(cache, table, cursor=ts("2024-01-06"), covered_since=ts("2024-01-01"))
    assert (result.new_rows, result.replaced_rows, result.rows_total) == (3, 0, 3)
    back = cache.read()
    assert back.schema.remove_metadata() == METRIC_EVENTS_SCHEMA
    assert back["id"].to_pylist() == [3, 1, 2]  # sorted by time, then id
    state = cache.state()
    assert (state.cursor, state.covered_since, state.rows) == (
        ts("2024-01-06"),
        ts("2024-01-01"),
        3,
    )
    (part,) = state.files
    assert part.month == "2024-01" and part.rows == 3
    assert part.min_time == ts("2024-01-01T12:00:00") * 1000
    assert part.max_time == ts("2024-01-05") * 1000
    on_disk = pq.read_table(cache.dir / part.path)
    assert on_disk["id"].to_pylist() == [3, 1, 2]
    assert on_disk.schema.metadata == {
        b"zdevents_schema_version": b"1",
        b"stream": b"metric_events",
    }
    assert (
        pq.ParquetFile(cache.dir / part.path).metadata.row_group(0).column(0).compression == "ZSTD"
    )


def test_dedupe_within_a_batch_keeps_the_last(cache: Cache):
    table = events(
        (1, "2024-01-05T00:00:00Z", "breach", False),
        (2, "2024-01-05T00:00:00Z"),
        (1, "2024-01-05T00:00:00Z", "breach", True),
    )
    result = commit(cache, table)
    assert (result.new_rows, result.replaced_rows, result.rows_total) == (2, 0, 2)
    assert cache.read().select(["id", "deleted"]).to_pylist() == [
        {"id": 1, "deleted": True},
        {"id": 2, "deleted": None},
    ]


def test_dedupe_across_commits_keeps_the_last_payload(cache: Cache):
    commit(
        cache,
        events((1, "2024-01-05T00:00:00Z", "breach", False), (2, "2024-01-06T00:00:00Z")),
        cursor=10,
    )
    first_files = {p.path for p in cache.state().files}
    result = commit(
        cache,
        events((1, "2024-01-05T00:00:00Z", "breach", True), (3, "2024-01-07T00:00:00Z")),
        cursor=20,
    )
    assert (result.new_rows, result.replaced_rows, result.rows_total) == (1, 1, 3)
    assert cache.read().select(["id", "deleted"]).to_pylist() == [
        {"id": 1, "deleted": True},
        {"id": 2, "deleted": None},
        {"id": 3, "deleted": None},
    ]
    state = cache.state()
    assert state.cursor == 20 and state.rows == 3
    assert not first_files & {p.path for p in state.files}  # rewritten as new files
    for old in first_files:
        assert not (cache.dir / old).exists()  # and the old one deleted after the state moved


def test_identical_page_boundary_repeats_keep_the_old_file(cache: Cache):
    commit(cache, events((1, "2024-01-05T00:00:00Z"), (2, "2024-01-06T00:00:00Z")))
    (old,) = cache.state().files
    result = commit(cache, events((2, "2024-01-06T00:00:00Z"), (3, "2024-01-07T00:00:00Z")))
    assert (result.new_rows, result.replaced_rows, result.rows_total) == (1, 1, 3)
    assert old in cache.state().files and len(cache.state().files) == 2
    assert cache.read()["id"].to_pylist() == [1, 2, 3]


def test_a_part_outside_the_new_rows_range_is_not_rewritten(cache: Cache):
    commit(cache, events((1, "2024-01-01T00:00:00Z")))
    (old,) = cache.state().files
    commit(cache, events((2, "2024-01-20T00:00:00Z")))
    assert old in cache.state().files


def test_month_partitioning_across_a_utc_month_edge(cache: Cache):
    table = events(
        (1, "2024-01-31T23:59:59Z"), (2, "2024-02-01T00:00:00Z"), (3, "2024-02-01T01:30:00+02:00")
    )
    commit(cache, table)
    months = {p.month: p.rows for p in cache.state().files}
    assert months == {"2024-01": 2, "2024-02": 1}  # id 3 is 2024-01-31T23:30Z
    for part in cache.state().files:
        assert part.path.startswith(f"month={part.month}/part-")
    assert [p.name for p in cache.files(since=pd.Timestamp("2024-02-01", tz="UTC"))] == [
        Path(next(p.path for p in cache.state().files if p.month == "2024-02")).name
    ]


def test_empty_table_just_moves_the_cursor(cache: Cache):
    commit(cache, events((1, "2024-01-05T00:00:00Z")), cursor=100, covered_since=50)
    result = commit(cache, metric_events_table([]), cursor=200, covered_since=80)
    assert (result.new_rows, result.rows_total) == (0, 1)
    state = cache.state()
    assert (state.cursor, state.covered_since, state.covered_until) == (200, 50, 200)
    assert json.loads(cache.state_path.read_text())["cursor"] == 200


def test_commit_outside_the_lock_is_refused(cache: Cache):
    with pytest.raises(RuntimeError, match="lock"):
        cache.commit(events((1, "2024-01-05T00:00:00Z")), cursor=1)


def test_crash_before_state_replace_keeps_the_old_snapshot_and_orphans_are_ignored(
    cache: Cache, monkeypatch: pytest.MonkeyPatch
):
    commit(cache, events((1, "2024-01-05T00:00:00Z", "breach", False)), cursor=10)
    before = cache.state()

    def killed(self, state):  # the process dies between the new parts and the state
        raise KeyboardInterrupt

    monkeypatch.setattr(Cache, "_write_state", killed)
    monkeypatch.setattr(Path, "unlink", lambda self, missing_ok=False: None)  # no cleanup
    with pytest.raises(KeyboardInterrupt):
        commit(
            cache,
            events((1, "2024-01-05T00:00:00Z", "breach", True), (2, "2024-01-06T00:00:00Z")),
            cursor=20,
        )
    monkeypatch.undo()
    on_disk = sorted(p.relative_to(cache.dir).as_posix() for p in cache.dir.glob("month=*/*"))
    listed = {p.path for p in before.files}
    assert len(on_disk) > len(listed)  # orphans are there...
    assert cache.state() == before  # ...but the snapshot is the old one
    assert cache.read().select(["id", "deleted"]).to_pylist() == [{"id": 1, "deleted": False}]
    commit(cache, events((3, "2024-01-07T00:00:00Z")), cursor=30)  # next commit sweeps them
    on_disk = {p.relative_to(cache.dir).as_posix() for p in cache.dir.glob("month=*/*")}
    assert on_disk == {p.path for p in cache.state().files}
    assert cache.read()["id"].to_pylist() == [1, 3]


def test_failed_write_leaves_cache_and_cursor_intact(cache: Cache, monkeypatch: pytest.MonkeyPatch):
    commit(cache, events((1, "2024-01-05T00:00:00Z")), cursor=10)
    before = cache.state()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", disk_full)
    with pytest.raises(CacheError, match="No space left on device.*unchanged"):
        commit(cache, events((2, "2024-01-06T00:00:00Z")), cursor=20)
    monkeypatch.undo()
    assert cache.state() == before
    assert {p.relative_to(cache.dir).as_posix() for p in cache.dir.glob("month=*/*")} == {
        p.path for p in before.files
    }


@pytest.mark.parametrize(
    "content",
    [
        b'{"schema_version": 1, "stream": "metric_events", "cur',
        b"",
        b'{"schema_version": 99, "stream": "metric_events", "files": [], "rows": 0}',
    ],
)
def test_damaged_or_unknown_state_is_a_cache_error_naming_the_file_and_the_fix(
    cache: Cache, content: bytes
):
    commit(cache, events((1, "2024-01-05T00:00:00Z")))
    cache.state_path.write_bytes(content)
    with pytest.raises(CacheError) as info:
        cache.state()
    message = str(info.value)
    assert str(cache.state_path) in message
    assert "zdevents cache rebuild --stream metric_events" in message
    assert "`zdevents fetch`" in message
    assert info.value.path == str(cache.state_path)
    with pytest.raises(CacheError):
        cache.read()


def test_state_pointing_outside_the_stream_folder_is_refused(cache: Cache):
    commit(cache, events((1, "2024-01-05T00:00:00Z")))
    data = json.loads(cache.state_path.read_text())
    data["files"][0]["path"] = "../../../etc/passwd"
    cache.state_path.write_text(json.dumps(data))
    with pytest.raises(CacheError, match="damaged"):
        cache.state()


def test_truncated_parquet_is_a_cache_error_naming_file_month_and_refetch(cache: Cache):
    commit(cache, events((1, "2024-01-05T00:00:00Z")), cursor=ts("2024-01-06"))
    commit(cache, events((2, "2024-03-05T00:00:00Z")), cursor=ts("2024-03-06"))
    bad = next(p for p in cache.state().files if p.month == "2024-03")
    path = cache.dir / bad.path
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(CacheError) as info:
        cache.read()
    message = str(info.value)
    assert str(path) in message and "month 2024-03" in message
    assert "zdevents fetch --stream metric_events --since 2024-03-01 --force" in message
    assert cache.read(until="2024-02-01")["id"].to_pylist() == [1]  # other months still read
    with cache.lock():
        dropped = cache.repair()
        assert dropped == [bad]
    state = cache.state()
    assert state.rows == 1 and not path.exists()
    # the cursor stays; the dropped file's seconds leave the coverage (fetched again later)
    assert state.cursor == ts("2024-03-06")
    assert state.gaps() == [(ts("2024-03-05"), ts("2024-03-05") + 1)]
    commit(
        cache,
        events((2, "2024-03-05T00:00:00Z")),
        cursor=ts("2024-03-06"),
        covered_since=ts("2024-03-05"),
    )
    assert cache.read()["id"].to_pylist() == [1, 2]
    assert cache.state().gaps() == []


def test_lock_contention_raises_cache_locked(tmp_path: Path):
    first = Cache(tmp_path, "acme", "metric_events")
    second = Cache(tmp_path, "acme", "metric_events")
    with first.lock():
        with pytest.raises(
            CacheLocked, match="another zdevents fetch is writing metric_events"
        ) as info:
            with second.lock():
                pass
        assert str(first.dir) in str(info.value)
    with second.lock():  # free again
        pass


@pytest.mark.slow
def test_lock_held_by_another_process(tmp_path: Path):
    script = textwrap.dedent(
        f"""
        import sys, time
        from zdevents.store.parquet import Cache
        with Cache({str(tmp_path)!r}, "acme", "metric_events").lock():
            print("locked", flush=True)
            sys.stdin.readline()
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).parents[1],
    )  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(CacheLocked):
            with Cache(tmp_path, "acme", "metric_events").lock():
                pass
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    with Cache(tmp_path, "acme", "metric_events").lock():
        pass


@pytest.mark.parametrize(
    ("account", "stream"),
    [("..", "metric_events"), ("a/b", "metric_events"), ("acme", "../x"), ("/abs", "metric_events"),
     ("acme", ""), ("acme", "a\\b"), ("a..b", "metric_events")],
)  # fmt: skip
def test_names_that_could_escape_the_data_dir_are_refused(tmp_path: Path, account, stream):
    with pytest.raises(ConfigError, match="cannot be a cache folder"):
        Cache(tmp_path, account, stream)


def test_host_like_account_names_are_fine(tmp_path: Path):
    assert (
        Cache(tmp_path, "127.0.0.1", "ticket_events").dir
        == tmp_path / "127.0.0.1" / "ticket_events"
    )


def test_compaction_keeps_rows_exact(cache: Cache, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(compaction, "MAX_PARTS_PER_MONTH", 3)
    for day in range(1, 6):  # five commits, each overlapping the previous by one id
        ids = [day * 10 + k for k in range(3)] + ([day * 10 - 8] if day > 1 else [])
        rows = [(i, f"2024-01-{i // 10:02d}T00:00:{i % 10:02d}Z") for i in ids]
        commit(cache, events(*rows), cursor=day)
    state = cache.state()
    assert len(state.files) <= 3
    expected = sorted(day * 10 + k for day in range(1, 6) for k in range(3))
    assert cache.read()["id"].to_pylist() == expected
    assert state.rows == len(expected) == sum(p.rows for p in state.files)
    on_disk = {p.relative_to(cache.dir).as_posix() for p in cache.dir.glob("month=*/*")}
    assert on_disk == {p.path for p in state.files}


def test_full_parts_are_never_rewritten_and_small_runs_merge_in_time_then_id_order(
    cache: Cache, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(compaction, "SMALL_PART_ROWS", 3)
    monkeypatch.setattr(compaction, "MAX_PARTS_PER_MONTH", 2)
    t = "2024-01-01T00:00:0{}Z".format
    commit(cache, events((1, t(1)), (2, t(2)), (3, t(3))), cursor=1)  # full: 3 rows
    full = cache.state().files[0].path
    commit(cache, events((4, t(4))), cursor=2)
    commit(cache, events((6, t(5))), cursor=3)
    assert len(cache.state().files) == 3  # two small parts: not yet too many
    # shares its first second with the previous part, where it holds a smaller id
    commit(cache, events((5, t(5)), (7, t(6))), cursor=4)
    state = cache.state()
    assert [p.rows for p in state.files] == [3, 4]
    assert state.files[0].path == full  # the full part was not rewritten
    merged = pq.read_table(cache.dir / state.files[1].path)
    assert merged["id"].to_pylist() == [4, 5, 6, 7]  # in (time, id) order inside the file
    assert cache.read()["id"].to_pylist() == [1, 2, 3, 4, 5, 6, 7]
    on_disk = {p.relative_to(cache.dir).as_posix() for p in cache.dir.glob("month=*/*")}
    assert on_disk == {p.path for p in state.files}


def test_an_unordered_batch_is_stored_in_time_then_id_order(cache: Cache):
    commit(cache, events((9, "2024-01-02T00:00:00Z"), (3, "2024-01-01T00:00:00Z"),
                         (2, "2024-01-02T00:00:00Z")))  # fmt: skip
    (part,) = cache.state().files
    assert pq.read_table(cache.dir / part.path)["id"].to_pylist() == [3, 2, 9]


def test_read_since_until_half_open_and_columns(cache: Cache):
    commit(
        cache,
        events(
            (1, "2024-01-31T23:59:59Z"), (2, "2024-02-01T00:00:00Z"), (3, "2024-02-02T00:00:00Z")
        ),
    )
    table = cache.read(
        columns=["id", "metric"],
        since=pd.Timestamp("2024-02-01", tz="UTC"),
        until=pd.Timestamp("2024-02-02", tz="UTC"),
    )
    assert table.column_names == ["id", "metric"]
    assert table["id"].to_pylist() == [2]
    assert cache.read(until="2024-02-01")["id"].to_pylist() == [1]  # naive str = UTC
    assert cache.read(since="2024-02-01T00:00:00.001Z")["id"].to_pylist() == [3]
    assert cache.read(columns=["id"], since="2030-01-01").num_rows == 0
    assert cache.files(until="2024-01-01") == []


def test_read_of_overlapping_parts_is_time_ordered(cache: Cache):
    commit(cache, events((1, "2024-01-01T00:00:00Z"), (4, "2024-01-20T00:00:00Z")))
    commit(cache, events((2, "2024-01-10T00:00:00Z")))
    assert cache.read(columns=["id"])["id"].to_pylist() == [1, 2, 4]


def test_read_retries_once_when_a_concurrent_commit_replaced_a_file(cache: Cache, monkeypatch):
    commit(cache, events((1, "2024-01-05T00:00:00Z")))
    stale = cache.state()
    commit(cache, events((1, "2024-01-05T00:00:00Z", "breach", True)))  # replaces the file
    calls = []
    real_state = Cache.state

    def state_once_stale(self):
        calls.append(1)
        return stale if len(calls) == 1 else real_state(self)

    monkeypatch.setattr(Cache, "state", state_once_stale)
    assert cache.read()["deleted"].to_pylist() == [True]
    assert len(calls) == 2


def test_size_and_clear(cache: Cache):
    assert cache.size_bytes() == 0
    commit(cache, events((1, "2024-01-05T00:00:00Z")))
    assert cache.size_bytes() > 0
    cache.clear()
    assert cache.state().empty and cache.read().num_rows == 0
    assert not any(cache.dir.glob("month=*"))


def test_no_settings_or_secrets_in_files(cache: Cache):
    commit(cache, events((1, "2024-01-05T00:00:00Z")))
    state_keys = set(json.loads(cache.state_path.read_text()))
    assert state_keys == {
        "schema_version",
        "stream",
        "cursor",
        "covered_since",
        "covered_until",
        "rows",
        "files",
        "updated_at",
        "support_type_scope",
        "after_cursor",
        "coverage",
        "horizon",
    }
    (part,) = cache.state().files
    metadata = pq.ParquetFile(cache.dir / part.path).schema_arrow.metadata
    assert set(metadata) == {b"zdevents_schema_version", b"stream"}
    assert os.listdir(cache.dir / f"month={part.month}") == [Path(part.path).name]


def test_ticket_events_audits_round_trip(tmp_path: Path):
    from zdevents.export.parse import ticket_events_table
    from zdevents.schema import TICKET_EVENTS_SCHEMA

    def audit(id: int, when: int, status: str) -> dict:
        child = {"id": id * 10, "status": status, "event_type": "Change"}
        return {"id": id, "ticket_id": 5, "timestamp": when, "via": "Mail", "child_events": [child]}

    def body(*records: dict) -> bytes:
        return json.dumps({"ticket_events": list(records)}).encode()

    cache = Cache(tmp_path, "acme", "ticket_events")
    first, _ = ticket_events_table([body(audit(1, ts("2024-01-31T23:00"), "open"), audit(2, ts("2024-02-01"), "new"))])  # fmt: skip
    again, _ = ticket_events_table([body(audit(2, ts("2024-02-01"), "pending"))])
    commit(cache, first, cursor=ts("2024-02-01"))
    commit(cache, again, cursor=ts("2024-02-02"))
    back = cache.read()
    assert back.schema.remove_metadata() == TICKET_EVENTS_SCHEMA
    assert [(r["id"], r["child_events"][0]["value"]) for r in back.to_pylist()] == [
        (1, "open"),
        (2, "pending"),
    ]
    assert sorted(p.month for p in cache.state().files) == ["2024-01", "2024-02"]


def test_rebuild_keeps_the_newest_copy_of_an_id_found_in_two_files(tmp_path):
    """Orphans of an interrupted commit may repeat ids: the most recently written copy wins."""
    cache = Cache(tmp_path, "acme", "metric_events")
    commit(cache, events((1, "2024-01-05T00:00:00Z", "breach", False), (2, "2024-01-06T00:00:00Z")))
    (old,) = cache.state().files
    saved = (cache.dir / old.path).read_bytes()
    commit(cache, events((1, "2024-01-05T00:00:00Z", "breach", True)))
    (cache.dir / old.path).write_bytes(saved)  # the superseded file, as a crash leaves it
    os.utime(cache.dir / old.path, (1, 1))  # written long ago
    cache.state_path.unlink()
    with cache.lock():
        result = cache.rebuild()
    assert result.rows == 2 and old.path in result.skipped
    assert cache.read().select(["id", "deleted"]).to_pylist() == [
        {"id": 1, "deleted": True},
        {"id": 2, "deleted": None},
    ]
    assert (cache.dir / old.path).exists()  # rebuild deletes nothing


def test_rebuild_of_a_stream_never_fetched_is_an_error_and_makes_no_folder(tmp_path: Path):
    import zdevents as zd

    settings = zd.Settings(subdomain="acme", data_dir=tmp_path)
    with pytest.raises(CacheError, match="no metric_events cache in .* to rebuild"):
        zd.rebuild_cache("metric_events", settings=settings)
    assert not (tmp_path / "acme").exists()

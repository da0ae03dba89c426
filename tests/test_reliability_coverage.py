"""Coverage is the truth: forced ranges, repairs and backfills fetch exactly what they say,
leave no silent hole, and the horizon (as_of) never moves back or past the clock.

Every test runs the real pipeline against the local Zendesk server on 127.0.0.1 serving the
sample account (200 tickets, 11,016 metric events, January-June 2024, 100 events a page), and
counts what the server was asked, on both local stores (``table_format``: the Delta table and
the Parquet cache folder; the state file of an earlier version is the Parquet cache's own, and
the Delta table's counterpart is a commit that another tool made).
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from _reliability import TABLE_FORMATS, assert_exact, cache_of, clean_fetch, cli_env, plain

import zdevents as zd
from zdevents import cli
from zdevents.export import writer as page_writer
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk

pytestmark = pytest.mark.e2e

TICKETS = 200
PAGE_SIZE = 100


def ts(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").timestamp())


@pytest.fixture(params=TABLE_FORMATS)
def table_format(request) -> str:
    """The store of each test: the Delta table, then the Parquet cache folder."""
    return request.param


@pytest.fixture(scope="module")
def server():
    account = SampleAccount(tickets=TICKETS)
    with LocalZendesk(
        account, page_size=PAGE_SIZE, metric_end_of_stream=True, tcp_nodelay=True
    ) as srv:
        srv.preload()
        yield srv


@pytest.fixture(scope="module")
def truth(server, tmp_path_factory):
    return clean_fetch(server, tmp_path_factory.mktemp("clean"))


@pytest.fixture(autouse=True)
def _server_clean(server):
    server.now = None
    server.clear_faults()
    yield
    server.now = None
    server.clear_faults()


def between(table: pa.Table, since: str, until: str) -> int:
    """Rows of ``table`` with ``since <= time < until``."""
    ms = table["time"].cast(pa.int64())
    lo, hi = ts(since) * 1000, ts(until) * 1000
    return pc.sum(pc.and_(pc.greater_equal(ms, lo), pc.less(ms, hi))).as_py() or 0


def start_times(server: LocalZendesk, since_request: int) -> list[int]:
    """``start_time`` of every export request the server received from ``since_request`` on."""
    return [int(entry.params["start_time"]) for entry in server.request_log[since_request:]]


def as_of(settings: zd.Settings) -> pd.Timestamp | None:
    return zd.scan_as_of(settings=settings)


def test_a_forced_range_after_the_cursor_leaves_no_claimed_hole_and_the_next_fetch_fills_it(
    server, truth, tmp_path, table_format
):
    settings = server.settings(data_dir=tmp_path, table_format=table_format)
    cache = cache_of(settings)
    server.now = ts("2024-04-01")  # the cache stops on 1 April
    zd.fetch(settings=settings, progress=False)
    server.now = None
    horizon = as_of(settings)
    assert horizon < pd.Timestamp("2024-04-01", tz="UTC")

    zd.fetch(since="2024-06-01", force=True, settings=settings, progress=False)
    cached = cache.read()
    hole = between(truth, "2024-04-01", "2024-06-01")
    assert hole == 3534 and between(cached, "2024-04-01", "2024-06-01") == 0
    # the hole is not claimed: reads say so, and the horizon stays where the data is whole
    with pytest.warns(UserWarning, match=r"does not hold 2024-03-31 .*\.\.2024-06-01 00:00:00"):
        frame = zd.load_frame(refresh="never", settings=settings)
    assert frame.attrs["zdevents_as_of"] == horizon == as_of(settings)
    assert cache.uncovered("2024-04-01", "2024-06-01")

    before = server.requests
    zd.fetch(settings=settings, progress=False)  # the next plain fetch closes the gap
    asked = start_times(server, before)
    assert asked[0] == int(horizon.timestamp()) and max(asked[:-1]) < ts("2024-06-01")
    assert len(asked) == len(set(asked))  # no page twice
    assert_exact(cache, truth)
    assert cache.uncovered() == [] and as_of(settings) > pd.Timestamp("2024-06-30", tz="UTC")


def test_repairing_a_damaged_month_from_its_middle_refetches_its_start_on_the_next_fetch(
    server, truth, tmp_path, table_format
):
    settings = server.settings(data_dir=tmp_path, table_format=table_format)
    cache = cache_of(settings)
    zd.fetch(settings=settings, progress=False)
    march = next(p for p in cache.state().files if p.month == "2024-03")
    path = cache.dir / march.path
    path.write_bytes(path.read_bytes()[:-100])  # truncated
    horizon = as_of(settings)

    zd.fetch(since="2024-03-15", force=True, settings=settings, progress=False)
    first_half = between(truth, "2024-03-01", "2024-03-15")
    assert first_half == 746 and between(cache.read(), "2024-03-01", "2024-03-15") == 0
    with pytest.warns(UserWarning, match="does not hold 2024-03-01"):
        zd.load_frame("2024-03-01", "2024-04-01", refresh="never", settings=settings)
    assert as_of(settings) == horizon  # the repair never moved the horizon back

    zd.fetch(settings=settings, progress=False)
    assert between(cache.read(), "2024-03-01", "2024-03-15") == first_half
    assert_exact(cache, truth)
    assert cache.uncovered() == []


def test_the_horizon_never_moves_back_while_a_force_runs(
    server, truth, tmp_path, monkeypatch, table_format
):
    settings = server.settings(data_dir=tmp_path, table_format=table_format)
    zd.fetch(settings=settings, progress=False)
    final = as_of(settings)
    all_targets = len(zd.sla_targets(zd.load_frame(refresh="never", settings=settings)))
    assert all_targets == 1725

    seen: list[pd.Timestamp] = []
    targets_seen: list[int] = []
    store = type(cache_of(settings))  # Cache or DeltaCache
    real_commit = store.commit

    def commit_then_read(self, table, **kwargs):
        result = real_commit(self, table, **kwargs)
        seen.append(as_of(settings))  # what a reader in another process sees now
        if len(seen) in (1, 40):
            frame = zd.load_frame(refresh="never", settings=settings)
            targets_seen.append(len(zd.sla_targets(frame)))
        return result

    monkeypatch.setattr(page_writer, "BATCH_PAGES", 1)
    monkeypatch.setattr(store, "commit", commit_then_read)
    zd.fetch(since="2024-01-01", force=True, settings=settings, progress=False)
    assert len(seen) == 118 and set(seen) == {final}
    assert targets_seen == [all_targets, all_targets]
    monkeypatch.undo()
    assert_exact(cache_of(settings), truth)


def test_a_backfill_stopped_by_a_503_keeps_the_horizon_and_the_reports(
    server, truth, tmp_path, monkeypatch, table_format
):
    settings = server.settings(data_dir=tmp_path, max_retries=0, table_format=table_format)
    cache = cache_of(settings)
    zd.fetch(since="2024-03-01", settings=settings, progress=False)
    horizon = as_of(settings)
    events = zd.load_frame(refresh="never", settings=settings)
    march_on = zd.applied_between(zd.sla_targets(events), since="2024-03-01")
    assert len(march_on) > 1000

    commits = 0
    store = type(cache_of(settings))  # Cache or DeltaCache
    real_commit = store.commit

    def commit_then_fail(self, table, **kwargs):
        nonlocal commits
        result = real_commit(self, table, **kwargs)
        commits += 1
        if commits == 3:
            server.fail_next(503, times=None)  # Zendesk goes down mid-backfill
        return result

    monkeypatch.setattr(page_writer, "BATCH_PAGES", 1)
    monkeypatch.setattr(store, "commit", commit_then_fail)
    with pytest.raises(zd.ServerError):
        zd.fetch(since="2024-01-01", settings=settings, progress=False)
    monkeypatch.undo()
    server.clear_faults()

    assert as_of(settings) == horizon  # not the backfill's 24 January
    with pytest.warns(UserWarning, match="does not hold"):  # the backfill's unfetched rest
        events = zd.load_frame(refresh="never", settings=settings)
    assert events.attrs["zdevents_as_of"] == horizon
    again = zd.applied_between(zd.sla_targets(events), since="2024-03-01")
    assert len(again) == len(march_on)

    zd.fetch(since="2024-01-01", settings=settings, progress=False)  # the backfill resumes
    assert_exact(cache, truth)
    assert cache.uncovered() == []


def test_a_backfill_fetches_only_the_gap_then_continues_from_the_cursor(
    server, truth, tmp_path, table_format
):
    settings = server.settings(data_dir=tmp_path, table_format=table_format)
    cache = cache_of(settings)
    first = server.requests
    zd.fetch(since="2024-03-01", settings=settings, progress=False)
    cursor = cache.state().cursor
    start = cache.state().covered_since
    middle = server.requests
    zd.fetch(since="2024-01-01", settings=settings, progress=False)
    backfill = start_times(server, middle)
    # [2024-01-01, cached start) page by page, then one request from the cursor
    assert backfill[0] == ts("2024-01-01") and backfill[-1] == cursor
    assert all(t < start for t in backfill[:-1])
    everything = start_times(server, first)
    assert len(everything) == len(set(everything))  # no page fetched twice
    # exactly the pages a first fetch from 1 January reads before the cached start
    clean = server.requests
    clean_settings = server.settings(data_dir=tmp_path / "clean", table_format=table_format)
    zd.fetch(since="2024-01-01", settings=clean_settings, progress=False)
    pages_before = [t for t in start_times(server, clean) if t < start]
    assert backfill[:-1] == pages_before and len(pages_before) == 42
    assert_exact(cache, truth)


def test_a_forced_range_stops_requesting_at_its_end(
    server, truth, tmp_path, monkeypatch, table_format
):
    settings = server.settings(data_dir=tmp_path, table_format=table_format)
    cache = cache_of(settings)
    zd.fetch(settings=settings, progress=False)
    before = server.requests
    frame = zd.load_frame("2024-03-01", "2024-04-01", refresh="force", settings=settings)
    asked = start_times(server, before)
    assert sum(t >= ts("2024-04-01") for t in asked) == 0  # no page beyond the range
    assert len(asked) == 19  # March's pages (1,788 events), the last one crossing 1 April
    assert len(frame) == between(truth, "2024-03-01", "2024-04-01")
    assert_exact(cache, truth)

    for name, value in cli_env(server, tmp_path, table_format).items():
        monkeypatch.setenv(name, value)
    before = server.requests
    argv = ["fetch", "--since", "2024-03-01", "--until", "2024-04-01", "--force", "--quiet"]
    assert cli.main(argv) == 0
    assert start_times(server, before) == asked  # the command line does the same
    assert_exact(cache, truth)


def test_an_end_time_in_the_future_never_puts_the_horizon_past_now(tmp_path, table_format):
    now = int(time.time())

    def event(id: int, type: str, at: int, **extra) -> dict:
        stamp = pd.Timestamp(at, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"id": id, "ticket_id": 1, "metric": "reply_time", "instance_id": 1,
                "type": type, "time": stamp, **extra}  # fmt: skip

    sla = {"target": 60, "business_hours": False, "policy": {"id": 1, "title": "P"}}
    records = [
        event(1, "activate", now - 7200),
        event(2, "apply_sla", now - 7200, sla=sla),
        event(3, "breach", now - 7200 + 86400, deleted=False),  # scheduled for tomorrow
    ]
    with LocalZendesk(metric_events=records, now=now + 2 * 86400) as srv:
        settings = srv.settings(data_dir=tmp_path, table_format=table_format)
        zd.fetch(settings=settings, progress=False)
    events = zd.load_frame(refresh="never", settings=settings)
    assert len(events) == 3
    horizon = events.attrs["zdevents_as_of"]
    assert horizon <= pd.Timestamp.now(tz="UTC")
    assert as_of(settings) <= pd.Timestamp.now(tz="UTC")
    state = cache_of(settings).state()
    assert state.cursor <= int(time.time()) and state.coverage[-1][1] <= int(time.time())
    (target,) = zd.sla_targets(events).itertuples()
    assert target.outcome == "active"  # the breach is only scheduled


def test_coverage_survives_a_state_file_of_the_previous_version(tmp_path: Path, server, truth):
    """A state.json without coverage reads as one interval from covered_since to the cursor."""
    import json

    settings = server.settings(data_dir=tmp_path, table_format="parquet")
    cache = cache_of(settings)
    zd.fetch(settings=settings, progress=False)
    state = cache.state()
    data = json.loads(cache.state_path.read_text())
    for key in ("coverage", "horizon"):
        del data[key]
    data["someone_elses_field"] = {"kept": True}
    cache.state_path.write_text(json.dumps(data))
    old = cache.state()
    assert old.coverage == ((state.covered_since, state.cursor),)
    assert old.horizon == state.cursor
    zd.fetch(settings=settings, progress=False)
    assert json.loads(cache.state_path.read_text())["someone_elses_field"] == {"kept": True}
    assert_exact(cache, truth)


def test_coverage_survives_a_commit_that_another_tool_made(
    tmp_path: Path, server, truth, monkeypatch
):
    """A Delta table's state rides in zdevents' commits; a later commit by another writer
    (here deltalake's own compaction, with no zdevents metadata) keeps the coverage, cursor
    and horizon of the last zdevents commit, and the next fetch continues from them."""
    from deltalake import DeltaTable

    settings = server.settings(data_dir=tmp_path, table_format="delta")
    cache = cache_of(settings)
    monkeypatch.setattr(page_writer, "BATCH_PAGES", 10)  # a few files a month to compact
    server.now = ts("2024-04-01")
    zd.fetch(settings=settings, progress=False)
    server.now = None
    zd.fetch(since="2024-06-01", force=True, settings=settings, progress=False)  # a hole
    monkeypatch.undo()
    state = cache.state()
    rows = cache.read()
    foreign = DeltaTable(cache.uri)
    assert foreign.optimize.compact()["numFilesRemoved"] > 0
    assert "zdevents" not in (foreign.history(1)[0])  # a commit without zdevents' state
    after = cache.state()
    assert after.version == state.version + 1 and after.files != state.files
    assert (after.coverage, after.cursor, after.horizon, after.rows) == (
        state.coverage, state.cursor, state.horizon, state.rows
    )  # fmt: skip
    assert plain(cache.read()).equals(plain(rows))  # the same rows, in other files
    assert cache.uncovered("2024-04-01", "2024-06-01")  # the hole is still not claimed
    before = server.requests
    zd.fetch(settings=settings, progress=False)
    assert start_times(server, before)[0] == state.horizon  # continues where it was whole
    assert_exact(cache, truth)
    assert cache.uncovered() == []

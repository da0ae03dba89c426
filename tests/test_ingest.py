"""PageWriter: batches parsed in the caller's thread, committed in order by one writer thread."""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from zdevents.errors import CacheError, PageError
from zdevents.export import fetch as ingest
from zdevents.export import parse as normalize
from zdevents.export import writer as page_writer
from zdevents.export.client import Page
from zdevents.store.parquet import Cache
from zdevents.streams import METRIC_EVENTS

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z


def page(n: int, ids: list[int] | None = None, body: bytes | None = None) -> Page:
    """Page ``n`` (1-based): events ``ids`` (default: 10n, 10n+1) at second T0 + n."""
    ids = [10 * n, 10 * n + 1] if ids is None else ids
    if body is None:
        stamp = f"2024-01-01T00:00:{n:02d}Z"
        records = [
            {"id": i, "ticket_id": 7, "metric": "reply_time", "instance_id": 1,
             "type": "measure", "time": stamp}
            for i in ids
        ]  # fmt: skip
        body = json.dumps({"ticket_metric_events": records, "end_time": T0 + n}).encode()
    return Page(
        url=f"http://127.0.0.1/page/{n}", start_time=T0 + n - 1, body=body,
        records_key="ticket_metric_events", count=len(ids), end_time=T0 + n,
        end_of_stream=None, next_page=None, last=False,
    )  # fmt: skip


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path, "acme", "metric_events")


@pytest.fixture
def around_commit(monkeypatch: pytest.MonkeyPatch):
    """``around_commit(hook)``: every Cache.commit runs inside ``hook(cursor)`` (a context
    manager), in the thread that commits."""
    real_commit = Cache.commit

    def install(hook) -> None:
        def commit(self, table, **kwargs):
            with hook(kwargs["cursor"]):
                return real_commit(self, table, **kwargs)

        monkeypatch.setattr(Cache, "commit", commit)

    return install


def writer_of(cache: Cache, **kwargs) -> ingest.PageWriter:
    """A PageWriter of metric events with batches of 2 pages."""
    return ingest.PageWriter(cache, METRIC_EVENTS, **{"batch_pages": 2, **kwargs})


def ids(cache: Cache) -> list[int]:
    return cache.read(columns=["id"])["id"].to_pylist()


def test_batch_commits_overlap_the_next_batch_and_land_in_order(
    cache: Cache, around_commit, monkeypatch: pytest.MonkeyPatch
):
    parsed = threading.Semaphore(0)
    real_parse = normalize.metric_events_table

    def parse(bodies, urls=None):
        table = real_parse(bodies, urls)
        parsed.release()
        return table

    monkeypatch.setattr(page_writer, "metric_events_table", parse)
    commits: list[tuple[str, int]] = []
    overlapped: list[bool] = []

    @contextlib.contextmanager
    def first_waits_for_the_next_parse(cursor):
        if not commits:  # the first commit waits until the second batch has been parsed
            parsed.acquire()  # taken by the first batch's parse
            overlapped.append(parsed.acquire(timeout=10))
        commits.append((threading.current_thread().name, cursor))
        yield

    around_commit(first_waits_for_the_next_parse)
    with cache.lock():
        writer = writer_of(cache, covered_since=T0)
        for n in range(1, 6):
            writer.add(page(n))
        writer.close()
    assert overlapped == [True]
    assert [cursor for _, cursor in commits] == [T0 + 2, T0 + 4, T0 + 5]
    assert all(name.startswith("zdevents-commit") for name, _ in commits)
    assert ids(cache) == [10, 11, 20, 21, 30, 31, 40, 41, 50, 51]
    assert writer.new_events == 10
    assert cache.state().cursor == T0 + 5


def test_a_failed_background_commit_is_raised_and_nothing_after_it_is_stored(
    cache: Cache, around_commit
):
    @contextlib.contextmanager
    def first_fails(cursor):
        if cursor == T0 + 2:
            raise CacheError("disk full", path=str(cache.dir))
        yield

    around_commit(first_fails)
    with cache.lock():
        writer = writer_of(cache)
        writer.add(page(1))
        writer.add(page(2))  # the first batch goes to the writer thread, which fails
        writer.add(page(3))
        with pytest.raises(CacheError, match="disk full"):
            writer.add(page(4))  # handing over the second batch waits for the first
        writer.abort()
    assert cache.state().cursor is None  # the cursor never passes pages that are not stored
    assert ids(cache) == []


def test_abort_keeps_the_pages_received_before_a_failure(cache: Cache):
    with cache.lock():
        writer = writer_of(cache)
        for n in range(1, 4):
            writer.add(page(n))
        writer.abort()  # e.g. the next request failed: page 3 is not a full batch yet
        writer.abort()  # a second call does nothing
    assert ids(cache) == [10, 11, 20, 21, 30, 31]
    assert cache.state().cursor == T0 + 3


def test_a_bad_page_keeps_the_good_pages_of_its_batch_and_is_named(cache: Cache):
    bad = page(3, body=b'{"ticket_metric_events": [{"id": "x"}]}')
    with cache.lock():
        writer = writer_of(cache, batch_pages=4)
        writer.add(page(1))
        writer.add(page(2))
        writer.add(bad)
        with pytest.raises(PageError, match="page/3"):
            writer.add(page(4))
    assert ids(cache) == [10, 11, 20, 21]
    assert cache.state().cursor == T0 + 2
    assert len(list((cache.dir / "rejected").glob("*.json"))) == 1


def test_memory_pool_switches_to_the_system_allocator_and_back():
    before = pa.default_memory_pool().backend_name
    with ingest.memory_pool():
        assert pa.default_memory_pool().backend_name == "system"
        kept = pa.array(range(1000))  # allocated from the system pool, freed after the block
    assert pa.default_memory_pool().backend_name == before
    assert kept.sum().as_py() == 499_500


def test_ctrl_c_while_waiting_for_the_writer_still_waits_and_keeps_every_page(
    cache: Cache, around_commit, monkeypatch: pytest.MonkeyPatch
):
    from concurrent.futures import Future

    release = threading.Event()
    active: list[int] = []
    overlapping: list[bool] = []

    @contextlib.contextmanager
    def first_blocks(cursor):
        overlapping.append(bool(active))
        active.append(1)
        try:
            if cursor == T0 + 2:
                assert release.wait(10)  # still running when Ctrl-C arrives
            yield
        finally:
            active.pop()

    real_result = Future.result
    interrupted: list[bool] = []

    def result(self, timeout=None):
        if not interrupted and not self.done():
            interrupted.append(True)
            threading.Timer(0.2, release.set).start()
            raise KeyboardInterrupt
        return real_result(self, timeout)

    around_commit(first_blocks)
    monkeypatch.setattr(Future, "result", result)
    with cache.lock():
        writer = writer_of(cache)
        writer.add(page(1))
        writer.add(page(2))  # batch 1 goes to the writer thread and blocks there
        writer.add(page(3))
        with pytest.raises(KeyboardInterrupt):
            writer.add(page(4))  # Ctrl-C while waiting to hand over batch 2
        writer.abort()  # what fetch() does on any exception
    assert interrupted == [True]
    assert overlapping == [False, False]  # abort waited: the two commits never overlapped
    assert ids(cache) == [10, 11, 20, 21, 30, 31, 40, 41]
    assert cache.state().cursor == T0 + 4


def test_overlapping_memory_pool_blocks_restore_the_pool_when_the_last_one_exits():
    before = pa.default_memory_pool().backend_name
    first, second = ingest.memory_pool(), ingest.memory_pool()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # e.g. one of two fetches in threads ends first
    assert pa.default_memory_pool().backend_name == "system"
    second.__exit__(None, None, None)
    assert pa.default_memory_pool().backend_name == before

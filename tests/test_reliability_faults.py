"""Server faults and a full disk, end to end through the local Zendesk server.

Every fault is either recovered within the retry budget (the cache then holds exactly the
served events) or ends with a clear error of the right class; in every failing case the
cursor never passes data that is not stored, the pages received before the fault are kept,
and the next fetch brings the cache to exactly the served set.

Every test runs on both local stores (``table_format``: the Delta table and the Parquet cache
folder); the truth they are held to is a clean fetch into the Parquet cache. A full disk is
simulated at the Parquet cache's file writes, and is a real full file system (a 16 MB
tmpfs, filled at the chosen write) for the Delta table, whose log is written by delta-rs.

Backoff runs for real with ``BACKOFF_BASE`` shrunk to 10 ms; ``Retry-After`` waits are real
too (0.2 s, or up to 1 s for the HTTP-date form), so every case runs in well under a second.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from pathlib import Path

import pytest
from _reliability import (
    TABLE_FORMATS,
    assert_consistent_snapshot,
    assert_exact,
    assert_no_debris,
    cache_of,
    clean_fetch,
    read_plain,
    small_disk,
)

import zdevents as zd
import zdevents.store.manifest as manifest_module
import zdevents.store.parts as parts_module
from zdevents.export import client as client_module
from zdevents.export import writer as page_writer
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk
from zdevents.store.delta_files import DeltaFiles
from zdevents.store.delta_log import DeltaLog

pytestmark = pytest.mark.e2e

RECEIVED_FIRST = 3  # good pages before each fault starts
MAX_RETRIES = 3


@pytest.fixture(scope="module")
def server():
    account = SampleAccount(tickets=40, seed=41)
    with LocalZendesk(account, page_size=40, metric_end_of_stream=True, tcp_nodelay=True) as srv:
        srv.preload()
        yield srv


@pytest.fixture(scope="module")
def truths(server, tmp_path_factory):
    return {
        stream: clean_fetch(server, tmp_path_factory.mktemp(stream), stream)
        for stream in ("metric_events", "ticket_events")
    }


@pytest.fixture(params=TABLE_FORMATS)
def table_format(request) -> str:
    """The store of each test: the Delta table, then the Parquet cache folder."""
    return request.param


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch, server):
    monkeypatch.setattr(client_module, "BACKOFF_BASE", 0.01)
    server.clear_faults()
    yield
    server.clear_faults()


def settings_for(server, tmp_path: Path, table_format: str, **overrides) -> zd.Settings:
    return server.settings(
        **{"data_dir": tmp_path, "max_retries": MAX_RETRIES, "table_format": table_format,
           **overrides}
    )  # fmt: skip


RECOVERED = {
    "500 burst": dict(kind="status", status=500, times=MAX_RETRIES),
    "502 burst (HTML body)": dict(kind="status", status=502, times=MAX_RETRIES),
    "503 burst": dict(kind="status", status=503, times=MAX_RETRIES),
    "504 burst (HTML body)": dict(kind="status", status=504, times=MAX_RETRIES),
    "503 with Retry-After": dict(kind="status", status=503, times=2, retry_after=0.2),
    "connection reset mid-body": dict(kind="reset", times=2),
    "truncated body": dict(kind="truncated", times=2),
    "malformed JSON": dict(kind="malformed", times=2),
    "HTML maintenance page": dict(kind="html", times=2),
    "answer slower than the timeout": dict(kind="slow", times=1, seconds=1.0),
    "429 with Retry-After seconds": dict(kind="rate_limit", times=MAX_RETRIES, retry_after=0.2),
    "429 with Retry-After HTTP date": dict(
        kind="rate_limit", times=2, retry_after=1, http_date=True
    ),
    "429 without Retry-After": dict(kind="rate_limit", times=MAX_RETRIES, retry_after=None),
}


@pytest.mark.parametrize("stream", ["metric_events", "ticket_events"])
@pytest.mark.parametrize("case", list(RECOVERED))
def test_fault_within_the_retry_budget_is_recovered_exactly(
    server, truths, tmp_path, case, stream, table_format
):
    fault = dict(RECOVERED[case])
    kind = fault.pop("kind")
    server.inject(kind, stream=stream, after=RECEIVED_FIRST, **fault)
    settings = settings_for(server, tmp_path, table_format, timeout=0.5)
    result = zd.fetch(stream, settings=settings, progress=False)
    assert server.pending_faults() == []  # the fault really happened
    assert result.requests == result.pages + fault["times"]  # each faulted answer retried once
    if kind == "rate_limit":
        assert result.rate_limited == fault["times"]
    cache = cache_of(settings, stream)
    assert_exact(cache, truths[stream])
    assert_no_debris(cache)


FAILING = {
    "5xx beyond the retry budget": (
        dict(kind="status", status=503, times=None), zd.ServerError, "did not answer"),
    "500s beyond the retry budget": (
        dict(kind="status", status=500, times=None), zd.ServerError, "HTTP 500"),
    "connection resets": (dict(kind="reset", times=None), zd.ServerError, "did not answer"),
    "truncated bodies": (dict(kind="truncated", times=None), zd.ServerError, "did not answer"),
    "malformed JSON every time": (
        dict(kind="malformed", times=None), zd.PageError, "malformed page"),
    "HTML every time": (dict(kind="html", times=None), zd.PageError, "not a JSON object"),
    "every answer slower than the timeout": (
        dict(kind="slow", times=None, seconds=1.0), zd.ServerError, "Timeout"),
    "429 storm with Retry-After seconds": (
        dict(kind="rate_limit", times=None, retry_after=0.2), zd.RateLimited, "429"),
    "429 storm without Retry-After": (
        dict(kind="rate_limit", times=None, retry_after=None), zd.RateLimited, "429"),
    "429 storm with HTTP dates": (
        dict(kind="rate_limit", times=None, retry_after=1, http_date=True), zd.RateLimited, "429"),
    "429 asking to wait an hour": (
        dict(kind="rate_limit", times=1, retry_after=3600), zd.RateLimited, "asked to wait"),
    "next_page that repeats forever": (
        dict(kind="loop", times=None), zd.PageError, "did not advance"),
    "empty page with end_of_stream false": (
        dict(kind="empty", times=1), zd.PageError, "an empty page"),
    "next_page on another host": (
        dict(kind="foreign", times=1, host="127.0.0.2:9"), zd.PageError, "not at the configured"),
    "401 in the middle of a fetch": (
        dict(kind="status", status=401, times=1), zd.AuthError, "ZENDESK_API_TOKEN"),
}  # fmt: skip


def _faulted_start_time(server, since_index: int) -> int:
    """start_time of the first faulted request (slow answers are logged when they end)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        hit = [r for r in server.request_log[since_index:] if r.fault is not None]
        if hit:
            return int(hit[0].params["start_time"])
        time.sleep(0.05)
    raise AssertionError("no faulted request was logged")


@pytest.mark.parametrize(
    ("stream", "case"),
    [("metric_events", case) for case in FAILING]
    + [("ticket_events", "5xx beyond the retry budget"),
       ("ticket_events", "next_page that repeats forever"),
       ("ticket_events", "malformed JSON every time")],
)  # fmt: skip
def test_fault_beyond_the_budget_is_a_clear_error_and_the_cursor_stays_honest(
    server, truths, tmp_path, case, stream, table_format
):
    fault, error, phrase = FAILING[case]
    fault = dict(fault)
    kind = fault.pop("kind")
    slow = kind in ("slow", "rate_limit") and fault.get("http_date") or kind == "slow"
    retries = 1 if slow else MAX_RETRIES
    settings = settings_for(server, tmp_path, table_format, timeout=0.5, max_retries=retries)
    before = len(server.request_log)
    server.inject(kind, stream=stream, after=RECEIVED_FIRST, **fault)
    with pytest.raises(error, match=phrase) as info:
        zd.fetch(stream, settings=settings, progress=False)
    url = getattr(info.value, "url", "")
    assert url.startswith(f"{server.url}/api/v2/incremental/"), url  # names the page
    server.clear_faults()

    cache = cache_of(settings, stream)
    truth = truths[stream]
    stored = assert_consistent_snapshot(cache, truth)
    # the pages received before the fault are kept: the cursor is where the fault began
    assert cache.state().cursor == _faulted_start_time(server, before)
    assert stored.num_rows > 0
    assert_no_debris(cache)

    resumed_at = len(server.request_log)
    zd.fetch(stream, settings=settings, progress=False)
    assert int(server.request_log[resumed_at].params["start_time"]) == _faulted_start_time(
        server, before
    )  # the refetch starts where the stored data ends: nothing received is fetched twice
    assert_exact(cache, truth)


def test_fault_on_the_very_first_request_stores_nothing_and_moves_no_cursor(
    server, truths, tmp_path, table_format
):
    server.fail_next(503, times=None, stream="metric_events")
    settings = settings_for(server, tmp_path, table_format)
    with pytest.raises(zd.ServerError, match="after 4 attempts"):
        zd.fetch("metric_events", settings=settings, progress=False)
    server.clear_faults()
    state = cache_of(settings).state()
    assert state.cursor is None and state.rows == 0
    zd.fetch("metric_events", settings=settings, progress=False)
    assert_exact(cache_of(settings), truths["metric_events"])


def test_too_recent_422_mid_export_ends_the_run_quietly_and_the_next_run_completes(
    server, truths, tmp_path, table_format
):
    server.inject("too_recent", stream="metric_events", after=RECEIVED_FIRST)
    settings = settings_for(server, tmp_path, table_format)
    first = zd.fetch("metric_events", settings=settings, progress=False)
    assert first.pages == RECEIVED_FIRST
    assert_consistent_snapshot(cache_of(settings), truths["metric_events"])
    zd.fetch("metric_events", settings=settings, progress=False)
    assert_exact(cache_of(settings), truths["metric_events"])


def test_ctrl_c_while_waiting_for_zendesk_keeps_the_pages_received(
    server, truths, tmp_path, monkeypatch, table_format
):
    """The CLI promises 'everything fetched before this point is kept' on Ctrl-C."""
    monkeypatch.setattr(page_writer, "BATCH_PAGES", 100)
    settings = settings_for(server, tmp_path, table_format)
    real_pace = client_module.Client._pace
    calls = []

    def pace(self, not_before, reason):
        calls.append(1)
        if len(calls) == RECEIVED_FIRST + 1:
            raise KeyboardInterrupt  # Ctrl-C while the client waits for its next request
        return real_pace(self, not_before, reason)

    monkeypatch.setattr(client_module.Client, "_pace", pace)
    with pytest.raises(KeyboardInterrupt):
        zd.fetch("metric_events", settings=settings, progress=False)
    monkeypatch.undo()
    cache = cache_of(settings)
    stored = assert_consistent_snapshot(cache, truths["metric_events"])
    assert stored.num_rows > 0  # three pages kept, not thrown away with the unfinished batch
    zd.fetch("metric_events", settings=settings, progress=False)
    assert_exact(cache, truths["metric_events"])


# ------------------------------------------------------------------------------ disk full
def _disk_full_after(monkeypatch, target: str, files_ok: int) -> list[str]:
    """Writes to the (files_ok + 1)-th ``target`` file on fail with ENOSPC; returns a log."""
    real_open = open
    failed: list[str] = []
    opened = [0]

    class Full:
        def __init__(self, fh):
            self._fh = fh

        def write(self, data):
            failed.append(self._fh.name)
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self._fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._fh.close()

    def fake_open(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        name = Path(path).name
        if "w" in mode and (
            (target == "part" and name.startswith(".part-"))
            or (target == "state" and name.startswith(".state.json"))
        ):
            opened[0] += 1
            if opened[0] > files_ok:
                return Full(fh)
        return fh

    monkeypatch.setattr(parts_module, "open", fake_open, raising=False)  # part files
    monkeypatch.setattr(manifest_module, "open", fake_open, raising=False)  # state.json
    return failed


def _fill(disk: Path) -> None:
    """Fill the file system of ``disk`` to its last byte (``disk/filler``)."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        with contextlib.suppress(OSError):
            while os.write(fd, b"\0" * 65536):
                pass
        with contextlib.suppress(OSError):
            while os.write(fd, b"\0"):
                pass
    finally:
        os.close(fd)


def _delta_disk_full_after(monkeypatch, disk: Path, target: str, files_ok: int) -> list[str]:
    """The disk fills up just before the (files_ok + 1)-th data file ("part") or log entry
    ("state": its data files are written, then delta-rs commits) is written."""
    failed: list[str] = []
    seen = [0]
    owner, name = (DeltaFiles, "write") if target == "part" else (DeltaLog, "transact")
    real = getattr(owner, name)

    def full_at_the_next(self, *args, **kwargs):
        seen[0] += 1
        if seen[0] == files_ok + 1:
            _fill(disk)
            failed.append(f"{name} #{seen[0]}")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, full_at_the_next)
    return failed


@pytest.mark.parametrize("target", ["part", "state"])
@pytest.mark.parametrize("files_ok", [0, 5])
def test_disk_full_while_writing_is_a_clear_error_and_the_cache_stays_intact(
    server, truths, tmp_path, monkeypatch, target, files_ok, table_format
):
    truth = truths["metric_events"]
    with contextlib.ExitStack() as stack:
        if table_format == "delta":
            disk = stack.enter_context(small_disk(tmp_path / "disk"))
            data_dir = disk / "data"
        else:
            disk, data_dir = None, tmp_path
        _disk_full_fetch(server, truth, data_dir, disk, monkeypatch, target, files_ok,
                         table_format)  # fmt: skip


def _disk_full_fetch(server, truth, data_dir, disk, monkeypatch, target, files_ok, table_format):
    settings = settings_for(server, data_dir, table_format)
    cache = cache_of(settings)
    half = truth["time"][truth.num_rows // 2].as_py().timestamp()
    server.now = half  # the first fetch sees the older half of the events
    try:
        zd.fetch("metric_events", settings=settings, progress=False)
    finally:
        server.now = None
    before_state, before_rows = cache.state(), read_plain(cache)
    assert 0 < before_rows.num_rows < truth.num_rows

    monkeypatch.setattr(page_writer, "BATCH_PAGES", 2)
    if disk is None:
        failed = _disk_full_after(monkeypatch, target, files_ok)
    else:
        failed = _delta_disk_full_after(monkeypatch, disk, target, files_ok)
    with pytest.raises(zd.CacheError) as info:
        zd.fetch("metric_events", settings=settings, progress=False)
    monkeypatch.undo()
    assert failed, "the disk never filled up"
    message = str(info.value)
    assert "the disk is full" in message and "No space left on device" in message
    assert str(cache.dir) in message and info.value.path.startswith(str(cache.dir))
    assert "cursor are unchanged" in message and "run the fetch again" in message
    if files_ok == 0:  # the first write failed: exactly the previous snapshot
        assert cache.state() == before_state
        assert read_plain(cache).equals(before_rows)
    else:  # some commits succeeded first: a consistent, honest snapshot
        assert cache.state().cursor > before_state.cursor
    assert_consistent_snapshot(cache, truth)
    assert_no_debris(cache)  # the half-written file was removed

    if disk is not None:
        (disk / "filler").unlink()
    zd.fetch("metric_events", settings=settings, progress=False)  # space is back
    assert_exact(cache, truth)
    assert_no_debris(cache)


def test_disk_full_message_from_a_real_os_error_in_fsync(server, truths, tmp_path, monkeypatch):
    settings = settings_for(server, tmp_path, "parquet")  # the Parquet cache's own fsync

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(parts_module.os, "fsync", no_space)
    # the first write of a new cache is its (empty) state.json, then the part files
    with pytest.raises(zd.CacheError, match=r"(month=\d{4}-\d\d|state\.json): the disk is full"):
        zd.fetch("metric_events", settings=settings, progress=False)
    monkeypatch.undo()
    assert cache_of(settings).state().cursor is None
    assert_no_debris(cache_of(settings))
    zd.fetch("metric_events", settings=settings, progress=False)
    assert_exact(cache_of(settings), truths["metric_events"])


def test_a_new_table_on_a_full_disk_is_a_clear_error_and_leaves_nothing(server, truths, tmp_path):
    """The Delta counterpart of the fsync case: a real ENOSPC on the very first write (delta-rs
    creating the table's log) is the same clear error, and nothing is left behind."""
    with small_disk(tmp_path / "disk") as disk:
        settings = settings_for(server, disk / "data", "delta")
        cache = cache_of(settings)
        _fill(disk)
        with pytest.raises(zd.CacheError) as info:
            zd.fetch("metric_events", settings=settings, progress=False)
        message = str(info.value)
        assert "the disk is full" in message and "No space left on device" in message
        assert str(cache.dir) in message and "run the fetch again" in message
        assert "\n" not in message and cache.state().cursor is None
        assert_no_debris(cache)
        (disk / "filler").unlink()
        zd.fetch("metric_events", settings=settings, progress=False)
        assert_exact(cache, truths["metric_events"])
        assert_no_debris(cache)

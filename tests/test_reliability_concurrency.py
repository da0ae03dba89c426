"""Concurrency: two fetch processes on one stream, and readers while a fetch writes.

Every test runs on both local stores (``table_format``: the Delta table, whose readers open
one table version, and the Parquet cache folder).
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from _reliability import (
    TABLE_FORMATS,
    assert_exact,
    assert_no_debris,
    cache_of,
    child_env,
    clean_fetch,
    cli_env,
)

import zdevents as zd
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk
from zdevents.schema import to_pandas

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(params=TABLE_FORMATS)
def table_format(request) -> str:
    """The store of each test: the Delta table, then the Parquet cache folder."""
    return request.param


@pytest.fixture(scope="module")
def server():
    with LocalZendesk(SampleAccount(tickets=60, seed=77), page_size=40,
                      metric_end_of_stream=True, tcp_nodelay=True) as srv:  # fmt: skip
        srv.preload()
        yield srv


@pytest.fixture(scope="module")
def truth(server, tmp_path_factory):
    return clean_fetch(server, tmp_path_factory.mktemp("clean"))


def zdevents_fetch(env, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "zdevents", "fetch", "--quiet", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_second_fetch_refuses_the_lock_and_a_third_waits_for_it(
    server, truth, tmp_path, table_format
):
    env = cli_env(server, tmp_path / "cache", table_format)
    server.slow_next(0.15, times=None)  # the first fetch takes ~12 s of requests
    try:
        before = len(server.request_log)
        first = zdevents_fetch(env)
        deadline = time.monotonic() + 60
        while len(server.request_log) == before and time.monotonic() < deadline:
            time.sleep(0.01)  # its first answer is in: the first fetch holds the lock
        assert first.poll() is None
        refused = zdevents_fetch(env)
        waiting = zdevents_fetch(env, "--wait", "120")
        refused_out, refused_err = refused.communicate(timeout=60)
        assert first.poll() is None, "the first fetch ended too soon to test the lock"
        first_out, first_err = first.communicate(timeout=120)
        waiting_out, waiting_err = waiting.communicate(timeout=120)
    finally:
        server.clear_faults()
    assert first.returncode == 0, first_err
    assert refused.returncode == 2
    lines = [line for line in refused_err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in refused_err
    assert "zdevents fetch: error: another zdevents fetch is writing metric_events" in lines[0]
    assert "--wait" in lines[0] and refused_out == ""
    assert waiting.returncode == 0, waiting_err
    # the waiting fetch started where the first one ended: one page, nothing new
    assert "metric_events: 1 page," in waiting_out and ", 0 new," in waiting_out
    cache = cache_of(server.settings(data_dir=tmp_path / "cache", table_format=table_format))
    assert_exact(cache, truth)
    assert_no_debris(cache)


@pytest.fixture(scope="module")
def forkserver():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["zdevents.cli", "zdevents.export.fetch", "_fetch_child"])
    return ctx


def test_load_frame_while_a_fetch_commits_sees_whole_snapshots_only(
    server, truth, forkserver, tmp_path, table_format
):
    from _fetch_child import run_fetch

    data_dir = tmp_path / "cache"
    data_dir.mkdir()
    commits_file = tmp_path / "commits"
    settings = server.settings(data_dir=data_dir, table_format=table_format)
    server.slow_next(0.01, times=None)
    writer = forkserver.Process(
        target=run_fetch,
        args=(["fetch", "--quiet"], child_env(server, data_dir, table_format)),
        kwargs={"batch_pages": 1, "log_path": str(tmp_path / "child.log"),
                "commits_path": str(commits_file)},
        daemon=True,
    )  # fmt: skip
    observed: list[pd.DataFrame] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read_while_writing() -> None:
        n = 0
        while not done.is_set():
            columns = None if n % 2 else ["id", "time", "metric", "type"]
            try:
                observed.append(zd.load_frame(refresh="never", settings=settings, columns=columns))
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)
                return
            n += 1

    reader = threading.Thread(target=read_while_writing)
    try:
        writer.start()
        reader.start()
        writer.join(120)
    finally:
        done.set()
        reader.join(60)
        server.clear_faults()
    assert writer.exitcode == 0, (tmp_path / "child.log").read_text()
    assert not errors, errors
    committed = {0} | {int(n) for n in commits_file.read_text().split()}
    assert len(committed) > 20  # many commits happened while reading

    expected = to_pandas(truth, "metric_events").set_index("id")
    sizes = set()
    for n, frame in enumerate(observed):
        ids = frame["id"]
        assert ids.is_unique
        assert len(frame) in committed  # the rows of some commit, never a partial state
        sizes.add(len(frame))
        if len(frame):  # a whole prefix of the export: nothing older than the newest is missing
            newest = frame["time"].max()
            assert set(expected.index[expected["time"] < newest]) <= set(ids)
        if n % 4:
            continue  # every value of every fourth read is compared too
        got = frame.set_index("id").sort_index()
        want = expected.loc[got.index, got.columns]
        for name in got.columns:  # categories (as loaded) vs the truth's plain strings
            if isinstance(got[name].dtype, pd.CategoricalDtype):
                got[name] = got[name].astype(want[name].dtype)
        pd.testing.assert_frame_equal(got, want)
    print(f"\n{len(observed)} load_frame reads during {len(committed) - 1} commits; "
          f"{len(sizes)} different snapshots seen, every one whole")  # fmt: skip
    assert len(observed) >= 20 and len(sizes) >= 5
    assert_exact(cache_of(settings), truth)

"""Reads never fail for the refresh, and a lost state is an error that a rebuild repairs.

``refresh="auto"`` reads the last committed snapshot with one warning when Zendesk cannot be
reached, another process holds the lock or the cache is read-only; ``refresh="force"`` still
raises. ``state.json`` missing beside the data files is a ``CacheError`` naming
``zdevents cache rebuild``, which restores it from the files; zdevents deletes only files
whose names it writes. Everything runs through HTTP against the local Zendesk server, on
both local stores (``table_format``: the Delta table and the Parquet cache folder). A lost
``state.json`` is the Parquet cache's own; the Delta table's counterpart is a log whose
commits no longer carry zdevents' state.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import warnings
from pathlib import Path

import pytest
from _reliability import TABLE_FORMATS, assert_exact, cache_of, clean_fetch, cli_env, log_entries

import zdevents as zd
from zdevents import cli
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
ROWS = 11_016  # metric events of the 200-ticket sample account


@pytest.fixture(params=TABLE_FORMATS)
def table_format(request) -> str:
    """The store of each test: the Delta table, then the Parquet cache folder."""
    return request.param


@pytest.fixture(scope="module")
def server():
    account = SampleAccount(tickets=200)
    with LocalZendesk(account, page_size=100, metric_end_of_stream=True, tcp_nodelay=True) as srv:
        srv.preload()
        yield srv


@pytest.fixture(scope="module")
def truth(server, tmp_path_factory):
    table = clean_fetch(server, tmp_path_factory.mktemp("clean"))
    assert table.num_rows == ROWS
    return table


@contextlib.contextmanager
def recorded() -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def part_files(cache) -> list[Path]:
    """The part files zdevents wrote (``month=YYYY-MM/part-<32 hex>.parquet``)."""
    return sorted(
        p
        for p in cache.dir.glob("month=*/part-*.parquet")
        if re.fullmatch(r"part-[0-9a-f]{32}\.parquet", p.name)
    )


# ------------------------------------------------------------------------ refresh="auto"
def test_auto_reads_the_cache_with_one_warning_when_zendesk_cannot_be_reached(
    tmp_path, table_format
):
    with LocalZendesk(SampleAccount(tickets=200)) as offline_later:
        settings = offline_later.settings(
            data_dir=tmp_path, max_retries=0, table_format=table_format
        )
        zd.fetch(settings=settings, progress=False)
    # the server is gone: its port refuses connections
    with recorded() as caught:
        events = zd.load_frame(settings=settings)
    assert len(events) == ROWS
    assert len(caught) == 1
    assert "could not refresh metric_events from Zendesk" in str(caught[0].message)
    assert caught[0].filename == __file__  # points at the caller's line
    assert events.attrs["zdevents_as_of"] == zd.scan_as_of(settings=settings)
    with pytest.raises(zd.ServerError):
        zd.load_frame(settings=settings, refresh="force")


def test_auto_reads_the_last_snapshot_while_another_process_fetches(
    server, truth, tmp_path, table_format
):
    settings = server.settings(data_dir=tmp_path, table_format=table_format)
    zd.fetch(settings=settings, progress=False)
    cache = cache_of(settings)
    script = textwrap.dedent(
        f"""
        import sys
        from zdevents.store.delta import DeltaCache
        from zdevents.store.parquet import Cache
        store = {{"delta": DeltaCache, "parquet": Cache}}[{table_format!r}]
        with store({str(tmp_path)!r}, {settings.account!r}, "metric_events").lock():
            print("locked", flush=True)
            sys.stdin.readline()
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "locked"
        before = server.requests
        with recorded() as caught:
            events = zd.load_frame(settings=settings)
            projected = zd.load_frame(settings=settings, columns=["id"])
        assert len(events) == len(projected) == ROWS and server.requests == before
        messages = [str(w.message) for w in caught]
        assert len(messages) == 2  # one per read
        assert all("another process is fetching metric_events" in m for m in messages)
        assert "lock_timeout" in messages[0]
        with pytest.raises(zd.CacheLocked):
            zd.load_frame(settings=settings, refresh="force")

        # waiting stays available: lock_timeout waits for that fetch, then refreshes
        threading.Timer(1.0, child.stdin.close).start()
        with recorded() as caught:
            events = zd.load_frame(settings=settings, lock_timeout=60)
        assert not caught and server.requests == before + 1  # one request from the cursor
    finally:
        with contextlib.suppress(OSError, ValueError):
            child.stdin.close()
        child.wait(timeout=30)
    assert_exact(cache, truth)


def _read_only_copy(source: Path) -> Path:
    """A copy of a cache folder that nobody but root may write (0555/0444)."""
    target = Path(tempfile.mkdtemp(prefix="zdevents-ro-"))
    shutil.copytree(source, target / "data")
    for folder, _dirs, files in os.walk(target):
        for name in files:
            os.chmod(Path(folder) / name, 0o444)
        os.chmod(folder, 0o555)
    return target


def _unprivileged(command: list[str]) -> list[str]:
    """``command`` run as a user whom read-only files stop (root is not stopped by modes)."""
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a folder read-only")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]


def test_a_read_only_cache_is_read_with_one_warning_and_fetch_prints_one_line(
    server, truth, tmp_path, table_format
):
    settings = server.settings(data_dir=tmp_path / "data", table_format=table_format)
    zd.fetch(settings=settings, progress=False)
    top = _read_only_copy(tmp_path / "data")
    try:
        env = cli_env(server, top / "data", table_format)
        script = textwrap.dedent(
            """
            import warnings
            import zdevents as zd
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                events = zd.load_frame()
            print(len(events))
            for w in caught:
                print("WARNING", w.message)
            """
        )
        read = subprocess.run(
            _unprivileged([sys.executable, "-c", script]), env=env, cwd=top,
            capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert read.returncode == 0, read.stderr
        lines = read.stdout.splitlines()
        assert lines[0] == str(ROWS)
        assert len(lines) == 2 and "could not refresh the metric_events cache" in lines[1]
        assert "read-only" in lines[1] and "Traceback" not in read.stderr

        fetch = subprocess.run(
            _unprivileged([sys.executable, "-m", "zdevents", "fetch", "--quiet"]), env=env,
            cwd=top, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert fetch.returncode == 2
        errors = [line for line in fetch.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and "read-only" in errors[0], fetch.stderr
        assert "Traceback" not in fetch.stderr and "OSError" not in fetch.stderr
    finally:
        for folder, _, _ in os.walk(top):
            os.chmod(folder, 0o755)
        shutil.rmtree(top, ignore_errors=True)


# ------------------------------------------------------------------------ the lost state
def test_a_lost_state_file_is_an_error_and_rebuild_restores_it_deleting_nothing(
    server, truth, tmp_path, monkeypatch, capsys
):
    settings = server.settings(data_dir=tmp_path, table_format="parquet")
    cache = cache_of(settings)
    zd.fetch(settings=settings, progress=False)
    files = part_files(cache)
    assert len(files) >= 7
    cache.state_path.unlink()

    for call in (
        lambda: zd.load_frame(refresh="never", settings=settings),
        lambda: zd.fetch(settings=settings, progress=False),
        lambda: zd.scan_as_of(settings=settings),
    ):
        with pytest.raises(zd.CacheError) as info:
            call()
        message = str(info.value)
        assert "state.json is missing" in message
        assert f"{len(files)} data file(s)" in message
        assert "zdevents cache rebuild --stream metric_events" in message
    assert part_files(cache) == files  # the fetch deleted nothing

    for name, value in cli_env(server, tmp_path, "parquet").items():
        monkeypatch.setenv(name, value)
    assert cli.main(["cache", "rebuild", "--stream", "metric_events"]) == 0
    assert f"from {len(files)} files, {ROWS:,} rows" in capsys.readouterr().out
    assert part_files(cache) == files
    assert_exact(cache, truth)

    before = server.requests
    zd.fetch(settings=settings, progress=False)  # continues from the last cached second
    assert server.requests == before + 1
    assert_exact(cache, truth)


def test_a_table_whose_commits_lost_their_state_is_an_error_and_rebuild_restores_it(
    server, truth, tmp_path, monkeypatch, capsys
):
    """The Delta counterpart: every commit's zdevents metadata dropped (as a tool rewriting
    the log would), the data files and their add actions intact."""
    settings = server.settings(data_dir=tmp_path, table_format="delta")
    cache = cache_of(settings)
    zd.fetch(settings=settings, progress=False)
    files = part_files(cache)
    live = len(cache.state().files)
    assert live >= 6
    for entry in log_entries(cache):
        actions = [json.loads(line) for line in entry.read_text().splitlines() if line.strip()]
        for action in actions:
            action.get("commitInfo", {}).pop("zdevents", None)
        entry.write_text("".join(json.dumps(action) + "\n" for action in actions))

    for call in (
        lambda: zd.load_frame(refresh="never", settings=settings),
        lambda: zd.fetch(settings=settings, progress=False),
        lambda: zd.scan_as_of(settings=settings),
    ):
        with pytest.raises(zd.CacheError) as info:
            call()
        message = str(info.value)
        assert str(cache.dir) in message
        assert f"holds {live} data file(s) but no commit of it records zdevents' state" in message
        assert "zdevents cache rebuild --stream metric_events" in message
    assert part_files(cache) == files  # the fetch deleted nothing

    for name, value in cli_env(server, tmp_path, "delta").items():
        monkeypatch.setenv(name, value)
    assert cli.main(["cache", "rebuild", "--stream", "metric_events"]) == 0
    assert f"from {live} files, {ROWS:,} rows" in capsys.readouterr().out
    assert part_files(cache) == files
    assert_exact(cache, truth)

    before = server.requests
    zd.fetch(settings=settings, progress=False)  # continues from the last cached second
    assert server.requests == before + 1
    assert_exact(cache, truth)


def test_a_lost_table_log_is_an_error_and_rebuild_restores_it_deleting_nothing(
    server, truth, tmp_path, monkeypatch, capsys
):
    """The Delta counterpart of a lost state.json: the whole ``_delta_log`` gone, the data
    files left."""
    settings = server.settings(data_dir=tmp_path, table_format="delta")
    cache = cache_of(settings)
    zd.fetch(settings=settings, progress=False)
    files = part_files(cache)
    shutil.rmtree(cache.dir / "_delta_log")

    for call in (
        lambda: zd.load_frame(refresh="never", settings=settings),
        lambda: zd.fetch(settings=settings, progress=False),
        lambda: zd.scan_as_of(settings=settings),
    ):
        with pytest.raises(zd.CacheError) as info:
            call()
        message = str(info.value)
        assert "_delta_log" in message and f"{len(files)} data file(s)" in message
        assert "zdevents cache rebuild --stream metric_events" in message
    assert part_files(cache) == files  # the fetch deleted nothing

    for name, value in cli_env(server, tmp_path, "delta").items():
        monkeypatch.setenv(name, value)
    assert cli.main(["cache", "rebuild", "--stream", "metric_events"]) == 0
    assert f"{ROWS:,} rows" in capsys.readouterr().out  # from the files left on disk
    assert_exact(cache, truth)


def test_files_zdevents_did_not_write_survive_fetches_and_clear(
    server, truth, tmp_path, table_format
):
    settings = server.settings(data_dir=tmp_path, table_format=table_format)
    cache = cache_of(settings)
    zd.fetch(settings=settings, progress=False)
    theirs = [
        cache.dir / "month=2024-01" / "notes.txt",
        cache.dir / "month=2024-01" / "part-backup.parquet",
        cache.dir / "month=2024-02" / "export.csv",
        cache.dir / "month=backup" / "old.parquet",
        cache.dir / "my-analysis.ipynb",
        cache.dir / "rejected" / "my-notes.json",
    ]
    for path in theirs:
        path.parent.mkdir(exist_ok=True)
        path.write_text("mine")
    zd.fetch(since="2024-01-01", force=True, settings=settings, progress=False)  # commits sweep
    assert all(path.read_text() == "mine" for path in theirs)
    assert_exact(cache, truth)
    cache.clear()
    assert cache.state().empty and not part_files(cache)
    assert all(path.read_text() == "mine" for path in theirs)

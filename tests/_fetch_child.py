"""Child processes for the reliability tests: a real ``zdevents fetch`` that gets killed.

The tests start these through multiprocessing's *forkserver* with zdevents preloaded, so a
trial costs the fetch and not Python's 2-3 s of imports; each child is still a separate OS
process that runs the real command line (``zdevents.cli.main``) and dies by SIGKILL.

Kill points are armed here, by wrapping the child's own functions: the library has no test
hooks. Every point kills the process with SIGKILL at the ``kill_on``-th time it is reached:

The Parquet cache folder (:data:`KILL_POINTS`):

``parquet``        half of a part file is written to its temp file (and fsynced), then die
``part-renamed``   a part file was renamed into place, before ``state.json`` lists it
``state-writing``  the new ``state.json`` temp file is half written, then die (not renamed)
``state-replaced`` ``state.json`` was replaced, before the files it no longer lists are swept

The Delta table (:data:`DELTA_KILL_POINTS`; its log is written by delta-rs, in Rust, which
cannot be stopped from Python half way, so the half-written log entry is made here):

``data-half``      half of a data file is on disk under its final name, then die
``data-written``   a data file is written whole, before any commit lists it
``log-writing``    the commit's data files are written and delta-rs' temp file of the next
                   log entry (``_delta_log/_commit_<uuid>.json.tmp``) is half written, then
                   die before it is renamed to the next version
``committed``      a commit landed (a new table version), before the fetch goes on

Which store the child writes is its environment's ``ZDEVENTS_TABLE_FORMAT``.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence

KILL_POINTS = ("parquet", "part-renamed", "state-writing", "state-replaced")
DELTA_KILL_POINTS = ("data-half", "data-written", "log-writing", "committed")


def run_fetch(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    batch_pages: int,
    log_path: str,
    kill_point: str | None = None,
    kill_on: int = 1,
    commits_path: str | None = None,
) -> None:
    """Run ``zdevents <argv>`` in this (child) process; exits with the CLI's status."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    for name in [k for k in os.environ if k.startswith(("ZENDESK_", "ZDEVENTS_"))]:
        del os.environ[name]
    os.environ.update(env)

    import threading

    from tqdm import tqdm

    from zdevents import cli
    from zdevents.export import writer as page_writer

    # tqdm's default lock is a multiprocessing semaphore, which a SIGKILLed child leaks
    tqdm.set_lock(threading.RLock())
    page_writer.BATCH_PAGES = batch_pages
    if kill_point is not None:
        _arm(kill_point, kill_on)
    if commits_path is not None:
        _record_commits(commits_path)
    sys.stdout.flush()
    sys.exit(cli.main(list(argv)))


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _counter(kill_on: int) -> Callable[[], bool]:
    seen = [0]

    def hit() -> bool:
        seen[0] += 1
        return seen[0] == kill_on

    return hit


def _arm(point: str, kill_on: int) -> None:
    import zdevents.store.parts as parts_module

    if point in DELTA_KILL_POINTS:
        _arm_delta(point, _counter(kill_on))
        return
    if point not in KILL_POINTS:
        raise ValueError(f"unknown kill point {point!r}")
    hit = _counter(kill_on)
    if point == "parquet":
        writer_class = parts_module.pq.ParquetWriter
        real_write = writer_class.write_table

        def write_table(self, table, row_group_size=None):
            real_write(self, table, row_group_size=row_group_size)
            if hit():  # killed with a row group in the file and no footer
                _die()

        writer_class.write_table = write_table
        return

    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        target = os.fspath(dst)
        is_state = target.endswith("state.json")
        is_part = target.endswith(".parquet")
        if point == "state-writing" and is_state and hit():
            size = os.path.getsize(src)
            with open(src, "r+b") as fh:
                fh.truncate(size // 2)
                fh.flush()
                os.fsync(fh.fileno())
            _die()
        real_replace(src, dst, *args, **kwargs)
        if (point == "part-renamed" and is_part) or (point == "state-replaced" and is_state):
            if hit():
                _die()

    os.replace = replace


def _arm_delta(point: str, hit: Callable[[], bool]) -> None:
    from zdevents.store.delta_files import DeltaFiles
    from zdevents.store.delta_log import DeltaLog

    if point in ("data-half", "data-written"):
        real_write = DeltaFiles.write

        def write(self, table, month, footers, **kwargs):
            part = real_write(self, table, month, footers, **kwargs)
            if hit():
                if point == "data-half":
                    fs, root = self.log.filesystem()
                    with open(f"{root}/{part.path}", "r+b") as fh:
                        fh.truncate(part.size // 2)
                        fh.flush()
                        os.fsync(fh.fileno())
                _die()
            return part

        DeltaFiles.write = write
        return

    real_transact = DeltaLog.transact

    def transact(self, table, **kwargs):
        if point == "log-writing" and hit():
            import uuid

            fs, root = self.filesystem()
            entry = f"{root}/_delta_log/{table.version():020d}.json"
            with fs.open_input_stream(entry) as fh:  # a real log entry's shape, cut in half
                text = fh.read()
            temp = f"{root}/_delta_log/_commit_{uuid.uuid4()}.json.tmp"
            with open(temp, "wb") as fh:
                fh.write(text[: len(text) // 2])
                fh.flush()
                os.fsync(fh.fileno())
            _die()
        version = real_transact(self, table, **kwargs)
        if point == "committed" and hit():
            _die()
        return version

    DeltaLog.transact = transact


def _record_commits(path: str) -> None:
    """Append the row count of every commit (one line per commit), on either store."""
    from zdevents.store.delta_log import DeltaLog
    from zdevents.store.parquet import Cache

    def record(rows: int) -> None:
        with open(path, "a") as fh:
            fh.write(f"{rows}\n")

    real = Cache._write_state

    def write_state(self, state):
        real(self, state)
        record(state.rows)

    real_transact = DeltaLog.transact

    def transact(self, table, **kwargs):
        version = real_transact(self, table, **kwargs)
        record(kwargs["state"].rows)
        return version

    Cache._write_state = write_state
    DeltaLog.transact = transact

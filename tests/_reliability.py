"""Shared helpers of the reliability tests (tests/test_reliability_*.py).

Every reliability test runs on both local stores, named explicitly (never the default):
each test file's ``table_format`` fixture (params :data:`TABLE_FORMATS`) gives ``"delta"``
(the Delta Lake table, ``store/delta.py``) and ``"parquet"`` (the Parquet cache folder,
``store/parquet.py``); tests pass it to every ``Settings``, store and child environment.
The helpers below take either store.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import zdevents as zd
from zdevents.sample.server import LocalZendesk
from zdevents.store.delta import DeltaCache
from zdevents.store.parquet import Cache

STREAM = "metric_events"
TABLE_FORMATS = ("delta", "parquet")
Store = Cache | DeltaCache
LOG_ENTRY = re.compile(r"\d{20}\.json")
"""A version of a Delta table's log (``_delta_log/00000000000000000007.json``)."""


def plain(table: pa.Table) -> pa.Table:
    """Rows sorted by id, dictionaries decoded, one chunk: comparable with ``equals``."""
    table = table.replace_schema_metadata(None)
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.name, table[i].cast(field.type.value_type))
    return table.sort_by([("id", "ascending")]).combine_chunks()


def store_of(
    data_dir: str | os.PathLike[str], account: str, stream: str, table_format: str
) -> Store:
    """The store ``table_format`` names, built directly: never a conversion, never a guess."""
    if table_format == "delta":
        return DeltaCache(data_dir, account, stream)
    if table_format == "parquet":
        return Cache(data_dir, account, stream)
    raise ValueError(f"unknown table format {table_format!r}")


def cache_of(settings: zd.Settings, stream: str = STREAM) -> Store:
    """The store of ``settings.table_format`` (the one zdevents opens with these settings)."""
    return store_of(settings.data_dir, settings.account, stream, settings.table_format)


def is_delta(cache: Store) -> bool:
    return isinstance(cache, DeltaCache)


def assert_format(cache: Store) -> None:
    """The folder holds the store the test asked for, and not the other one."""
    has_log = (cache.dir / "_delta_log").is_dir()
    has_state = (cache.dir / "state.json").exists()
    if is_delta(cache):
        assert has_log and not has_state, f"{cache.dir} is not a Delta table"
    else:
        assert has_state and not has_log, f"{cache.dir} is not a Parquet cache folder"


def clean_fetch(
    server: LocalZendesk, data_dir: Path, stream: str = STREAM, table_format: str = "parquet"
) -> pa.Table:
    """The truth: a fetch with no fault, as a plain table (checked against what was served).

    It is taken from the Parquet cache unless told otherwise, so a test on the Delta table
    also proves that both stores hold the same rows.
    """
    settings = server.settings(data_dir=data_dir, table_format=table_format)
    zd.fetch(stream, settings=settings, progress=False)
    truth = plain(cache_of(settings, stream).read())
    assert set(truth["id"].to_pylist()) == server.unique_ids(stream)
    return truth


def read_plain(cache: Store) -> pa.Table:
    return plain(cache.read())


def assert_exact(cache: Store, truth: pa.Table) -> None:
    """The cache holds exactly the truth's rows: same ids, same values, no duplicate."""
    assert_format(cache)
    got = read_plain(cache)
    ids = got["id"].to_pylist()
    assert len(ids) == len(set(ids)), "duplicate ids in the cache"
    assert got.num_rows == truth.num_rows, (got.num_rows, truth.num_rows)
    assert got.equals(truth)
    assert cache.state().rows == truth.num_rows


# ------------------------------------------------------------------------------ debris
def log_entries(cache: DeltaCache) -> list[Path]:
    """The versions of a local Delta table's log, oldest first."""
    folder = cache.dir / "_delta_log"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if LOG_ENTRY.fullmatch(p.name))


def log_actions(cache: DeltaCache) -> list[dict]:
    """Every action of every log entry (each line parses as a JSON object)."""
    actions = []
    for entry in log_entries(cache):
        for line in entry.read_text().splitlines():
            if line.strip():
                action = json.loads(line)
                assert isinstance(action, dict), (entry, line)
                actions.append(action)
    return actions


def tracked_files(cache: DeltaCache) -> set[str]:
    """Data files some version of the table added or removed (removed ones stay, for
    readers of older versions, until ``vacuum``)."""
    found = set()
    for action in log_actions(cache):
        for kind in ("add", "remove"):
            if kind in action:
                found.add(unquote(action[kind]["path"]))
    return found


def debris(cache: Store) -> dict[str, list[str]]:
    """Files in the stream folder that the store does not account for, by kind.

    Parquet: temp part files, temp ``state.json`` files, parts the manifest does not list.
    Delta: temp data files, files in ``_delta_log`` that are not a version of the table
    (a commit's temp file), data files that no version of the table ever added.
    """
    found: dict[str, list[str]] = {"part_tmp": [], "state_tmp": [], "orphan_parts": []}
    if not cache.dir.exists():
        return found
    if is_delta(cache):
        known = tracked_files(cache)
        log_dir = cache.dir / "_delta_log"
        if log_dir.is_dir():
            found["state_tmp"] = sorted(
                p.name
                for p in log_dir.iterdir()
                if not LOG_ENTRY.fullmatch(p.name)
                and not re.fullmatch(r"\d{20}\.checkpoint\.parquet|_last_checkpoint", p.name)
            )
    else:
        known = {p.path for p in cache.state().files}
        found["state_tmp"] = sorted(p.name for p in cache.dir.glob(".state.json.*.tmp"))
    for path in cache.dir.glob("month=*/*"):
        relative = path.relative_to(cache.dir).as_posix()
        if path.name.endswith(".tmp"):
            found["part_tmp"].append(relative)
        elif relative not in known:
            found["orphan_parts"].append(relative)
    found["part_tmp"].sort()
    found["orphan_parts"].sort()
    return found


def assert_no_debris(cache: Store) -> None:
    assert debris(cache) == {"part_tmp": [], "state_tmp": [], "orphan_parts": []}


def assert_consistent_snapshot(cache: Store, truth: pa.Table) -> pa.Table:
    """What a reader sees now is a valid snapshot of the truth (possibly a prefix).

    The store's own record parses (Parquet: ``state.json``; Delta: every line of every log
    entry); every listed file exists and is a data file (never a temp file); ids are unique;
    each row equals the truth's row of that id; the state's row count is the rows read; and
    the cursor never passed data that is not stored: every event older than the cursor is in
    the cache, and the cursor is at most the newest stored second + 1.
    """
    if is_delta(cache):
        log_actions(cache)  # every committed version parses
    elif cache.state_path.exists():
        json.loads(cache.state_path.read_bytes())  # parses as JSON
    state = cache.state()
    for part in state.files:
        assert not part.path.endswith(".tmp")
        assert (cache.dir / part.path).is_file(), part.path
    got = read_plain(cache)
    ids = got["id"]
    assert pc.count_distinct(ids).as_py() == got.num_rows, "duplicate ids"
    assert state.rows == got.num_rows
    expected = truth.filter(pc.is_in(truth["id"], value_set=ids))
    assert expected.num_rows == got.num_rows, "rows the server never sent"
    assert expected.equals(got), "a stored row differs from what the server sent"
    assert_cursor_covers(state.cursor, got, truth)
    return got


def assert_cursor_covers(cursor: int | None, stored: pa.Table, truth: pa.Table) -> None:
    """Every served event older than the cursor is stored; the cursor <= newest stored + 1 s."""
    if cursor is None:
        return
    older = truth.filter(
        pc.less(truth["time"], pa.scalar(cursor * 1000, pa.timestamp("ms", "UTC")))
    )
    missing = set(older["id"].to_pylist()) - set(stored["id"].to_pylist())
    assert not missing, f"the cursor passed {len(missing)} events that are not stored"
    if stored.num_rows:
        newest = pc.max(stored["time"]).cast(pa.int64()).as_py() // 1000
        assert cursor <= newest + 1, (cursor, newest)


def cli_env(
    server: LocalZendesk, data_dir: Path, table_format: str | None = None, **extra: str
) -> dict[str, str]:
    """Environment of a ``zdevents`` child process pointed at ``server``.

    ``table_format`` sets ``ZDEVENTS_TABLE_FORMAT`` (the reliability tests always pass it;
    None leaves the variable out, so the child uses the default store).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENDESK_", "ZDEVENTS_"))}
    env.update(
        ZENDESK_BASE_URL=server.url,
        ZENDESK_SUBDOMAIN=server.subdomain,
        ZENDESK_EMAIL=server.email,
        ZENDESK_API_TOKEN=server.api_token or "",
        ZDEVENTS_DATA_DIR=str(data_dir),
        ZDEVENTS_REQUESTS_PER_MINUTE="100000",
    )
    if table_format is not None:
        env["ZDEVENTS_TABLE_FORMAT"] = table_format
    env.update(extra)
    return env


def child_env(
    server: LocalZendesk, data_dir: Path, table_format: str | None = None
) -> dict[str, str]:
    """Only the zdevents variables (a forkserver child keeps the rest of its environment)."""
    env = cli_env(server, data_dir, table_format)
    return {k: v for k, v in env.items() if k.startswith(("ZEN", "ZDE"))}


@contextlib.contextmanager
def small_disk(folder: Path):
    """A 16 MB tmpfs at ``folder`` (skips where mounting is not allowed: root only)."""
    folder.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16M", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a small file system here (a real full disk needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)

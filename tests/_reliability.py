"""Shared helpers of the reliability tests (tests/test_reliability_*.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

import zdevents as zd
from zdevents.sample.server import LocalZendesk
from zdevents.store.parquet import Cache

STREAM = "metric_events"


def plain(table: pa.Table) -> pa.Table:
    """Rows sorted by id, dictionaries decoded, one chunk: comparable with ``equals``."""
    table = table.replace_schema_metadata(None)
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.name, table[i].cast(field.type.value_type))
    return table.sort_by([("id", "ascending")]).combine_chunks()


def cache_of(settings: zd.Settings, stream: str = STREAM) -> Cache:
    return Cache(settings.data_dir, settings.account, stream)


def clean_fetch(server: LocalZendesk, data_dir: Path, stream: str = STREAM) -> pa.Table:
    """The truth: a fetch with no fault, as a plain table (checked against what was served)."""
    settings = server.settings(data_dir=data_dir)
    zd.fetch(stream, settings=settings, progress=False)
    truth = plain(cache_of(settings, stream).read())
    assert set(truth["id"].to_pylist()) == server.unique_ids(stream)
    return truth


def read_plain(cache: Cache) -> pa.Table:
    return plain(cache.read())


def assert_exact(cache: Cache, truth: pa.Table) -> None:
    """The cache holds exactly the truth's rows: same ids, same values, no duplicate."""
    got = read_plain(cache)
    ids = got["id"].to_pylist()
    assert len(ids) == len(set(ids)), "duplicate ids in the cache"
    assert got.num_rows == truth.num_rows, (got.num_rows, truth.num_rows)
    assert got.equals(truth)
    assert cache.state().rows == truth.num_rows


def debris(cache: Cache) -> dict[str, list[str]]:
    """Files in the stream folder that the manifest does not list, by kind."""
    listed = {p.path for p in cache.state().files}
    found: dict[str, list[str]] = {"part_tmp": [], "state_tmp": [], "orphan_parts": []}
    if not cache.dir.exists():
        return found
    found["state_tmp"] = sorted(p.name for p in cache.dir.glob(".state.json.*.tmp"))
    for path in cache.dir.glob("month=*/*"):
        relative = path.relative_to(cache.dir).as_posix()
        if path.name.endswith(".tmp"):
            found["part_tmp"].append(relative)
        elif relative not in listed:
            found["orphan_parts"].append(relative)
    return found


def assert_no_debris(cache: Cache) -> None:
    assert debris(cache) == {"part_tmp": [], "state_tmp": [], "orphan_parts": []}


def assert_consistent_snapshot(cache: Cache, truth: pa.Table) -> pa.Table:
    """What a reader sees now is a valid snapshot of the truth (possibly a prefix).

    ``state.json`` parses; every listed file exists, is a part (never a temp file) and reads;
    ids are unique; each row equals the truth's row of that id; the manifest's row count is
    the rows read; and the cursor never passed data that is not stored: every event older
    than the cursor is in the cache, and the cursor is at most the newest stored second + 1.
    """
    if cache.state_path.exists():
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


def cli_env(server: LocalZendesk, data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment of a ``zdevents`` child process pointed at ``server``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENDESK_", "ZDEVENTS_"))}
    env.update(
        ZENDESK_BASE_URL=server.url,
        ZENDESK_SUBDOMAIN=server.subdomain,
        ZENDESK_EMAIL=server.email,
        ZENDESK_API_TOKEN=server.api_token or "",
        ZDEVENTS_DATA_DIR=str(data_dir),
        ZDEVENTS_REQUESTS_PER_MINUTE="100000",
    )
    env.update(extra)
    return env


def child_env(server: LocalZendesk, data_dir: Path) -> dict[str, str]:
    """Only the zdevents variables (a forkserver child keeps the rest of its environment)."""
    return {k: v for k, v in cli_env(server, data_dir).items() if k.startswith(("ZEN", "ZDE"))}

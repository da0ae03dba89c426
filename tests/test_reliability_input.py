"""Hostile and broken input: generated pages, damaged cache files, malformed settings.

Pages are generated with hypothesis and served to the real ``zd.fetch`` (client, envelope
reading, normalisation, cache) through ``responses``: duplicate ids within and across pages,
out-of-order times, missing and null optional fields, unknown metrics, types and fields,
empty and huge pages, metric events under the ``ticket_events`` key, and - on one page -
a wrong type, a missing required field, a non-object record or invalid UTF-8. Every record
is either stored exactly per the schema, or its page is rejected with a ``PageError`` naming
the page and the field, kept in ``<stream dir>/rejected/``, with every earlier page stored.

Every test that stores anything runs on both local stores (``table_format``: the Delta table
and the Parquet cache folder). A damaged ``state.json`` is the Parquet cache's own; the Delta
table's counterpart is a damaged entry of its ``_delta_log``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import responses
from _reliability import (
    TABLE_FORMATS,
    Store,
    assert_exact,
    assert_no_debris,
    cache_of,
    clean_fetch,
    cli_env,
    log_entries,
    plain,
    store_of,
)
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from responses import matchers

import zdevents as zd
from zdevents import cli
from zdevents.export import writer as page_writer
from zdevents.export.parse import metric_events_table
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk

TOKEN = "zd-SECRET-TOKEN-4242"
SUBDOMAIN = "hostile-input"  # an origin of its own: no other test's pacing budget applies
BASE = f"https://{SUBDOMAIN}.zendesk.com"
PATH = "/api/v2/incremental/ticket_metric_events"
T0 = 1_577_836_800  # 2020-01-01: page i covers start_time T0 + i .. end_time T0 + i + 1
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MISSING = object()

# ------------------------------------------------------------------------------ strategies
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=10)
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
METRICS = ["agent_work_time", "pausable_update_time", "periodic_update_time", "reply_time",
           "requester_wait_time", "resolution_time", "group_ownership_time"]  # fmt: skip
TYPES = ["activate", "pause", "fulfill", "apply_sla", "apply_group_sla", "breach",
         "update_status", "measure"]  # fmt: skip
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


def nullable(strategy):
    return st.none() | strategy


SLA = st.fixed_dictionaries(
    {},
    optional={
        "target": nullable(st.integers(0, 10**6)),
        "target_in_seconds": nullable(st.integers(0, 10**8)),
        "business_hours": nullable(st.booleans()),
        "policy": nullable(st.fixed_dictionaries(
            {}, optional={"id": nullable(INT64), "title": nullable(TEXT), "description": TEXT})),
    },
)  # fmt: skip
STATUS = st.fixed_dictionaries(
    {}, optional={"calendar": nullable(INT32), "business": nullable(INT32)}
)
OFFSETS = [dt.timedelta(0), dt.timedelta(hours=2), dt.timedelta(hours=-11, minutes=-45),
           dt.timedelta(hours=5, minutes=30), dt.timedelta(hours=14)]  # fmt: skip
TIMES = st.builds(
    lambda moment, offset, digits: _iso(moment, offset, digits),
    st.datetimes(dt.datetime(2001, 1, 1), dt.datetime(2099, 12, 31), timezones=st.just(dt.UTC)),
    st.sampled_from(OFFSETS),
    st.sampled_from([0, 3, 6]),
)


def _iso(moment: dt.datetime, offset: dt.timedelta, digits: int) -> str:
    local = moment.astimezone(dt.timezone(offset)).replace(tzinfo=None)
    text = local.isoformat(timespec={0: "seconds", 3: "milliseconds", 6: "microseconds"}[digits])
    if offset == dt.timedelta(0):
        return text + "Z"
    sign = "+" if offset > dt.timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def record(event_id: int, time: str):
    return st.fixed_dictionaries(
        {
            "id": st.just(event_id),
            "ticket_id": INT64,
            "metric": st.sampled_from(METRICS) | TEXT,
            "type": st.sampled_from(TYPES) | TEXT,
            "time": st.just(time),
        },
        optional={
            "instance_id": nullable(INT32),
            "sla": nullable(SLA),
            "group_sla": nullable(SLA),
            "status": nullable(STATUS),
            "deleted": nullable(st.booleans()),
            "via_reference": JSON_VALUE,  # unknown fields are ignored, whatever they hold
        },
    )


# ------------------------------------------------------------------------------ the oracle
def expected_row(r: dict) -> dict:
    """The stored row of a valid record, per the schema in contracts.md."""
    sla = r.get("sla") if isinstance(r.get("sla"), dict) else None
    group = r.get("group_sla") if isinstance(r.get("group_sla"), dict) else None
    picked = sla if sla is not None else (group or {})
    target = picked.get("target")
    if target is None and picked.get("target_in_seconds") is not None:
        target = round(picked["target_in_seconds"] / 60)
    policy = picked.get("policy") or {}
    status = r.get("status") or {}
    moment = dt.datetime.fromisoformat(r["time"].replace("Z", "+00:00"))
    return {
        "id": r["id"], "ticket_id": r["ticket_id"], "metric": r["metric"],
        "instance_id": r.get("instance_id"), "type": r["type"],
        "time": (moment - EPOCH) // dt.timedelta(milliseconds=1),
        "sla_kind": "sla" if sla is not None else ("group_sla" if group is not None else None),
        "sla_target_minutes": target, "sla_business_hours": picked.get("business_hours"),
        "policy_id": policy.get("id"), "policy_title": policy.get("title"),
        "status_calendar_minutes": status.get("calendar"),
        "status_business_minutes": status.get("business"), "deleted": r.get("deleted"),
    }  # fmt: skip


def stored_rows(cache: Store) -> dict[int, dict]:
    rows = {}
    for row in cache.read().to_pylist():
        row["time"] = (row["time"] - EPOCH) // dt.timedelta(milliseconds=1)
        rows[row["id"]] = row
    return rows


# ------------------------------------------------------------------------------ bad pages
def _set(path: str, value):
    def mutate(r):
        r = json.loads(json.dumps(r))
        *parents, leaf = path.split(".")
        node = r
        for name in parents:
            if not isinstance(node.get(name), dict):
                node[name] = {}
            node = node[name]
        node[leaf] = value
        return r

    return mutate


def _delete(name: str):
    return lambda r: {k: v for k, v in r.items() if k != name}


BAD = {
    "id is text": (_set("id", "12"), "[].id'"),
    "id is a float": (_set("id", 1.5), "[].id'"),
    "id beyond int64": (_set("id", 2**63), "[].id'"),
    "id is null": (_set("id", None), "records[].id'"),
    "id is missing": (_delete("id"), "records[].id'"),
    "ticket_id is true": (_set("ticket_id", True), "[].ticket_id'"),
    "ticket_id is missing": (_delete("ticket_id"), "records[].ticket_id'"),
    "metric is a number": (_set("metric", 7), "[].metric'"),
    "metric is null": (_set("metric", None), "records[].metric'"),
    "type is a list": (_set("type", ["x"]), "[].type'"),
    "type is missing": (_delete("type"), "records[].type'"),
    "time is a number": (_set("time", 1_704_067_200), "[].time'"),
    "time is not a time": (_set("time", "yesterday"), "[].time'"),
    "time is beyond 2262": (_set("time", "2300-01-01T00:00:00Z"), "[].time'"),
    "time is missing": (_delete("time"), "records[].time'"),
    "instance_id is text": (_set("instance_id", "1"), "[].instance_id'"),
    "instance_id beyond int32": (_set("instance_id", 2**40), "instance_id'"),
    "sla is a list": (_set("sla", [60]), "[].sla'"),
    "sla.target is text": (_set("sla.target", "60"), "[].sla.target'"),
    "sla.target beyond int32": (_set("sla.target", 2**40), "sla.target'"),
    "group_sla.business_hours is text": (_set("group_sla.business_hours", "yes"),
                                         "group_sla.business_hours'"),
    "sla.policy.title is a number": (_set("sla.policy.title", 5), "sla.policy.title'"),
    "status.calendar is a float": (_set("status.calendar", 1.5), "status.calendar'"),
    "deleted is text": (_set("deleted", "true"), "[].deleted'"),
    "record is a number": (lambda r: 5, "[]'"),
    "record is null": (lambda r: None, "records[].id'"),
    "invalid UTF-8": (_set("note", "caf"), "invalid UTF-8"),
}  # fmt: skip


def page_url(i: int) -> str:
    return f"{BASE}{PATH}?start_time={T0 + i}"


def page_body(records: list, i: int, last: bool, key: str, ascii_only: bool) -> bytes:
    envelope = {
        key: records,
        "next_page": page_url(i + 1),
        "count": len(records),
        "end_of_stream": last,
        "end_time": T0 + i + 1,
    }
    return json.dumps(envelope, ensure_ascii=ascii_only).encode()


def fetch_pages(
    bodies: list[bytes], data_dir: Path, batch_pages: int, table_format: str
) -> zd.FetchResult:
    settings = zd.Settings(
        subdomain=SUBDOMAIN, email="admin@hostile.test", api_token=TOKEN, data_dir=data_dir,
        requests_per_minute=1e6, max_retries=0, table_format=table_format,
    )  # fmt: skip
    before = page_writer.BATCH_PAGES
    page_writer.BATCH_PAGES = batch_pages
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            for i, body in enumerate(bodies):
                mock.get(
                    f"{BASE}{PATH}", body=body, content_type="application/json",
                    match=[matchers.query_param_matcher({"start_time": str(T0 + i)})],
                )  # fmt: skip
            return zd.fetch("metric_events", since=T0, settings=settings, progress=False)
    finally:
        page_writer.BATCH_PAGES = before


def hostile_cache(data_dir: Path, table_format: str) -> Store:
    return store_of(data_dir, SUBDOMAIN, "metric_events", table_format)


@pytest.fixture(params=TABLE_FORMATS)
def table_format(request) -> str:
    """The store of each test: the Delta table, then the Parquet cache folder."""
    return request.param


@hypothesis_settings(
    max_examples=70, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
@pytest.mark.slow
@pytest.mark.parametrize("table_format", TABLE_FORMATS)
@given(data=st.data())
def test_generated_pages_are_stored_exactly_or_rejected_by_page_and_field(
    data, tmp_path_factory, table_format
):
    ids = data.draw(st.lists(st.integers(0, 2**62 - 1), min_size=1, max_size=25, unique=True))
    times = {i: data.draw(TIMES) for i in ids}  # an event's time never changes
    n_pages = data.draw(st.integers(1, 6))
    pages = [
        data.draw(st.lists(st.sampled_from(ids).flatmap(lambda i: record(i, times[i])),
                           max_size=12))
        for _ in range(n_pages)
    ]  # fmt: skip
    bulk = data.draw(st.sampled_from([0, 0, 0, 0, 3000]))  # a page of thousands, one second
    if bulk:
        when = data.draw(TIMES)
        pages[data.draw(st.integers(0, n_pages - 1))].extend(
            {"id": 2**62 + k, "ticket_id": k, "metric": "reply_time", "type": "activate",
             "time": when} for k in range(bulk)
        )  # fmt: skip
    bad = data.draw(st.none() | st.tuples(st.integers(0, n_pages - 1), st.sampled_from(list(BAD))))
    keys = [data.draw(st.sampled_from(["ticket_metric_events", "ticket_events"]))
            for _ in range(n_pages)]  # fmt: skip
    ascii_only = data.draw(st.booleans())
    bodies = []
    for i, records in enumerate(pages):
        if bad is not None and bad[0] == i:
            mutate, _ = BAD[bad[1]]
            spot = data.draw(st.integers(0, len(records)))
            victim = (
                records[spot]
                if spot < len(records)
                else {
                    "id": 1,
                    "ticket_id": 1,
                    "metric": "m",
                    "type": "t",
                    "time": "2024-01-01T00:00:00Z",
                }
            )
            victim = {**victim, "echo": TOKEN}  # a hostile page repeating our credentials
            records = records[:spot] + [mutate(victim)] + records[spot + 1 :]
        body = page_body(records, i, i == n_pages - 1, keys[i], ascii_only)
        if bad is not None and bad[0] == i and bad[1] == "invalid UTF-8":
            body = body.replace(b'"note": "caf"', b'"note": "caf\xe9"')
        bodies.append(body)
    batch_pages = data.draw(st.integers(1, 3))
    data_dir = tmp_path_factory.mktemp("hostile")
    cache = hostile_cache(data_dir, table_format)

    if bad is None:
        result = fetch_pages(bodies, data_dir, batch_pages, table_format)
        good = pages
    else:
        j, kind = bad
        with pytest.raises(zd.PageError) as info:
            fetch_pages(bodies, data_dir, batch_pages, table_format)
        message = str(info.value)
        assert info.value.url == page_url(j)
        assert f"page {page_url(j)} could not be read" in message
        assert BAD[kind][1] in message, message  # names the field (or the encoding)
        assert TOKEN not in message
        kept = re.search(r"kept in (\S+\.json)$", message)
        assert kept, message
        saved = Path(kept.group(1))
        assert saved.parent == cache.dir / "rejected"
        assert saved.read_bytes() == bodies[j].replace(TOKEN.encode(), b"***")
        assert page_url(j) in saved.with_suffix(".txt").read_text()
        good = pages[:j]  # every page before the bad one is stored, none after
        state = cache.state()
        assert state.cursor == (T0 + j if j else None)

    expected: dict[int, dict] = {}
    for records in good:
        for r in records:
            expected[r["id"]] = expected_row(r)  # keep-last, in page order
    stored = stored_rows(cache)
    assert stored == expected  # nothing dropped, nothing invented, every value per the schema
    assert cache.state().rows == len(expected)
    if bad is None:
        assert result.events_received == sum(len(p) for p in pages)
        assert result.new_events == result.rows == len(expected)
    assert_no_debris(cache)


def test_a_huge_page_of_one_second_is_stored_whole(tmp_path, table_format):
    events = [{"id": 10_000 + k, "ticket_id": k % 97, "metric": "reply_time", "instance_id": 1,
               "type": "activate", "time": "2024-02-29T23:59:59Z"} for k in range(6000)]  # fmt: skip
    body = page_body(events, 0, True, "ticket_metric_events", True)
    result = fetch_pages([body], tmp_path, 1, table_format)
    assert result.rows == result.new_events == 6000
    table = hostile_cache(tmp_path, table_format).read()
    assert table.num_rows == 6000 and table["id"].to_pylist() == list(range(10_000, 16_000))


def test_empty_pages_store_nothing_and_move_the_cursor(tmp_path, table_format):
    bodies = [page_body([], i, i == 2, "ticket_metric_events", True) for i in range(3)]
    result = fetch_pages(bodies, tmp_path, 1, table_format)
    assert (result.pages, result.rows) == (3, 0)
    assert hostile_cache(tmp_path, table_format).state().cursor == T0 + 3


def test_rejected_pages_are_bounded_in_number_and_size(tmp_path, monkeypatch, table_format):
    monkeypatch.setattr(page_writer, "MAX_REJECTED_PAGES", 2)
    monkeypatch.setattr(page_writer, "MAX_REJECTED_BYTES", 100)
    bad = page_body([{"id": "x"}], 0, True, "ticket_metric_events", True)
    bad = bad.replace(b'"count"', b'"padding": "' + b"z" * 500 + b'", "count"')
    folder = hostile_cache(tmp_path, table_format).dir / "rejected"
    folder.mkdir(parents=True)
    theirs = folder / "0-my-notes.json"  # sorts first: the oldest, were it a rejected page
    theirs.write_text("{}")
    for _ in range(4):
        with pytest.raises(zd.PageError, match="kept in"):
            fetch_pages([bad], tmp_path, 1, table_format)
    assert theirs.read_text() == "{}"  # never deleted: zdevents did not write it
    theirs.unlink()
    saved = sorted(folder.glob("*.json"))
    assert len(saved) == 2 and len(sorted(folder.glob("*.txt"))) == 2
    assert all(p.read_bytes() == bad[:100] for p in saved)
    note = saved[0].with_suffix(".txt").read_text()
    assert f"received: {len(bad)} bytes (cut to the first 100)" in note
    assert "field 'ticket_metric_events[].id'" in note


# ------------------------------------------------------------------------------ damaged cache
@pytest.fixture(scope="module")
def server():
    with LocalZendesk(SampleAccount(tickets=60, seed=5), tcp_nodelay=True) as srv:
        srv.preload()
        yield srv


@pytest.fixture(scope="module")
def truth(server, tmp_path_factory):
    return clean_fetch(server, tmp_path_factory.mktemp("clean"))


def fresh_cache(server, tmp_path: Path, table_format: str) -> tuple[zd.Settings, Store]:
    settings = server.settings(data_dir=tmp_path / "data", table_format=table_format)
    zd.fetch("metric_events", settings=settings, progress=False)
    return settings, cache_of(settings)


def _flip(path: Path, where: float) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x10
    path.write_bytes(bytes(data))


def _flip_in_a_page(path: Path, other: Path) -> None:
    """Flip a bit two thirds into the largest column chunk: inside a data page's payload,
    past its header (a fixed fraction of the file can land in a page header, which the page
    CRC does not cover)."""
    chunks = pq.read_metadata(path).row_group(0)
    chunk = max((chunks.column(i) for i in range(chunks.num_columns)),
                key=lambda c: c.total_compressed_size)  # fmt: skip
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    _flip(path, (start + chunk.total_compressed_size * 2 // 3) / path.stat().st_size)


DAMAGE = {
    "truncated": lambda path, other: path.write_bytes(path.read_bytes()[:-100]),
    "a flipped bit in the data": _flip_in_a_page,
    "a flipped bit in the footer": lambda path, other: _flip(path, 0.97),
    "replaced by another month's file": lambda path, other: shutil.copyfile(other, path),
    "emptied": lambda path, other: path.write_bytes(b""),
    "deleted": lambda path, other: path.unlink(),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_part_is_an_error_naming_the_file_and_the_repair_that_works(
    server, truth, tmp_path, damage, capsys, monkeypatch, table_format
):
    settings, cache = fresh_cache(server, tmp_path, table_format)
    parts = cache.state().files
    victim = next(p for p in parts if p.month == "2024-03")
    other = next(p for p in parts if p.month == "2024-05")
    DAMAGE[damage](cache.dir / victim.path, cache.dir / other.path)

    with pytest.raises(zd.CacheError) as info:
        zd.load_frame(refresh="never", settings=settings)
    message = str(info.value)
    assert str(cache.dir / victim.path) in message and "month 2024-03" in message
    command = "zdevents fetch --stream metric_events --since 2024-03-01 --force"
    assert command in message
    # months before the damaged one still read, exactly
    before = zd.load_frame(until="2024-03-01", refresh="never", settings=settings)
    assert len(before) == (truth["time"].cast(pa.int64()).to_numpy() < 1709251200000).sum()

    # the command in the message, run through the command line, repairs it
    for name, value in cli_env(server, settings.data_dir, table_format).items():
        monkeypatch.setenv(name, value)
    argv = command.split()[1:] + ["--quiet"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert_exact(cache, truth)
    assert_no_debris(cache)


@pytest.mark.slow
def test_repair_command_from_a_real_process_end_to_end(server, truth, tmp_path, table_format):
    settings, cache = fresh_cache(server, tmp_path, table_format)
    victim = next(p for p in cache.state().files if p.month == "2024-02")
    _flip(cache.dir / victim.path, 0.5)
    env = cli_env(server, settings.data_dir, table_format)
    report = subprocess.run([sys.executable, "-m", "zdevents", "report", "--out",
                             str(tmp_path / "out")], env=env, capture_output=True, text=True,
                            timeout=240)  # fmt: skip
    assert report.returncode == 2 and "Traceback" not in report.stderr
    command = re.search(r"`?(zdevents fetch [^`]*--force)", report.stderr).group(1)
    assert command == "zdevents fetch --stream metric_events --since 2024-02-01 --force"
    repaired = subprocess.run([sys.executable, "-m", *command.split(), "--quiet"], env=env,
                              capture_output=True, text=True, timeout=240)  # fmt: skip
    assert repaired.returncode == 0, repaired.stderr
    assert_exact(cache, truth)


STATE_DAMAGE = {
    "truncated": lambda text: text[: len(text) // 2],
    "not JSON": lambda text: "\x00\x01garbage",
    "empty": lambda text: "",
    "a list": lambda text: "[]",
    "rows that do not add up": lambda text: json.dumps({**json.loads(text), "rows": 7}),
    "a file outside the folder": lambda text: text.replace('"month=', '"../../month=', 1),
    "an unknown schema version": lambda text: json.dumps({**json.loads(text), "schema_version": 9}),
}


@pytest.mark.parametrize("damage", list(STATE_DAMAGE))
def test_damaged_state_file_is_an_error_naming_it_and_the_fix_works(
    server, truth, tmp_path, damage, capsys, monkeypatch
):
    settings, cache = fresh_cache(server, tmp_path, "parquet")
    cache.state_path.write_text(STATE_DAMAGE[damage](cache.state_path.read_text()))
    for name, value in cli_env(server, settings.data_dir, "parquet").items():
        monkeypatch.setenv(name, value)
    for call in (
        lambda: zd.load_frame(refresh="never", settings=settings),
        lambda: zd.fetch("metric_events", settings=settings, progress=False),
        lambda: zd.cache_status(settings=settings),
    ):
        with pytest.raises(zd.CacheError) as info:
            call()
        message = str(info.value)
        assert str(cache.state_path) in message
        assert "zdevents cache rebuild --stream metric_events" in message
        assert "`zdevents fetch`" in message
    assert cli.main(["status"]) == 2  # the command line: one line, exit 2
    assert "state.json" in capsys.readouterr().err
    on_disk = sorted(cache.dir.rglob("*.parquet"))
    assert cli.main(["cache", "rebuild", "--stream", "metric_events"]) == 0  # what it says
    assert sorted(cache.dir.rglob("*.parquet")) == on_disk  # nothing deleted
    assert_exact(cache, truth)  # every part file was intact: the rows are all back
    assert cli.main(["fetch", "--stream", "metric_events", "-q"]) == 0
    assert_exact(cache, truth)


def _actions(edit):
    """A damage that edits each action of a log entry (the entry stays valid JSON)."""

    def damage(text: str) -> str:
        actions = [json.loads(line) for line in text.splitlines() if line.strip()]
        for action in actions:
            edit(action)
        return "".join(json.dumps(action) + "\n" for action in actions)

    return damage


def _metadata_not_json(action: dict) -> None:
    if "commitInfo" in action:
        action["commitInfo"]["zdevents"] = '{"cursor": 17'


def _size_off(action: dict) -> None:
    if "add" in action:
        action["add"]["size"] += 1


def _rows_off(action: dict) -> None:
    if "add" in action:
        stats = json.loads(action["add"]["stats"])
        stats["numRecords"] = 7
        action["add"]["stats"] = json.dumps(stats)


LOG_DAMAGE = {
    "truncated": lambda text: text[: len(text) // 2],
    "not JSON": lambda text: "\x00\x01garbage",
    "empty": lambda text: "",
    "commit metadata that is not JSON": _actions(_metadata_not_json),
    "a file outside the folder": lambda text: text.replace(
        '"path":"month=', '"path":"../../month=', 1
    ),
    "file sizes that do not add up": _actions(_size_off),
    "row counts that do not add up": _actions(_rows_off),
}
_UNNAMED = (
    "delta-rs' parse error is 'cannot read the table <dir>: Kernel error: Json error: ...' "
    "(DeltaLog.table in store/delta_log.py): it names neither the log entry nor a fix"
)
LOG_DAMAGE_GAPS = {
    "truncated": _UNNAMED,
    "not JSON": _UNNAMED,
    "empty": "an empty newest log entry reads as the version before it: load_frame returns "
    "its rows (none after one fetch) with no error",
    "commit metadata that is not JSON": "commit metadata that does not parse is skipped "
    "(DeltaLog.state_of): an earlier commit's cursor and coverage go with this version's "
    "files, with no error",
    "row counts that do not add up": "rows come from the log's numRecords, never checked "
    "against the files: state().rows and `zdevents status` say 7 a file, reads give them all",
}


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(d, marks=pytest.mark.xfail(strict=True, reason=LOG_DAMAGE_GAPS[d]))
        if d in LOG_DAMAGE_GAPS
        else d
        for d in LOG_DAMAGE
    ],
)
def test_damaged_log_entry_is_an_error_naming_it_and_the_fix_works(
    server, truth, tmp_path, damage, capsys, monkeypatch
):
    """The Delta counterpart of a damaged state.json: the newest ``_delta_log`` entry (the
    version read, whose commit carries the state) damaged. A read is a CacheError naming the
    table and the command that repairs it, never other numbers; the command works."""
    settings, cache = fresh_cache(server, tmp_path, "delta")
    entry = log_entries(cache)[-1]
    entry.write_text(LOG_DAMAGE[damage](entry.read_text()))
    for name, value in cli_env(server, settings.data_dir, "delta").items():
        monkeypatch.setenv(name, value)
    for status in _status_or_error(settings):  # never a row count other than the table's
        assert status.rows == truth.num_rows
    with pytest.raises(zd.CacheError) as info:
        zd.load_frame(refresh="never", settings=settings)
    message = str(info.value)
    assert str(cache.dir) in message
    command = re.search(r"`?(zdevents (fetch|cache) [^`]*?)(`|$| \(|; )", message)
    assert command, message  # names the command that repairs it
    assert cli.main(command.group(1).split()[1:] + ["--quiet"]) == 0, capsys.readouterr().err
    assert plain(cache.read()).equals(truth)
    assert cli.main(["fetch", "--stream", "metric_events", "-q"]) == 0
    assert_exact(cache, truth)


def _status_or_error(settings: zd.Settings) -> list:
    try:
        statuses = zd.cache_status(settings=settings)
    except zd.CacheError:
        return []
    return [status for status in statuses if status.stream == "metric_events"]


# ------------------------------------------------------------------------------ bad settings
@pytest.mark.parametrize("data_dir", ["", "   ", "cache\x00/../etc"])
def test_data_dir_empty_or_with_nul_is_refused(data_dir):
    with pytest.raises(zd.ConfigError, match="ZDEVENTS_DATA_DIR"):
        zd.Settings(subdomain="acme", data_dir=data_dir)


@pytest.mark.parametrize("subdomain", ["acme\x00", "ácme", "..", "acme.", "a_b", "", " "])
def test_more_malformed_subdomains_are_refused(subdomain):
    with pytest.raises(zd.ConfigError, match="ZENDESK_SUBDOMAIN"):
        zd.Settings(subdomain=subdomain, data_dir="/tmp/x")


@pytest.mark.parametrize("base_url", ["https://../", "https://./", "https://.hidden.test/"])
def test_a_base_url_host_that_would_name_an_unsafe_folder_is_refused_before_any_request(
    base_url, tmp_path, table_format
):
    settings = zd.Settings(base_url=base_url, email="a@b.test", api_token=TOKEN, data_dir=tmp_path,
                           table_format=table_format)  # fmt: skip
    with pytest.raises(zd.ConfigError, match="cannot be a cache folder"):
        zd.fetch("metric_events", settings=settings, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_data_dir_that_is_a_file_is_a_clear_error(server, tmp_path, table_format):
    (tmp_path / "file").write_text("not a folder")
    settings = server.settings(data_dir=tmp_path / "file", table_format=table_format)
    with pytest.raises(zd.CacheError, match="cannot create the cache folder.*ZDEVENTS_DATA_DIR"):
        zd.fetch("metric_events", settings=settings, progress=False)


@pytest.mark.parametrize(
    ("since", "until"),
    [("../../etc/passwd", None), (float("nan"), None), (float("inf"), None), (10**20, None),
     (b"2024-01-01", None), ("2024-02-30", None), ("2024-01-01T00:00:00+25:00", None),
     (None, "1e9"), ("2024-03-01", "2024-02-01")],
)  # fmt: skip
def test_malformed_since_until_are_refused_before_anything_is_read(
    server, tmp_path, since, until, table_format
):
    settings = server.settings(data_dir=tmp_path, table_format=table_format)
    before = len(server.request_log)
    with pytest.raises(ValueError, match="since|until"):
        zd.load_frame(since, until, settings=settings)
    if until is None:
        with pytest.raises(ValueError, match="since"):
            zd.fetch("metric_events", since, settings=settings)
    assert len(server.request_log) == before and list(tmp_path.iterdir()) == []


def test_since_with_a_nul_byte_is_refused():
    with pytest.raises(ValueError, match="since"):
        zd.to_utc("2024-01-01\x00", name="since")


def test_command_line_refuses_bad_dates_and_folders_with_one_line(
    tmp_path, capsys, monkeypatch, table_format
):
    monkeypatch.setenv("ZDEVENTS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ZDEVENTS_TABLE_FORMAT", table_format)
    for name, value in {"ZENDESK_SUBDOMAIN": "acme", "ZENDESK_EMAIL": "a@acme.test",
                        "ZENDESK_API_TOKEN": TOKEN}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ZENDESK_BASE_URL", raising=False)
    for argv, phrase in [
        (["fetch", "--since", "../../etc/passwd"], "is not a date"),
        (["report", "--since", "2024-03-01", "--until", "2024-02-01"], "is after --until"),
        (["fetch", "--data-dir", ""], "ZDEVENTS_DATA_DIR is empty"),
    ]:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert phrase in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_no_single_bit_flip_anywhere_in_a_part_file_reads_as_a_wrong_number(
    server, tmp_path, table_format
):
    """Page CRCs (data) + the recorded size and footer CRC32 (metadata) catch every flip
    (the manifest's on the Parquet cache, the table log's and commit's on the Delta table)."""
    import random

    settings, cache = fresh_cache(server, tmp_path, table_format)
    part = next(p for p in cache.state().files if p.month == "2024-04")
    path = cache.dir / part.path
    original = path.read_bytes()
    good = cache.read(since="2024-04-01", until="2024-05-01")
    rng = random.Random(7)
    outcomes = {"error": 0, "same rows": 0, "wrong rows": 0}
    for _ in range(200):
        data = bytearray(original)
        data[rng.randrange(4, len(data) - 4)] ^= 1 << rng.randrange(8)  # not the magic bytes
        path.write_bytes(bytes(data))
        try:
            got = cache.read(since="2024-04-01", until="2024-05-01")
        except zd.CacheError as exc:
            assert str(path) in str(exc) and "--force" in str(exc)
            outcomes["error"] += 1
            continue
        outcomes["same rows" if got.equals(good) else "wrong rows"] += 1
    path.write_bytes(original)
    print(f"\n200 single-bit flips in a {len(original):,}-byte {table_format} file: {outcomes}")
    assert outcomes["wrong rows"] == 0
    assert outcomes["error"] >= 180


# ------------------------------------------------------------------------------ found and fixed
URL = f"{BASE}{PATH}?start_time={T0}"


def _event(event_id: int, **fields) -> dict:
    return {"id": event_id, "ticket_id": 7, "metric": "reply_time", "type": "activate",
            "time": "2024-01-02T03:04:05Z", **fields}  # fmt: skip


def test_pages_with_either_records_key_keep_page_order_so_the_last_copy_wins():
    """Found: records under ``ticket_events`` were read after every ``ticket_metric_events``
    record of the batch, so an older copy of an id could win the keep-last dedupe."""
    first = json.dumps({"ticket_events": [_event(1, ticket_id=10)]}).encode()
    second = json.dumps({"ticket_metric_events": [_event(1, ticket_id=20)],
                         "ticket_events": [_event(2, ticket_id=20)]}).encode()  # fmt: skip
    third = json.dumps({"ticket_metric_events": [_event(2, ticket_id=30)]}).encode()
    table = metric_events_table([first, second, third])
    assert table.select(["id", "ticket_id"]).to_pylist() == [
        {"id": 1, "ticket_id": 10}, {"id": 1, "ticket_id": 20},
        {"id": 2, "ticket_id": 20}, {"id": 2, "ticket_id": 30},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "field"),
    [({"id": 1.5}, "'ticket_metric_events[].id'"),
     ({"time": "2300-01-01T00:00:00Z"}, "'ticket_metric_events[].time'"),
     ({"sla": {"target": 60.5}}, "'ticket_metric_events[].sla.target'")],
)  # fmt: skip
def test_values_pyarrow_cannot_convert_are_named_by_field_and_record(value, field):
    """Found: conversion errors ("couldn't parse: 1.5") named the page but not the field."""
    body = json.dumps({"ticket_metric_events": [_event(1), _event(2, **value)]}).encode()
    with pytest.raises(zd.PageError) as info:
        metric_events_table([body], [URL])
    assert f"field {field}: record #2:" in str(info.value)


def test_a_target_in_seconds_beyond_float_precision_is_a_page_error_not_an_arrow_crash():
    """Found: target_in_seconds > 2**53 raised a bare pyarrow ArrowInvalid."""
    body = json.dumps({"ticket_metric_events": [
        _event(1, sla={"target_in_seconds": 2**62})]}).encode()  # fmt: skip
    with pytest.raises(zd.PageError, match="'sla.target'.*out of range for int32"):
        metric_events_table([body], [URL])

"""Saved export pages: zd.read_export and `zdevents import`, against pages saved over HTTP."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
import requests

import zdevents as zd
from zdevents import cli
from zdevents.read.frame import open_cache
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk
from zdevents.schema import METRIC_EVENTS_SCHEMA

SEED_BODY = Path(__file__).parent / "data" / "seed_ticket_events_response.json"
SEED_FILE = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_b088de2ab19e1290.txt"
PATHS = {
    "metric_events": "/api/v2/incremental/ticket_metric_events",
    "ticket_events": "/api/v2/incremental/ticket_events",
}


@pytest.fixture(scope="module")
def server():
    with LocalZendesk(SampleAccount(tickets=60, seed=11), page_size=100,
                      metric_end_of_stream=True) as srv:  # fmt: skip
        yield srv


def saved_pages(server: LocalZendesk, stream: str, start_time: int = 0) -> list[dict]:
    """Follow next_page with a plain HTTP client, as a user saving curl output would."""
    pages, url = [], f"{server.url}{PATHS[stream]}?start_time={start_time}"
    auth = (f"{server.email}/token", server.api_token)
    while True:
        response = requests.get(url, auth=auth, timeout=30)
        response.raise_for_status()
        page = response.json()
        pages.append(page)
        if page["end_of_stream"]:
            return pages
        url = page["next_page"]


def write_mixed_files(pages: list[dict], folder: Path) -> list[Path]:
    """The pages as a .json page, a .json.gz page, JSON lines and a JSON list of pages."""
    folder.mkdir(parents=True, exist_ok=True)
    third = max(2, len(pages) // 3)
    first = folder / "page-1.json"
    first.write_text(json.dumps(pages[0], indent=2))
    second = folder / "page-2.json.gz"
    second.write_bytes(gzip.compress(json.dumps(pages[1]).encode()))
    lines = folder / "pages.jsonl"
    lines.write_text("\n".join(json.dumps(p) for p in pages[2 : third + 1]) + "\n")
    rest = folder / "rest.json"
    rest.write_text(json.dumps(pages[third + 1 :]))
    return [first, second, lines, rest]


def fill_seed(page: dict) -> dict:
    """The seed's sample response with values of the documented types in its placeholders."""
    page = copy.deepcopy(page)
    page.update(count=2, end_of_stream=True, end_time=1704070800,
                next_page="https://example.zendesk.com/api/v2/incremental/ticket_events"
                          "?start_time=1704070800")  # fmt: skip
    for n, record in enumerate(page["ticket_events"]):
        record.update(id=9001 + n, instance_id=1, ticket_id=42, time="2024-01-01T01:00:00Z")
    return page


# --- read_export ------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("stream", ["metric_events", "ticket_events"])
def test_saved_pages_load_as_the_frame_load_frame_returns(server, tmp_path, stream):
    settings = server.settings(data_dir=tmp_path / "cache")
    zd.fetch(stream, settings=settings, progress=False)
    cached = zd.load_frame(stream=stream, refresh="never", settings=settings)
    pages = saved_pages(server, stream)
    assert len(pages) >= 4  # each kind of file holds at least one page

    loaded = zd.read_export(write_mixed_files(pages, tmp_path / "saved"))
    assert len(loaded) == len(cached) == len(server.unique_ids(stream))
    assert list(loaded.dtypes.astype(str)) == list(cached.dtypes.astype(str))
    pd.testing.assert_frame_equal(loaded, cached, check_categorical=False)
    # already-parsed dicts give the same frame, and the pages' horizon is the as-of
    from_dicts = zd.read_export(pages)
    pd.testing.assert_frame_equal(from_dicts, loaded)
    assert from_dicts.attrs["zdevents_as_of"] == pd.Timestamp(
        pages[-1]["end_time"], unit="s", tz="UTC"
    )


def test_the_seed_response_with_its_placeholders_filled_loads_as_metric_events():
    page = fill_seed(json.loads(SEED_BODY.read_text()))
    events = zd.read_export(page)
    assert events[["id", "ticket_id", "metric", "instance_id", "type"]].values.tolist() == [
        [9001, 42, "periodic_update_time", 1, "apply_sla"],
        [9002, 42, "pausable_update_time", 1, "breach"],
    ]
    assert events["time"].dtype == "datetime64[ms, UTC]"
    assert list(events.columns) == METRIC_EVENTS_SCHEMA.names
    # the metric events under the `ticket_events` key are metric events, also when asked so
    assert len(zd.read_export(page, stream="metric_events")) == 2
    with pytest.raises(zd.PageError, match="holds metric events, not ticket_events"):
        zd.read_export(page, stream="ticket_events")


def test_the_seed_response_as_saved_is_a_page_error_naming_file_page_and_field(tmp_path):
    path = tmp_path / "seed-response.json"
    path.write_text(SEED_BODY.read_text())
    with pytest.raises(zd.PageError) as raised:
        zd.read_export(path)
    message = str(raised.value)
    assert f"page 1 of {path}" in message
    assert "field 'count'" in message and "placeholder '<integer>'" in message
    # with the envelope filled, the first record's placeholder is named the same way
    page = json.loads(SEED_BODY.read_text())
    page.update(count=2, end_of_stream=True, end_time=1704070800, next_page="x")
    path.write_text(json.dumps(page))
    with pytest.raises(
        zd.PageError,
        match=rf"page 1 of {path}: field 'ticket_events\[\]\.id' "
        r"\(record #1\) holds the placeholder '<integer>'",
    ):
        zd.read_export(path)


@pytest.mark.skipif(not SEED_FILE.exists(), reason="the shared seed folder is not beside the repo")
def test_the_seed_fixture_is_the_saved_request_s_sample_response():
    text = SEED_FILE.read_text()
    item = json.loads(text[text.index("{", text.index("Postman Collection Item JSON")) :])
    assert json.loads(item["response"][0]["body"]) == json.loads(SEED_BODY.read_text())


def test_a_wrongly_typed_value_names_the_file_the_page_and_the_field(tmp_path):
    good = fill_seed(json.loads(SEED_BODY.read_text()))
    bad = copy.deepcopy(good)
    bad["ticket_events"][1]["ticket_id"] = "42"  # a string where Zendesk sends an integer
    path = tmp_path / "pages.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(
        zd.PageError,
        match=rf"page 2 of {path} .*field 'ticket_events\[\]\."
        r"ticket_id'",
    ):
        zd.read_export(path)
    text = {"ticket_events": [dict(good["ticket_events"][0], id=1, metric="custom\u2028time")]}
    path.write_text(json.dumps(text, ensure_ascii=False) + "\n" + json.dumps(good) + "\n")
    loaded = zd.read_export(path)  # a raw line separator (JSON allows it) splits no line
    assert loaded.set_index("id")["metric"].astype(str).to_dict() == {
        1: "custom\u2028time",
        9001: "periodic_update_time",
        9002: "pausable_update_time",
    }
    envelope = copy.deepcopy(good)
    envelope["end_time"] = "1704070800"
    with pytest.raises(zd.PageError, match=r"page 1 of the pages given: field 'end_time'"):
        zd.read_export([envelope])


@pytest.mark.parametrize(
    ("content", "phrase"),
    [(b"{not json", "is not JSON"), (b"[1, 2]", "page 1 of .* is a JSON int"),
     (b'{"users": []}', "is not an incremental export page"),
     (b'{"ticket_events": []}\n{"ticket_events": [}\n', "line 2: not a JSON page")],
)  # fmt: skip
def test_files_that_are_not_export_pages_are_one_line_page_errors(tmp_path, content, phrase):
    path = tmp_path / "saved.json"
    path.write_bytes(content)
    with pytest.raises(zd.PageError, match=phrase):
        zd.read_export(path)
    with pytest.raises(zd.PageError, match="cannot read"):
        zd.read_export(tmp_path / "missing.json")


def test_pages_of_both_streams_need_a_stream_and_repeated_ids_keep_the_last_copy():
    audit = {"ticket_events": [{"id": 5, "ticket_id": 7, "timestamp": 1704164645,
                                "event_type": "Audit", "child_events": []}]}  # fmt: skip
    first = fill_seed(json.loads(SEED_BODY.read_text()))
    again = copy.deepcopy(first)
    again["ticket_events"][0]["type"] = "fulfill"  # the same id later in the export
    with pytest.raises(zd.PageError, match=r"page 2 of the pages given holds audits"):
        zd.read_export([first, audit])
    assert zd.read_export([audit])["id"].tolist() == [5]
    events = zd.read_export([first, again])
    assert events["id"].tolist() == [9001, 9002]
    assert events["type"].astype(str).tolist() == ["fulfill", "breach"]
    empty = zd.read_export([])
    assert len(empty) == 0 and list(empty.columns) == list(events.columns)


# --- zdevents import --------------------------------------------------------------------


@pytest.fixture
def cli_env(server, tmp_path, monkeypatch):
    for name in ("ZENDESK_OAUTH_TOKEN", "ZENDESK_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZENDESK_BASE_URL", server.url)
    monkeypatch.setenv("ZENDESK_SUBDOMAIN", server.subdomain)
    monkeypatch.setenv("ZENDESK_EMAIL", server.email)
    monkeypatch.setenv("ZENDESK_API_TOKEN", server.api_token)
    monkeypatch.setenv("ZDEVENTS_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ZDEVENTS_REQUESTS_PER_MINUTE", "10000")
    return server.settings(data_dir=tmp_path / "cache")


@pytest.mark.e2e
def test_import_adds_saved_pages_deduplicated_with_the_cursor_untouched(
    server, cli_env, tmp_path, capsys
):
    settings = cli_env
    pages = saved_pages(server, "metric_events")
    middle = pages[len(pages) // 2]["end_time"]
    since = pd.Timestamp(middle, unit="s", tz="UTC").isoformat()
    assert cli.main(["fetch", "--since", since, "-q"]) == 0  # the cache holds the later half
    cache = open_cache("metric_events", settings=settings)
    before = cache.state()
    cached_ids = set(zd.load_frame(refresh="never", settings=settings)["id"])
    assert 0 < len(cached_ids) < len(server.unique_ids("metric_events"))
    capsys.readouterr()

    files = write_mixed_files(pages, tmp_path / "saved")  # the whole history, overlapping
    assert cli.main(["import", *map(str, files)]) == 0
    out = capsys.readouterr().out
    after = cache.state()
    all_ids = server.unique_ids("metric_events")
    assert after.cursor == before.cursor and after.covered_since == before.covered_since
    assert after.rows == len(all_ids)
    assert set(zd.load_frame(refresh="never", settings=settings)["id"]) == all_ids
    assert f"{len(all_ids) - len(cached_ids):,} new" in out and "cursor unchanged" in out

    assert cli.main(["import", str(files[0])]) == 0  # again: nothing new, nothing doubled
    assert " 0 new" in capsys.readouterr().out
    assert cache.state().rows == len(all_ids) and cache.state().cursor == before.cursor


def test_import_of_a_bad_page_writes_nothing_and_says_so_in_one_line(
    server, cli_env, tmp_path, capsys
):
    settings = cli_env
    zd.fetch("metric_events", settings=settings, progress=False)
    cache = open_cache("metric_events", settings=settings)
    before = cache.state()
    good = fill_seed(json.loads(SEED_BODY.read_text()))
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "seed.json").write_text(SEED_BODY.read_text())
    assert cli.main(["import", str(tmp_path / "good.json"), str(tmp_path / "seed.json")]) == 2
    err = capsys.readouterr().err
    assert "placeholder '<integer>'" in err and f"page 1 of {tmp_path / 'seed.json'}" in err
    assert len(err.strip().splitlines()) == 1
    assert cache.state() == before


def test_import_into_a_never_fetched_cache_is_refused(cli_env, tmp_path, capsys):
    path = tmp_path / "good.json"
    path.write_text(json.dumps(fill_seed(json.loads(SEED_BODY.read_text()))))
    assert cli.main(["import", str(path)]) == 2
    err = capsys.readouterr().err
    assert "never fetched" in err and "zdevents fetch --stream metric_events" in err

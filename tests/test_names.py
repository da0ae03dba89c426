"""Group and brand names: fetched through HTTP from the local server, cached beside the exports."""

from __future__ import annotations

import json
import os
import time

import pytest

import zdevents as zd
from zdevents.export.names import NAMES_FILE, Names, fetch_names, load_names
from zdevents.sample.account import BRANDS, GROUPS, SampleAccount
from zdevents.sample.server import LocalZendesk

pytestmark = pytest.mark.e2e


@pytest.fixture
def server():
    with LocalZendesk(SampleAccount(tickets=2)) as srv:
        yield srv


@pytest.fixture
def settings(server, tmp_path):
    return server.settings(data_dir=tmp_path)


def list_requests(server):
    return [(r.path, r.params) for r in server.request_log if r.stream is None]


def test_fetch_reads_every_page_of_both_lists_and_caches_them(server, settings, tmp_path):
    server.groups = {1000 + i: f"Group {i}" for i in range(205)}  # 3 pages of 100
    names = fetch_names(settings)
    assert names.groups == server.groups
    assert names.brands == BRANDS
    assert [path for path, _ in list_requests(server)] == [
        "/api/v2/groups",
        "/api/v2/groups.json",
        "/api/v2/groups.json",
        "/api/v2/brands",
    ]
    assert [params.get("page[after]") for _, params in list_requests(server)] == [
        None,
        "100",
        "200",
        None,
    ]
    cached = json.loads((tmp_path / "sample" / NAMES_FILE).read_text())
    assert cached["groups"]["1204"] == "Group 204" and cached["brands"]["360000502"] == "Sample Pay"


def test_load_names_reads_the_cache_without_credentials(server, settings):
    fetch_names(settings)
    before = len(server.request_log)
    offline = zd.Settings(subdomain="sample", data_dir=settings.data_dir)
    assert load_names(settings=offline).groups == GROUPS  # "auto", but no credentials
    assert load_names(settings=settings, refresh="never").brands == BRANDS
    assert load_names(settings=settings).groups == GROUPS  # fresh: not fetched again
    assert len(server.request_log) == before


def test_load_names_fetches_when_missing_or_stale_and_keeps_the_file_on_failure(server, settings):
    assert load_names(settings=settings).groups == GROUPS  # missing: fetched
    path = settings.data_dir / "sample" / NAMES_FILE
    old = json.loads(path.read_text())
    old["fetched_at"] = time.time() - 2 * 86400
    path.write_text(json.dumps(old))
    server.groups = {1: "Renamed"}
    assert load_names(settings=settings).groups == {1: "Renamed"}  # stale: fetched again
    old["fetched_at"] = time.time() - 2 * 86400
    path.write_text(json.dumps(old))
    refused = settings.with_(api_token="wrong-token")
    assert load_names(settings=refused).groups == GROUPS  # refresh failed: the file's names
    path.unlink()
    with pytest.raises(zd.AuthError):  # and with no file, the failure is the answer
        load_names(settings=refused)


def test_no_account_reads_the_names_of_the_only_cached_account(server, settings, tmp_path):
    fetch_names(settings)  # <tmp_path>/sample/names.json, as after the demo
    no_account = zd.Settings(data_dir=tmp_path)
    assert load_names(settings=no_account).groups == GROUPS
    (tmp_path / "acme").mkdir()  # two accounts: which one is unknown
    assert load_names(settings=no_account) == Names()


def test_no_account_gives_empty_names_and_a_damaged_file_says_what_to_do(tmp_path):
    assert load_names(settings=zd.Settings(data_dir=tmp_path)) == Names()
    assert not Names()
    path = tmp_path / "acme" / NAMES_FILE
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(zd.CacheError, match="delete it"):
        load_names(settings=zd.Settings(subdomain="acme", data_dir=tmp_path))
    with pytest.raises(ValueError, match="refresh"):
        load_names(settings=zd.Settings(subdomain="acme", data_dir=tmp_path), refresh="sometimes")


def test_names_file_is_written_atomically_and_readable_by_others(settings, tmp_path):
    fetch_names(settings)
    folder = tmp_path / "sample"
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []
    assert os.stat(folder / NAMES_FILE).st_size > 0

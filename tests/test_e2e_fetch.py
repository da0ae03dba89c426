"""End to end: the real client talks HTTP to the local Zendesk server; the cache is a real Delta table."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

import zdevents as zd
from zdevents.export import writer as page_writer
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk
from zdevents.store import open_store

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def account():
    return SampleAccount(tickets=300, seed=11)


@pytest.fixture
def server(account):
    with LocalZendesk(account) as srv:
        yield srv


@pytest.fixture
def settings(server, tmp_path):
    return server.settings(data_dir=tmp_path)


def _cached_ids(settings, stream):
    cache = open_store(settings.data_dir, settings.account, stream)
    return cache.read(columns=["id"]).column("id").to_pylist()


def test_metric_events_fetch_caches_exactly_the_unique_events(server, settings):
    result = zd.fetch("metric_events", settings=settings, progress=False)
    ids = _cached_ids(settings, "metric_events")
    served = server.unique_ids("metric_events")
    assert len(ids) == len(set(ids))  # no duplicates although pages repeat boundary items
    assert set(ids) == set(served)
    assert result.new_events == len(served) == result.rows
    assert result.events_received > len(served)  # the inclusive boundary repeated items
    assert result.rate_limited == 0


@pytest.mark.parametrize("stream", ["metric_events", "ticket_events"])
def test_fetch_returns_the_state_it_committed(server, settings, stream):
    for _ in range(2):  # a first fetch, then one from the cursor with nothing new
        result = zd.fetch(stream, settings=settings, progress=False)
        fresh = open_store(settings.data_dir, settings.account, stream).state()
        assert result.state == fresh
        assert (result.state.cursor, result.state.horizon, result.state.coverage) == (
            fresh.cursor,
            fresh.horizon,
            fresh.coverage,
        )
        assert result.rows == fresh.rows == len(server.unique_ids(stream))
        assert result.cursor == pd.Timestamp(fresh.cursor, unit="s", tz="UTC")
    # nothing to read (until is inside what the store covers): no commit, the same state
    nothing = zd.fetch(stream, until=result.cursor - pd.Timedelta(days=1), settings=settings,
                       progress=False)  # fmt: skip
    assert nothing.requests == 0
    assert nothing.state == open_store(settings.data_dir, settings.account, stream).state()


def test_second_fetch_with_nothing_new_sends_one_request_from_the_cursor(server, settings):
    first = zd.fetch("metric_events", settings=settings, progress=False)
    before = len(server.request_log)
    second = zd.fetch("metric_events", settings=settings, progress=False)
    log = server.request_log[before:]
    assert second.requests == 1 and len(log) == 1
    assert int(log[0].params["start_time"]) == int(first.cursor.timestamp())
    assert second.new_events == 0
    assert second.rows == first.rows


def test_ticket_events_with_comments_load_as_audits_and_changes(server, settings):
    zd.fetch("ticket_events", settings=settings, progress=False, include_comments=True)
    audits = zd.load_frame(stream="ticket_events", refresh="never", settings=settings)
    assert set(audits["id"]) == set(server.unique_ids("ticket_events"))
    assert str(audits["time"].dtype) == "datetime64[ms, UTC]"
    changes = zd.load_changes(refresh="never", settings=settings)
    assert set(changes["audit_id"].dropna()) <= set(audits["id"])
    assert {"status", "priority", "comment"} <= set(changes["field"].dropna())
    comments = changes[changes["field"] == "comment"]
    assert comments["body"].notna().any()  # full comment objects were requested


def test_load_frame_auto_refreshes_and_returns_typed_utc_frame(server, settings):
    events = zd.load_frame(settings=settings)  # refresh="auto" with an account: fetches
    assert len(events) == len(server.unique_ids("metric_events"))
    assert str(events["time"].dtype) == "datetime64[ms, UTC]"
    assert isinstance(events["metric"].dtype, pd.CategoricalDtype)
    assert str(events["id"].dtype) == "Int64"
    assert events["time"].is_monotonic_increasing
    assert events.attrs["zdevents_as_of"].tz is not None


def test_since_until_are_a_half_open_utc_range(server, settings):
    zd.fetch("metric_events", settings=settings, progress=False)
    everything = zd.load_frame(refresh="never", settings=settings)
    cut = everything["time"].iloc[len(everything) // 2]
    left = zd.load_frame(until=cut, refresh="never", settings=settings)
    right = zd.load_frame(since=cut, refresh="never", settings=settings)
    assert (left["time"] < cut).all() and (right["time"] >= cut).all()
    assert len(left) + len(right) == len(everything)
    # the same instant given as naive text (UTC) or another zone selects the same rows
    naive = cut.tz_convert(None).isoformat()
    other_zone = cut.tz_convert("America/New_York").to_pydatetime()
    assert len(zd.load_frame(since=naive, refresh="never", settings=settings)) == len(right)
    assert len(zd.load_frame(since=other_zone, refresh="never", settings=settings)) == len(right)


def test_columns_are_projected(server, settings):
    zd.fetch("metric_events", settings=settings, progress=False)
    frame = zd.load_frame(columns=["ticket_id", "time"], refresh="never", settings=settings)
    assert list(frame.columns) == ["ticket_id", "time"]


def test_crash_mid_fetch_resumes_without_loss_or_duplicates(server, settings, monkeypatch):
    monkeypatch.setattr(page_writer, "BATCH_PAGES", 2)
    server.fail_next(status=503, times=100, after=5)  # pages 1-5 succeed, then the server dies
    with pytest.raises(zd.ServerError):
        zd.fetch("metric_events", settings=settings.with_(max_retries=1), progress=False)
    partial = _cached_ids(settings, "metric_events")
    # every page received before the failure is kept, and the export is not complete yet
    assert set(partial) == set(server.unique_ids("metric_events"))
    assert 0 < len(partial) < server.total_records("metric_events")
    server.clear_faults()
    zd.fetch("metric_events", settings=settings, progress=False)
    ids = _cached_ids(settings, "metric_events")
    assert sorted(ids) == sorted(server.unique_ids("metric_events"))
    assert len(ids) == server.total_records("metric_events")


def test_cache_files_are_zstd_parquet_by_month_without_secrets(server, settings):
    zd.fetch("metric_events", settings=settings, progress=False)
    root = settings.data_dir / settings.account / "metric_events"
    files = sorted(root.glob("month=*/*.parquet"))
    assert len(files) >= 2
    meta = pq.ParquetFile(files[0]).metadata
    assert meta.row_group(0).column(0).compression.lower() == "zstd"
    for path in [*files, *sorted((root / "_delta_log").glob("*.json"))]:
        data = path.read_bytes()
        assert settings.api_token.encode() not in data
        assert settings.email.encode() not in data


def test_two_fetches_of_one_stream_do_not_interleave(server, settings):
    cache = open_store(settings.data_dir, settings.account, "metric_events")
    with cache.lock(), pytest.raises(zd.CacheLocked, match="another zdevents fetch"):
        zd.fetch("metric_events", settings=settings, progress=False)


@pytest.mark.parametrize(
    ("change", "error", "text"),
    [
        ({"api_token": "wrong-token"}, zd.AuthError, "ZENDESK_API_TOKEN"),
        ({"email": "nobody@sample.test"}, zd.AuthError, "ZENDESK_EMAIL"),
    ],
)
def test_bad_credentials_raise_auth_error_without_the_token(server, settings, change, error, text):
    bad = settings.with_(**change)
    with pytest.raises(error, match=text) as info:
        zd.fetch("metric_events", settings=bad, progress=False)
    assert info.value.status == 401
    assert bad.api_token not in str(info.value) and bad.api_token not in repr(info.value.args)


def test_non_admin_token_gets_permission_denied(account, tmp_path):
    with LocalZendesk(account, admin=False) as srv:
        with pytest.raises(zd.PermissionDenied, match="admin"):
            zd.fetch("metric_events", settings=srv.settings(data_dir=tmp_path), progress=False)


def test_wrong_base_url_gets_not_found(server, settings):
    bad = settings.with_(base_url=server.url + "/not-zendesk")
    with pytest.raises(zd.NotFound, match="ZENDESK_BASE_URL|ZENDESK_SUBDOMAIN"):
        zd.fetch("metric_events", settings=bad, progress=False)


def test_oauth_bearer_token_works(server, settings):
    bearer = zd.Settings(
        base_url=server.url,
        subdomain="sample",
        oauth_token=server.oauth_token,
        data_dir=settings.data_dir,
        requests_per_minute=10_000,
    )
    result = zd.fetch("metric_events", settings=bearer, progress=False)
    assert result.rows == len(server.unique_ids("metric_events"))

"""Zendesk as documented, end to end through HTTP on 127.0.0.1: stopping rules that never
truncate (a page-size matrix), cursor pagination, support_type_scope, exclude_deleted, the
local server's envelopes, and a fetch summary that counts every row it stores."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import requests

import zdevents as zd
from zdevents.cli import main as cli_main
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk
from zdevents.store import open_store

pytestmark = pytest.mark.e2e

METRICS = "/api/v2/incremental/ticket_metric_events"
TICKETS = "/api/v2/incremental/ticket_events"
T0 = 1_704_067_200  # 2024-01-01: "long ago"


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(event_id: int, seconds: int, ticket_id: int = 1) -> dict:
    return {
        "id": event_id,
        "ticket_id": ticket_id,
        "metric": "reply_time",
        "instance_id": 1,
        "type": "activate",
        "time": _iso(seconds),
    }


def _cached_ids(settings, stream: str = "metric_events") -> list[int]:
    cache = open_store(settings.data_dir, settings.account, stream)
    return cache.read(columns=["id"]).column("id").to_pylist()


def _get(server: LocalZendesk, path: str = METRICS, **params) -> requests.Response:
    return requests.get(
        f"{server.url}{path}",
        params=params,
        timeout=10,
        auth=(f"{server.email}/token", server.api_token),
    )


def _metric_params(server: LocalZendesk) -> list[dict[str, str]]:
    return [r.params for r in server.request_log if r.stream == "metric_events"]


# ---------------------------------------------------------------------------------- stopping


def test_a_short_page_without_end_of_stream_does_not_end_the_export(tmp_path):
    # The case: 400-event pages, no end_of_stream (Zendesk's documented envelope).
    # Before: 1 request, 404 events stored, "caught up".
    account = SampleAccount(tickets=40, seed=3)
    with LocalZendesk(account, page_size=400) as server:
        settings = server.settings(data_dir=tmp_path)
        result = zd.fetch("metric_events", settings=settings, progress=False)
        total = server.total_records("metric_events")
        pages = server.served_pages("metric_events")
    assert total == 2248
    assert set(_cached_ids(settings)) == {e["id"] for e in account.metric_events()}
    assert result.rows == total  # every event, not the first page's 404
    assert len(pages) == 7 == result.requests  # ceil(2248 / 400) = 6 pages + 1 extra


# Page-size matrix: every served event cached, the export ends, at most one extra request.
MATRIX_FIGURES: list[str] = []
N_EVENTS = 2_500
BURST = 1_500


def _matrix_events(layout: str, now: float) -> list[dict]:
    """N_EVENTS events, two per second; 'burst' adds BURST more in one second mid-way.

    'long_ago' ends in 2024; 'last_minute' runs to 30 s past now, so the newest ~90 s are
    withheld by the server and the export ends at the withheld minute.
    """
    last = T0 + N_EVENTS // 2 if layout == "long_ago" else int(now) + 30
    first = last - N_EVENTS // 2
    return [_event(i + 1, first + i // 2) for i in range(N_EVENTS)]


@pytest.fixture(scope="module")
def matrix_report():
    yield MATRIX_FIGURES
    print("\npage-size matrix (zdevents, time-based pagination)")
    print(
        f"{'page size':>22} {'end_of_stream':>13} {'data':>11} {'served':>7} "
        f"{'cached':>7} {'requests':>8} {'pages w/ new ids':>16} {'extra at end':>12}"
    )
    for line in MATRIX_FIGURES:
        print(line)


@pytest.mark.parametrize("data", ["long_ago", "last_minute"])
@pytest.mark.parametrize("eos", [True, False], ids=["with_eos", "without_eos"])
@pytest.mark.parametrize("size", [100, 400, 999, 1000, "1000+burst"])
def test_page_size_matrix_caches_every_served_event_and_ends(
    size, eos, data, tmp_path, matrix_report
):
    events = _matrix_events(data, time.time())
    page_size = 1000 if size == "1000+burst" else size
    if size == "1000+burst":  # BURST events sharing one second, more than a page
        burst_second = _record_seconds(events[N_EVENTS // 3])
        events += [_event(100_000 + i, burst_second) for i in range(BURST)]
    with LocalZendesk(metric_events=events, page_size=page_size, metric_end_of_stream=eos) as srv:
        settings = srv.settings(data_dir=tmp_path)
        started = time.time()
        result = zd.fetch("metric_events", settings=settings, progress=False)
        served_pages = srv.served_pages("metric_events")
        requests_sent = srv.requests
    served = {i for page in served_pages for i in page}
    cached = _cached_ids(settings)
    assert len(cached) == len(set(cached))
    assert set(cached) == served  # every served event cached
    if data == "long_ago":
        assert len(served) == len(events)
    else:  # everything older than the withheld minute at the start was served
        visible = {e["id"] for e in events if _record_seconds(e) <= int(started) - 60}
        assert visible <= served and len(served) < len(events)
    seen: set[int] = set()
    with_new = []
    for index, page in enumerate(served_pages):
        if set(page) - seen:
            with_new.append(index)
        seen.update(page)
    extra_at_end = len(served_pages) - 1 - with_new[-1]
    assert requests_sent == len(served_pages) == result.requests
    assert extra_at_end <= 1
    if eos:
        assert extra_at_end == 0  # end_of_stream true ends without asking again
    matrix_report.append(
        f"{size!s:>22} {'yes' if eos else 'no':>13} {data:>11} {len(served):>7,} "
        f"{len(cached):>7,} {requests_sent:>8} {len(with_new):>16} {extra_at_end:>12}"
    )


def _record_seconds(event: dict) -> int:
    return int(datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp())


# ---------------------------------------------------------------------------------- cursor mode


def test_cursor_pagination_fetch_resumes_from_the_saved_after_cursor(tmp_path):
    events = [_event(i + 1, T0 + i * 10) for i in range(250)]
    with LocalZendesk(metric_events=events, now=T0 + 1500 + 60) as srv:  # ids 1..151 visible
        settings = srv.settings(data_dir=tmp_path)
        first = zd.fetch("metric_events", settings=settings, progress=False, pagination="cursor")
        state = open_store(settings.data_dir, settings.account, "metric_events").state()
        assert first.rows == 151 and first.requests == 2  # 100 + 51, has_more false ends
        assert state.after_cursor is not None and state.cursor == T0 + 1500
        assert [p["page[size]"] for p in _metric_params(srv)] == ["100", "100"]
        srv.now = T0 + 2490 + 60  # every event visible
        before = srv.requests
        second = zd.fetch("metric_events", settings=settings, progress=False, pagination="cursor")
        resumed = _metric_params(srv)[before]
    assert resumed["page[after]"] == state.after_cursor  # not start_time: the saved position
    assert second.new_events == 99 and second.rows == 250 and second.requests == 1
    assert sorted(_cached_ids(settings)) == list(range(1, 251))


def test_switching_pagination_modes_resumes_by_time_losing_and_duplicating_nothing(tmp_path):
    events = [_event(i + 1, T0 + (i // 3) * 10) for i in range(600)]  # 3 per second
    with LocalZendesk(metric_events=events, now=T0 + 600 + 60) as srv:
        settings = srv.settings(data_dir=tmp_path)
        zd.fetch("metric_events", settings=settings, progress=False, pagination="cursor")
        srv.now = T0 + 1300 + 60
        before = srv.requests
        timed = zd.fetch("metric_events", settings=settings, progress=False)
        first_time_request = _metric_params(srv)[before]
        state = open_store(settings.data_dir, settings.account, "metric_events").state()
        srv.now = T0 + 2000
        before = srv.requests
        zd.fetch("metric_events", settings=settings, progress=False, pagination="cursor")
        back_to_cursor = _metric_params(srv)[before]
    assert first_time_request == {"start_time": str(T0 + 600)}
    assert state.after_cursor is None and timed.rows == 3 * 131
    assert "page[after]" not in back_to_cursor  # the old position is stale: resume by time
    assert back_to_cursor["start_time"] == str(T0 + 1300)
    ids = _cached_ids(settings)
    assert sorted(ids) == [e["id"] for e in events if _record_seconds(e) <= T0 + 2000 - 60]


def test_cursor_pages_follow_zendesks_envelope_capped_at_100():
    events = [_event(i + 1, T0 + i) for i in range(150)]
    with LocalZendesk(metric_events=events, now=T0 + 10_000) as srv:
        body = _get(srv, start_time=0, **{"page[size]": 500}).json()
        assert len(body["ticket_metric_events"]) == 100
        assert body["meta"]["has_more"] is True and body["links"]["next"].startswith(srv.url)
        follow = requests.get(
            body["links"]["next"], timeout=10, auth=(f"{srv.email}/token", srv.api_token)
        ).json()
        bad = _get(srv, **{"page[after]": "not-a-cursor"})
    assert [e["id"] for e in follow["ticket_metric_events"]] == list(range(101, 151))
    assert follow["meta"]["has_more"] is False and follow["links"]["next"] is None
    assert "end_time" not in body and "next_page" not in body
    assert bad.status_code == 400


def test_a_cursor_that_does_not_move_while_has_more_is_an_error_and_the_next_run_resumes(
    tmp_path,
):
    events = [_event(i + 1, T0 + i) for i in range(250)]
    with LocalZendesk(metric_events=events, now=T0 + 10_000) as srv:
        settings = srv.settings(data_dir=tmp_path)
        srv.inject("loop", stream="metric_events", after=1)  # page 2 repeats its cursor
        with pytest.raises(zd.PageError, match="cursor did not move"):
            zd.fetch("metric_events", settings=settings, progress=False, pagination="cursor")
        state = open_store(settings.data_dir, settings.account, "metric_events").state()
        assert state.rows == 100 and state.after_cursor is not None  # page 1 kept
        before = srv.requests
        again = zd.fetch("metric_events", settings=settings, progress=False, pagination="cursor")
        assert _metric_params(srv)[before]["page[after]"] == state.after_cursor
    assert again.new_events == 150 and sorted(_cached_ids(settings)) == list(range(1, 251))


def test_ticket_events_have_no_cursor_pagination():
    with pytest.raises(ValueError, match="ticket_events has no cursor pagination"):
        zd.fetch("ticket_events", pagination="cursor")


# ---------------------------------------------------------------------------------- scope


@pytest.fixture
def scoped():
    account = SampleAccount(tickets=30, seed=5)
    with LocalZendesk(account, ai_agent_ticket_ids={2, 3, 5, 7}) as srv:
        yield srv


def test_support_type_scope_defaults_to_agent_is_stored_and_reused(scoped, tmp_path):
    settings = scoped.settings(data_dir=tmp_path)
    audits = list(scoped.account.ticket_events())
    agent = {a["id"] for a in audits if a["ticket_id"] not in {2, 3, 5, 7}}
    zd.fetch("ticket_events", settings=settings, progress=False)
    assert set(_cached_ids(settings, "ticket_events")) == agent
    cache = open_store(settings.data_dir, settings.account, "ticket_events")
    assert cache.state().support_type_scope == "agent"
    with pytest.raises(zd.ConfigError) as info:
        zd.fetch("ticket_events", settings=settings, progress=False, support_type_scope="all")
    assert "holds support_type_scope 'agent', not 'all'" in str(info.value)
    assert "\n" not in str(info.value)
    zd.fetch(
        "ticket_events", settings=settings, progress=False, support_type_scope="all", force=True
    )
    assert set(_cached_ids(settings, "ticket_events")) == {a["id"] for a in audits}
    assert cache.state().support_type_scope == "all"
    before = scoped.requests
    zd.fetch("ticket_events", settings=settings, progress=False)  # a later refresh
    assert scoped.request_log[before].params["support_type_scope"] == "all"


def test_support_type_scope_ai_agent_and_unknown_values(scoped, tmp_path):
    settings = scoped.settings(data_dir=tmp_path)
    zd.fetch("ticket_events", settings=settings, progress=False, support_type_scope="ai_agent")
    tickets = {
        a["ticket_id"]
        for a in scoped.account.ticket_events()
        if a["id"] in set(_cached_ids(settings, "ticket_events"))
    }
    assert tickets == {2, 3, 5, 7}
    response = _get(scoped, TICKETS, start_time=0, support_type_scope="bots")
    assert response.status_code == 400 and "support_type_scope" in response.text
    with pytest.raises(ValueError, match="unknown support_type_scope 'bots'"):
        zd.fetch("ticket_events", settings=settings, support_type_scope="bots")
    with pytest.raises(ValueError, match="ticket_events only"):
        zd.fetch("metric_events", settings=settings, support_type_scope="all")


# ---------------------------------------------------------------------------------- CLI flags


def _cli(server: LocalZendesk, tmp_path, monkeypatch, *args: str) -> int:
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "ZENDESK_BASE_URL": server.url,
        "ZENDESK_SUBDOMAIN": "sample",
        "ZENDESK_EMAIL": server.email,
        "ZENDESK_API_TOKEN": server.api_token,
        "ZDEVENTS_DATA_DIR": str(tmp_path / "cache"),
        "ZDEVENTS_REQUESTS_PER_MINUTE": "10000",
    }.items():
        monkeypatch.setenv(name, value)
    return cli_main(["fetch", "-q", *args])


def test_cli_exclude_deleted_and_pagination_reach_the_metric_events_requests(
    tmp_path, monkeypatch, capsys
):
    account = SampleAccount(tickets=200, seed=7)
    assert account.deleted_ticket_ids  # the sample deletes a few tickets as spam
    with LocalZendesk(account) as srv:
        assert (
            _cli(
                srv,
                tmp_path,
                monkeypatch,
                "--exclude-deleted",
                "--pagination",
                "cursor",
                "--support-type-scope",
                "all",
                "--stream",
                "all",
            )
            == 0
        )
        metric = _metric_params(srv)
        tickets = [r.params for r in srv.request_log if r.stream == "ticket_events"]
        settings = srv.settings(data_dir=tmp_path / "cache")
    assert all(p["exclude_deleted"] == "true" and p["page[size]"] == "100" for p in metric)
    assert all(p["support_type_scope"] == "all" and "page[size]" not in p for p in tickets)
    cached = set(_cached_ids(settings))
    kept = {
        e["id"] for e in account.metric_events() if e["ticket_id"] not in account.deleted_ticket_ids
    }
    assert cached == kept
    assert "metric_events:" in capsys.readouterr().out


def test_cli_refuses_another_scope_in_one_line(scoped, tmp_path, monkeypatch, capsys):
    assert _cli(scoped, tmp_path, monkeypatch, "--stream", "ticket_events") == 0
    assert (
        _cli(
            scoped,
            tmp_path,
            monkeypatch,
            "--stream",
            "ticket_events",
            "--support-type-scope",
            "ai_agent",
        )
        == 2
    )
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 1 and "holds support_type_scope 'agent', not 'ai_agent'" in err[0]


# ---------------------------------------------------------------------------------- server


def test_server_follows_the_documented_envelopes():
    account = SampleAccount(tickets=5, seed=2)
    with LocalZendesk(account) as srv:
        metric = _get(srv, start_time=0, per_page=3).json()  # per_page: not documented here
        audits = _get(srv, TICKETS, start_time=0, per_page=3).json()
        too_recent = _get(srv, start_time=int(time.time()) - 30)
    with LocalZendesk(account, ticket_end_of_stream=False) as srv:
        bare = _get(srv, TICKETS, start_time=0).json()
    assert "end_of_stream" not in metric and metric["count"] == srv.total_records() > 3
    assert "end_of_stream" in audits and audits["count"] >= 3
    assert "end_of_stream" not in bare
    assert too_recent.status_code == 422
    assert too_recent.json()["description"] == (
        "Too recent start_time. Use a start_time older than 1 minute"
    )
    applied = next(e for e in metric["ticket_metric_events"] if e["type"] == "apply_sla")
    assert applied["sla"]["policy"]["description"]  # kept as Zendesk sends it


# ---------------------------------------------------------------------------------- summary


def test_summary_counts_metric_events_arriving_under_ticket_events(tmp_path):
    # Zendesk's reference example shows metric events under the ticket_events key: they are
    # stored with metric_events, and the summary says so instead of "0 new".
    strays = [_event(i + 1, T0 + 10 + i) for i in range(4)]
    with LocalZendesk(ticket_events=strays, metric_events=[]) as srv:
        settings = srv.settings(data_dir=tmp_path)
        result = zd.fetch("ticket_events", settings=settings, progress=False)
    assert (result.new_events, result.other_stream_events, result.rows) == (0, 4, 0)
    assert (
        "0 new (+4 new metric events that arrived in this export, stored with "
        "metric_events)" in str(result)
    )
    assert sorted(_cached_ids(settings)) == [1, 2, 3, 4]

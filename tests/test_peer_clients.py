"""Peer clients against the local Zendesk: each ends, and receives the ids zdevents caches.

Three clients that know nothing of zdevents read the same server, which follows Zendesk's
documented envelopes (no ``end_of_stream`` on metric-event pages):

- zenpy (pinned in the test extra), pointed at plain http on loopback through its own
  ``ZENPY_FORCE_SCHEME`` / ``ZENPY_FORCE_NETLOC`` settings;
- a plain ``requests`` loop that follows ``next_page`` as Zendesk's incremental-export docs
  describe (until ``end_of_stream``; a metric-event page has none, so until ``next_page``
  leads back to the page just read);
- a cursor-paging loop (``page[size]=100``, ``links.next`` while ``meta.has_more``), which
  Zendesk offers on metric events only.

The sample account is moved in time so that its newest event is 90 s old: a live account's
export runs into the withheld last minute, which is also what zenpy's own stopping rule
(an ``end_time`` within five minutes of now) needs to end the metric-event export.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from importlib.metadata import version

import pytest
import requests
import zenpy

import zdevents as zd
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk
from zdevents.store import open_store

pytestmark = pytest.mark.e2e

METRICS = "/api/v2/incremental/ticket_metric_events"
TICKETS = "/api/v2/incremental/ticket_events"
MAX_PAGES = 500  # every loop here is bounded: a client that never ends fails the test
PAGE_SIZE = 250
FIGURES: list[str] = []


def _seconds(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def live():
    """(metric events, audits) of a small sample account, the newest 90 s ago."""
    account = SampleAccount(tickets=60, seed=21)
    metric = list(account.metric_events())
    audits = list(account.ticket_events())
    newest = max(max(_seconds(e["time"]) for e in metric), max(a["timestamp"] for a in audits))
    shift = int(time.time()) - 90 - newest
    for event in metric:
        event["time"] = _iso(_seconds(event["time"]) + shift)
    for audit in audits:
        audit["timestamp"] += shift
        audit["created_at"] = _iso(audit["timestamp"])
    return metric, audits


@pytest.fixture(scope="module")
def server(live):
    metric, audits = live
    with LocalZendesk(metric_events=metric, ticket_events=audits, page_size=PAGE_SIZE) as srv:
        yield srv


@pytest.fixture(scope="module")
def cached(server, tmp_path_factory):
    """Ids zdevents cached, per stream and pagination mode."""
    ids: dict[str, set[int]] = {}
    for stream, pagination in (
        ("metric_events", "time"),
        ("metric_events", "cursor"),
        ("ticket_events", "time"),
    ):
        settings = server.settings(data_dir=tmp_path_factory.mktemp(f"{stream}-{pagination}"))
        result = zd.fetch(stream, settings=settings, progress=False, pagination=pagination)
        rows = open_store(settings.data_dir, settings.account, stream).read(columns=["id"])
        column = rows.column("id").to_pylist()
        assert len(column) == len(set(column)) == result.rows  # zdevents stores no duplicate
        ids[f"{stream}/{pagination}"] = set(column)
    return ids


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    print(
        "\npeer clients against LocalZendesk (documented envelopes, pages of "
        f"{PAGE_SIZE}, cursor pages of 100)"
    )
    print(
        f"{'client':>16} {'stream':>14} {'requests':>8} {'rows':>6} {'unique':>6} "
        f"{'zdevents':>8} {'equal':>5}"
    )
    for line in FIGURES:
        print(line)


def _auth(server: LocalZendesk) -> tuple[str, str]:
    return (f"{server.email}/token", server.api_token)


def _record(client: str, stream: str, requests_sent: int, rows: list[int], cached: set[int]):
    FIGURES.append(
        f"{client:>16} {stream:>14} {requests_sent:>8} {len(rows):>6} "
        f"{len(set(rows)):>6} {len(cached):>8} {str(set(rows) == cached):>5}"
    )


@pytest.fixture
def zenpy_client(server, monkeypatch):
    monkeypatch.setenv("ZENPY_FORCE_SCHEME", "http")
    monkeypatch.setenv("ZENPY_FORCE_NETLOC", server.url.split("://", 1)[1])
    return zenpy.Zenpy(subdomain=server.subdomain, email=server.email, token=server.api_token)


@pytest.mark.parametrize("stream", ["metric_events", "ticket_events"])
def test_zenpy_ends_and_receives_the_ids_zdevents_caches(stream, server, cached, zenpy_client):
    before = server.requests
    if stream == "metric_events":
        events = zenpy_client.tickets.metrics_incremental(start_time=0)
    else:
        events = zenpy_client.tickets.events(start_time=0)
    rows = []
    for event in events:
        rows.append(event.id)
        assert len(rows) < MAX_PAGES * PAGE_SIZE, "zenpy did not end"
    sent = server.requests - before
    _record(f"zenpy {version('zenpy')}", stream, sent, rows, cached[f"{stream}/time"])
    assert set(rows) == cached[f"{stream}/time"] == server.unique_ids(stream)


@pytest.mark.parametrize("stream", ["metric_events", "ticket_events"])
def test_plain_requests_following_next_page_ends_and_matches(stream, server, cached):
    path, key = (
        (METRICS, "ticket_metric_events")
        if stream == "metric_events"
        else (TICKETS, "ticket_events")
    )
    url = f"{server.url}{path}?start_time=0"
    rows: list[int] = []
    sent = 0
    with requests.Session() as session:
        while True:
            sent += 1
            assert sent <= MAX_PAGES, "the next_page loop did not end"
            body = session.get(url, auth=_auth(server), timeout=10).json()
            rows += [record["id"] for record in body[key]]
            if body.get("end_of_stream"):
                break
            if body["next_page"] == url:  # no end_of_stream (metric events): nothing newer
                break
            url = body["next_page"]
    _record("requests/next", stream, sent, rows, cached[f"{stream}/time"])
    assert set(rows) == cached[f"{stream}/time"]
    assert len(rows) > len(set(rows))  # the inclusive boundary repeats items: peers see them


def test_cursor_paging_client_ends_and_matches(server, cached):
    url = f"{server.url}{METRICS}?start_time=0&page%5Bsize%5D=100"
    rows: list[int] = []
    sent = 0
    with requests.Session() as session:
        while True:
            sent += 1
            assert sent <= MAX_PAGES, "the cursor loop did not end"
            body = session.get(url, auth=_auth(server), timeout=10).json()
            assert len(body["ticket_metric_events"]) <= 100
            rows += [record["id"] for record in body["ticket_metric_events"]]
            if not body["meta"]["has_more"]:
                break
            url = body["links"]["next"]
    _record("requests/cursor", "metric_events", sent, rows, cached["metric_events/cursor"])
    assert len(rows) == len(set(rows))  # cursor pages do not overlap
    assert set(rows) == cached["metric_events/cursor"] == cached["metric_events/time"]

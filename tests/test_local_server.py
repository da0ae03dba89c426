"""LocalZendesk answers like Zendesk: envelopes, inclusive pages, auth, rate limit, faults."""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk

METRICS = "/api/v2/incremental/ticket_metric_events"
TICKETS = "/api/v2/incremental/ticket_events"
AUTH = ("admin@sample.test/token", "sample-api-token")
NOW = 10_000


def iso(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def metric(rid: int, t: int) -> dict:
    return {
        "id": rid,
        "ticket_id": 1,
        "metric": "reply_time",
        "instance_id": 1,
        "type": "activate",
        "time": iso(t),
    }


# five hand-made records: three share t=100
HAND = [metric(1, 100), metric(2, 100), metric(3, 100), metric(4, 200), metric(5, 300)]


def get(server: LocalZendesk, path: str = METRICS, auth=AUTH, headers=None, **params):
    return requests.get(server.url + path, params=params, auth=auth, headers=headers, timeout=10)


@pytest.fixture
def hand_server():
    with LocalZendesk(metric_events=HAND, page_size=2, now=NOW) as server:
        yield server


@pytest.fixture(scope="module")
def account() -> SampleAccount:
    return SampleAccount(tickets=40, seed=2, burst_events=1300, burst_audits=1100)


@pytest.fixture
def server(account: SampleAccount):
    with LocalZendesk(account, page_size=200) as server:
        yield server


def follow(server: LocalZendesk, path: str, **params) -> list[dict]:
    """Every page from start_time=0 until end_of_stream (the server is set to send it)."""
    key = "ticket_metric_events" if path == METRICS else "ticket_events"
    start, pages = 0, []
    while True:
        body = get(server, path, start_time=start, **params).json()
        pages.append(body)
        if body["end_of_stream"]:
            return [record for page in pages for record in page[key]]
        assert body["end_time"] > start
        start = body["end_time"]


# ---------------------------------------------------------------- pagination
def test_hand_computed_pages(hand_server: LocalZendesk) -> None:
    page1 = get(hand_server, start_time=0).json()
    assert list(page1) == ["ticket_metric_events", "next_page", "count", "end_time"]
    # page_size 2 is extended to every record of the last second (t=100)
    assert [r["id"] for r in page1["ticket_metric_events"]] == [1, 2, 3]
    assert (page1["count"], page1["end_time"]) == (3, 100)
    assert page1["next_page"] == f"{hand_server.url}{METRICS}?start_time=100"
    # the boundary is inclusive, but everything at t=100 was served: end_time moves to 101
    page2 = get(hand_server, start_time=100).json()
    assert [r["id"] for r in page2["ticket_metric_events"]] == [1, 2, 3]
    assert page2["end_time"] == 101
    page3 = get(hand_server, start_time=101).json()
    assert [r["id"] for r in page3["ticket_metric_events"]] == [4, 5]
    assert (page3["count"], page3["end_time"]) == (2, 300)
    page4 = get(hand_server, start_time=300).json()  # the last item repeats
    assert [r["id"] for r in page4["ticket_metric_events"]] == [5]
    assert hand_server.unique_count("metric_events") == 5


def test_inclusive_boundary_repeats_the_last_second(hand_server: LocalZendesk) -> None:
    page = get(hand_server, start_time=200).json()
    assert [r["id"] for r in page["ticket_metric_events"]] == [4, 5]


def test_newest_minute_withheld_and_too_recent_is_422(hand_server: LocalZendesk) -> None:
    hand_server.now = 330  # t=300 is within 60 s of now
    page = get(hand_server, start_time=101, metric_end_of_stream="ignored").json()
    assert [r["id"] for r in page["ticket_metric_events"]] == [4]
    response = get(hand_server, start_time=280)
    assert response.status_code == 422
    assert response.json() == {
        "error": "InvalidValue",
        "description": "Too recent start_time. Use a start_time older than 1 minute",
    }


def test_end_of_stream_only_when_asked_for_metric_events() -> None:
    with LocalZendesk(metric_events=HAND, metric_end_of_stream=True, now=NOW) as server:
        body = get(server, start_time=0).json()
    assert list(body) == ["ticket_metric_events", "next_page", "count", "end_of_stream", "end_time"]
    assert body["end_of_stream"] is True and body["count"] == 5


def test_pages_cover_every_record_with_duplicates(account: SampleAccount) -> None:
    with LocalZendesk(account, page_size=150, metric_end_of_stream=True) as server:
        served = follow(server, METRICS)
        expected = {e["id"] for e in account.metric_events()}
        assert {r["id"] for r in served} == expected
        assert len(served) > len(expected)  # boundary seconds repeat
        assert server.unique_count("metric_events") == len(expected) == server.total_records()
        audits = follow(server, TICKETS, per_page=100)
        assert {a["id"] for a in audits} == {a["id"] for a in account.ticket_events()}


def test_more_than_1000_items_in_one_second(server: LocalZendesk, account: SampleAccount) -> None:
    burst_time = account.start + (account.days // 2) * 86400 + 12 * 3600
    body = get(server, start_time=burst_time).json()
    times = {r["time"] for r in body["ticket_metric_events"]}
    assert body["count"] == len(body["ticket_metric_events"]) >= 1300
    assert times == {iso(burst_time)}
    assert body["end_time"] == burst_time + 1  # all of that second was served, more follow
    audits = get(server, TICKETS, start_time=burst_time).json()
    assert audits["count"] >= 1100 and audits["end_of_stream"] is False


def test_ticket_events_envelope_and_options(server: LocalZendesk, account: SampleAccount) -> None:
    body = get(server, TICKETS, start_time=0, per_page=7, include="comment_events").json()
    assert list(body) == ["ticket_events", "next_page", "count", "end_of_stream", "end_time"]
    assert body["count"] >= 7
    assert parse_qs(urlsplit(body["next_page"]).query) == {
        "start_time": [str(body["end_time"])],
        "per_page": ["7"],
        "include": ["comment_events"],
    }
    full = follow(server, TICKETS, include="comment_events")
    assert any(c["event_type"] == "Comment" for a in full for c in a["child_events"])


def test_exclude_deleted_drops_deleted_tickets(account: SampleAccount) -> None:
    with LocalZendesk(account, page_size=5000, metric_end_of_stream=True) as server:
        kept = follow(server, METRICS, exclude_deleted="true")
    assert account.deleted_ticket_ids
    assert not {r["ticket_id"] for r in kept} & account.deleted_ticket_ids
    assert len(kept) < sum(1 for _ in account.metric_events())


# ---------------------------------------------------------------- auth and errors
def test_auth_variants() -> None:
    with LocalZendesk(metric_events=HAND, now=NOW, password="pw") as server:
        assert get(server, start_time=0).status_code == 200
        assert get(server, auth=("admin@sample.test", "pw"), start_time=0).status_code == 200
        bearer = {"Authorization": "Bearer sample-oauth-token"}
        assert get(server, auth=None, headers=bearer, start_time=0).status_code == 200
        missing = get(server, auth=None, start_time=0)
        assert missing.status_code == 401 and missing.json() == {
            "error": "Couldn't authenticate you"
        }
        assert (
            get(server, auth=("admin@sample.test/token", "nope"), start_time=0).status_code == 401
        )
        assert (
            get(
                server, auth=None, headers={"Authorization": "Bearer nope"}, start_time=0
            ).status_code
            == 401
        )
        assert get(server, "/api/v2/tickets", start_time=0).status_code == 404
        log = server.request_log
    assert [r.has_auth for r in log] == [True, True, True, False, True, True, True]
    assert [r.status for r in log] == [200, 200, 200, 401, 401, 401, 404]
    assert "sample-api-token" not in repr(log) and "pw'" not in repr(log)


def test_password_refused_unless_configured(hand_server: LocalZendesk) -> None:
    assert (
        get(hand_server, auth=("admin@sample.test", "sample-api-token"), start_time=0).status_code
        == 401
    )


def test_non_admin_gets_403() -> None:
    with LocalZendesk(metric_events=HAND, now=NOW, admin=False) as server:
        response = get(server, start_time=0)
    assert response.status_code == 403 and response.json()["error"] == "Forbidden"


def test_rate_limit_answers_429_with_retry_after() -> None:
    with LocalZendesk(metric_events=HAND, now=NOW, requests_per_minute=3) as server:
        statuses = [get(server, start_time=0).status_code for _ in range(3)]
        limited = get(server, start_time=0)
        assert server.rate_limited == 1 and server.requests == 4
        assert server.settings(data_dir="/tmp/zd").requests_per_minute == 3
    assert statuses == [200, 200, 200]
    assert limited.status_code == 429 and limited.text == "Too Many Requests"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


def test_settings_point_at_the_server(hand_server: LocalZendesk) -> None:
    settings = hand_server.settings(data_dir="/tmp/zd-test")
    assert settings.url == hand_server.url and settings.subdomain == "sample"
    assert settings.auth() == AUTH and settings.requests_per_minute == 10_000
    assert settings.with_(subdomain="acme").subdomain == "acme"


# ---------------------------------------------------------------- faults
def test_status_faults_then_recovery(hand_server: LocalZendesk) -> None:
    hand_server.fail_next(503, times=2, retry_after=3)
    hand_server.fail_next(502)
    first, second, third, fourth = (get(hand_server, start_time=0) for _ in range(4))
    assert (first.status_code, first.headers["Retry-After"]) == (503, "3")
    assert second.status_code == 503 and third.status_code == 502 and fourth.status_code == 200
    assert [r.fault for r in hand_server.request_log] == ["status", "status", "status", None]


def test_fault_restricted_to_one_stream(hand_server: LocalZendesk) -> None:
    hand_server.fail_next(500, stream="ticket_events")
    assert get(hand_server, start_time=0).status_code == 200
    assert get(hand_server, TICKETS, start_time=0).status_code == 500


def test_reset_mid_body(hand_server: LocalZendesk) -> None:
    hand_server.reset_next()
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="reset"):
        get(hand_server, start_time=0)


def test_truncated_body_with_http_client(hand_server: LocalZendesk) -> None:
    hand_server.truncate_next()
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(hand_server.url).port, timeout=10)
    token = base64.b64encode(b"admin@sample.test/token:sample-api-token").decode()
    conn.request("GET", f"{METRICS}?start_time=0", headers={"Authorization": f"Basic {token}"})
    response = conn.getresponse()
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    conn.close()


def test_malformed_json_and_html(hand_server: LocalZendesk) -> None:
    hand_server.malformed_next()
    hand_server.html_next()
    malformed = get(hand_server, start_time=0)
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed.content)
    html = get(hand_server, start_time=0)
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")


def test_injected_too_recent(hand_server: LocalZendesk) -> None:
    hand_server.too_recent_next()
    response = get(hand_server, start_time=0)
    assert response.status_code == 422
    assert response.json()["description"].startswith("Too recent start_time")


def test_slow_answer(hand_server: LocalZendesk) -> None:
    hand_server.slow_next(0.3)
    started = time.monotonic()
    assert get(hand_server, start_time=0).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_injected_429_variants(hand_server: LocalZendesk) -> None:
    hand_server.rate_limit_next(2)
    hand_server.rate_limit_next(30, http_date=True)
    hand_server.rate_limit_next(None)
    seconds, date, absent = (get(hand_server, start_time=0) for _ in range(3))
    assert seconds.status_code == 429 and seconds.headers["Retry-After"] == "2"
    assert seconds.headers["Content-Type"].startswith("text/plain")
    when = email.utils.parsedate_to_datetime(date.headers["Retry-After"]).timestamp()
    assert 20 < when - time.time() <= 31
    assert absent.status_code == 429 and "Retry-After" not in absent.headers
    assert hand_server.rate_limited == 3


def test_loop_empty_and_foreign_pages(hand_server: LocalZendesk) -> None:
    hand_server.loop_next()  # forever, until cleared
    loops = [get(hand_server, start_time=100).json() for _ in range(2)]
    for body in loops:
        assert (body["end_time"], body["end_of_stream"]) == (100, False)
        assert body["next_page"].endswith("start_time=100")
    hand_server.clear_faults()
    hand_server.empty_next()
    empty = get(hand_server, start_time=0).json()
    assert (empty["count"], empty["ticket_metric_events"], empty["end_of_stream"]) == (0, [], False)
    hand_server.foreign_next_page("evil.example")
    foreign = get(hand_server, start_time=0).json()
    assert urlsplit(foreign["next_page"]).hostname == "evil.example"
    assert get(hand_server, start_time=0).json()["next_page"].startswith(hand_server.url)


def test_unknown_fault_rejected(hand_server: LocalZendesk) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        hand_server.inject("gremlins")


def test_stop_does_not_hang_on_a_slow_request(hand_server: LocalZendesk) -> None:
    hand_server.slow_next(30)
    results: list[object] = []

    def call() -> None:
        try:
            results.append(get(hand_server, start_time=0).status_code)
        except requests.RequestException as error:
            results.append(error)

    worker = threading.Thread(target=call)
    worker.start()
    # the request has taken the slow fault: its answer is waiting (nothing answered yet)
    deadline = time.monotonic() + 10
    while hand_server.pending_faults() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hand_server.pending_faults() == [] and hand_server.requests == 0
    started = time.monotonic()
    hand_server.stop()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert time.monotonic() - started < 3  # not the 30 s the answer was to wait
    # stopping ended the waiting answer: the client got no page, the log says so
    assert len(results) == 1 and isinstance(results[0], requests.ConnectionError)
    assert [(r.fault, r.status) for r in hand_server.request_log] == [("slow", 500)]


def test_no_internet_in_tests() -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get("http://93.184.216.34/", timeout=2)

"""Unit tests of zdevents.export.client: paging, stopping rules, retries, pacing, errors, envelopes.

Time is fake (sleep/clock/now injected), HTTP is a fake session (or ``responses`` for the
real requests stack), so nothing waits and nothing leaves the process.
"""

from __future__ import annotations

import base64
import json
import logging
from email.utils import formatdate

import pytest
import requests
import responses

from zdevents import (
    ApiError,
    AuthError,
    ConfigError,
    NotFound,
    PageError,
    PermissionDenied,
    RateLimited,
    ServerError,
    Settings,
)
from zdevents.export.client import Client, parse_retry_after, read_envelope

TOKEN = "tok-SECRET-7f3e9"
EMAIL = "admin@acme.test"
BASE = "https://acme.zendesk.com"
METRIC_URL = f"{BASE}/api/v2/incremental/ticket_metric_events"
TICKET_URL = f"{BASE}/api/v2/incremental/ticket_events"
WALL0 = 1_717_000_000  # wall-clock Unix time at fake t=0
START = 1_700_000_000  # a start_time well in the past
MISSING = object()


# ---------------------------------------------------------------------------------- fakes


class FakeTime:
    """sleep/clock/now that move together and never really wait."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def clock(self) -> float:
        return self.t

    def now(self) -> float:
        return WALL0 + self.t


def reply(status=200, body=b"", headers=None):
    r = requests.Response()
    r.status_code = status
    r._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r.headers.update(headers or {})
    return r


class FakeSession:
    """Answers GETs from a script (responses, exceptions, or callables of the URL)."""

    def __init__(self, *script, time: FakeTime | None = None, latency: float = 0.0) -> None:
        self.script = list(script)
        self.time = time
        self.latency = latency
        self.calls: list[dict] = []

    def get(self, url, *, auth=None, timeout=None, allow_redirects=True, stream=False):
        prepared = requests.Request("GET", url).prepare()
        if auth is not None:
            auth(prepared)
        sent_at = self.time.t if self.time else None
        self.calls.append(
            {
                "url": url,
                "headers": dict(prepared.headers),
                "timeout": timeout,
                "redirects": allow_redirects,
                "at": sent_at,
            }
        )
        if self.time:
            self.time.t += self.latency
        answer = self.script.pop(0)
        if callable(answer) and not isinstance(answer, requests.Response):
            answer = answer(url)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    @property
    def urls(self):
        return [c["url"] for c in self.calls]


def page_body(
    n=0,
    *,
    end_time,
    count=None,
    eos=MISSING,
    key="ticket_metric_events",
    next_page=MISSING,
    path="/api/v2/incremental/ticket_metric_events",
) -> bytes:
    """A Zendesk-shaped page: records first, envelope after (Zendesk's order)."""
    records = [
        {"id": i + 1, "ticket_id": 7, "metric": "reply_time", "type": "activate"} for i in range(n)
    ]
    env: dict = {key: records}
    env["next_page"] = f"{BASE}{path}?start_time={end_time}" if next_page is MISSING else next_page
    env["count"] = n if count is None else count
    env["end_time"] = end_time
    if eos is not MISSING:
        env["end_of_stream"] = eos
    return json.dumps(env).encode()


def ticket_page(n=1, *, end_time, eos, **kw) -> bytes:
    return page_body(
        n,
        end_time=end_time,
        eos=eos,
        key="ticket_events",
        path="/api/v2/incremental/ticket_events",
        **kw,
    )


def make_settings(**overrides) -> Settings:
    values = {
        "subdomain": "acme",
        "email": EMAIL,
        "api_token": TOKEN,
        "data_dir": "/nonexistent/zdevents-test",
        "requests_per_minute": 600,
        "max_retries": 3,
    }
    values.update(overrides)
    return Settings(**values)


def make_client(session, ft: FakeTime, *, jitter=0.5, **overrides) -> Client:
    return Client(
        make_settings(**overrides),
        session,
        sleep=ft.sleep,
        clock=ft.clock,
        now=ft.now,
        jitter=lambda: jitter,
    )


# ---------------------------------------------------------------------------------- paging


def test_pages_follow_end_time_until_end_of_stream():
    ft = FakeTime()
    session = FakeSession(
        reply(body=ticket_page(2, end_time=START + 100, eos=False)),
        reply(body=ticket_page(2, end_time=START + 200, eos=False)),
        reply(body=ticket_page(1, end_time=START + 300, eos=True)),
    )
    pages = list(make_client(session, ft).pages("ticket_events", START))
    assert session.urls == [
        f"{TICKET_URL}?start_time={START}",
        f"{TICKET_URL}?start_time={START + 100}",
        f"{TICKET_URL}?start_time={START + 200}",
    ]
    assert [p.start_time for p in pages] == [START, START + 100, START + 200]
    assert [p.end_time for p in pages] == [START + 100, START + 200, START + 300]
    assert [p.last for p in pages] == [False, False, True]
    assert [p.end_of_stream for p in pages] == [False, False, True]
    assert pages[0].url == session.urls[0]
    assert pages[0].records_key == "ticket_events"
    assert pages[0].count == 2
    assert json.loads(pages[0].body)["ticket_events"][1]["id"] == 2  # body untouched


def test_metric_events_do_not_stop_on_a_short_page_without_end_of_stream():
    ft = FakeTime()
    session = FakeSession(
        reply(body=page_body(3, count=1000, end_time=START + 50)),
        reply(body=page_body(3, count=400, end_time=START + 90)),  # short: not the end
        reply(body=page_body(3, count=999, end_time=START + 120)),
        reply(body=page_body(1, count=1, end_time=START + 120)),  # the one extra request
    )
    pages = list(make_client(session, ft).pages("metric_events", START))
    assert len(session.calls) == 4
    assert [p.last for p in pages] == [False, False, False, True]
    assert pages[1].end_of_stream is None
    assert session.urls[-1] == f"{METRIC_URL}?start_time={START + 120}"


def test_metric_events_stop_when_end_time_reaches_the_withheld_minute():
    ft = FakeTime()  # now() = WALL0
    session = FakeSession(
        reply(body=page_body(3, count=1000, end_time=WALL0 - 3600)),
        reply(body=page_body(3, count=1000, end_time=WALL0 - 60)),
    )
    pages = list(make_client(session, ft).pages("metric_events", START))
    assert len(session.calls) == 2  # no extra request: the next start_time would be a 422
    assert [p.last for p in pages] == [False, True]


@pytest.mark.parametrize("eos", [True, False, MISSING])
def test_end_time_before_start_time_is_an_error_naming_the_page(eos):
    ft = FakeTime()
    session = FakeSession(
        reply(body=page_body(2, end_time=START + 100, eos=False if eos is not True else MISSING)),
        reply(body=page_body(2, end_time=START - 30 * 86400, eos=eos)),
    )
    pages = make_client(session, ft).pages("metric_events", START)
    assert next(pages).end_time == START + 100
    with pytest.raises(PageError) as info:
        next(pages)
    assert info.value.url == f"{METRIC_URL}?start_time={START + 100}"
    assert f"end_time {START - 30 * 86400}" in str(info.value)
    assert "earlier than its start_time" in str(info.value)


def test_metric_events_stop_when_end_time_does_not_advance():
    ft = FakeTime()
    session = FakeSession(reply(body=page_body(3, count=1000, end_time=START)))
    pages = list(make_client(session, ft).pages("metric_events", START))
    assert len(session.calls) == 1
    assert [p.last for p in pages] == [True]


def test_metric_events_honour_end_of_stream_true_even_with_full_page():
    ft = FakeTime()
    session = FakeSession(reply(body=page_body(2, count=1000, end_time=START + 5, eos=True)))
    assert [p.last for p in make_client(session, ft).pages("metric_events", START)] == [True]


def test_metric_records_under_ticket_events_key_are_paged():
    ft = FakeTime()
    session = FakeSession(
        reply(body=page_body(2, count=1000, end_time=START + 10, key="ticket_events")),
        reply(body=page_body(2, count=2, end_time=START + 20, key="ticket_events")),
        reply(body=page_body(1, count=1, end_time=START + 20, key="ticket_events")),
    )
    pages = list(make_client(session, ft).pages("metric_events", START))
    assert [p.records_key for p in pages] == ["ticket_events"] * 3
    assert [p.last for p in pages] == [False, False, True]
    assert session.urls[1] == f"{METRIC_URL}?start_time={START + 10}"


def test_ticket_events_cursor_that_does_not_advance_is_an_error_not_a_loop():
    ft = FakeTime()
    session = FakeSession(
        reply(body=ticket_page(5, end_time=START + 60, eos=False)),
        reply(body=ticket_page(5, end_time=START + 60, eos=False)),
    )
    got = []
    with pytest.raises(PageError) as info:
        for page in make_client(session, ft).pages("ticket_events", START):
            got.append(page)
    assert len(got) == 1 and len(session.calls) == 2
    message = str(info.value)
    assert "did not advance past 2023-11-14T22:14:20Z" in message  # START + 60 in UTC
    assert "Zendesk returned the same page again; stopping instead of looping" in message
    assert info.value.url == f"{TICKET_URL}?start_time={START + 60}"


def test_empty_page_with_end_of_stream_false_advancing_continues_but_stuck_fails():
    ft = FakeTime()
    session = FakeSession(
        reply(body=ticket_page(0, end_time=START + 30, eos=False)),
        reply(body=ticket_page(0, end_time=START + 30, eos=False)),
    )
    pages = make_client(session, ft).pages("ticket_events", START)
    assert next(pages).end_time == START + 30
    with pytest.raises(PageError, match="empty page"):
        next(pages)


def test_too_recent_start_time_422_ends_with_no_page():
    ft = FakeTime()
    too_recent = {
        "error": "InvalidValue",
        "description": "Too recent start_time. Use a start_time older than 5 minutes",
    }
    session = FakeSession(reply(422, too_recent), reply(422, too_recent))
    client = make_client(session, ft)
    assert list(client.pages("metric_events", START)) == []
    assert len(session.calls) == 1
    with pytest.raises(ApiError) as info:  # outside pages() a 422 is an error like any other
        client.get("/api/v2/incremental/ticket_metric_events", {"start_time": START})
    assert info.value.status == 422 and "Too recent" in str(info.value)


def test_start_time_is_clamped_to_a_minute_ago():
    ft = FakeTime()
    ft.t = 0.75  # now() = WALL0 + 0.75
    session = FakeSession(reply(body=page_body(0, end_time=WALL0 - 60)))
    pages = list(make_client(session, ft).pages("metric_events", WALL0 + 3600))
    assert session.urls == [f"{METRIC_URL}?start_time={WALL0 - 60}"]
    assert pages[0].start_time == WALL0 - 60


def test_include_comments_and_exclude_deleted_params():
    ft = FakeTime()
    session = FakeSession(
        reply(body=ticket_page(1, end_time=START + 1, eos=True)),
        reply(body=page_body(1, end_time=START)),  # end_time does not move: the last page
        reply(body=ticket_page(1, end_time=START + 1, eos=True)),
        reply(body=page_body(1, end_time=START)),
    )
    client = make_client(session, ft)
    list(client.pages("ticket_events", START, include_comments=True))
    list(client.pages("metric_events", START, exclude_deleted=True))
    # each option applies to its own stream only
    list(client.pages("ticket_events", START, exclude_deleted=True))
    list(client.pages("metric_events", START, include_comments=True))
    assert session.urls == [
        f"{TICKET_URL}?start_time={START}&include=comment_events",
        f"{METRIC_URL}?start_time={START}&exclude_deleted=true",
        f"{TICKET_URL}?start_time={START}",
        f"{METRIC_URL}?start_time={START}",
    ]


def test_every_request_has_the_settings_timeout_and_no_redirects():
    ft = FakeTime()
    session = FakeSession(reply(body=page_body(0, end_time=START)))
    list(make_client(session, ft, timeout=12.5).pages("metric_events", START))
    assert session.calls[0]["timeout"] == 12.5
    assert session.calls[0]["redirects"] is False


# ---------------------------------------------------------------------------------- hosts


@pytest.mark.parametrize(
    "next_page",
    [
        "https://evil.example/api/v2/incremental/ticket_events?start_time=1",
        "http://acme.zendesk.com/api/v2/incremental/ticket_events?start_time=1",
        "https://acme.zendesk.com:8443/api/v2/incremental/ticket_events?start_time=1",
    ],
)
def test_next_page_to_another_origin_is_refused_without_sending(next_page):
    ft = FakeTime()
    session = FakeSession(
        reply(body=ticket_page(1, end_time=START + 9, eos=False, next_page=next_page))
    )
    with pytest.raises(PageError) as info:
        list(make_client(session, ft).pages("ticket_events", START))
    assert len(session.calls) == 1  # the foreign URL was never requested
    assert "ZENDESK_BASE_URL" in str(info.value)
    assert TOKEN not in str(info.value)


def test_same_origin_next_page_with_explicit_default_port_is_fine():
    ft = FakeTime()
    nxt = f"https://ACME.zendesk.com:443/api/v2/incremental/ticket_events?start_time={START + 9}"
    session = FakeSession(
        reply(body=ticket_page(1, end_time=START + 9, eos=False, next_page=nxt)),
        reply(body=ticket_page(1, end_time=START + 19, eos=True)),
    )
    pages = list(make_client(session, ft).pages("ticket_events", START))
    # the next request is built from the base URL, never copied from next_page
    assert session.urls[1] == f"{TICKET_URL}?start_time={START + 9}"
    assert len(pages) == 2


def test_get_refuses_other_hosts_and_builds_paths_on_the_base_url():
    ft = FakeTime()
    session = FakeSession(reply(body={"ok": True}))
    client = make_client(session, ft)
    with pytest.raises(PageError, match="refusing to send credentials to https://evil.example"):
        client.get("https://evil.example/steal")
    assert session.calls == []
    assert client.get("/api/v2/slas/policies", {"page": 2}).json() == {"ok": True}
    assert session.urls == [f"{BASE}/api/v2/slas/policies?page=2"]


# ---------------------------------------------------------------------------------- auth


def test_basic_auth_header_and_user_agent_with_created_session():
    from zdevents import __version__

    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/api/v2/x", json={"ok": 1})
        with Client(make_settings()) as client:
            client.get("/api/v2/x")
        sent = mock.calls[0].request
    expected = base64.b64encode(f"{EMAIL}/token:{TOKEN}".encode()).decode()
    assert sent.headers["Authorization"] == f"Basic {expected}"
    assert sent.headers["User-Agent"] == f"zdevents/{__version__}"


def test_bearer_auth_header_for_oauth_token():
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/api/v2/x", json={"ok": 1})
        settings = make_settings(email=None, api_token=None, oauth_token="oauth-SECRET-42")
        with Client(settings) as client:
            client.get("/api/v2/x")
        sent = mock.calls[0].request
    assert sent.headers["Authorization"] == "Bearer oauth-SECRET-42"


def test_client_needs_credentials():
    with pytest.raises(ConfigError, match="ZENDESK_API_TOKEN"):
        Client(Settings(subdomain="acme", data_dir="/nonexistent/x"))


def test_injected_session_is_used_as_is_and_left_open():
    ft = FakeTime()
    session = FakeSession(reply(body={"ok": 1}))
    session.closed = False
    session.close = lambda: setattr(session, "closed", True)
    with make_client(session, ft) as client:
        client.get("/api/v2/x")
    assert session.closed is False


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "cls", "phrases"),
    [
        (
            401,
            AuthError,
            [
                f"Zendesk refused the credentials for {BASE}",
                "check ZENDESK_EMAIL and ZENDESK_API_TOKEN (or ZENDESK_OAUTH_TOKEN)",
            ],
        ),
        (403, PermissionDenied, ["the incremental export endpoints need an admin's token"]),
        (404, NotFound, ["check ZENDESK_SUBDOMAIN / ZENDESK_BASE_URL"]),
        (400, ApiError, ["HTTP 400", "bad token ***"]),
    ],
)
def test_error_statuses_map_to_classes_with_next_steps_and_no_secrets(status, cls, phrases):
    ft = FakeTime()
    body = {"error": "Nope", "description": f"bad token {TOKEN}"}  # a server echoing a secret
    session = FakeSession(reply(status, body))
    client = make_client(session, ft)
    with pytest.raises(cls) as info:
        list(client.pages("metric_events", START))
    err = info.value
    assert type(err) is cls
    assert err.status == status
    assert err.url == f"{METRIC_URL}?start_time={START}"
    for phrase in phrases:
        assert phrase in str(err)
    for text in (str(err), repr(err), repr(err.args), err.url, repr(client)):
        assert TOKEN not in text
    assert len(session.calls) == 1  # not retried


def test_redirect_is_not_followed():
    ft = FakeTime()
    session = FakeSession(reply(301, b"", {"Location": "https://other.example/x"}))
    with pytest.raises(ApiError, match="redirected .* to https://other.example") as info:
        make_client(session, ft).get("/api/v2/x")
    assert info.value.status == 301
    assert len(session.calls) == 1


# ---------------------------------------------------------------------------------- 429


def test_429_waits_retry_after_seconds_then_succeeds(caplog):
    ft = FakeTime()
    session = FakeSession(
        reply(429, b"Too Many Requests", {"Retry-After": "7", "Content-Type": "text/plain"}),
        reply(body=page_body(1, end_time=START)),
    )
    client = make_client(session, ft)
    with caplog.at_level(logging.INFO, logger="zdevents.export.client"):
        pages = list(client.pages("metric_events", START))
    # said once, without "(Retry-After of a 429 (7 s))"
    assert "waiting 7.0 s before the next request (Retry-After of a 429)" in [
        r.getMessage() for r in caplog.records
    ]
    assert len(pages) == 1
    assert ft.sleeps == [7.0]
    assert client.stats.rate_limited == 1
    assert client.stats.retries == 1
    assert client.stats.requests == 2
    assert client.stats.seconds_waited == 7.0


def test_429_retry_after_http_date():
    ft = FakeTime()
    when = formatdate(WALL0 + 30, usegmt=True)
    session = FakeSession(reply(429, b"slow down", {"Retry-After": when}), reply(body={"ok": 1}))
    client = make_client(session, ft)
    client.get("/api/v2/x")
    assert ft.sleeps == [30.0]
    assert client.stats.rate_limited == 1


def test_429_without_retry_after_waits_one_slot_then_doubles(caplog):
    ft = FakeTime()
    session = FakeSession(
        reply(429, b"no header"),
        reply(429, b"", {"Retry-After": "garbage"}),
        reply(body={"ok": 1}),
    )
    client = make_client(session, ft, requests_per_minute=10)
    with caplog.at_level(logging.INFO, logger="zdevents.export.client"):
        client.get("/api/v2/x")
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("waiting")] == [
        "waiting 6.0 s before the next request (a 429 with no usable Retry-After)",
        "waiting 12.0 s before the next request (a 429 with no usable Retry-After)",
    ]
    assert client.stats.rate_waits == 2
    assert ft.sleeps == [6.0, 12.0]  # 60/10 s, then doubled
    assert client.stats.rate_limited == 2
    assert client.stats.seconds_waited == 18.0


def test_429_blocks_the_shared_budget_for_other_clients():
    ft = FakeTime()
    first = make_client(FakeSession(reply(429, b"", {"Retry-After": "20"})), ft, max_retries=0)
    second = make_client(FakeSession(reply(body={"ok": 2})), ft)
    with pytest.raises(RateLimited):
        first.get("/api/v2/x")  # no retry left, but the account's budget is blocked for 20 s
    second.get("/api/v2/y")
    assert ft.sleeps == [20.0]
    assert second.stats.seconds_waited == 20.0


def test_429_exhausted_raises_rate_limited_after_all_attempts():
    ft = FakeTime()
    session = FakeSession(*[reply(429, b"", {"Retry-After": "1"}) for _ in range(3)])
    client = make_client(session, ft, max_retries=2)
    with pytest.raises(RateLimited) as info:
        client.get("/api/v2/x")
    assert len(session.calls) == 3
    assert info.value.status == 429
    assert "ZDEVENTS_REQUESTS_PER_MINUTE" in str(info.value)
    assert client.stats.rate_limited == 3


def test_429_asking_for_a_very_long_wait_raises_at_once():
    ft = FakeTime()
    session = FakeSession(reply(429, b"", {"Retry-After": "3600"}))
    with pytest.raises(RateLimited, match="wait 3600 s"):
        make_client(session, ft).get("/api/v2/x")
    assert ft.sleeps == [] and len(session.calls) == 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 12 ", 12.0),
        ("1.5", 1.5),
        (formatdate(WALL0 + 42, usegmt=True), 42.0),
        (formatdate(WALL0 - 100, usegmt=True), 0.0),
        ("Wed, 21 Oct 2015 07:28:00", 0.0),  # no zone: read as GMT; in the past
        ("-3", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header, now=WALL0) == expected


# ---------------------------------------------------------------------------------- 5xx / network


def test_5xx_then_success_backs_off_with_full_jitter():
    ft = FakeTime()
    session = FakeSession(
        reply(503, b"<html>busy</html>"),
        reply(502, b"bad gateway"),
        reply(body=page_body(1, end_time=START)),
    )
    client = make_client(session, ft, jitter=0.5)
    assert len(list(client.pages("metric_events", START))) == 1
    assert ft.sleeps == [0.5, 1.0]  # 0.5 * min(60, 1 * 2**0), 0.5 * min(60, 1 * 2**1)
    assert client.stats.retries == 2
    assert client.stats.requests == 3


def test_5xx_exhausted_raises_server_error_after_max_retries_plus_one_requests():
    ft = FakeTime()
    session = FakeSession(*[reply(500, b"oops") for _ in range(4)])
    client = make_client(session, ft, max_retries=3, jitter=1.0)
    with pytest.raises(ServerError) as info:
        list(client.pages("metric_events", START))
    assert len(session.calls) == 4
    assert ft.sleeps == [1.0, 2.0, 4.0]
    err = info.value
    assert err.status == 500
    assert err.url == f"{METRIC_URL}?start_time={START}"
    assert err.url in str(err) and "HTTP 500" in str(err) and "4 attempts" in str(err)


def test_backoff_is_capped_at_60_seconds():
    ft = FakeTime()
    session = FakeSession(*[reply(500) for _ in range(9)])
    with pytest.raises(ServerError):
        make_client(session, ft, max_retries=8, jitter=1.0).get("/api/v2/x")
    assert ft.sleeps == [1, 2, 4, 8, 16, 32, 60, 60]


def test_503_retry_after_is_honoured_over_a_shorter_backoff():
    ft = FakeTime()
    session = FakeSession(reply(503, b"", {"Retry-After": "9"}), reply(body={"ok": 1}))
    make_client(session, ft, jitter=0.5).get("/api/v2/x")
    assert ft.sleeps == [9.0]


def test_connection_errors_and_timeouts_are_retried():
    ft = FakeTime()
    session = FakeSession(
        requests.ConnectionError("Connection reset by peer"),
        requests.ReadTimeout("read timed out"),
        requests.exceptions.ChunkedEncodingError("IncompleteRead"),
        reply(body=page_body(1, end_time=START)),
    )
    client = make_client(session, ft, max_retries=3, jitter=0.0)
    assert len(list(client.pages("metric_events", START))) == 1
    assert len(session.calls) == 4
    assert client.stats.retries == 3


def test_network_failure_exhausted_is_a_server_error_without_status():
    ft = FakeTime()
    session = FakeSession(*[requests.ConnectTimeout("connect timed out") for _ in range(2)])
    with pytest.raises(ServerError, match="ConnectTimeout") as info:
        make_client(session, ft, max_retries=1).get("/api/v2/x")
    assert info.value.status is None


def test_truncated_body_is_retried():
    ft = FakeTime()
    good = page_body(1, end_time=START)
    session = FakeSession(
        reply(body=good[:-20], headers={"Content-Length": str(len(good))}),
        reply(body=good, headers={"Content-Length": str(len(good))}),
    )
    client = make_client(session, ft)
    pages = list(client.pages("metric_events", START))
    assert pages[0].body == good
    assert client.stats.retries == 1


def test_malformed_page_is_retried_then_page_error():
    ft = FakeTime()
    session = FakeSession(*[reply(body=b"<html>maintenance</html>") for _ in range(3)])
    with pytest.raises(PageError) as info:
        list(make_client(session, ft, max_retries=2).pages("metric_events", START))
    assert len(session.calls) == 3
    assert str(info.value).startswith("malformed page from ")
    assert info.value.url == f"{METRIC_URL}?start_time={START}"


def test_malformed_then_good_page_recovers():
    ft = FakeTime()
    session = FakeSession(
        reply(body=b'{"ticket_metric_events": [{"id": 1}'),  # cut off mid-array
        reply(body=page_body(1, end_time=START)),
    )
    assert len(list(make_client(session, ft).pages("metric_events", START))) == 1


# ---------------------------------------------------------------------------------- pacing


def test_pacing_rpm_3_seven_requests_hand_computed_waits(caplog):
    # Each request takes 5 s (latency); the log keeps completion times.
    # sends: 0, 5, 10 (burst; complete 5, 10, 15)
    # 4th at 15: 3 done in (15-60, 15] -> waits until 5 + 60 = 65 (50 s); completes 70
    # 5th at 70: last 3 = 10, 15, 70 -> 10 + 60 = 70 -> no wait; completes 75
    # 6th at 75: last 3 = 15, 70, 75 -> 75 -> no wait; completes 80
    # 7th at 80: last 3 = 70, 75, 80 -> 130 (50 s)
    ft = FakeTime()
    session = FakeSession(*[reply(body={"ok": i}) for i in range(7)], time=ft, latency=5.0)
    client = make_client(session, ft, requests_per_minute=3)
    with caplog.at_level(logging.DEBUG, logger="zdevents.export.client"):
        for _ in range(7):
            client.get("/api/v2/x")
    assert [c["at"] for c in session.calls] == [0, 5, 10, 65, 70, 75, 130]
    assert ft.sleeps == [50.0, 50.0]
    assert client.stats.seconds_waited == 100.0
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 2 and infos[0].startswith("waiting 50.0 s before the next request")
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert f"GET {BASE}/api/v2/x (attempt 1 of 4)" in debug
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


def test_paced_fetch_gets_no_429_from_a_server_enforcing_the_same_limit():
    ft = FakeTime()
    arrivals: list[float] = []

    def server(url):  # sliding window: at most 10 requests in any 60 s, counted on arrival
        arrival = ft.t - 0.2  # the request reached the server mid-way through its latency
        if sum(1 for a in arrivals if a > arrival - 60) >= 10:
            return reply(429, b"", {"Retry-After": "60"})
        arrivals.append(arrival)
        start = int(url.rsplit("=", 1)[1])
        return reply(body=page_body(2, count=1000, end_time=start + 10))

    session = FakeSession(
        *[server] * 25, reply(body=page_body(0, end_time=START + 250)), time=ft, latency=0.4
    )
    client = make_client(session, ft, requests_per_minute=10)
    pages = list(client.pages("metric_events", START))
    assert len(pages) == 26
    assert client.stats.rate_limited == 0
    assert [round(c["at"], 1) for c in session.calls[9:12]] == [3.6, 60.4, 60.8]


def test_one_budget_per_account_shared_by_clients_and_separate_for_other_accounts():
    ft = FakeTime()
    a1 = make_client(FakeSession(*[reply(body={}) for _ in range(2)]), ft, requests_per_minute=2)
    a2 = make_client(FakeSession(*[reply(body={}) for _ in range(2)]), ft, requests_per_minute=2)
    other = make_client(
        FakeSession(*[reply(body={}) for _ in range(2)]),
        ft,
        requests_per_minute=2,
        subdomain="other",
    )
    a1.get("/x")
    a2.get("/x")
    other.get("/x")
    other.get("/x")
    assert ft.sleeps == []  # two of each account's budget of 2 used, nobody waited
    a2.get("/x")  # the account acme has used 2 in the last minute: wait a full window
    assert ft.sleeps == [60.0]
    assert a2.stats.seconds_waited == 60.0 and a1.stats.seconds_waited == 0.0


def test_fractional_budget_spaces_requests():
    ft = FakeTime()
    client = make_client(
        FakeSession(*[reply(body={}) for _ in range(3)]), ft, requests_per_minute=0.5
    )
    for _ in range(3):
        client.get("/x")
    assert ft.sleeps == [120.0, 120.0]  # one request per 120 s


# ---------------------------------------------------------------------------------- envelope


def test_envelope_ignores_envelope_words_inside_records():
    records = [
        {"id": 1, "body": 'a comment saying "end_time": 5, "count": 3 and "end_of_stream": true'},
        {"id": 2, "end_time": 42, "count": 7, "next_page": "https://evil.example/"},  # real keys
        {"id": 3, "tags": ["]", "}"], "html": "]}"},
    ]
    body = json.dumps(
        {
            "ticket_events": records,
            "next_page": None,
            "count": 3,
            "end_time": 1700000099,
            "end_of_stream": False,
        }
    ).encode()
    env = read_envelope(body)
    assert (env.records_key, env.count, env.end_time, env.end_of_stream, env.next_page) == (
        "ticket_events",
        3,
        1700000099,
        False,
        None,
    )
    assert env.records_empty is False


def test_envelope_before_records_and_split_around_them():
    records = [{"id": 1, "end_time": 5, "count": 9}]
    head_first = {
        "count": 1,
        "end_time": 1700000010,
        "end_of_stream": True,
        "ticket_metric_events": records,
    }
    split = {"end_time": 1700000011, "ticket_metric_events": records, "count": 1}
    assert read_envelope(json.dumps(head_first).encode()).end_time == 1700000010
    assert read_envelope(json.dumps(head_first).encode()).end_of_stream is True
    env = read_envelope(json.dumps(split).encode())
    assert (env.end_time, env.count, env.end_of_stream) == (1700000011, 1, None)


def test_envelope_pretty_printed_with_whitespace_and_escapes():
    data = {
        "ticket_metric_events": [{"id": 1, "note": 'quote \\" and "end_time": 1'}],
        "next_page": "https://acme.zendesk.com/api/v2/x?page[after]=a\u00e9",
        "count": 1,
        "end_time": 1700000005,
    }
    body = b"\n  " + json.dumps(data, indent=4, ensure_ascii=False).encode() + b"\r\n\t "
    env = read_envelope(body)
    assert env.end_time == 1700000005 and env.count == 1
    assert env.next_page == "https://acme.zendesk.com/api/v2/x?page[after]=a\u00e9"


def test_envelope_empty_records():
    env = read_envelope(
        b'{ "ticket_events" : [ \n ] , "end_time":1, "count":0, "end_of_stream":true }'
    )
    assert env.records_empty is True and env.end_of_stream is True


def test_envelope_falls_back_to_json_for_other_layouts():
    # a non-scalar member before the records, and both records keys present
    body = json.dumps(
        {
            "meta": {"end_time": 1},
            "ticket_metric_events": [],
            "ticket_events": [{"id": 1}],
            "end_time": 77,
        }
    ).encode()
    env = read_envelope(body, records_key="ticket_events")
    assert (env.records_key, env.end_time, env.records_empty) == ("ticket_events", 77, False)
    assert read_envelope(body).records_key == "ticket_metric_events"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>502</html>", "does not start with"),
        (b'{"ticket_events": [{"id": 1}, {"id"', "does not end with"),
        (b'{"ticket_events": [{"id": 1, "end_time": 3}', "not valid JSON"),  # truncated, ends in }
        (b'{"ticket_events": [], "end_time": "1700000000"}', "end_time must be an integer"),
        (b'{"ticket_events": [], "end_time": 1700000000.5}', "end_time must be an integer"),
        (b'{"ticket_events": [], "count": 0}', "no end_time"),
        (b'{"ticket_events": [], "end_time": 1, "count": "1000"}', "count must be an integer"),
        (b'{"ticket_events": [], "end_time": 1, "end_of_stream": "no"}', "end_of_stream must be"),
        (b'{"tickets": [], "end_time": 1}', "no records list"),
        (b"[]", "does not start with"),
        (b'{"ticket_events": [], "end_time": 1, "x": "\xff"}', None),
    ],
)
def test_envelope_rejects_malformed_bodies(body, reason):
    if reason is None:  # invalid UTF-8 in a scalar the envelope does not read is not its concern
        assert read_envelope(body).end_time == 1
        return
    with pytest.raises(PageError, match=reason):
        read_envelope(body)


# ---------------------------------------------------------------------------------- real sockets


def _loopback_server(handlers):
    """A one-connection-per-request HTTP server on 127.0.0.1 running ``handlers`` in order."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(10)

    def serve():
        for handle in handlers:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                handle(conn)
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}"


def test_truncated_body_over_real_http_is_retried():
    good = page_body(0, end_time=START, next_page=None)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(good)
    url = _loopback_server(
        [lambda c: c.sendall(head + good[:20]), lambda c: c.sendall(head + good)]
    )
    client = Client(make_settings(subdomain=None, base_url=url), jitter=lambda: 0.0)
    pages = list(client.pages("metric_events", START))
    assert [p.body for p in pages] == [good]
    assert client.stats.requests == 2 and client.stats.retries == 1


def test_response_slower_than_the_timeout_is_retried_then_server_error():
    import time

    def slow(conn):
        time.sleep(0.5)

    url = _loopback_server([slow, slow])
    settings = make_settings(subdomain=None, base_url=url, timeout=0.1, max_retries=1)
    client = Client(settings, jitter=lambda: 0.0)
    with pytest.raises(ServerError, match="after 2 attempts") as info:
        client.get("/api/v2/x")
    assert info.value.status is None
    assert client.stats.requests == 2


# ---------------------------------------------------------------------------------- bounded waits


@pytest.mark.parametrize("status", [429, 503])
def test_one_retry_after_cap_for_429_and_503_raises_at_once_with_a_warning_free_path(status):
    ft = FakeTime()
    session = FakeSession(reply(status, b"", {"Retry-After": "86400"}))
    error = RateLimited if status == 429 else ServerError
    with pytest.raises(error, match=r"wait 86400 s .*ZDEVENTS_MAX_RETRY_AFTER \(600 s\)"):
        make_client(session, ft).get("/api/v2/x")
    assert ft.sleeps == [] and len(session.calls) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_cap_is_configurable_and_long_waits_log_a_warning(status, caplog):
    ft = FakeTime()
    session = FakeSession(reply(status, b"", {"Retry-After": "45"}), reply(body={"ok": 1}))
    client = make_client(session, ft, max_retry_after=50)
    seen: list[tuple[float, str]] = []
    client.on_wait = lambda seconds, reason: seen.append((seconds, reason))
    with caplog.at_level(logging.WARNING, logger="zdevents.export.client"):
        client.get("/api/v2/x")
    assert ft.sleeps == [45.0]
    assert seen == [(45.0, f"Retry-After of {'a 429' if status == 429 else 'an HTTP 503'} (45 s)")]
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    session = FakeSession(reply(status, b"", {"Retry-After": "45"}))
    with pytest.raises(RateLimited if status == 429 else ServerError, match="wait 45 s"):
        make_client(session, FakeTime(), max_retry_after=40).get("/api/v2/x")


def test_a_30_digit_retry_after_is_a_one_line_error_not_an_overflow():
    ft = FakeTime()
    session = FakeSession(reply(429, b"", {"Retry-After": "9" * 30}))
    with pytest.raises(RateLimited, match="a date beyond 9999|until"):
        make_client(session, ft).get("/api/v2/x")
    assert ft.sleeps == []


def test_basic_auth_is_utf8_for_non_latin1_passwords():
    ft = FakeTime()
    session = FakeSession(reply(body={"ok": 1}))
    make_client(session, ft, api_token="пароль-密码-€").get("/api/v2/x")
    header = session.calls[0]["headers"]["Authorization"]
    decoded = base64.b64decode(header.split(" ", 1)[1]).decode("utf-8")
    assert decoded == f"{EMAIL}/token:пароль-密码-€"

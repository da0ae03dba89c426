"""A local Zendesk: serves a :class:`~zdevents.sample.account.SampleAccount` on 127.0.0.1.

:class:`LocalZendesk` answers the two incremental exports the way Zendesk documents them -
envelopes (``end_of_stream`` on ticket_events pages, none on metric-event pages unless asked
for), inclusive ``start_time`` boundaries (consecutive pages repeat the boundary second),
pages of more than ``page_size`` items when many share the last timestamp, the newest minute
withheld, 422 for a ``start_time`` less than 60 s old, ``per_page`` on ticket_events only,
``support_type_scope`` on ticket_events (``agent`` by default; an unknown value is a 400),
cursor pagination on metric events (``page[size]`` up to 100, ``page[after]``,
``meta.has_more``, ``meta.after_cursor``, ``links.next``), basic/bearer authentication, an
admin check, a sliding 60-second rate limit answered with 429 + ``Retry-After`` - and lets
tests inject faults.

The demo, the notebooks' offline mode, the tests and the benchmarks use it, so the whole real
pipeline runs with no account and no internet. Run ``python -m zdevents.sample.server`` to serve
the sample until Ctrl-C.

Fault injection (each fault is consumed by the next matching requests; ``stream`` restricts
it to ``"metric_events"`` or ``"ticket_events"``; ``times=None`` means until
:meth:`LocalZendesk.clear_faults`). Faults apply after the path and credential checks:

=============== ======================================================================
kind            answer
=============== ======================================================================
``status``      that HTTP status (500/502/503/504, ...), optional ``Retry-After``
``reset``       200 headers and half the body, then the connection is reset (RST)
``truncated``   200 with the full ``Content-Length`` but half the body, then closed
``malformed``   200 ``application/json`` whose body is cut JSON (length consistent)
``html``        200 ``text/html`` maintenance page
``too_recent``  422 ``InvalidValue`` "Too recent start_time..."
``slow``        sleeps ``seconds`` before answering normally
``rate_limit``  429 ``Too Many Requests`` with ``Retry-After`` in seconds, as an HTTP
                date (``http_date=True``) or absent (``retry_after=None``)
``loop``        a normal page whose ``end_time``/``next_page`` repeat ``start_time``
                with ``end_of_stream: false`` (cursor pages: ``meta.after_cursor``
                repeats ``page[after]`` with ``has_more: true``)
``empty``       an empty page with ``end_of_stream: false`` and ``end_time = start_time``
                (cursor pages: ``has_more: true``, the cursor repeated)
``foreign``     a normal page whose ``next_page`` points at another host
=============== ======================================================================
"""

from __future__ import annotations

import argparse
import base64
import binascii
import bisect
import email.utils
import hmac
import json
import logging
import math
import socket
import struct
import threading
import time
from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..config import Settings
from ..streams import METRIC_EVENTS, TICKET_EVENTS, Stream
from .account import SampleAccount

__all__ = ["FAULT_KINDS", "LocalZendesk", "LoggedRequest", "main"]

logger = logging.getLogger(__name__)

FAULT_KINDS = (
    "status",
    "reset",
    "truncated",
    "malformed",
    "html",
    "too_recent",
    "slow",
    "rate_limit",
    "loop",
    "empty",
    "foreign",
)
_STREAMS = {METRIC_EVENTS.path: METRIC_EVENTS, TICKET_EVENTS.path: TICKET_EVENTS}
_NAME_LISTS = ("/api/v2/groups", "/api/v2/brands")
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_TOO_RECENT = {
    "error": "InvalidValue",
    "description": "Too recent start_time. Use a start_time older than 1 minute",
}
_SCOPES = ("agent", "ai_agent", "all")
_CURSOR_MAX = 100
_HTML = (
    b"<!DOCTYPE html><html><head><title>Zendesk</title></head><body>"
    b"<h1>We'll be right back</h1><p>Zendesk is down for maintenance.</p></body></html>"
)


@dataclass(frozen=True)
class LoggedRequest:
    """One request the server received (credentials are never stored).

    Attributes
    ----------
    path : str
        URL path (no query).
    params : dict
        Query parameters (last value wins).
    status : int
        HTTP status answered (200 for reset/truncated faults: the headers said so).
    has_auth : bool
        Whether an ``Authorization`` header was present.
    stream : str or None
        ``metric_events``/``ticket_events``, or None for unknown paths.
    fault : str or None
        Kind of the injected fault that answered it.
    """

    path: str
    params: dict[str, str]
    status: int
    has_auth: bool
    stream: str | None = None
    fault: str | None = None
    time: float = 0.0


@dataclass
class _Fault:
    kind: str
    remaining: int | None
    stream: str | None
    options: dict = field(default_factory=dict)
    after: int = 0  # matching requests to let through before the fault starts


class _Dataset:
    """Records pre-serialized once, sorted by (time, id), in one bytes blob."""

    def __init__(self, keyed: Iterable[tuple[int, int, dict]]) -> None:
        items = [(t, rid, _ENCODE(rec).encode()) for t, rid, rec in keyed]
        items.sort()  # (time, id): ids are unique, so the bytes are never compared
        self.times = array("q", (item[0] for item in items))
        self.ids = array("q", (item[1] for item in items))
        self.offsets = array("q")
        position = 0
        for item in items:
            self.offsets.append(position)
            position += len(item[2]) + 1
        self.offsets.append(position)
        self.blob = b",".join(item[2] for item in items)
        self.served: list[tuple[int, int]] = []

    def __len__(self) -> int:
        return len(self.times)

    def body(self, a: int, b: int) -> bytes:
        """Records ``a..b-1`` joined by commas."""
        if a >= b:
            return b""
        return self.blob[self.offsets[a] : self.offsets[b] - 1]


def _record_time(record: dict) -> int:
    value = record.get("timestamp")
    if isinstance(value, int | float):
        return int(value)
    text = record.get("time") or record.get("created_at")
    if not isinstance(text, str):
        raise ValueError(f"record {record.get('id')!r} has no time, timestamp or created_at")
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def _keyed(records: Iterable[dict]) -> Iterator[tuple[int, int, dict]]:
    for record in records:
        yield _record_time(record), int(record.get("id", 0)), record


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalZendesk/1.0"
    # headers and body go out as separate writes: without TCP_NODELAY each response waits
    # ~40 ms for the client's delayed ACK
    disable_nagle_algorithm = True
    zd_entry: dict | None = None

    def do_GET(self) -> None:
        self.server.owner._handle(self)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        import sys

        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError | OSError):
            return
        logger.exception("LocalZendesk: error while answering %s", client_address)


class LocalZendesk:
    """A Zendesk incremental-export server on 127.0.0.1 (threads; context manager).

    Parameters
    ----------
    account : SampleAccount, optional
        The account to serve. Default: ``SampleAccount()`` unless record lists are given.
    metric_events, ticket_events : iterable of dict, optional
        Serve these records instead (metric events need ``time``; audits ``timestamp`` or
        ``created_at``). Explicit ticket events are served as given, whatever ``include``.
    deleted_ticket_ids : iterable of int, optional
        Tickets whose metric events ``exclude_deleted=true`` drops (default: the account's).
    email, api_token, oauth_token, password : str
        Accepted credentials: basic ``{email}/token:{api_token}``, basic
        ``{email}:{password}`` (only if a password is set), or ``Bearer {oauth_token}``.
    admin : bool
        False answers 403 to valid credentials (the exports are for admins only).
    requests_per_minute : float, optional
        Sliding 60-second limit; over it: 429 with ``Retry-After``. None: unlimited.
    page_size : int
        Records per page before the page is extended to the end of its last second.
    subdomain : str
        Subdomain that :meth:`settings` puts in the returned settings.
    metric_end_of_stream : bool
        Add ``end_of_stream`` to metric-event envelopes (Zendesk documents none).
    ticket_end_of_stream : bool
        Add ``end_of_stream`` to ticket-event envelopes (as Zendesk documents; False
        leaves it out, to test clients against a server that omits it).
    ai_agent_ticket_ids : iterable of int
        Tickets handled by an AI agent: ``support_type_scope=agent`` (the default) leaves
        their ticket events out, ``ai_agent`` serves only them, ``all`` serves everything.
    now : float, optional
        Fixed "current" Unix time (default: the real clock, read per request). Records
        within 60 s of it are withheld; ``start_time`` newer than ``now - 60`` gets a 422.
        Settable while running (``server.now = ...``).
    port : int
        0 picks a free port.

    Examples
    --------
    >>> import requests
    >>> with LocalZendesk(SampleAccount(tickets=3)) as server:
    ...     response = requests.get(
    ...         f"{server.url}/api/v2/incremental/ticket_metric_events",
    ...         params={"start_time": 0}, auth=("admin@sample.test/token", "sample-api-token"),
    ...         timeout=10)
    >>> response.status_code, list(response.json())[1:]
    (200, ['next_page', 'count', 'end_time'])
    """

    def __init__(
        self,
        account: SampleAccount | None = None,
        *,
        metric_events: Iterable[dict] | None = None,
        ticket_events: Iterable[dict] | None = None,
        deleted_ticket_ids: Iterable[int] | None = None,
        email: str = "admin@sample.test",
        api_token: str | None = "sample-api-token",
        oauth_token: str | None = "sample-oauth-token",
        password: str | None = None,
        admin: bool = True,
        requests_per_minute: float | None = None,
        page_size: int = 1000,
        subdomain: str = "sample",
        metric_end_of_stream: bool = False,
        ticket_end_of_stream: bool = True,
        ai_agent_ticket_ids: Iterable[int] = (),
        now: float | None = None,
        port: int = 0,
    ) -> None:
        if account is None and metric_events is None and ticket_events is None:
            account = SampleAccount()
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.account = account
        self._explicit = {
            METRIC_EVENTS.name: None if metric_events is None else list(metric_events),
            TICKET_EVENTS.name: None if ticket_events is None else list(ticket_events),
        }
        if deleted_ticket_ids is None:
            deleted_ticket_ids = account.deleted_ticket_ids if account is not None else ()
        self.deleted_ticket_ids = frozenset(deleted_ticket_ids)
        self.email = email
        self.api_token = api_token
        self.oauth_token = oauth_token
        self.password = password
        self.admin = admin
        self.requests_per_minute = requests_per_minute
        self.page_size = int(page_size)
        self.subdomain = subdomain
        self.metric_end_of_stream = metric_end_of_stream
        self.ticket_end_of_stream = ticket_end_of_stream
        self.ai_agent_ticket_ids = frozenset(ai_agent_ticket_ids)
        # Served by GET /api/v2/groups and /api/v2/brands (id -> name); settable.
        self.groups: dict[int, str] = dict(account.groups) if account is not None else {}
        self.brands: dict[int, str] = dict(account.brands) if account is not None else {}
        self.now = now
        self._port = port
        self.request_log: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._datasets: dict[tuple[str, bool, str], _Dataset] = {}
        self._faults: deque[_Fault] = deque()
        self._window: deque[float] = deque()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalZendesk:
        """Bind 127.0.0.1 and serve in a daemon thread (returns ``self``)."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _Server(("127.0.0.1", self._port), _Handler)
        httpd.owner = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="LocalZendesk",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (wakes slow answers; never hangs)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalZendesk:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._httpd is not None else "stopped"
        return f"LocalZendesk({where}, account={self.account!r})"

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT`` (the server must be started)."""
        if self._httpd is None:
            raise RuntimeError(
                "LocalZendesk is not running: call start() or use it in a with block"
            )
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def settings(self, **overrides: object) -> Settings:
        """:class:`~zdevents.config.Settings` pointing at this server with its credentials.

        ``requests_per_minute`` defaults to the server's limit, or 10,000 when it has none.

        Examples
        --------
        >>> with LocalZendesk(SampleAccount(tickets=1)) as server:
        ...     s = server.settings(data_dir="/tmp/zd-doc")
        >>> s.subdomain, s.requests_per_minute
        ('sample', 10000.0)
        """
        values: dict[str, object] = {
            "subdomain": self.subdomain,
            "email": self.email,
            "api_token": self.api_token,
            "base_url": self.url,
            "requests_per_minute": self.requests_per_minute or 10_000,
        }
        if self.api_token is None and self.password is not None:
            values["password"] = self.password
        if self.api_token is None and self.password is None:
            values["oauth_token"] = self.oauth_token
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    def preload(self) -> None:
        """Serialize the default variant of both streams now (otherwise done on first use)."""
        self._dataset(METRIC_EVENTS, False)
        self._dataset(TICKET_EVENTS, False)

    # ------------------------------------------------------------------ statistics
    @property
    def requests(self) -> int:
        """Number of requests received."""
        return len(self.request_log)

    @property
    def rate_limited(self) -> int:
        """Number of 429 answers sent (rate limit and injected)."""
        return sum(1 for r in self.request_log if r.status == 429)

    def unique_ids(self, stream: str | Stream = "metric_events") -> set[int]:
        """Ids of the records served at least once in a 200 page of ``stream``."""
        name = stream if isinstance(stream, str) else stream.name
        ids: set[int] = set()
        with self._lock:
            for (stream_name, *_), dataset in self._datasets.items():
                if stream_name == name:
                    for a, b in dataset.served:
                        ids.update(dataset.ids[a:b])
        return ids

    def served_pages(self, stream: str | Stream = "metric_events") -> list[list[int]]:
        """Ids of each 200 page of ``stream`` served so far, in order (empty pages too).

        Pages of every variant (``exclude_deleted``, ``include``, scope) are listed, each
        variant's in order; tests use one variant at a time.
        """
        name = stream if isinstance(stream, str) else stream.name
        with self._lock:
            return [
                list(dataset.ids[a:b])
                for (stream_name, *_), dataset in self._datasets.items()
                if stream_name == name
                for a, b in dataset.served
            ]

    def unique_count(self, stream: str | Stream = "metric_events") -> int:
        """Number of distinct records served in 200 pages of ``stream``."""
        return len(self.unique_ids(stream))

    def total_records(self, stream: str | Stream = "metric_events", **variant: bool) -> int:
        """Records the server holds for ``stream`` (all of them, withheld minute included).

        ``include_comments=True`` / ``exclude_deleted=True`` select those variants;
        ``support_type_scope="all"`` (or ``"ai_agent"``) another scope of ticket events.
        """
        s = (
            METRIC_EVENTS
            if (stream if isinstance(stream, str) else stream.name) == "metric_events"
            else TICKET_EVENTS
        )
        flag = variant.get("exclude_deleted" if s is METRIC_EVENTS else "include_comments", False)
        scope = str(variant.get("support_type_scope", "agent"))
        return len(self._dataset(s, bool(flag), scope))

    # ------------------------------------------------------------------ faults
    def inject(
        self,
        kind: str,
        *,
        times: int | None = 1,
        stream: str | None = None,
        after: int = 0,
        **options: object,
    ) -> None:
        """Queue a fault for the next matching requests (see the module docstring).

        Examples
        --------
        >>> server = LocalZendesk(SampleAccount(tickets=1))
        >>> server.inject("status", status=503, times=2, stream="metric_events")
        >>> server.pending_faults()
        [('status', 2, 'metric_events')]
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; choose one of: {', '.join(FAULT_KINDS)}")
        if stream not in (None, METRIC_EVENTS.name, TICKET_EVENTS.name):
            raise ValueError(f"unknown stream {stream!r}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for every request)")
        with self._lock:
            self._faults.append(_Fault(kind, times, stream, dict(options), after=after))

    def fail_next(
        self,
        status: int = 500,
        *,
        times: int | None = 1,
        stream: str | None = None,
        retry_after: float | None = None,
        after: int = 0,
    ) -> None:
        """Answer the next ``times`` requests (after ``after`` good ones) with HTTP ``status``."""
        self.inject(
            "status",
            times=times,
            stream=stream,
            after=after,
            status=status,
            retry_after=retry_after,
        )

    def reset_next(self, *, times: int | None = 1, stream: str | None = None) -> None:
        """Reset the connection after the headers and half the body."""
        self.inject("reset", times=times, stream=stream)

    def truncate_next(self, *, times: int | None = 1, stream: str | None = None) -> None:
        """Send half the announced body, then close the connection."""
        self.inject("truncated", times=times, stream=stream)

    def malformed_next(self, *, times: int | None = 1, stream: str | None = None) -> None:
        """Answer 200 with a body that is not valid JSON (cut in the middle)."""
        self.inject("malformed", times=times, stream=stream)

    def html_next(self, *, times: int | None = 1, stream: str | None = None) -> None:
        """Answer 200 with an HTML maintenance page."""
        self.inject("html", times=times, stream=stream)

    def too_recent_next(self, *, times: int | None = 1, stream: str | None = None) -> None:
        """Answer 422 "Too recent start_time"."""
        self.inject("too_recent", times=times, stream=stream)

    def slow_next(
        self, seconds: float, *, times: int | None = 1, stream: str | None = None
    ) -> None:
        """Wait ``seconds`` before answering normally."""
        self.inject("slow", times=times, stream=stream, seconds=float(seconds))

    def rate_limit_next(
        self,
        retry_after: float | None = 1,
        *,
        http_date: bool = False,
        times: int | None = 1,
        stream: str | None = None,
    ) -> None:
        """Answer 429; ``Retry-After`` in seconds, as an HTTP date, or absent (None)."""
        self.inject(
            "rate_limit", times=times, stream=stream, retry_after=retry_after, http_date=http_date
        )

    def loop_next(self, *, times: int | None = None, stream: str | None = None) -> None:
        """Serve pages whose cursor never advances (``end_of_stream: false``); default: forever."""
        self.inject("loop", times=times, stream=stream)

    def empty_next(self, *, times: int | None = 1, stream: str | None = None) -> None:
        """Serve an empty page with ``end_of_stream: false``."""
        self.inject("empty", times=times, stream=stream)

    def foreign_next_page(
        self, host: str = "attacker.example", *, times: int | None = 1, stream: str | None = None
    ) -> None:
        """Serve a page whose ``next_page`` points at ``https://{host}``."""
        self.inject("foreign", times=times, stream=stream, host=host)

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> list[tuple[str, int | None, str | None]]:
        """Queued faults as ``(kind, remaining, stream)``."""
        with self._lock:
            return [(f.kind, f.remaining, f.stream) for f in self._faults]

    def _take_fault(self, stream: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.stream is None or fault.stream == stream:
                    if fault.after > 0:
                        fault.after -= 1
                        return None
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    # ------------------------------------------------------------------ data
    def _dataset(self, stream: Stream, flag: bool, scope: str = "agent") -> _Dataset:
        """``flag``: exclude_deleted for metric events, include_comments for ticket events;
        ``scope``: support_type_scope (ticket events)."""
        if stream is METRIC_EVENTS:
            scope = "all"
        key = (stream.name, flag, scope)
        dataset = self._datasets.get(key)
        if dataset is not None:
            return dataset
        with self._build_lock:
            dataset = self._datasets.get(key)
            if dataset is None:
                dataset = _Dataset(self._records(stream, flag, scope))
                with self._lock:
                    self._datasets[key] = dataset
        return dataset

    def _records(self, stream: Stream, flag: bool, scope: str) -> Iterator[tuple[int, int, dict]]:
        explicit = self._explicit[stream.name]
        if explicit is not None:
            records: Iterator[tuple[int, int, dict]] = _keyed(explicit)
        elif self.account is None:
            records = iter(())
        elif stream is METRIC_EVENTS:
            records = self.account.keyed_metric_events()
        else:
            records = self.account.keyed_ticket_events(include_comments=flag)
        if stream is METRIC_EVENTS and flag:
            deleted = self.deleted_ticket_ids
            records = (item for item in records if item[2].get("ticket_id") not in deleted)
        ai = self.ai_agent_ticket_ids
        if stream is TICKET_EVENTS and scope != "all" and (ai or scope == "ai_agent"):
            wanted = scope == "ai_agent"
            records = (item for item in records if (item[2].get("ticket_id") in ai) == wanted)
        return records

    # ------------------------------------------------------------------ HTTP
    def _handle(self, h: _Handler) -> None:
        parts = urlsplit(h.path)
        path = parts.path.removesuffix(".json")
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        stream = _STREAMS.get(path)
        h.zd_entry = {
            "path": parts.path,
            "params": params,
            "has_auth": "Authorization" in h.headers,
            "stream": stream.name if stream else None,
            "fault": None,
        }
        try:
            self._answer(h, stream, path, parts.query, params)
        finally:
            if h.zd_entry is not None:  # nothing was sent (an error): log it as a 500
                self._log(h, 500)

    def _log(self, h: _Handler, status: int) -> None:
        """Log the request as answered (called just before the answer is written)."""
        entry, h.zd_entry = h.zd_entry, None
        if entry is not None:
            with self._lock:
                self.request_log.append(LoggedRequest(status=status, time=time.time(), **entry))

    def _answer(
        self, h: _Handler, stream: Stream | None, path: str, query: str, params: dict[str, str]
    ) -> tuple[int, str | None]:
        if stream is None and path in _NAME_LISTS:
            return self._answer_names(h, path.rsplit("/", 1)[-1], params), None
        if stream is None:
            return _send_json(
                h, 404, {"error": "InvalidEndpoint", "description": "Not found"}
            ), None
        if not self._authorized(h.headers.get("Authorization")):
            return _send_json(h, 401, {"error": "Couldn't authenticate you"}), None
        if not self.admin:
            return _send_json(
                h,
                403,
                {
                    "error": "Forbidden",
                    "description": "You do not have access to this page. Please contact the account "
                    "owner of this help desk for further help.",
                },
            ), None
        fault = self._take_fault(stream.name)
        kind = fault.kind if fault else None
        h.zd_entry["fault"] = kind
        if fault is not None:
            answered = self._answer_fault(h, fault)
            if answered is not None:
                return answered, kind
        limited = self._rate_check()
        if limited is not None:
            return _send_text(h, 429, "Too Many Requests", {"Retry-After": str(limited)}), kind
        scope = params.get("support_type_scope", "agent")
        if stream is TICKET_EVENTS and scope not in _SCOPES:
            return _send_json(
                h,
                400,
                {
                    "error": "InvalidValue",
                    "description": f"support_type_scope must be one of: {', '.join(_SCOPES)}",
                },
            ), kind
        cursor_mode = stream is METRIC_EVENTS and (
            "page[size]" in params or "page[after]" in params
        )
        if cursor_mode and "page[after]" in params:
            return self._answer_cursor(h, path, params, fault), kind
        try:
            start_time = int(params.get("start_time", ""))
        except ValueError:
            return _send_json(
                h,
                400,
                {
                    "error": "InvalidValue",
                    "description": "start_time is required and must be an integer",
                },
            ), kind
        now = self.now if self.now is not None else time.time()
        horizon = int(now) - 60
        if start_time > horizon:
            return _send_json(h, 422, _TOO_RECENT), kind
        if stream is METRIC_EVENTS:
            flag = params.get("exclude_deleted", "").lower() == "true"
        else:
            flag = params.get("include", "") == "comment_events"
        if cursor_mode:
            return self._answer_cursor(h, path, params, fault), kind
        dataset = self._dataset(stream, flag, scope)
        size = self.page_size
        if stream.per_page and "per_page" in params:
            try:
                size = max(1, min(1000, int(params["per_page"])))
            except ValueError:
                pass
        body = self._page(dataset, stream, path, params, start_time, horizon, size, fault)
        if kind in ("reset", "truncated", "malformed"):
            return self._send_broken(h, kind, body), kind
        return _send(h, 200, body, "application/json; charset=utf-8", self._rate_headers()), kind

    def _answer_names(self, h: _Handler, kind: str, params: dict[str, str]) -> int:
        """``GET /api/v2/groups`` or ``/api/v2/brands`` with Zendesk's cursor pagination
        (``page[size]``, ``page[after]``; ``meta.has_more``, ``links.next``)."""
        if not self._authorized(h.headers.get("Authorization")):
            return _send_json(h, 401, {"error": "Couldn't authenticate you"})
        names = self.groups if kind == "groups" else self.brands
        ids = sorted(names)
        try:
            size = max(1, min(100, int(params.get("page[size]", "100"))))
            start = int(params.get("page[after]", "0"))
        except ValueError:
            return _send_json(h, 400, {"error": "InvalidPaginationParameter"})
        chunk = ids[start : start + size]
        more = start + size < len(ids)
        records = [
            {
                "id": i,
                "name": names[i],
                "url": f"{self.url}/api/v2/{kind}/{i}.json",
                "default": i == ids[0],
                "deleted": False,
            }
            for i in chunk
        ]
        after = str(start + size)
        return _send_json(
            h,
            200,
            {
                kind: records,
                "meta": {
                    "has_more": more,
                    "after_cursor": after if more else None,
                    "before_cursor": str(start) if chunk else None,
                },
                "links": {
                    "next": f"{self.url}/api/v2/{kind}.json?"
                    + urlencode({"page[size]": size, "page[after]": after})
                    if more
                    else None,
                    "prev": None,
                },
            },
        )

    def _page(
        self,
        dataset: _Dataset,
        stream: Stream,
        path: str,
        params: dict[str, str],
        start_time: int,
        horizon: int,
        size: int,
        fault: _Fault | None,
    ) -> bytes:
        times = dataset.times
        hi = bisect.bisect_right(times, horizon)
        a = bisect.bisect_left(times, start_time, 0, hi)
        b = min(a + size, hi)
        if a < b < hi:
            b = bisect.bisect_right(times, times[b - 1], b, hi)
        kind = fault.kind if fault else None
        if kind == "empty":
            b = a
        with self._lock:
            dataset.served.append((a, b))
        if b > a:
            end_time = times[b - 1]
            if end_time <= start_time and b < hi:
                end_time = start_time + 1  # everything at start_time was served
        else:
            end_time = start_time
        end_of_stream = b >= hi and kind not in ("empty", "loop")
        if kind == "loop":
            end_time = start_time
        next_params = dict(params, start_time=str(end_time))
        base = self.url
        if kind == "foreign":
            base = f"https://{fault.options.get('host', 'attacker.example')}"  # type: ignore[union-attr]
        next_page = f"{base}{path}?{urlencode(next_params)}"
        with_eos = (
            self.ticket_end_of_stream if stream is TICKET_EVENTS else self.metric_end_of_stream
        ) or kind in ("empty", "loop")
        tail = [b'],"next_page":', _ENCODE(next_page).encode(), b',"count":', str(b - a).encode()]
        if with_eos:
            tail += [b',"end_of_stream":', b"true" if end_of_stream else b"false"]
        tail += [b',"end_time":', str(end_time).encode(), b"}"]
        return b"".join([b'{"', stream.records_key.encode(), b'":[', dataset.body(a, b), *tail])

    def _answer_cursor(
        self, h: _Handler, path: str, params: dict[str, str], fault: _Fault | None
    ) -> int:
        """Metric events with Zendesk's cursor pagination (``page[size]`` <= 100)."""
        now = self.now if self.now is not None else time.time()
        horizon = int(now) - 60
        try:
            size = max(1, min(_CURSOR_MAX, int(params.get("page[size]", _CURSOR_MAX))))
        except ValueError:
            return _send_json(
                h,
                400,
                {
                    "error": "InvalidPaginationParameter",
                    "description": "page[size] must be an integer",
                },
            )
        dataset = self._dataset(METRIC_EVENTS, params.get("exclude_deleted", "").lower() == "true")
        times, ids = dataset.times, dataset.ids
        hi = bisect.bisect_right(times, horizon)
        after = params.get("page[after]")
        if after is not None:
            position = _decode_cursor(after)
            if position is None:
                return _send_json(
                    h,
                    400,
                    {
                        "error": "InvalidPaginationParameter",
                        "description": "page[after] is not a valid cursor",
                    },
                )
            a = bisect.bisect_left(times, position[0])
            while a < len(times) and times[a] == position[0] and ids[a] <= position[1]:
                a += 1
        else:
            try:
                start_time = int(params.get("start_time", ""))
            except ValueError:
                return _send_json(
                    h,
                    400,
                    {
                        "error": "InvalidValue",
                        "description": "start_time is required and must be an integer",
                    },
                )
            if start_time > horizon:
                return _send_json(h, 422, _TOO_RECENT)
            a = bisect.bisect_left(times, start_time, 0, hi)
        a = min(a, hi)
        b = min(a + size, hi)
        kind = fault.kind if fault else None
        if kind == "empty":
            b = a
        with self._lock:
            dataset.served.append((a, b))
        has_more = b < hi or kind in ("empty", "loop")
        after_cursor = _encode_cursor(times[b - 1], ids[b - 1]) if b > a else None
        before_cursor = _encode_cursor(times[a], ids[a]) if b > a else None
        if kind in ("empty", "loop"):
            after_cursor = after

        def link(cursor: str | None, key: str) -> str | None:
            if cursor is None:
                return None
            query = {k: v for k, v in params.items() if k not in ("page[after]", "page[before]")}
            return f"{self.url}{path}?{urlencode({**query, 'page[size]': str(size), key: cursor})}"

        tail = _ENCODE(
            {
                "meta": {
                    "has_more": has_more,
                    "after_cursor": after_cursor,
                    "before_cursor": before_cursor,
                },
                "links": {
                    "prev": link(before_cursor, "page[before]"),
                    "next": link(after_cursor, "page[after]") if has_more else None,
                },
            }
        )
        body = b"".join(
            [b'{"ticket_metric_events":[', dataset.body(a, b), b"],", tail[1:].encode()]
        )
        return _send(h, 200, body, "application/json; charset=utf-8", self._rate_headers())

    def _answer_fault(self, h: _Handler, fault: _Fault) -> int | None:
        """Answer a fault that replaces the response; None for faults that shape the page."""
        kind, options = fault.kind, fault.options
        if kind == "slow":
            self._stopping.wait(float(options.get("seconds", 1.0)))
            return None
        if kind in ("loop", "empty", "foreign", "reset", "truncated", "malformed"):
            return None
        if kind == "status":
            status = int(options.get("status", 500))
            headers = {}
            if options.get("retry_after") is not None:
                headers["Retry-After"] = str(options["retry_after"])
            if status in (502, 504):
                return _send(
                    h,
                    status,
                    b"<html><body><h1>%d Bad Gateway</h1></body></html>" % status,
                    "text/html",
                    headers,
                )
            return _send_json(
                h,
                status,
                {"error": "InternalError", "description": "Something went wrong"},
                headers,
            )
        if kind == "rate_limit":
            headers = {}
            retry_after = options.get("retry_after", 1)
            if retry_after is not None:
                if options.get("http_date"):
                    when = time.time() + float(retry_after)  # type: ignore[arg-type]
                    headers["Retry-After"] = email.utils.formatdate(when, usegmt=True)
                else:
                    headers["Retry-After"] = str(retry_after)
            return _send_text(h, 429, "Too Many Requests", headers)
        if kind == "too_recent":
            return _send_json(h, 422, _TOO_RECENT)
        if kind == "html":
            return _send(h, 200, _HTML, "text/html; charset=utf-8")
        return None  # reset / truncated / malformed break the real page

    def _send_broken(self, h: _Handler, kind: str, body: bytes) -> int:
        """Answer 200 with a damaged page (``malformed``, ``truncated`` or ``reset``)."""
        half = body[: max(1, len(body) // 2)]
        if kind == "malformed":
            return _send(h, 200, half, "application/json; charset=utf-8")
        self._log(h, 200)
        h.send_response(200)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(half)
        h.wfile.flush()
        h.close_connection = True
        if kind == "reset":
            time.sleep(0.05)  # let the client read the headers before the reset arrives
            sock = h.connection
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            socket.socket(fileno=sock.detach()).close()  # RST, not FIN
        return 200

    def _authorized(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return self.oauth_token is not None and hmac.compare_digest(value, self.oauth_token)
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, secret = (
                base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        if self.api_token is not None and hmac.compare_digest(user, f"{self.email}/token"):
            return hmac.compare_digest(secret, self.api_token)
        if self.password is not None and hmac.compare_digest(user, self.email):
            return hmac.compare_digest(secret, self.password)
        return False

    def _rate_check(self) -> int | None:
        """Count this request; seconds to wait if it is over the limit (not counted then)."""
        if self.requests_per_minute is None:
            return None
        limit = max(1, int(self.requests_per_minute))
        now = time.monotonic()
        with self._lock:
            window = self._window
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= limit:
                return max(1, math.ceil(window[0] + 60 - now))
            window.append(now)
        return None

    def _rate_headers(self) -> dict[str, str]:
        if self.requests_per_minute is None:
            return {}
        limit = max(1, int(self.requests_per_minute))
        with self._lock:
            remaining = max(0, limit - len(self._window))
        return {"X-Rate-Limit": str(limit), "X-Rate-Limit-Remaining": str(remaining)}


def _encode_cursor(seconds: int, record_id: int) -> str:
    return base64.urlsafe_b64encode(f"{seconds}:{record_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int] | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        seconds, record_id = text.split(":")
        return int(seconds), int(record_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def _send(
    h: _Handler, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> int:
    h.server.owner._log(h, status)  # type: ignore[attr-defined]
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        h.send_header(name, value)
    h.end_headers()
    h.wfile.write(body)
    return status


def _send_json(
    h: _Handler, status: int, payload: dict, headers: dict[str, str] | None = None
) -> int:
    return _send(h, status, _ENCODE(payload).encode(), "application/json; charset=utf-8", headers)


def _send_text(h: _Handler, status: int, text: str, headers: dict[str, str] | None = None) -> int:
    return _send(h, status, text.encode(), "text/plain; charset=utf-8", headers)


def main(argv: list[str] | None = None) -> int:
    """Serve the sample account on 127.0.0.1 until Ctrl-C (``python -m zdevents.sample.server``)."""
    parser = argparse.ArgumentParser(
        prog="python -m zdevents.sample.server",
        description="Serve a sample Zendesk account on 127.0.0.1.",
    )
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--requests-per-minute",
        type=float,
        default=None,
        help="answer 429 over this many requests a minute (default: unlimited)",
    )
    parser.add_argument(
        "--metric-end-of-stream",
        action="store_true",
        help="add end_of_stream to metric-event pages (Zendesk documents none)",
    )
    args = parser.parse_args(argv)
    server = LocalZendesk(
        SampleAccount(args.tickets, seed=args.seed),
        port=args.port,
        requests_per_minute=args.requests_per_minute,
        metric_end_of_stream=args.metric_end_of_stream,
    )
    server.start()
    print(f"Serving {args.tickets} sample tickets at {server.url} (Ctrl-C to stop). Set:")
    print(f"  export ZENDESK_BASE_URL={server.url}")
    print(f"  export ZENDESK_SUBDOMAIN={server.subdomain}")
    print(f"  export ZENDESK_EMAIL={server.email}")
    print(f"  export ZENDESK_API_TOKEN={server.api_token}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""HTTP client for Zendesk's incremental exports: pacing, retries, errors and pages.

This is the only module that talks HTTP (``requests`` + ``urllib3``); it knows nothing of
pandas or Parquet. :meth:`Client.pages` yields :class:`Page` objects whose ``body`` is the
raw JSON of one export page; normalize parses it later, once, with pyarrow. Here only the
envelope (``count``, ``end_time``, ``end_of_stream``, ``next_page`` and the records key) is
read, without decoding the records (see :func:`read_envelope`).

Behaviour, in the order a request meets it:

1. **Pacing.** Every request of one account in this process goes through one shared
   sliding-window log: at most ``requests_per_minute`` requests in any 60 s window (so a
   burst of up to N, then the next request when the oldest of the last N leaves the window).
   A request's entry is its *completion* time, which is never earlier than the moment the
   server counted it, so the log never under-counts and a paced fetch gets no 429.
2. **Retries.** 429 waits ``Retry-After`` (seconds or an HTTP date) and also blocks the
   shared budget until then; without a usable header it waits ``60 / rpm`` s, doubling on
   each further 429, never more than 60 s. 5xx, 408, timeouts, connection failures and
   truncated or malformed bodies wait a full-jitter exponential backoff
   (``uniform(0, min(60, 1 * 2**retry))`` s). Both share one budget of
   ``settings.max_retries`` retries per request; then ``RateLimited``, ``ServerError`` or
   ``PageError`` (malformed page) is raised. A ``Retry-After`` (on a 429 or a 5xx) longer
   than ``settings.max_retry_after`` raises at once. A host that does not resolve, or that
   refuses the first connection, is not retried.
3. **Bounds.** Each request has one overall deadline (``settings.timeout``) from the first
   byte sent to the last byte read, not only a per-read timeout (a watchdog thread shuts
   the socket when it passes), and its body is decompressed in chunks up to
   ``settings.max_page_bytes`` (more is a ``PageError``).
4. **Errors.** 401/403/404 and other 4xx map to the classes of :mod:`zdevents.errors` with
   messages that say what to do next. Redirects are not followed.

Credentials are sent only to the configured base URL: any URL with another scheme, host or
port is refused before a request is made. Messages, logs and reprs never contain secrets.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import json
import logging
import math
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode, urlsplit

import requests
import requests.adapters
import requests.auth
import urllib3
import urllib3.connection
import urllib3.exceptions

from ..config import Settings
from ..errors import (
    ApiError,
    AuthError,
    NotFound,
    PageError,
    PermissionDenied,
    RateLimited,
    ServerError,
)
from ..streams import (
    METRIC_EVENTS,
    PAGINATION_MODES,
    SUPPORT_TYPE_SCOPES,
    TICKET_EVENTS,
    Stream,
    get_stream,
)

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "MAX_RETRY_AFTER",
    "Client",
    "ClientStats",
    "Envelope",
    "Page",
    "parse_retry_after",
    "read_envelope",
]

log = logging.getLogger(__name__)

BACKOFF_BASE = 1.0
"""Seconds: the first retry after a 5xx/network failure waits up to this long."""
BACKOFF_CAP = 60.0
"""Seconds: no single backoff wait is longer."""
MAX_RETRY_AFTER = 600.0
"""Seconds: the default of ``Settings.max_retry_after``, the longest ``Retry-After`` (of a
429 or a 5xx) that is waited for; a longer one raises at once."""
RATE_WINDOW = 60.0
"""Seconds: Zendesk's rate limits are per minute."""
NOT_BEFORE_NOW = 60
"""Seconds: Zendesk withholds the newest minute; ``start_time`` is clamped to now minus this."""
_LOG_WAITS_OVER = 5.0
_WARN_WAITS_OVER = 30.0  # a wait the server asked for (Retry-After, backoff) logged at WARNING
_CHUNK = 65536  # bytes read (and decoded) at a time
_RETRYABLE_STATUS = frozenset({408})
_SECRET_PREFIX = 4  # the shortest cut-off secret prefix (followed by "...") that is scrubbed
_RECORDS_KEYS = (METRIC_EVENTS.records_key, TICKET_EVENTS.records_key)


# ---------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Page:
    """One page of an incremental export, as Zendesk sent it.

    Attributes
    ----------
    url : str
        The URL requested, query included (never carries credentials).
    start_time : int
        The ``start_time`` asked for (after clamping).
    body : bytes
        The raw JSON body, untouched.
    records_key : str or None
        Key the records list was found under (``ticket_metric_events`` or ``ticket_events``;
        a metric-events page may carry its records under ``ticket_events``).
    count, end_time, end_of_stream, next_page
        The envelope's values (None when absent). For a cursor-paginated page: the number
        of records, the newest record time seen so far, ``not meta.has_more`` and
        ``links.next``.
    last : bool
        True when the stopping rules say no page follows.
    after_cursor : str or None
        Cursor pagination only: where the next page starts (``meta.after_cursor``, or the
        last one known when the page has none).
    """

    url: str
    start_time: int
    body: bytes
    records_key: str | None
    count: int | None
    end_time: int | None
    end_of_stream: bool | None
    next_page: str | None
    last: bool
    after_cursor: str | None = None


@dataclass
class ClientStats:
    """Counters of one :class:`Client`.

    Attributes
    ----------
    requests : int
        HTTP requests sent, retries included.
    rate_limited : int
        429 answers received.
    retries : int
        Requests sent again after a 429, 5xx, network failure or malformed page.
    seconds_waited : float
        Time slept for pacing, ``Retry-After`` and backoff.
    rate_waits : int
        Requests that waited for the rate budget or a 429's ``Retry-After``.
    """

    requests: int = 0
    rate_limited: int = 0
    retries: int = 0
    seconds_waited: float = 0.0
    rate_waits: int = 0


@dataclass(frozen=True)
class Envelope:
    """The top-level fields of an export page (see :func:`read_envelope`)."""

    records_key: str
    count: int | None
    end_time: int
    end_of_stream: bool | None
    next_page: str | None
    records_empty: bool


# ---------------------------------------------------------------------------------- envelope

# A JSON scalar. Inside a JSON string every '"' is escaped, so none of these patterns can
# start or end in the middle of a string value when applied from a structural position.
_SCALAR = rb'(?:"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)'
_PAIR = re.compile(rb'"((?:[^"\\]|\\.)*)"\s*:\s*(' + _SCALAR + rb")", re.DOTALL)
# The head: '{', scalar members, then the records key and its '['. Anchored at the start,
# so a records key matched here is top-level whatever the records contain.
_HEAD = re.compile(
    rb'\s*\{\s*((?:"(?:[^"\\]|\\.)*"\s*:\s*' + _SCALAR + rb"\s*,\s*)*)"
    rb'"(ticket_metric_events|ticket_events)"\s*:\s*\[',
    re.DOTALL,
)
# The tail: the records array's ']', scalar members, the final '}'. Searched only in the last
# few KB of the body, so the cost does not grow with the page.
_TAIL = re.compile(
    rb"\]\s*((?:,\s*" + rb'"(?:[^"\\]|\\.)*"\s*:\s*' + _SCALAR + rb"\s*)*)\}\s*\Z",
    re.DOTALL,
)
_TAIL_WINDOW = 16384
_ENVELOPE_KEYS = ("count", "end_time", "end_of_stream", "next_page")


def read_envelope(body: bytes, *, records_key: str = METRIC_EVENTS.records_key) -> Envelope:
    """Read a page's envelope without decoding its records.

    Fast path: the members before the records array (matched from the body's start) and the
    members after it (matched back from the body's end) are scalar ``"key": value`` pairs;
    only those are read, so text inside records (a comment saying ``"end_time": 5``, a
    record's own ``count``) is never mistaken for the envelope, in any key order, compact
    or pretty-printed. When the layout is anything else (a non-scalar top-level member,
    duplicate keys) the body is decoded with :func:`json.loads` instead.

    Parameters
    ----------
    body : bytes
        The page's raw JSON.
    records_key : str
        Preferred records key when both ``ticket_metric_events`` and ``ticket_events`` are
        present (the stream's own key).

    Returns
    -------
    Envelope

    Raises
    ------
    PageError
        When the body is not a JSON object (truncated, HTML, ...), has no records list, or
        ``end_time`` is missing or not an integer (the message says which).

    Examples
    --------
    >>> env = read_envelope(b'{"ticket_events": [], "end_time": 1717430460, "count": 0}')
    >>> env.records_key, env.end_time, env.count, env.end_of_stream, env.records_empty
    ('ticket_events', 1717430460, 0, None, True)
    """
    stripped = body.strip()
    if not stripped.startswith(b"{"):
        raise PageError("the body is not a JSON object (it does not start with '{')")
    if not stripped.endswith(b"}"):
        raise PageError("the body does not end with '}': truncated or not JSON")
    fast = _read_envelope_fast(body)
    if fast is not None:
        key, values, records_empty = fast
    else:
        key, values, records_empty = _read_envelope_json(body, records_key)
    return _checked_envelope(key, values, records_empty)


def _read_envelope_fast(body: bytes) -> tuple[str, dict[str, object], bool] | None:
    head = _HEAD.match(body)
    if head is None:
        return None
    bracket = head.end()  # just after '['
    window_start = max(bracket, len(body) - _TAIL_WINDOW)
    tail = _TAIL.search(body, window_start)
    if tail is None:
        return None
    values: dict[str, object] = {}
    for region in (head.group(1), tail.group(1)):
        for pair in _PAIR.finditer(region):
            name = pair.group(1).decode("utf-8", "replace")
            if name in values or name in _RECORDS_KEYS:
                return None  # duplicate or a second records key: let json decide
            if name in _ENVELOPE_KEYS:
                try:
                    values[name] = json.loads(pair.group(2))
                except ValueError:
                    return None
            else:
                values[name] = None
    values = {k: v for k, v in values.items() if k in _ENVELOPE_KEYS}
    records_empty = body[bracket : tail.start()].strip() == b""
    return head.group(2).decode(), values, records_empty


def _read_envelope_json(body: bytes, records_key: str) -> tuple[str, dict[str, object], bool]:
    try:
        data = json.loads(body)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise PageError(f"the body is not valid JSON ({_short(str(exc), 120)})") from None
    if not isinstance(data, dict):
        raise PageError("the body is not a JSON object")
    keys = [records_key] + [k for k in _RECORDS_KEYS if k != records_key]
    found = next((k for k in keys if isinstance(data.get(k), list)), None)
    if found is None:
        raise PageError(
            "the page has no records list under 'ticket_metric_events' or 'ticket_events'"
        )
    values = {k: data[k] for k in _ENVELOPE_KEYS if k in data}
    return found, values, len(data[found]) == 0


def _checked_envelope(key: str, values: dict[str, object], records_empty: bool) -> Envelope:
    end_time = values.get("end_time")
    if end_time is None:
        raise PageError("the page has no end_time")
    if not _is_int(end_time):
        raise PageError(f"end_time must be an integer, not {_short(repr(end_time), 40)}")
    count = values.get("count")
    if count is not None and not _is_int(count):
        raise PageError(f"count must be an integer, not {_short(repr(count), 40)}")
    eos = values.get("end_of_stream")
    if eos is not None and not isinstance(eos, bool):
        raise PageError(f"end_of_stream must be true or false, not {_short(repr(eos), 40)}")
    next_page = values.get("next_page")
    if next_page is not None and not isinstance(next_page, str):
        raise PageError(f"next_page must be a string, not {_short(repr(next_page), 40)}")
    return Envelope(
        records_key=key,
        count=count,  # type: ignore[arg-type]
        end_time=end_time,  # type: ignore[arg-type]
        end_of_stream=eos,
        next_page=next_page,
        records_empty=records_empty,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------- pacing


class _Slot:
    """One request in a pacer's log: its reserved start, then its completion time."""

    __slots__ = ("done", "time")

    def __init__(self, at: float) -> None:
        self.time = at
        self.done = False


class _Pacer:
    """Sliding-window log of one account's requests, shared by the Clients of a process.

    At most ``capacity`` requests in any ``window`` seconds. ``reserve`` hands out start
    times under a lock, so threads share the budget fairly; each entry later becomes the
    request's completion time (the latest moment the server can have counted it).
    """

    def __init__(self, requests_per_minute: float) -> None:
        self._lock = threading.Lock()
        self.capacity, self.window = _budget(requests_per_minute)
        self._log: list[_Slot] = []
        self._blocked_until = -math.inf

    def tighten(self, requests_per_minute: float) -> None:
        """Adopt a stricter budget (the strictest Client of an account wins)."""
        capacity, window = _budget(requests_per_minute)
        with self._lock:
            if capacity / window < self.capacity / self.window:
                self.capacity, self.window = capacity, window

    def reserve(self, now: float, not_before: float = -math.inf) -> _Slot:
        """Reserve the earliest start at or after ``max(now, not_before)`` the budget allows."""
        with self._lock:
            horizon = now - self.window
            self._log = [s for s in self._log if not (s.done and s.time <= horizon)]
            start = max(now, not_before, self._blocked_until)
            if len(self._log) >= self.capacity:
                times = sorted(s.time if s.done else max(s.time, now) for s in self._log)
                start = max(start, times[-self.capacity] + self.window)
            slot = _Slot(start)
            self._log.append(slot)
            return slot

    def complete(self, slot: _Slot, now: float) -> None:
        """Record that the request of ``slot`` finished at ``now``."""
        with self._lock:
            slot.time = max(slot.time, now)
            slot.done = True

    def block_until(self, moment: float) -> None:
        """No request of this account starts before ``moment`` (after a 429)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, moment)


def _budget(requests_per_minute: float) -> tuple[int, float]:
    """(requests, seconds) of the window: 10/min -> (10, 60 s); 0.5/min -> (1, 120 s)."""
    capacity = max(1, int(requests_per_minute))
    return capacity, RATE_WINDOW * capacity / requests_per_minute


# One pacer per (account origin, clock). Every Client built with the default clock shares the
# account's budget; a test's fake clock gets a budget of its own, measured on that clock.
_PACERS: dict[tuple[str, object], _Pacer] = {}
_PACERS_LOCK = threading.Lock()


def _pacer_for(origin: str, clock: object, requests_per_minute: float) -> _Pacer:
    with _PACERS_LOCK:
        pacer = _PACERS.get((origin, clock))
        if pacer is None:
            pacer = _PACERS[(origin, clock)] = _Pacer(requests_per_minute)
            return pacer
    pacer.tighten(requests_per_minute)
    return pacer


# ---------------------------------------------------------------------------------- helpers


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or None when absent or unreadable.

    Parameters
    ----------
    value : str or None
        The header: delay seconds (``"30"``; decimals tolerated) or an HTTP date.
    now : float
        Current Unix time, for the HTTP-date form (a past date gives 0).

    Examples
    --------
    >>> parse_retry_after("7", now=0.0)
    7.0
    >>> parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", now=30.0)
    30.0
    >>> parse_retry_after("soon", now=0.0) is None
    True
    """
    if value is None:
        return None
    text = value.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return min(float(text), _RETRY_AFTER_CEILING)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:  # HTTP dates are GMT
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


def _record_seconds(record: object) -> int | None:
    """Unix seconds of a record's ``time`` (metric events) or ``timestamp`` (audits)."""
    if not isinstance(record, dict):
        return None
    stamp = record.get("timestamp")
    if isinstance(stamp, int) and not isinstance(stamp, bool):
        return stamp
    text = record.get("time")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


_RETRY_AFTER_CEILING = 10.0 * 365 * 86_400  # a longer Retry-After reads as ten years


def _origin(url: str) -> str:
    parts = urlsplit(url)
    scheme = (parts.scheme or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme, -1)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _iso(seconds: int | float) -> str:
    try:
        return datetime.fromtimestamp(int(seconds), tz=UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return "a date beyond 9999"


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (causes, contexts, urllib3's ``reason``, requests' args)."""
    found: list[BaseException] = []
    todo = [exc]
    while todo and len(found) < 20:
        e = todo.pop()
        if any(e is f for f in found):
            continue
        found.append(e)
        links = [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args[:1]]
        todo.extend(x for x in links if isinstance(x, BaseException))
    return found


class _Deadline(Exception):
    """The request's overall deadline passed before its whole answer arrived."""


# ---------------------------------------------------------------------------------- deadline

_IN_FLIGHT = threading.local()  # .watchdog: the watchdog of this thread's request in flight


class _Watchdog:
    """Shuts down the sockets of the request in flight when its deadline passes.

    Socket timeouts bound each read; a server that sends its status line, headers or body a
    byte at a time never trips them. One daemon thread per Client waits for the deadline of
    the current request and then shuts its sockets down, which ends the blocked read.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._sockets: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        self.fired = False

    def arm(self, deadline: float) -> None:
        with self._cond:
            self._deadline, self._sockets, self.fired = deadline, [], False
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="zdevents-deadline", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def watch(self, sock: socket.socket | None) -> None:
        with self._cond:
            if sock is not None and self._deadline is not None:
                self._sockets.append(sock)

    def disarm(self) -> None:
        with self._cond:
            self._deadline, self._sockets = None, []
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self.fired = True  # before the shutdown wakes the reader, who checks it
                for sock in self._sockets:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                self._deadline, self._sockets = None, []


def _watched(base: type) -> type:
    class Connection(base):  # type: ignore[misc, valid-type]
        def request(self, *args: object, **kwargs: object) -> None:
            super().request(*args, **kwargs)
            watchdog = getattr(_IN_FLIGHT, "watchdog", None)
            if watchdog is not None:
                watchdog.watch(self.sock)

    Connection.__name__ = f"Watched{base.__name__}"
    return Connection


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _watched(urllib3.connection.HTTPConnection)


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _watched(urllib3.connection.HTTPSConnection)


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter (no retries) whose connections report their sockets to the
    watchdog of the request in flight."""

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


class _HeaderAuth(requests.auth.AuthBase):
    """Sets fixed headers (the OAuth bearer). As an auth object it also keeps ``requests``
    from replacing them with ``~/.netrc`` credentials."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self._headers)
        return request

    def __repr__(self) -> str:
        return "_HeaderAuth(***)"


class _Failure:
    """Why one attempt failed (for the wait and the final error)."""

    __slots__ = ("detail", "kind", "retry_after", "status")

    def __init__(
        self, kind: str, detail: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.kind = kind  # "rate_limited" | "server" | "network" | "malformed"
        self.detail = detail
        self.status = status
        self.retry_after = retry_after


class _TooRecent(Exception):
    """422 'Too recent start_time': nothing newer yet."""


# ---------------------------------------------------------------------------------- client


class Client:
    """Paced, retrying HTTP client for one Zendesk account's incremental exports.

    Parameters
    ----------
    settings : Settings
        Account, credentials, ``requests_per_minute``, ``timeout`` and ``max_retries``.
        Credentials are required (``ConfigError`` names what to set).
    session : requests.Session, optional
        Used as is (tests inject one). By default a new session with a
        ``zdevents/<version>`` User-Agent, closed by :meth:`close`.
    sleep, clock, now : callables
        ``time.sleep``, ``time.monotonic`` and ``time.time`` by default; tests inject fakes so
        that pacing and backoff run instantly. The pacing budget is shared per account and
        clock: every Client with the default clock shares one budget per account.
    jitter : callable
        Returns a float in [0, 1) for the backoff's full jitter (``random.random``).

    Attributes
    ----------
    stats : ClientStats
        Requests, 429s, retries and seconds waited so far.
    on_wait : callable or None
        Called with ``(seconds, reason)`` before each wait for pacing, ``Retry-After`` or a
        backoff (:func:`zdevents.fetch` shows it in the progress bar).

    Notes
    -----
    Use one Client per thread (like its ``requests.Session``); the pacing budget they share
    is thread-safe.

    Examples
    --------
    >>> settings = Settings(subdomain="acme", email="a@acme.test", api_token="t0k3n")
    >>> with Client(settings) as client:  # doctest: +SKIP
    ...     for page in client.pages("metric_events", start_time=1704067200):
    ...         print(page.end_time, page.count, page.last)
    """

    def __init__(
        self,
        settings: Settings,
        session: requests.Session | None = None,
        *,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        settings.require_credentials()
        self.settings = settings
        self.base_url = settings.url
        self._origin = _origin(self.base_url)
        self._own_session = session is None
        if session is None:
            from .. import __version__

            session = requests.Session()
            session.headers["User-Agent"] = f"zdevents/{__version__}"
            session.mount("https://", _Adapter())
            session.mount("http://", _Adapter())
        self.session = session
        # only this Client's own connections report their sockets to it
        self._watchdog = _Watchdog() if self._own_session else None
        pair = settings.auth()
        if pair is not None:  # UTF-8, so any password works (requests would use Latin-1)
            token = base64.b64encode(f"{pair[0]}:{pair[1]}".encode()).decode("ascii")
            self._auth: requests.auth.AuthBase = _HeaderAuth({"Authorization": f"Basic {token}"})
        else:
            self._auth = _HeaderAuth(settings.auth_headers())
        self._secrets = self._secret_texts(settings, pair)
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self._jitter = jitter
        self._pacer = _pacer_for(self._origin, clock, settings.requests_per_minute)
        self.stats = ClientStats()
        self._warned: set[str] = set()
        self._answered = False  # True once any response arrived (a refusal is then retried)
        self.on_wait: Callable[[float, str], object] | None = None

    def __repr__(self) -> str:
        return f"Client(url={self.base_url!r}, requests={self.stats.requests})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the session if this Client created it (an injected one is left open)."""
        if self._own_session:
            self.session.close()
        if self._watchdog is not None:
            self._watchdog.close()

    # ------------------------------------------------------------------ public
    def pages(
        self,
        stream: str | Stream,
        start_time: int,
        *,
        include_comments: bool = False,
        exclude_deleted: bool = False,
        support_type_scope: str | None = None,
        pagination: str = "time",
        after_cursor: str | None = None,
    ) -> Iterator[Page]:
        """Yield the export's pages from ``start_time`` until the stopping rules end it.

        Stopping rules, time-based pagination (``zendesk-api.md``):

        - a page with ``end_of_stream`` true is the last;
        - a page without ``end_of_stream`` (metric events, as Zendesk documents them) is the
          last when its ``end_time`` does not move past its ``start_time``, or when it has
          reached the withheld last minute (``end_time >= now - 60 s``). A short page alone
          never ends the export (Zendesk's pages are not always full before the end), so the
          end costs at most one extra request: the one from the final ``end_time``;
        - a page whose ``end_time`` does not move while ``end_of_stream`` is false (empty or
          not) raises :class:`PageError` instead of looping;
        - an ``end_time`` earlier than the page's ``start_time`` raises :class:`PageError`
          naming the page, instead of moving the cursor back;
        - a 422 "Too recent start_time" ends the iteration with no page.

        Cursor pagination (``pagination="cursor"``, metric events only): pages of
        ``page[size]=100`` follow ``links.next`` while ``meta.has_more`` is true; a page
        whose ``meta.after_cursor`` does not move while ``has_more`` is true raises
        :class:`PageError`. Each page's ``end_time`` is the newest record time seen so far,
        its ``after_cursor`` the position to resume from.

        Parameters
        ----------
        stream : str or Stream
            ``"metric_events"`` or ``"ticket_events"``.
        start_time : int
            Unix seconds (inclusive); clamped to now - 60 s (and to 0 at least).
        include_comments : bool
            ``include=comment_events`` (ticket_events only; ignored for metric events).
        exclude_deleted : bool
            ``exclude_deleted=true`` (metric events only; ignored for ticket_events).
        support_type_scope : {"agent", "ai_agent", "all"}, optional
            ticket_events only (ignored for metric events); None sends nothing, which
            Zendesk reads as ``agent``.
        pagination : {"time", "cursor"}
            ``time``: ``start_time``/``end_time`` pages of up to 1000 (the default).
            ``cursor``: ``page[size]=100`` pages (metric events only).
        after_cursor : str, optional
            Cursor pagination: resume after this ``meta.after_cursor`` of an earlier run.

        Yields
        ------
        Page
            The last one has ``last=True``.

        Raises
        ------
        ValueError
            For an unknown ``pagination`` or ``support_type_scope``, or cursor pagination
            of an export that has none (nothing is sent).
        AuthError, PermissionDenied, NotFound, ApiError, RateLimited, ServerError, PageError

        Examples
        --------
        >>> client = Client(Settings(subdomain="acme", email="a@x.test", api_token="t"))
        >>> first = next(client.pages("ticket_events", 1704067200))  # doctest: +SKIP
        >>> first.url  # doctest: +SKIP
        'https://acme.zendesk.com/api/v2/incremental/ticket_events?start_time=1704067200'
        """
        stream = get_stream(stream)
        if isinstance(start_time, bool) or not isinstance(start_time, int | float):
            raise TypeError(f"start_time must be Unix seconds (int), not {start_time!r}")
        if pagination not in PAGINATION_MODES:
            raise ValueError(
                f"unknown pagination {pagination!r}; choose one of: {', '.join(PAGINATION_MODES)}"
            )
        if pagination == "cursor" and stream.cursor_page_size is None:
            raise ValueError(
                f"{stream.name} has no cursor pagination in Zendesk's API; use pagination='time'"
            )
        if support_type_scope is not None and support_type_scope not in SUPPORT_TYPE_SCOPES:
            raise ValueError(
                f"unknown support_type_scope {support_type_scope!r}; choose one of: "
                f"{', '.join(SUPPORT_TYPE_SCOPES)}"
            )
        cursor = max(0, min(int(start_time), int(self._now()) - NOT_BEFORE_NOW))
        if cursor != int(start_time):
            log.debug("start_time %s clamped to %s", start_time, cursor)
        extra: dict[str, str] = {}
        if include_comments and stream.name == TICKET_EVENTS.name:
            extra["include"] = "comment_events"
        if support_type_scope is not None and stream.name == TICKET_EVENTS.name:
            extra["support_type_scope"] = support_type_scope
        if exclude_deleted and stream.name == METRIC_EVENTS.name:
            extra["exclude_deleted"] = "true"
        if pagination == "cursor":
            yield from self._cursor_pages(stream, cursor, extra, after_cursor)
            return
        while True:
            url = f"{self.base_url}{stream.path}?{urlencode({'start_time': cursor, **extra})}"
            try:
                response, env = self._send(url, stream=stream, too_recent_ok=True)
            except _TooRecent:
                log.debug("start_time %s is too recent: nothing newer yet", cursor)
                return
            assert env is not None
            if env.next_page is not None:
                self._check_next_page(env.next_page, stream, url)
            last = self._is_last(stream, cursor, env, url)
            yield Page(
                url=self._scrub(url),
                start_time=cursor,
                body=response.content,
                records_key=env.records_key,
                count=env.count,
                end_time=env.end_time,
                end_of_stream=env.end_of_stream,
                next_page=env.next_page,
                last=last,
            )
            if last:
                return
            cursor = env.end_time

    def _cursor_pages(
        self, stream: Stream, cursor: int, extra: dict[str, str], after_cursor: str | None
    ) -> Iterator[Page]:
        """Cursor pagination: ``page[size]`` pages following ``links.next``."""
        assert stream.cursor_page_size is not None
        params: dict[str, object] = {
            "start_time": cursor,
            **extra,
            "page[size]": stream.cursor_page_size,
        }
        if after_cursor:
            params["page[after]"] = after_cursor
        url = f"{self.base_url}{stream.path}?{urlencode(params)}"
        position = after_cursor
        newest = cursor
        while True:
            try:
                response, _ = self._send(url, too_recent_ok=True)
            except _TooRecent:
                log.debug("start_time %s is too recent: nothing newer yet", cursor)
                return
            body = response.content
            key, count, times, has_more, after, next_url = self._read_cursor_page(body, url)
            newest = max([newest, *times])
            if next_url is not None:
                self._check_next_page(next_url, stream, url)
            moved = after is not None and after != position
            if has_more and not moved:
                raise PageError(
                    f"the export's cursor did not move (meta.has_more true, meta.after_cursor "
                    f"{'missing' if after is None else 'repeated'}): Zendesk returned the same "
                    "page again; stopping instead of looping. Nothing was lost: the next fetch "
                    "resumes from the last stored position",
                    url=self._scrub(url),
                )
            position = after if after is not None else position
            yield Page(
                url=self._scrub(url),
                start_time=cursor,
                body=body,
                records_key=key,
                count=count,
                end_time=newest,
                end_of_stream=not has_more,
                next_page=next_url,
                last=not has_more,
                after_cursor=position,
            )
            if not has_more:
                return
            cursor = newest
            if next_url is not None:
                url = next_url if "://" in next_url else f"{self.base_url}{next_url}"
            else:
                params["page[after]"] = position
                url = f"{self.base_url}{stream.path}?{urlencode(params)}"

    def _read_cursor_page(
        self, body: bytes, url: str
    ) -> tuple[str, int, list[int], bool, str | None, str | None]:
        """(records key, count, record times, has_more, after_cursor, links.next) of a page."""
        shown = self._scrub(url)
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise PageError(
                f"the page is not valid JSON ({_short(str(exc), 120)})", url=shown
            ) from None
        if not isinstance(data, dict):
            raise PageError("the page is not a JSON object", url=shown)
        key = next((k for k in _RECORDS_KEYS if isinstance(data.get(k), list)), None)
        if key is None:
            raise PageError(
                "the page has no records list under 'ticket_metric_events' or 'ticket_events'",
                url=shown,
            )
        meta = data.get("meta")
        links = data.get("links")
        if not isinstance(meta, dict) or not isinstance(meta.get("has_more"), bool):
            raise PageError(
                "the cursor-paginated page has no boolean meta.has_more "
                "(does this export support page[size]?)",
                url=shown,
            )
        after = meta.get("after_cursor")
        if after is not None and not isinstance(after, str):
            raise PageError(
                f"meta.after_cursor must be a string, not {type(after).__name__}", url=shown
            )
        next_url = links.get("next") if isinstance(links, dict) else None
        if next_url is not None and not isinstance(next_url, str):
            raise PageError(
                f"links.next must be a string, not {type(next_url).__name__}", url=shown
            )
        times = [t for t in (_record_seconds(r) for r in data[key]) if t is not None]
        return key, len(data[key]), times, meta["has_more"], after, next_url

    def get(self, url: str, params: Mapping[str, object] | None = None) -> requests.Response:
        """GET ``url`` (a path or a URL on the base URL): paced, retried, errors mapped.

        Parameters
        ----------
        url : str
            ``/api/v2/...`` or an absolute URL with the base URL's scheme, host and port.
        params : mapping, optional
            Query parameters, appended to the URL.

        Returns
        -------
        requests.Response
            A 2xx response whose body has been read.

        Raises
        ------
        PageError
            When ``url`` points anywhere but the base URL (nothing is sent).
        AuthError, PermissionDenied, NotFound, ApiError, RateLimited, ServerError

        Examples
        --------
        >>> client.get("/api/v2/slas/policies").json()  # doctest: +SKIP
        {'sla_policies': [...], ...}
        """
        full = (
            url if "://" in url else f"{self.base_url}{url if url.startswith('/') else '/' + url}"
        )
        if _origin(full) != self._origin:
            raise PageError(
                f"refusing to send credentials to {self._scrub(self._origin_text(full))}: "
                f"zdevents only talks to the configured base URL {self.base_url}",
                url=self._scrub(full),
            )
        if params:
            full += ("&" if urlsplit(full).query else "?") + urlencode(dict(params))
        response, _ = self._send(full)
        return response

    # ------------------------------------------------------------------ stopping rules
    def _is_last(self, stream: Stream, cursor: int, env: Envelope, url: str) -> bool:
        if env.end_time < cursor:
            raise PageError(
                f"the page's end_time {env.end_time} ({_iso(env.end_time)}) is earlier than "
                f"its start_time {cursor} ({_iso(cursor)}): the export would move backwards; "
                "stopping without moving the cursor. Nothing was lost: the next fetch resumes "
                "from this start_time",
                url=self._scrub(url),
            )
        advanced = env.end_time > cursor
        if env.end_of_stream is True:
            return True
        if env.end_of_stream is None:
            if stream.always_has_end_of_stream and stream.name not in self._warned:
                self._warned.add(stream.name)
                log.warning("%s page has no end_of_stream; ending by end_time instead", stream.name)
            # never on a short page alone: only a cursor that stops moving or has reached
            # the withheld last minute ends an export that does not say where it ends
            withheld = int(self._now()) - NOT_BEFORE_NOW
            return not advanced or env.end_time >= withheld
        if not advanced:
            what = "an empty page" if env.records_empty or env.count == 0 else "a page"
            raise PageError(
                f"the export's cursor did not advance past {_iso(cursor)} "
                f"(start_time={cursor}, end_time={env.end_time}, end_of_stream false, "
                f"{what}): Zendesk returned the same page again; stopping instead of looping. "
                "Nothing was lost: the next fetch resumes from this start_time",
                url=self._scrub(url),
            )
        return False

    def _check_next_page(self, next_page: str, stream: Stream, url: str) -> None:
        parts = urlsplit(next_page)
        if (parts.scheme or parts.netloc) and _origin(next_page) != self._origin:
            raise PageError(
                f"the page's next_page points at {self._scrub(self._origin_text(next_page))}, "
                f"not at the configured base URL {self.base_url}; zdevents sends credentials "
                "only there and stops. If that is the account's real address, set "
                "ZENDESK_BASE_URL to it",
                url=self._scrub(url),
            )
        path = parts.path
        if not path.endswith(stream.path):
            log.warning(
                "next_page path %s differs from %s; using %s",
                self._scrub(path),
                stream.path,
                stream.path,
            )

    @staticmethod
    def _origin_text(url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        try:
            port = parts.port
        except ValueError:
            port = None
        return f"{parts.scheme}://{host}" + (f":{port}" if port else "")

    # ------------------------------------------------------------------ one request, retried
    def _send(
        self, url: str, *, stream: Stream | None = None, too_recent_ok: bool = False
    ) -> tuple[requests.Response, Envelope | None]:
        # An explicit loop rather than urllib3's Retry: the waits must go through the shared
        # pacer (a 429 blocks every Client of the account), use the injected sleep/clock, be
        # counted in stats, and also cover bodies that arrive complete at the HTTP level but
        # are truncated or malformed as pages. The created session's adapter keeps urllib3's
        # default of no retries, so every request sent is one counted here.
        attempts = self.settings.max_retries + 1
        shown = self._scrub(url)
        not_before = -math.inf
        reason = "pacing"
        failure: _Failure | None = None
        rate_limited_in_a_row = 0
        for attempt in range(attempts):
            if attempt:
                self.stats.retries += 1
            slot = self._pace(not_before, reason)
            log.debug("GET %s (attempt %d of %d)", shown, attempt + 1, attempts)
            self.stats.requests += 1
            try:
                response, body = self._request(url)
            except requests.exceptions.SSLError as exc:
                raise ServerError(
                    f"TLS failed for {self.base_url}: {_short(self._scrub(str(exc)), 160)}; "
                    "check ZENDESK_BASE_URL and the machine's certificates",
                    url=shown,
                ) from None
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
                urllib3.exceptions.HTTPError,
                _Deadline,
            ) as exc:
                self._raise_if_unreachable(exc, shown)
                kind = "Timeout" if isinstance(exc, _Deadline) else type(exc).__name__
                detail = _short(self._scrub(f"{kind}: {exc}"), 120)
                failure = _Failure("network", detail)
            except requests.exceptions.RequestException as exc:
                raise ApiError(
                    f"could not request {shown}: {_short(self._scrub(str(exc)), 160)}", url=shown
                ) from None
            else:
                self._answered = True
                failure, envelope = self._judge(response, body, shown, stream, too_recent_ok)
                if failure is None:
                    return response, envelope
            finally:
                self._pacer.complete(slot, self._clock())
            if failure.kind == "rate_limited":
                rate_limited_in_a_row += 1
                wait = failure.retry_after
                if wait is None:  # no usable Retry-After: one slot, doubling, at most a window
                    slot_seconds = RATE_WINDOW / self.settings.requests_per_minute
                    wait = min(RATE_WINDOW, slot_seconds * 2 ** (rate_limited_in_a_row - 1))
                # the whole account waits, whether or not this request is retried
                self._pacer.block_until(self._clock() + wait)
                reason = (
                    f"Retry-After of a 429 ({wait:g} s)"
                    if failure.retry_after is not None
                    else "a 429 with no usable Retry-After"
                )
                not_before = -math.inf
            else:
                rate_limited_in_a_row = 0
                backoff = self._jitter() * min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
                if failure.retry_after is not None:  # at most max_retry_after (see _judge)
                    backoff = max(backoff, failure.retry_after)
                    reason = f"Retry-After of an HTTP {failure.status} ({failure.retry_after:g} s)"
                else:
                    reason = f"backoff after {failure.detail}"
                not_before = self._clock() + backoff
            if attempt + 1 == attempts:
                break
            log.debug("attempt %d for %s failed: %s", attempt + 1, shown, failure.detail)
        raise self._final_error(failure, shown, attempts)

    def _request(self, url: str) -> tuple[requests.Response, bytes]:
        """One GET with an overall deadline of ``settings.timeout`` and a bounded body.

        ``timeout`` bounds each socket read; here it also bounds the whole body, read in
        chunks (and decompressed in chunks, at most ``settings.max_page_bytes``), so a server
        that trickles bytes cannot hold the request open, nor a compressed bomb fill memory.
        """
        timeout = self.settings.timeout
        deadline = time.monotonic() + timeout
        watchdog = self._watchdog
        if watchdog is None:  # an injected session: the deadline is checked between chunks
            return self._read(url, deadline)
        watchdog.arm(deadline)
        _IN_FLIGHT.watchdog = watchdog
        try:
            answer = self._read(url, deadline)
            if watchdog.fired:  # the body ended because its socket was shut down
                raise _Deadline(f"the answer took longer than the timeout of {timeout:g} s in all")
            return answer
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError):
            if watchdog.fired:
                raise _Deadline(
                    f"the answer took longer than the timeout of {timeout:g} s in all"
                ) from None
            raise
        finally:
            _IN_FLIGHT.watchdog = None
            watchdog.disarm()

    def _read(self, url: str, deadline: float) -> tuple[requests.Response, bytes]:
        timeout = self.settings.timeout
        response = self.session.get(
            url, auth=self._auth, timeout=timeout, allow_redirects=False, stream=True
        )
        if response._content is not False:  # already read (a session that does not stream)
            body = response.content
            if len(body) > self.settings.max_page_bytes:
                raise self._too_large(url)
            return response, body
        raw = response.raw
        limit = self.settings.max_page_bytes
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                if time.monotonic() > deadline:
                    raise _Deadline(
                        f"the answer took longer than the timeout of {timeout:g} s in all "
                        f"({size:,} bytes received)"
                    )
                chunk = raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise self._too_large(url)
                chunks.append(chunk)
        except BaseException:
            response.close()
            raise
        response.raw.release_conn()
        body = b"".join(chunks)
        response._content = body
        response._content_consumed = True
        return response, body

    def _too_large(self, url: str) -> PageError:
        limit = self.settings.max_page_bytes
        return PageError(
            f"the answer from {self._scrub(url)} is larger than {limit:,} bytes once "
            "decompressed; zdevents stopped reading it (ZDEVENTS_MAX_PAGE_BYTES sets the limit)",
            url=self._scrub(url),
        )

    def _raise_if_unreachable(self, exc: BaseException, url: str) -> None:
        """A host that does not resolve (or refuses the first connection) fails at once.

        Retrying cannot help a typo in ZENDESK_SUBDOMAIN, and a refusal before any answer
        means nothing listens there. A refusal after answers is retried (a restart).
        """
        parts = urlsplit(self.base_url)
        host = parts.hostname or "?"
        chain = _causes(exc)
        if any(
            isinstance(e, socket.gaierror | urllib3.exceptions.NameResolutionError) for e in chain
        ):
            variable = "ZENDESK_BASE_URL" if self.settings.base_url else "ZENDESK_SUBDOMAIN"
            raise ServerError(
                f"cannot resolve {host}: check {variable} (no such host, or no network)",
                url=url,
            ) from None
        if not self._answered and any(isinstance(e, ConnectionRefusedError) for e in chain):
            port = parts.port or (443 if parts.scheme == "https" else 80)
            raise ServerError(
                f"cannot connect to {host}:{port} (connection refused): check "
                "ZENDESK_BASE_URL / ZENDESK_SUBDOMAIN",
                url=url,
            ) from None

    def _judge(
        self,
        response: requests.Response,
        body: bytes,
        url: str,
        stream: Stream | None,
        too_recent_ok: bool,
    ) -> tuple[_Failure | None, Envelope | None]:
        """(None, envelope) for a usable answer, (failure, None) to retry, or raise."""
        status = response.status_code
        if status == 429:
            self.stats.rate_limited += 1
        if status == 429 or status >= 500 or status in _RETRYABLE_STATUS:
            wait = parse_retry_after(response.headers.get("Retry-After"), self._now())
            cap = self.settings.max_retry_after
            if wait is not None and wait > cap:
                error = RateLimited if status == 429 else ServerError
                raise error(
                    f"Zendesk answered HTTP {status} and asked to wait {wait:.0f} s (until "
                    f"{_iso(self._now() + wait)}) before the next request to {url}; that is "
                    f"longer than ZDEVENTS_MAX_RETRY_AFTER ({cap:g} s): run the fetch again "
                    "after that, or raise ZDEVENTS_MAX_RETRY_AFTER",
                    status=status,
                    url=url,
                )
            if status == 429:
                return _Failure("rate_limited", "HTTP 429", 429, wait), None
            return _Failure("server", f"HTTP {status}", status, wait), None
        if not 200 <= status < 300:
            self._raise_for_status(response, url, too_recent_ok)
        truncated = self._truncated(response, body)
        if truncated:
            return _Failure("network", truncated, status), None
        if stream is None:
            return None, None
        try:
            return None, read_envelope(body, records_key=stream.records_key)
        except PageError as exc:
            return _Failure("malformed", self._scrub(str(exc)), status), None

    def _pace(self, not_before: float, reason: str) -> _Slot:
        now = self._clock()
        slot = self._pacer.reserve(now, not_before)
        wait = slot.time - now
        if wait > 0:
            if reason == "pacing" or "a 429" in reason:
                self.stats.rate_waits += 1
            if reason == "pacing":
                reason = (
                    f"rate budget of {self._pacer.capacity} requests per "
                    f"{self._pacer.window:g} s for {self.base_url}"
                )
                level = logging.INFO if wait > _LOG_WAITS_OVER else logging.DEBUG
            else:  # the server asked for it (Retry-After) or it is failing (backoff)
                level = logging.WARNING if wait > _WARN_WAITS_OVER else logging.INFO
            # "(Retry-After of a 429)", not "(Retry-After of a 429 (58 s))": the wait is said
            log.log(
                level,
                "waiting %.1f s before the next request (%s)",
                wait,
                re.sub(r" \([\d.e+]+ s\)$", "", reason),
            )
            if self.on_wait is not None:
                self.on_wait(wait, reason)
            self._sleep(wait)
            self.stats.seconds_waited += wait
        return slot

    def _final_error(self, failure: _Failure | None, url: str, attempts: int) -> Exception:
        assert failure is not None
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        detail = self._scrub(failure.detail)
        if failure.kind == "rate_limited":
            return RateLimited(
                f"Zendesk kept answering 429 Too Many Requests for {url} after {tries}: another "
                "integration may be using this account's export budget; lower "
                "ZDEVENTS_REQUESTS_PER_MINUTE or try again later",
                status=429,
                url=url,
            )
        if failure.kind == "malformed":
            return PageError(
                f"malformed page from {url} after {tries}: {detail}; the next fetch will "
                "resume from the same start_time",
                url=url,
            )
        return ServerError(
            f"Zendesk did not answer {url} after {tries} (last: {detail}); it may be down or "
            "overloaded: try again later",
            status=failure.status,
            url=url,
        )

    @staticmethod
    def _truncated(response: requests.Response, body: bytes) -> str | None:
        declared = response.headers.get("Content-Length")
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if declared is None or encoding not in ("", "identity"):
            return None
        try:
            expected = int(declared)
        except ValueError:
            return None
        if expected != len(body):
            return f"truncated body ({len(body)} of {expected} bytes)"
        return None

    def _raise_for_status(self, response: requests.Response, url: str, too_recent_ok: bool) -> None:
        status = response.status_code
        if status == 401:
            raise AuthError(
                f"Zendesk refused the credentials for {self.base_url}: check ZENDESK_EMAIL and "
                "ZENDESK_API_TOKEN (or ZENDESK_OAUTH_TOKEN)",
                status=401,
                url=url,
            )
        if status == 403:
            raise PermissionDenied(
                f"Zendesk denied access to {url} (HTTP 403): the incremental export endpoints "
                "need an admin's token; use the email and API token (or OAuth token) of an "
                f"admin of {self.base_url}",
                status=403,
                url=url,
            )
        if status == 404:
            raise NotFound(
                f"Zendesk has no {urlsplit(url).path} at {self.base_url} (HTTP 404): check "
                "ZENDESK_SUBDOMAIN / ZENDESK_BASE_URL",
                status=404,
                url=url,
            )
        if status == 422 and self._too_recent(response.content):
            if too_recent_ok:
                raise _TooRecent
        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            target = self._origin_text(location) if "://" in location else self.base_url
            raise ApiError(
                f"Zendesk redirected {url} to {self._scrub(target)} (HTTP {status}); zdevents "
                "does not follow redirects: set ZENDESK_BASE_URL to the account's address",
                status=status,
                url=url,
            )
        excerpt = _short(self._scrub(response.content.decode("utf-8", "replace")), 200)
        raise ApiError(
            f"Zendesk answered HTTP {status} for {url}: {excerpt or '(empty body)'}",
            status=status,
            url=url,
        )

    @staticmethod
    def _too_recent(body: bytes) -> bool:
        try:
            description = json.loads(body).get("description", "")
        except (ValueError, AttributeError):
            return b"Too recent start_time" in body
        return isinstance(description, str) and description.startswith("Too recent start_time")

    # ------------------------------------------------------------------ secrets
    @staticmethod
    def _secret_texts(settings: Settings, pair: tuple[str, str] | None) -> tuple[str, ...]:
        texts = set()
        for secret in settings.secrets():
            texts.update({secret, quote(secret, safe=""), json.dumps(secret)[1:-1]})
        if pair is not None:
            texts.add(base64.b64encode(f"{pair[0]}:{pair[1]}".encode()).decode())
        # longest first, so a secret containing another is removed whole
        return tuple(sorted((t for t in texts if t), key=len, reverse=True))

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
            # a secret cut short by an excerpt ("zd-SECRET-TOK...") is still a secret
            for keep in range(len(secret) - 1, min(_SECRET_PREFIX, len(secret)) - 1, -1):
                text = text.replace(secret[:keep] + "...", "***...")
        return text

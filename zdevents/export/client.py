"""HTTP client for Zendesk's incremental exports: session, auth, the retry loop, pages.

This is where zdevents talks HTTP (``requests`` + ``urllib3``); it knows nothing of pandas
or Parquet. :meth:`Client.pages` yields :class:`~zdevents.export.envelope.Page` objects whose
``body`` is the raw JSON of one export page; the stream parsers read it later, once, with
pyarrow. The parts a request goes through live beside it: :mod:`.pacing` (the shared rate
budget, ``Retry-After``), :mod:`.deadline` (overall deadline, bounded body),
:mod:`.answers` (statuses -> errors), :mod:`.envelope` and :mod:`.paging` (reading pages and
where an export ends), :mod:`.redact` (secrets out of every message).

Behaviour, in the order a request meets it:

1. **Pacing.** One sliding-window budget per account, shared by every Client of the
   process: at most ``requests_per_minute`` requests in any 60 s (see :mod:`.pacing`).
2. **Retries.** 429 waits ``Retry-After`` (seconds or an HTTP date) and also blocks the
   shared budget until then; without a usable header it waits ``60 / rpm`` s, doubling on
   each further 429, never more than 60 s. 5xx, 408, timeouts, connection failures and
   truncated or malformed bodies wait a full-jitter exponential backoff
   (``uniform(0, min(60, 1 * 2**retry))`` s). Both share one budget of
   ``settings.max_retries`` retries per request; then ``RateLimited``, ``ServerError`` or
   ``PageError`` (malformed page) is raised. A ``Retry-After`` (on a 429 or a 5xx) longer
   than ``settings.max_retry_after`` raises at once. A host that does not resolve, or that
   refuses the first connection, is not retried.
3. **Bounds.** One overall deadline per request (``settings.timeout``) and a body of at
   most ``settings.max_page_bytes`` once decompressed (see :mod:`.deadline`).
4. **Errors.** 401/403/404 and other 4xx map to the classes of :mod:`zdevents.errors` with
   messages that say what to do next. Redirects are not followed.

Credentials are sent only to the configured base URL: any URL with another scheme, host or
port is refused before a request is made. Messages, logs and reprs never contain secrets.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import urlencode, urlsplit

import requests
import requests.auth
import urllib3.exceptions

from ..config import Settings
from ..errors import ApiError, PageError, ServerError
from ..streams import Stream, get_stream
from ..version import __version__
from .answers import (
    Failure,
    final_error,
    raise_for_status,
    raise_if_unreachable,
    retry_failure,
    truncation,
)
from .auth import auth_for
from .deadline import DeadlineExceeded, Watchdog, WatchedAdapter, get_within
from .envelope import Envelope, Page, read_envelope
from .pacing import RATE_WINDOW, Slot, parse_retry_after, shared_pacer, without_seconds
from .paging import ExportPager, export_query
from .redact import Redactor, origin, origin_text, shorten
from .stats import ClientStats

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
_LOG_WAITS_OVER = 5.0
_WARN_WAITS_OVER = 30.0  # a wait the server asked for (Retry-After, backoff) logged at WARNING


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
        self._origin = origin(self.base_url)
        self._own_session = session is None
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = f"zdevents/{__version__}"
            session.mount("https://", WatchedAdapter())
            session.mount("http://", WatchedAdapter())
        self.session = session
        # only this Client's own connections report their sockets to it
        self._watchdog = Watchdog() if self._own_session else None
        self._auth = auth_for(settings)
        self._redact = Redactor(settings)
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self._jitter = jitter
        self._pacer = shared_pacer(self._origin, clock, settings.requests_per_minute)
        self.stats = ClientStats()
        self._answered = False  # True once any response arrived (a refusal is then retried)
        self.on_wait: Callable[[float, str], object] | None = None
        self._pager = ExportPager(
            self._send_page, base_url=self.base_url, redact=self._redact, now=now
        )

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
        yield from self._pager.pages(
            get_stream(stream),
            start_time,
            query=export_query(
                get_stream(stream),
                pagination=pagination,
                include_comments=include_comments,
                exclude_deleted=exclude_deleted,
                support_type_scope=support_type_scope,
            ),
            pagination=pagination,
            after_cursor=after_cursor,
        )

    def _send_page(self, url: str, stream: Stream | None) -> tuple[bytes, Envelope | None]:
        """One export page: its body and (for ``stream``) its envelope; a 422 "Too recent
        start_time" raises :class:`~zdevents.export.answers.TooRecent`."""
        response, envelope = self._send(url, stream=stream, too_recent_ok=True)
        return response.content, envelope

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
        if origin(full) != self._origin:
            raise PageError(
                f"refusing to send credentials to {self._redact(origin_text(full))}: "
                f"zdevents only talks to the configured base URL {self.base_url}",
                url=self._redact(full),
            )
        if params:
            full += ("&" if urlsplit(full).query else "?") + urlencode(dict(params))
        response, _ = self._send(full)
        return response

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
        shown = self._redact(url)
        not_before = -math.inf
        reason = "pacing"
        failure: Failure | None = None
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
                    f"TLS failed for {self.base_url}: {shorten(self._redact(str(exc)), 160)}; "
                    "check ZENDESK_BASE_URL and the machine's certificates",
                    url=shown,
                ) from None
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
                urllib3.exceptions.HTTPError,
                DeadlineExceeded,
            ) as exc:
                raise_if_unreachable(
                    exc,
                    shown,
                    base_url=self.base_url,
                    variable="ZENDESK_BASE_URL" if self.settings.base_url else "ZENDESK_SUBDOMAIN",
                    answered=self._answered,
                )
                kind = "Timeout" if isinstance(exc, DeadlineExceeded) else type(exc).__name__
                detail = shorten(self._redact(f"{kind}: {exc}"), 120)
                failure = Failure("network", detail)
            except requests.exceptions.RequestException as exc:
                raise ApiError(
                    f"could not request {shown}: {shorten(self._redact(str(exc)), 160)}", url=shown
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
        assert failure is not None
        raise final_error(failure, shown, attempts, self._redact)

    def _request(self, url: str) -> tuple[requests.Response, bytes]:
        """One GET with an overall deadline of ``settings.timeout`` and a bounded body."""
        return get_within(
            self.session,
            url,
            auth=self._auth,
            timeout=self.settings.timeout,
            max_bytes=self.settings.max_page_bytes,
            watchdog=self._watchdog,
            too_large=lambda: self._too_large(url),
        )

    def _too_large(self, url: str) -> PageError:
        limit = self.settings.max_page_bytes
        return PageError(
            f"the answer from {self._redact(url)} is larger than {limit:,} bytes once "
            "decompressed; zdevents stopped reading it (ZDEVENTS_MAX_PAGE_BYTES sets the limit)",
            url=self._redact(url),
        )

    def _judge(
        self,
        response: requests.Response,
        body: bytes,
        url: str,
        stream: Stream | None,
        too_recent_ok: bool,
    ) -> tuple[Failure | None, Envelope | None]:
        """(None, envelope) for a usable answer, (failure, None) to retry, or raise."""
        status = response.status_code
        if status == 429:
            self.stats.rate_limited += 1
        failure = retry_failure(response, url, self._now(), self.settings.max_retry_after)
        if failure is not None:
            return failure, None
        if not 200 <= status < 300:
            raise_for_status(
                response,
                url,
                base_url=self.base_url,
                redact=self._redact,
                too_recent_ok=too_recent_ok,
            )
        truncated = truncation(response, body)
        if truncated:
            return Failure("network", truncated, status), None
        if stream is None:
            return None, None
        try:
            return None, read_envelope(body, records_key=stream.records_key)
        except PageError as exc:
            return Failure("malformed", self._redact(str(exc)), status), None

    def _pace(self, not_before: float, reason: str) -> Slot:
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
                without_seconds(reason),
            )
            if self.on_wait is not None:
                self.on_wait(wait, reason)
            self._sleep(wait)
            self.stats.seconds_waited += wait
        return slot

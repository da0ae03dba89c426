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

Faults are injected with :meth:`LocalZendesk.inject` (or ``fail_next``, ``reset_next``...);
:mod:`zdevents.sample.faults` lists them. The request handling lives in
:mod:`zdevents.sample.routes`, the envelopes and pagination in :mod:`zdevents.sample.pages`.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterable, Iterator

from ..config import Settings
from ..streams import METRIC_EVENTS, TICKET_EVENTS, Stream
from .account import SampleAccount
from .faults import FAULT_KINDS, FaultInjection
from .handler import LoggedRequest, Server
from .pages import Datasets, keyed
from .routes import RateWindow, Routes

__all__ = ["FAULT_KINDS", "LocalZendesk", "LoggedRequest", "main"]


class LocalZendesk(FaultInjection):
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
    tcp_nodelay : bool
        Send each answer at once (``TCP_NODELAY``). The server writes the headers and the
        body separately: with Nagle's algorithm on (False) each answer waits ~40 ms for the
        client's delayed ACK, as some real networks do. Read by :meth:`start`.

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
        tcp_nodelay: bool = True,
    ) -> None:
        super().__init__()
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
        self.tcp_nodelay = tcp_nodelay
        self._port = port
        self.request_log: list[LoggedRequest] = []
        self._lock = threading.Lock()  # guards request_log
        self._datasets = Datasets(self._records)
        self._stopping = threading.Event()
        self._routes = Routes(self, self._datasets, RateWindow(), self._stopping)
        self._httpd: Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalZendesk:
        """Bind 127.0.0.1 and serve in a daemon thread (returns ``self``)."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = Server(
            ("127.0.0.1", self._port),
            answer=self._routes.answer,
            record=self._record,
            tcp_nodelay=self.tcp_nodelay,
        )
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
        self._datasets.get(METRIC_EVENTS, False)
        self._datasets.get(TICKET_EVENTS, False)

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
        return {rid for page in self.served_pages(stream) for rid in page}

    def served_pages(self, stream: str | Stream = "metric_events") -> list[list[int]]:
        """Ids of each 200 page of ``stream`` served so far, in order (empty pages too).

        Pages of every variant (``exclude_deleted``, ``include``, scope) are listed, each
        variant's in order; tests use one variant at a time.
        """
        return self._datasets.served_pages(stream if isinstance(stream, str) else stream.name)

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
        return len(self._datasets.get(s, bool(flag), scope))

    # ------------------------------------------------------------------ data
    def _records(self, stream: Stream, flag: bool, scope: str) -> Iterator[tuple[int, int, dict]]:
        """The keyed records of one variant (see :class:`~zdevents.sample.pages.Datasets`)."""
        explicit = self._explicit[stream.name]
        if explicit is not None:
            records: Iterator[tuple[int, int, dict]] = keyed(explicit)
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

    def _record(self, request: LoggedRequest) -> None:
        """Append an answered request to :attr:`request_log`."""
        with self._lock:
            self.request_log.append(request)


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

"""Faults the local Zendesk injects, and the fault-injection half of its API.

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

import email.utils
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from ..streams import METRIC_EVENTS, TICKET_EVENTS
from .handler import Handler, send, send_json, send_text
from .pages import TOO_RECENT

__all__ = [
    "BROKEN_FAULTS",
    "FAULT_KINDS",
    "Fault",
    "FaultInjection",
    "FaultQueue",
    "answer_fault",
    "send_broken",
]

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
"""Every kind of fault :meth:`FaultInjection.inject` accepts."""
BROKEN_FAULTS = ("reset", "truncated", "malformed")
"""Faults that damage a normal page on the wire (see :func:`send_broken`)."""
_HTML = (
    b"<!DOCTYPE html><html><head><title>Zendesk</title></head><body>"
    b"<h1>We'll be right back</h1><p>Zendesk is down for maintenance.</p></body></html>"
)


@dataclass
class Fault:
    """A queued fault: its kind, how many requests it still answers, for which stream."""

    kind: str
    remaining: int | None
    stream: str | None
    options: dict = field(default_factory=dict)
    after: int = 0  # matching requests to let through before the fault starts


class FaultQueue:
    """Faults waiting for their requests, oldest first (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()

    def add(self, fault: Fault) -> None:
        """Queue ``fault``."""
        with self._lock:
            self._faults.append(fault)

    def take(self, stream: str) -> Fault | None:
        """The fault that answers the next request of ``stream``, if any (counts it)."""
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

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[tuple[str, int | None, str | None]]:
        """Queued faults as ``(kind, remaining, stream)``."""
        with self._lock:
            return [(f.kind, f.remaining, f.stream) for f in self._faults]


class FaultInjection:
    """The fault-injection API of :class:`~zdevents.sample.server.LocalZendesk`.

    Attributes
    ----------
    faults : FaultQueue
        The faults queued for the next matching requests.
    """

    def __init__(self) -> None:
        self.faults = FaultQueue()

    def inject(
        self,
        kind: str,
        *,
        times: int | None = 1,
        stream: str | None = None,
        after: int = 0,
        **options: object,
    ) -> None:
        """Queue a fault for the next matching requests (see :mod:`zdevents.sample.faults`).

        Examples
        --------
        >>> from zdevents.sample import SampleAccount
        >>> from zdevents.sample.server import LocalZendesk
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
        self.faults.add(Fault(kind, times, stream, dict(options), after=after))

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
        self.faults.clear()

    def pending_faults(self) -> list[tuple[str, int | None, str | None]]:
        """Queued faults as ``(kind, remaining, stream)``."""
        return self.faults.pending()


def answer_fault(h: Handler, fault: Fault, stopping: threading.Event) -> int | None:
    """Answer a fault that replaces the response; None for faults that shape or damage the
    page (and for ``slow``, once it has waited - or as soon as ``stopping`` is set)."""
    kind, options = fault.kind, fault.options
    if kind == "slow":
        stopping.wait(float(options.get("seconds", 1.0)))
        return None
    if kind == "status":
        status = int(options.get("status", 500))
        headers = {}
        if options.get("retry_after") is not None:
            headers["Retry-After"] = str(options["retry_after"])
        if status in (502, 504):
            return send(
                h,
                status,
                b"<html><body><h1>%d Bad Gateway</h1></body></html>" % status,
                "text/html",
                headers,
            )
        return send_json(
            h, status, {"error": "InternalError", "description": "Something went wrong"}, headers
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
        return send_text(h, 429, "Too Many Requests", headers)
    if kind == "too_recent":
        return send_json(h, 422, TOO_RECENT)
    if kind == "html":
        return send(h, 200, _HTML, "text/html; charset=utf-8")
    return None  # loop / empty / foreign shape the page; reset / truncated / malformed break it


def send_broken(h: Handler, kind: str, body: bytes) -> int:
    """Answer 200 with a damaged page (``malformed``, ``truncated`` or ``reset``)."""
    half = body[: max(1, len(body) // 2)]
    if kind == "malformed":
        return send(h, 200, half, "application/json; charset=utf-8")
    h.record(200)
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

"""The HTTP plumbing of the local Zendesk: request handler, threaded server, answers, log.

:class:`Handler` hands every GET to the server's ``answer`` callable; :func:`send` (and
:func:`send_json`, :func:`send_text`) writes an answer and records the request in the log
first, as a :class:`LoggedRequest`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["ENCODE", "Handler", "LoggedRequest", "Server", "send", "send_json", "send_text"]

logger = logging.getLogger("zdevents.sample.server")  # the server's log, as before the split

ENCODE = json.JSONEncoder(separators=(",", ":")).encode
"""Compact JSON encoding, as Zendesk answers."""


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


class Handler(BaseHTTPRequestHandler):
    """Answers GET requests through the server's ``answer`` callable."""

    protocol_version = "HTTP/1.1"
    server_version = "LocalZendesk/1.0"
    server: Server
    entry: dict | None = None
    """What the log will say about the request being answered (None once logged)."""

    def setup(self) -> None:
        # headers and body go out as separate writes: without TCP_NODELAY each response
        # waits ~40 ms for the client's delayed ACK
        self.disable_nagle_algorithm = self.server.tcp_nodelay
        super().setup()

    def do_GET(self) -> None:
        self.server.answer(self)

    def record(self, status: int) -> None:
        """Log the request as answered with ``status`` (once; just before the answer)."""
        entry, self.entry = self.entry, None
        if entry is not None:
            self.server.record(LoggedRequest(status=status, time=time.time(), **entry))

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


class Server(ThreadingHTTPServer):
    """A threaded HTTP server whose requests go to ``answer`` and whose log goes to ``record``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        answer: Callable[[Handler], object],
        record: Callable[[LoggedRequest], object],
        tcp_nodelay: bool = True,
    ) -> None:
        self.answer = answer
        self.record = record
        self.tcp_nodelay = tcp_nodelay
        super().__init__(address, Handler)

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError | OSError):
            return
        logger.exception("LocalZendesk: error while answering %s", client_address)


def send(
    h: Handler, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> int:
    """Log the request, then answer ``status`` with ``body``; returns ``status``."""
    h.record(status)
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        h.send_header(name, value)
    h.end_headers()
    h.wfile.write(body)
    return status


def send_json(h: Handler, status: int, payload: dict, headers: dict[str, str] | None = None) -> int:
    """Answer ``status`` with ``payload`` as JSON."""
    return send(h, status, ENCODE(payload).encode(), "application/json; charset=utf-8", headers)


def send_text(h: Handler, status: int, text: str, headers: dict[str, str] | None = None) -> int:
    """Answer ``status`` with plain text."""
    return send(h, status, text.encode(), "text/plain; charset=utf-8", headers)

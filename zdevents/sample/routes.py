"""How the local Zendesk answers a request: routes, credentials, admin check, rate limit.

:class:`Routes` takes each GET from the handler and answers it in Zendesk's order: unknown
paths 404, then credentials (401), the admin check (403), an injected fault, the sliding
60-second rate limit (429 with ``Retry-After``), the parameters (400/422), then the page.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import threading
import time
from collections import deque
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from ..streams import METRIC_EVENTS, TICKET_EVENTS, Stream
from .faults import BROKEN_FAULTS, Fault, answer_fault, send_broken
from .handler import Handler, send, send_json, send_text
from .pages import (
    TOO_RECENT,
    BadRequest,
    Datasets,
    cursor_page,
    names_page,
    start_time_param,
    time_page,
)

if TYPE_CHECKING:
    from .server import LocalZendesk

__all__ = ["RateWindow", "Routes", "authorized"]

_STREAMS = {METRIC_EVENTS.path: METRIC_EVENTS, TICKET_EVENTS.path: TICKET_EVENTS}
_NAME_LISTS = ("/api/v2/groups", "/api/v2/brands")
_SCOPES = ("agent", "ai_agent", "all")
_JSON = "application/json; charset=utf-8"
_FORBIDDEN = {
    "error": "Forbidden",
    "description": "You do not have access to this page. Please contact the account "
    "owner of this help desk for further help.",
}


class Routes:
    """Answers requests for ``server`` from its ``datasets`` under its ``rate`` limit.

    The server's settings (credentials, ``admin``, ``now``, ``page_size``, end-of-stream
    flags, ``groups``, ``brands``) are read per request, so they can change while it runs.
    """

    def __init__(
        self,
        server: LocalZendesk,
        datasets: Datasets,
        rate: RateWindow,
        stopping: threading.Event,
    ) -> None:
        self.server = server
        self.datasets = datasets
        self.rate = rate
        self.stopping = stopping

    def answer(self, h: Handler) -> None:
        """Answer one GET (a request that fails unanswered is logged as a 500)."""
        parts = urlsplit(h.path)
        path = parts.path.removesuffix(".json")
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        stream = _STREAMS.get(path)
        h.entry = {
            "path": parts.path,
            "params": params,
            "has_auth": "Authorization" in h.headers,
            "stream": stream.name if stream else None,
            "fault": None,
        }
        try:
            self._route(h, stream, path, params)
        except BadRequest as error:
            send_json(h, error.status, error.payload)
        finally:
            if h.entry is not None:  # nothing was sent (an error): log it as a 500
                h.record(500)

    def _authorized(self, h: Handler) -> bool:
        server = self.server
        return authorized(
            h.headers.get("Authorization"),
            email=server.email,
            api_token=server.api_token,
            oauth_token=server.oauth_token,
            password=server.password,
        )

    def _route(self, h: Handler, stream: Stream | None, path: str, params: dict[str, str]) -> None:
        if stream is None and path in _NAME_LISTS:
            if not self._authorized(h):
                send_json(h, 401, {"error": "Couldn't authenticate you"})
                return
            kind = path.rsplit("/", 1)[-1]
            names = self.server.groups if kind == "groups" else self.server.brands
            send_json(h, 200, names_page(names, kind, params, self.server.url))
            return
        if stream is None:
            send_json(h, 404, {"error": "InvalidEndpoint", "description": "Not found"})
            return
        if not self._authorized(h):
            send_json(h, 401, {"error": "Couldn't authenticate you"})
            return
        if not self.server.admin:
            send_json(h, 403, _FORBIDDEN)
            return
        fault = self.server.faults.take(stream.name)
        kind = fault.kind if fault else None
        h.entry["fault"] = kind  # type: ignore[index]
        if fault is not None and answer_fault(h, fault, self.stopping) is not None:
            return
        limited = self.rate.check(self.server.requests_per_minute)
        if limited is not None:
            send_text(h, 429, "Too Many Requests", {"Retry-After": str(limited)})
            return
        body, cursor = self._page(stream, path, params, fault)
        if kind in BROKEN_FAULTS and not cursor:  # cursor pages go out whole
            send_broken(h, kind, body)  # type: ignore[arg-type]
        else:
            send(h, 200, body, _JSON, self.rate.headers(self.server.requests_per_minute))

    def _page(
        self, stream: Stream, path: str, params: dict[str, str], fault: Fault | None
    ) -> tuple[bytes, bool]:
        """The page a good request asks for, and whether it is a cursor page (raises
        :class:`BadRequest` for bad parameters)."""
        server = self.server
        kind = fault.kind if fault else None
        scope = params.get("support_type_scope", "agent")
        if stream is TICKET_EVENTS and scope not in _SCOPES:
            raise BadRequest(
                400,
                {
                    "error": "InvalidValue",
                    "description": f"support_type_scope must be one of: {', '.join(_SCOPES)}",
                },
            )
        cursor_mode = stream is METRIC_EVENTS and (
            "page[size]" in params or "page[after]" in params
        )
        now = server.now if server.now is not None else time.time()
        horizon = int(now) - 60
        if not (cursor_mode and "page[after]" in params):
            if start_time_param(params) > horizon:
                raise BadRequest(422, TOO_RECENT)
        if stream is METRIC_EVENTS:
            flag = params.get("exclude_deleted", "").lower() == "true"
        else:
            flag = params.get("include", "") == "comment_events"
        dataset = self.datasets.get(stream, flag, scope)
        if cursor_mode:
            page = cursor_page(
                self.datasets,
                dataset,
                base_url=server.url,
                path=path,
                params=params,
                horizon=horizon,
                kind=kind,
            )
            return page, True
        size = server.page_size
        if stream.per_page and "per_page" in params:
            try:
                size = max(1, min(1000, int(params["per_page"])))
            except ValueError:
                pass
        base_url = server.url
        if fault is not None and kind == "foreign":
            base_url = f"https://{fault.options.get('host', 'attacker.example')}"
        page = time_page(
            self.datasets,
            dataset,
            stream,
            base_url=base_url,
            path=path,
            params=params,
            start_time=start_time_param(params),
            horizon=horizon,
            size=size,
            end_of_stream=(
                server.ticket_end_of_stream
                if stream is TICKET_EVENTS
                else server.metric_end_of_stream
            ),
            kind=kind,
        )
        return page, False


class RateWindow:
    """A sliding 60-second request count (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._window: deque[float] = deque()

    def check(self, requests_per_minute: float | None) -> int | None:
        """Count this request; seconds to wait if it is over the limit (not counted then)."""
        if requests_per_minute is None:
            return None
        limit = max(1, int(requests_per_minute))
        now = time.monotonic()
        with self._lock:
            window = self._window
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= limit:
                return max(1, math.ceil(window[0] + 60 - now))
            window.append(now)
        return None

    def headers(self, requests_per_minute: float | None) -> dict[str, str]:
        """``X-Rate-Limit`` and ``X-Rate-Limit-Remaining`` (none without a limit)."""
        if requests_per_minute is None:
            return {}
        limit = max(1, int(requests_per_minute))
        with self._lock:
            remaining = max(0, limit - len(self._window))
        return {"X-Rate-Limit": str(limit), "X-Rate-Limit-Remaining": str(remaining)}


def authorized(
    header: str | None,
    *,
    email: str,
    api_token: str | None,
    oauth_token: str | None,
    password: str | None,
) -> bool:
    """Whether an ``Authorization`` header carries one of the accepted credentials:
    basic ``{email}/token:{api_token}``, basic ``{email}:{password}`` or bearer
    ``{oauth_token}`` (each only when set)."""
    if not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return oauth_token is not None and hmac.compare_digest(value, oauth_token)
    if scheme.lower() != "basic":
        return False
    try:
        user, sep, secret = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    if not sep:
        return False
    if api_token is not None and hmac.compare_digest(user, f"{email}/token"):
        return hmac.compare_digest(secret, api_token)
    if password is not None and hmac.compare_digest(user, email):
        return hmac.compare_digest(secret, password)
    return False

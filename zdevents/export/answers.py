"""What an answer (or its absence) means: the errors of :mod:`zdevents.errors` for a status,
a host that cannot be reached, a truncated body, and the final error after the retries.

Every message says what to do next and goes through the client's
:class:`~zdevents.export.redact.Redactor` (passed as ``redact``), so it never holds a secret.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from ..errors import (
    ApiError,
    AuthError,
    NotFound,
    PageError,
    PermissionDenied,
    RateLimited,
    ServerError,
)
from .pacing import parse_retry_after
from .redact import iso_time, origin_text, shorten

__all__ = [
    "RETRYABLE_STATUS",
    "Failure",
    "TooRecent",
    "causes",
    "final_error",
    "raise_for_status",
    "raise_if_unreachable",
    "retry_failure",
    "truncation",
]

RETRYABLE_STATUS = frozenset({408})
"""Statuses under 500 (besides 429) that are retried with a backoff."""

Redact = Callable[[str], str]


class Failure:
    """Why one attempt failed (for the wait and the final error).

    Attributes
    ----------
    kind : {"rate_limited", "server", "network", "malformed"}
    detail : str
        One line, secrets masked.
    status : int or None
    retry_after : float or None
        Seconds the server asked to wait.
    """

    __slots__ = ("detail", "kind", "retry_after", "status")

    def __init__(
        self, kind: str, detail: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.kind = kind
        self.detail = detail
        self.status = status
        self.retry_after = retry_after


class TooRecent(Exception):
    """422 'Too recent start_time': nothing newer yet."""


def causes(exc: BaseException) -> list[BaseException]:
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


def raise_if_unreachable(
    exc: BaseException, url: str, *, base_url: str, variable: str, answered: bool
) -> None:
    """A host that does not resolve (or refuses the first connection) fails at once.

    Retrying cannot help a typo in ZENDESK_SUBDOMAIN, and a refusal before any answer means
    nothing listens there. A refusal after answers (``answered``) is retried (a restart).
    ``variable`` is the setting that named the host (``ZENDESK_BASE_URL`` or
    ``ZENDESK_SUBDOMAIN``).
    """
    parts = urlsplit(base_url)
    host = parts.hostname or "?"
    chain = causes(exc)
    if any(isinstance(e, socket.gaierror | urllib3.exceptions.NameResolutionError) for e in chain):
        raise ServerError(
            f"cannot resolve {host}: check {variable} (no such host, or no network)",
            url=url,
        ) from None
    if not answered and any(isinstance(e, ConnectionRefusedError) for e in chain):
        port = parts.port or (443 if parts.scheme == "https" else 80)
        raise ServerError(
            f"cannot connect to {host}:{port} (connection refused): check "
            "ZENDESK_BASE_URL / ZENDESK_SUBDOMAIN",
            url=url,
        ) from None


def retry_failure(
    response: requests.Response, url: str, now: float, max_retry_after: float
) -> Failure | None:
    """The failure of a 429, 5xx or 408 answer (retried after its ``Retry-After``, if any).

    Returns None for any other status.

    Raises
    ------
    RateLimited, ServerError
        When the ``Retry-After`` is longer than ``max_retry_after`` seconds.
    """
    status = response.status_code
    if not (status == 429 or status >= 500 or status in RETRYABLE_STATUS):
        return None
    wait = parse_retry_after(response.headers.get("Retry-After"), now)
    if wait is not None and wait > max_retry_after:
        error = RateLimited if status == 429 else ServerError
        raise error(
            f"Zendesk answered HTTP {status} and asked to wait {wait:.0f} s (until "
            f"{iso_time(now + wait)}) before the next request to {url}; that is "
            f"longer than ZDEVENTS_MAX_RETRY_AFTER ({max_retry_after:g} s): run the fetch again "
            "after that, or raise ZDEVENTS_MAX_RETRY_AFTER",
            status=status,
            url=url,
        )
    if status == 429:
        return Failure("rate_limited", "HTTP 429", 429, wait)
    return Failure("server", f"HTTP {status}", status, wait)


def truncation(response: requests.Response, body: bytes) -> str | None:
    """``"truncated body (n of m bytes)"`` when an uncompressed body is shorter (or longer)
    than its ``Content-Length``, else None."""
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


def raise_for_status(
    response: requests.Response, url: str, *, base_url: str, redact: Redact, too_recent_ok: bool
) -> None:
    """Raise the error of a non-2xx answer that is not retried.

    Raises
    ------
    TooRecent
        422 "Too recent start_time" when ``too_recent_ok`` (the export has nothing newer).
    AuthError, PermissionDenied, NotFound, ApiError
        401, 403, 404, and any other status (redirects included: they are not followed).
    """
    status = response.status_code
    if status == 401:
        raise AuthError(
            f"Zendesk refused the credentials for {base_url}: check ZENDESK_EMAIL and "
            "ZENDESK_API_TOKEN (or ZENDESK_OAUTH_TOKEN)",
            status=401,
            url=url,
        )
    if status == 403:
        raise PermissionDenied(
            f"Zendesk denied access to {url} (HTTP 403): the incremental export endpoints "
            "need an admin's token; use the email and API token (or OAuth token) of an "
            f"admin of {base_url}",
            status=403,
            url=url,
        )
    if status == 404:
        raise NotFound(
            f"Zendesk has no {urlsplit(url).path} at {base_url} (HTTP 404): check "
            "ZENDESK_SUBDOMAIN / ZENDESK_BASE_URL",
            status=404,
            url=url,
        )
    if status == 422 and _too_recent(response.content) and too_recent_ok:
        raise TooRecent
    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        target = origin_text(location) if "://" in location else base_url
        raise ApiError(
            f"Zendesk redirected {url} to {redact(target)} (HTTP {status}); zdevents "
            "does not follow redirects: set ZENDESK_BASE_URL to the account's address",
            status=status,
            url=url,
        )
    excerpt = shorten(redact(response.content.decode("utf-8", "replace")), 200)
    raise ApiError(
        f"Zendesk answered HTTP {status} for {url}: {excerpt or '(empty body)'}",
        status=status,
        url=url,
    )


def _too_recent(body: bytes) -> bool:
    try:
        description = json.loads(body).get("description", "")
    except (ValueError, AttributeError):
        return b"Too recent start_time" in body
    return isinstance(description, str) and description.startswith("Too recent start_time")


def final_error(failure: Failure, url: str, attempts: int, redact: Redact) -> Exception:
    """The error raised when every attempt failed: RateLimited, PageError or ServerError."""
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    detail = redact(failure.detail)
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

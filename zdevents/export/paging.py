"""Walking an export's pages: time pagination, cursor pagination, and where each ends.

:class:`ExportPager` turns one request function (the client's paced, retried GET) into the
pages of an export, following ``end_time`` or ``links.next`` and applying the stopping
rules of ``zendesk-api.md`` (see :meth:`zdevents.export.client.Client.pages`). It refuses a
``next_page`` that points anywhere but the account's origin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from urllib.parse import urlencode, urlsplit

from ..errors import PageError
from ..streams import (
    METRIC_EVENTS,
    PAGINATION_MODES,
    SUPPORT_TYPE_SCOPES,
    TICKET_EVENTS,
    Stream,
)
from .answers import TooRecent
from .envelope import Envelope, Page, check_progress, read_cursor_page
from .redact import origin, origin_text

__all__ = ["NOT_BEFORE_NOW", "ExportPager", "export_query"]

log = logging.getLogger(__name__)

NOT_BEFORE_NOW = 60
"""Seconds: Zendesk withholds the newest minute; ``start_time`` is clamped to now minus this."""

Send = Callable[[str, "Stream | None"], tuple[bytes, "Envelope | None"]]


def export_query(
    stream: Stream,
    *,
    pagination: str = "time",
    include_comments: bool = False,
    exclude_deleted: bool = False,
    support_type_scope: str | None = None,
) -> dict[str, str]:
    """The query parameters of an export besides its position; options of the other
    stream are ignored (see :meth:`zdevents.export.client.Client.pages`).

    Raises
    ------
    ValueError
        For an unknown ``pagination`` or ``support_type_scope``, or cursor pagination of an
        export that has none.

    Examples
    --------
    >>> from zdevents.streams import TICKET_EVENTS
    >>> export_query(TICKET_EVENTS, include_comments=True, exclude_deleted=True)
    {'include': 'comment_events'}
    """
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
    query: dict[str, str] = {}
    if include_comments and stream.name == TICKET_EVENTS.name:
        query["include"] = "comment_events"
    if support_type_scope is not None and stream.name == TICKET_EVENTS.name:
        query["support_type_scope"] = support_type_scope
    if exclude_deleted and stream.name == METRIC_EVENTS.name:
        query["exclude_deleted"] = "true"
    return query


class ExportPager:
    """The pages of one account's exports, read through ``send``.

    Parameters
    ----------
    send : callable
        ``send(url, stream)`` -> ``(body, envelope)``: one paced, retried GET of a URL on
        the base URL; ``envelope`` is read when ``stream`` is given. Raises
        :class:`~zdevents.export.answers.TooRecent` for a 422 "Too recent start_time".
    base_url : str
        The account's address: credentials go nowhere else.
    redact : callable
        Masks secrets in texts (URLs of pages, messages).
    now : callable
        Unix time now (for the withheld last minute).
    """

    def __init__(
        self,
        send: Send,
        *,
        base_url: str,
        redact: Callable[[str], str],
        now: Callable[[], float],
    ) -> None:
        self._send = send
        self.base_url = base_url
        self._origin = origin(base_url)
        self._redact = redact
        self._now = now
        self._warned: set[str] = set()

    def pages(
        self,
        stream: Stream,
        start_time: int,
        *,
        query: dict[str, str],
        pagination: str = "time",
        after_cursor: str | None = None,
    ) -> Iterator[Page]:
        """The export's pages from ``start_time`` (clamped to now - 60 s, and to 0 at least)
        with the parameters ``query`` (see :func:`export_query`)."""
        if isinstance(start_time, bool) or not isinstance(start_time, int | float):
            raise TypeError(f"start_time must be Unix seconds (int), not {start_time!r}")
        cursor = max(0, min(int(start_time), int(self._now()) - NOT_BEFORE_NOW))
        if cursor != int(start_time):
            log.debug("start_time %s clamped to %s", start_time, cursor)
        if pagination == "cursor":
            yield from self.cursor_pages(stream, cursor, query, after_cursor)
        else:
            yield from self.time_pages(stream, cursor, query)

    def time_pages(self, stream: Stream, cursor: int, extra: dict[str, str]) -> Iterator[Page]:
        """``start_time``/``end_time`` pages from ``cursor`` until the stopping rules end it."""
        while True:
            url = f"{self.base_url}{stream.path}?{urlencode({'start_time': cursor, **extra})}"
            try:
                body, env = self._send(url, stream)
            except TooRecent:
                log.debug("start_time %s is too recent: nothing newer yet", cursor)
                return
            assert env is not None
            if env.next_page is not None:
                self.check_next_page(env.next_page, stream, url)
            last = self._is_last(stream, cursor, env, url)
            yield Page(
                url=self._redact(url),
                start_time=cursor,
                body=body,
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

    def cursor_pages(
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
                body, _ = self._send(url, None)
            except TooRecent:
                log.debug("start_time %s is too recent: nothing newer yet", cursor)
                return
            page = read_cursor_page(body, self._redact(url))
            newest = max([newest, *page.times])
            if page.next_url is not None:
                self.check_next_page(page.next_url, stream, url)
            after = page.after_cursor
            moved = after is not None and after != position
            if page.has_more and not moved:
                raise PageError(
                    f"the export's cursor did not move (meta.has_more true, meta.after_cursor "
                    f"{'missing' if after is None else 'repeated'}): Zendesk returned the same "
                    "page again; stopping instead of looping. Nothing was lost: the next fetch "
                    "resumes from the last stored position",
                    url=self._redact(url),
                )
            position = after if after is not None else position
            yield Page(
                url=self._redact(url),
                start_time=cursor,
                body=body,
                records_key=page.records_key,
                count=page.count,
                end_time=newest,
                end_of_stream=not page.has_more,
                next_page=page.next_url,
                last=not page.has_more,
                after_cursor=position,
            )
            if not page.has_more:
                return
            cursor = newest
            if page.next_url is not None:
                next_url = page.next_url
                url = next_url if "://" in next_url else f"{self.base_url}{next_url}"
            else:
                params["page[after]"] = position
                url = f"{self.base_url}{stream.path}?{urlencode(params)}"

    def _is_last(self, stream: Stream, cursor: int, env: Envelope, url: str) -> bool:
        advanced = check_progress(cursor, env, self._redact(url))
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
        return False

    def check_next_page(self, next_page: str, stream: Stream, url: str) -> None:
        """Refuse a ``next_page`` on another origin; warn when its path is another export's."""
        parts = urlsplit(next_page)
        if (parts.scheme or parts.netloc) and origin(next_page) != self._origin:
            raise PageError(
                f"the page's next_page points at {self._redact(origin_text(next_page))}, "
                f"not at the configured base URL {self.base_url}; zdevents sends credentials "
                "only there and stops. If that is the account's real address, set "
                "ZENDESK_BASE_URL to it",
                url=self._redact(url),
            )
        path = parts.path
        if not path.endswith(stream.path):
            log.warning(
                "next_page path %s differs from %s; using %s",
                self._redact(path),
                stream.path,
                stream.path,
            )

"""One exception tree for everything zdevents raises on purpose.

Catch :class:`ZdEventsError` to handle every expected failure::

    ZdEventsError
    +-- ConfigError          settings are missing or invalid (what to set is in the message)
    +-- ApiError             Zendesk answered with an error; carries ``status`` and ``url``
    |   +-- AuthError        401: the credentials were refused
    |   +-- PermissionDenied 403: the token is not an admin's
    |   +-- NotFound         404: wrong subdomain or base URL
    |   +-- RateLimited      429 after the retry budget was spent
    |   +-- ServerError      5xx / network failures after the retry budget was spent
    +-- PageError            a page could not be read (malformed JSON, wrong types, a loop)
    +-- CacheError           the local cache is unreadable or could not be written
        +-- CacheLocked      another fetch holds the lock of this stream

Messages never contain credentials: URLs are shown without query secrets and no header
is ever included.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthError",
    "CacheError",
    "CacheLocked",
    "ConfigError",
    "NotFound",
    "PageError",
    "PermissionDenied",
    "RateLimited",
    "ServerError",
    "ZdEventsError",
]


class ZdEventsError(Exception):
    """Base class of every error zdevents raises on purpose."""


class ConfigError(ZdEventsError, ValueError):
    """Settings are missing or invalid."""


class ApiError(ZdEventsError):
    """Zendesk answered with an error status.

    Attributes
    ----------
    status : int or None
        HTTP status, or None when no response arrived (network failure).
    url : str
        The URL requested (never carries credentials).
    """

    def __init__(self, message: str, *, status: int | None = None, url: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.url = url

    def __reduce__(self):  # keep status/url through pickling (multiprocessing, dask)
        return (_rebuild_api_error, (type(self), str(self), self.status, self.url))


def _rebuild_api_error(cls, message, status, url):
    return cls(message, status=status, url=url)


class AuthError(ApiError):
    """401: Zendesk refused the credentials."""


class PermissionDenied(ApiError):
    """403: the incremental exports need an admin's credentials."""


class NotFound(ApiError):
    """404: the subdomain or base URL does not point at a Zendesk account."""


class RateLimited(ApiError):
    """429 persisted after the retry budget was spent."""


class ServerError(ApiError):
    """5xx answers, timeouts or connection failures persisted after the retry budget."""


class PageError(ZdEventsError):
    """A page could not be read: malformed JSON, a field of the wrong type, or a cursor loop.

    Attributes
    ----------
    url : str
        The page's URL.
    """

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url

    def __reduce__(self):
        return (_rebuild_page_error, (type(self), str(self), self.url))


def _rebuild_page_error(cls, message, url):
    return cls(message, url=url)


class CacheError(ZdEventsError):
    """The local cache is unreadable or could not be written.

    Attributes
    ----------
    path : str
        The file or folder concerned.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self):
        return (_rebuild_cache_error, (type(self), str(self), self.path))


def _rebuild_cache_error(cls, message, path):
    return cls(message, path=path)


class CacheLocked(CacheError):
    """Another process is fetching this stream into this cache right now."""

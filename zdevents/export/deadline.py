"""One GET with an overall deadline and a bounded body: the watchdog and the session adapter.

Socket timeouts bound each read; a server that sends its status line, headers or body a byte
at a time never trips them. Here a request also has one overall deadline, from the first
byte sent to the last byte read: a :class:`Watchdog` thread shuts the sockets of the request
in flight down when it passes (the connections of a session mounted with
:class:`WatchedAdapter` report their sockets to it), and the body is read, and decompressed,
in chunks up to a size limit, so a compressed bomb cannot fill memory either.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

import requests
import requests.adapters
import requests.auth
import urllib3
import urllib3.connection
import urllib3.exceptions

__all__ = ["CHUNK", "DeadlineExceeded", "WatchedAdapter", "Watchdog", "get_within"]

CHUNK = 65536
"""Bytes read (and decoded) at a time."""


class DeadlineExceeded(Exception):
    """The request's overall deadline passed before its whole answer arrived."""


_IN_FLIGHT = threading.local()  # .watchdog: the watchdog of this thread's request in flight


class Watchdog:
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


class WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter (no retries) whose connections report their sockets to the
    watchdog of the request in flight."""

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def get_within(
    session: requests.Session,
    url: str,
    *,
    auth: requests.auth.AuthBase,
    timeout: float,
    max_bytes: int,
    watchdog: Watchdog | None,
    too_large: Callable[[], Exception],
) -> tuple[requests.Response, bytes]:
    """One GET (no redirects) with an overall deadline of ``timeout`` and a bounded body.

    ``timeout`` bounds each socket read; here it also bounds the whole body, read in chunks
    (and decompressed in chunks, at most ``max_bytes``), so a server that trickles bytes
    cannot hold the request open, nor a compressed bomb fill memory.

    Parameters
    ----------
    session : requests.Session
    url : str
    auth : requests.auth.AuthBase
    timeout : float
        Seconds, for each read and for the whole answer.
    max_bytes : int
        The largest body (once decompressed) read; more raises ``too_large()``.
    watchdog : Watchdog or None
        The watchdog of the session's connections; None (an injected session) checks the
        deadline between chunks only.
    too_large : callable
        Makes the error raised for a body over ``max_bytes``.

    Raises
    ------
    DeadlineExceeded
        When the deadline passed.
    requests.exceptions.RequestException, urllib3.exceptions.HTTPError
        As ``requests`` raises them.
    """
    deadline = time.monotonic() + timeout

    def read() -> tuple[requests.Response, bytes]:
        return _read(session, url, auth, timeout, deadline, max_bytes, too_large)

    if watchdog is None:  # an injected session: the deadline is checked between chunks
        return read()
    late = f"the answer took longer than the timeout of {timeout:g} s in all"
    watchdog.arm(deadline)
    _IN_FLIGHT.watchdog = watchdog
    try:
        answer = read()
        if watchdog.fired:  # the body ended because its socket was shut down
            raise DeadlineExceeded(late)
        return answer
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError):
        if watchdog.fired:
            raise DeadlineExceeded(late) from None
        raise
    finally:
        _IN_FLIGHT.watchdog = None
        watchdog.disarm()


def _read(
    session: requests.Session,
    url: str,
    auth: requests.auth.AuthBase,
    timeout: float,
    deadline: float,
    limit: int,
    too_large: Callable[[], Exception],
) -> tuple[requests.Response, bytes]:
    response = session.get(url, auth=auth, timeout=timeout, allow_redirects=False, stream=True)
    if response._content is not False:  # already read (a session that does not stream)
        body = response.content
        if len(body) > limit:
            raise too_large()
        return response, body
    raw = response.raw
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise DeadlineExceeded(
                    f"the answer took longer than the timeout of {timeout:g} s in all "
                    f"({size:,} bytes received)"
                )
            chunk = raw.read1(CHUNK, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise too_large()
            chunks.append(chunk)
    except BaseException:
        response.close()
        raise
    response.raw.release_conn()
    body = b"".join(chunks)
    response._content = body
    response._content_consumed = True
    return response, body

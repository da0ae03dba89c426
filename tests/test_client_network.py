"""The client against real sockets on 127.0.0.1: overall deadlines, body caps, unreachable hosts.

Each server here is a few lines of raw socket code, so the real requests/urllib3 stack is what
is tested (no fake session).
"""

from __future__ import annotations

import resource
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from zdevents import PageError, ServerError, Settings
from zdevents.export.client import Client

PAGE = b'{"ticket_metric_events":[],"count":0,"end_of_stream":true,"end_time":1700000000}'


@contextmanager
def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """Accept connections on 127.0.0.1 and let ``answer`` write whatever it likes."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.recv(65536)
                try:
                    answer(conn)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def gzip_of_zeros(mib: int) -> bytes:
    """A gzip body of ``mib`` MiB of zeros, built without holding them (identical blocks)."""
    chunk = b"\0" * (1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(chunk, crc)
    return (
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
        + block * mib
        + deflate.flush(zlib.Z_FINISH)
        + struct.pack("<II", crc, (mib << 20) & 0xFFFFFFFF)
    )


def settings(url: str, **overrides) -> Settings:
    values = dict(
        base_url=url,
        subdomain=None,
        email="a@x.test",
        api_token="tok",
        data_dir="/nonexistent/zd",
        requests_per_minute=10_000,
        max_retries=0,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.mark.slow
@pytest.mark.parametrize("trickled", ["body", "everything"])
def test_a_server_trickling_one_byte_at_a_time_cannot_beat_the_overall_timeout(trickled):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(
        PAGE
    )

    def trickle(conn: socket.socket) -> None:
        if trickled == "body":
            conn.sendall(head)
        for byte in PAGE if trickled == "body" else head + PAGE:
            conn.sendall(bytes([byte]))
            time.sleep(0.25)  # each read comes well within the per-read timeout

    with raw_server(trickle) as url:
        client = Client(settings(url, timeout=1.0))
        started = time.monotonic()
        with pytest.raises(ServerError, match="longer than the timeout of 1 s in all"):
            client.get("/api/v2/incremental/ticket_metric_events")
        assert time.monotonic() - started < 3  # the answer alone would take 20-40 s
        client.close()


@pytest.mark.slow
def test_the_deadline_does_not_cut_a_normal_answer():
    def answer(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(PAGE) + PAGE
        )

    with raw_server(answer) as url, Client(settings(url, timeout=1.0)) as client:
        for _ in range(3):  # well past one timeout in all: each request has its own deadline
            assert client.get("/api/v2/incremental/ticket_metric_events").content == PAGE
            time.sleep(0.4)


@pytest.mark.slow
def test_a_gzip_bomb_is_a_page_error_and_memory_stays_bounded():
    bomb = gzip_of_zeros(1024)  # 1 GiB of zeros in 1 MB
    assert len(bomb) < 2 * 1024 * 1024

    def answer(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb) + bomb
        )

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with raw_server(answer) as url:
        client = Client(settings(url, max_page_bytes=16 * 1024 * 1024))
        with pytest.raises(PageError, match="larger than 16,777,216 bytes once decompressed"):
            client.get("/api/v2/incremental/ticket_metric_events")
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < 200 * 1024, f"peak memory grew by {grown / 1024:.0f} MB"


def test_an_unresolvable_host_fails_at_once_naming_the_setting():
    # .invalid never resolves (RFC 6761); a subdomain would look up a real zendesk.com name
    client = Client(settings("https://zdevents-no-such-host.invalid", max_retries=6))
    started = time.monotonic()
    with pytest.raises(ServerError) as info:
        client.get("/api/v2/incremental/ticket_metric_events")
    assert time.monotonic() - started < 10
    assert str(info.value).startswith(
        "cannot resolve zdevents-no-such-host.invalid: check ZENDESK_BASE_URL"
    )
    assert client.stats.requests == 1 and client.stats.retries == 0


def test_a_refused_first_connection_fails_at_once():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    client = Client(settings(f"http://127.0.0.1:{port}", max_retries=6))
    started = time.monotonic()
    with pytest.raises(
        ServerError,
        match=rf"cannot connect to 127.0.0.1:{port} \(connection "
        r"refused\): check ZENDESK_BASE_URL",
    ):
        client.get("/api/v2/incremental/ticket_metric_events")
    assert time.monotonic() - started < 5
    assert client.stats.requests == 1

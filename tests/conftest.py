"""Shared test fixtures. The autouse guard keeps every test off the internet (loopback only)."""

from __future__ import annotations

import ipaddress
import socket

import pytest


def _loopback(address: object) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths, socketpairs
        return True
    host = str(address[0]).split("%")[0]
    if host in ("localhost", ""):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse socket connections to anything but 127.0.0.1 / ::1 / localhost."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(address: object) -> None:
        if not _loopback(address):
            raise ConnectionRefusedError(
                f"tests must not reach the internet (connect to {address!r})"
            )

    def connect(self: socket.socket, address: object) -> None:
        check(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        check(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture
def no_plt_show(monkeypatch: pytest.MonkeyPatch):
    """Fail a test whose library code calls ``plt.show()``; close the figures it leaves open."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def refuse(*args, **kwargs):
        raise AssertionError("library code called plt.show()")

    monkeypatch.setattr(plt, "show", refuse)
    before = set(plt.get_fignums())
    yield
    for num in set(plt.get_fignums()) - before:
        plt.close(num)

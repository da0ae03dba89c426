"""The local Zendesk of the benchmarks: a ``python -m zdevents.sample.server`` process of our own.

:func:`local_server` starts it on a free loopback port and stops it afterwards;
:func:`server_settings` gives zdevents settings pointing at it (also in a measured process,
which knows only its URL).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import REPO, BenchError, subprocess_env

# The local server's credentials (zdevents.sample.server.LocalZendesk defaults).
SERVER_EMAIL = "admin@sample.test"
SERVER_TOKEN = "sample-api-token"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_settings(
    url: str,
    data_dir: Path | str,
    *,
    requests_per_minute: float | None = None,
    **overrides: Any,
) -> Any:
    """zdevents Settings of the sample account served at ``url``, caching in ``data_dir``.

    ``data_dir`` is a folder or an object-store URL (``s3://bucket/prefix``);
    ``requests_per_minute`` None means no client-side limit.
    """
    from zdevents.config import Settings

    values: dict[str, Any] = {
        "subdomain": "sample",
        "email": SERVER_EMAIL,
        "api_token": SERVER_TOKEN,
        "base_url": url,
        "data_dir": data_dir,
        "requests_per_minute": requests_per_minute or 1_000_000,
        "timeout": 900,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Server:
    """A ``python -m zdevents.sample.server`` process of our own."""

    url: str
    process: subprocess.Popen
    tickets: int
    requests_per_minute: float | None
    started: float = field(default_factory=time.monotonic)

    def settings(self, data_dir: Path | str, **overrides: Any) -> Any:
        """zdevents Settings pointing at this server (its rate limit, if any)."""
        return server_settings(
            self.url, data_dir, requests_per_minute=self.requests_per_minute, **overrides
        )

    def warm_up(self) -> float:
        """Ask for the first page so the server builds its dataset; seconds it took.

        The request counts in the server's rate-limit window.
        """
        import requests

        start = time.monotonic()
        response = requests.get(
            f"{self.url}/api/v2/incremental/ticket_metric_events.json",
            params={"start_time": 0},
            auth=(f"{SERVER_EMAIL}/token", SERVER_TOKEN),
            timeout=1800,
        )
        response.raise_for_status()
        return time.monotonic() - start


@contextlib.contextmanager
def local_server(
    tickets: int, *, seed: int = 7, requests_per_minute: float | None = None
) -> Iterator[Server]:
    """Start ``python -m zdevents.sample.server`` in its own process; stop it afterwards."""
    port = free_port()
    args = [
        sys.executable, "-m", "zdevents.sample.server",
        "--tickets", str(tickets), "--seed", str(seed), "--port", str(port),
    ]  # fmt: skip
    if requests_per_minute is not None:
        args += ["--requests-per-minute", str(requests_per_minute)]
    process = subprocess.Popen(
        args,
        cwd=REPO,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise BenchError(f"the local server exited: {process.stderr.read()[-2000:]}")
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise BenchError("the local server did not start listening within 60 s")
            time.sleep(0.1)
        yield Server(f"http://127.0.0.1:{port}", process, tickets, requests_per_minute)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()

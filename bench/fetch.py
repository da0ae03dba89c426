"""Benchmark 4: ``zd.fetch`` through the local server, rate-limited and unlimited.

The server is ``python -m zdevents.sample.server`` in its own process; the fetch runs in a fresh
process of its own (``zd.fetch("metric_events", settings=...)``, the real client, normalise
and cache), so its peak RSS is the fetch's alone.

**Rate-limited.** Server and client both at ``--requests-per-minute 600``. The bound: the
server allows at most L = 600 requests in any sliding 60 s window, so requests ``i`` and
``i + L`` are at least 60 s apart, and the n-th request cannot be sent earlier than
``60 * floor((n - 1) / L)`` seconds after the first (a burst of L, then the next L when the
first ones leave the window, ...). That is the bound the wall time is compared with (goal:
within 5%, and zero 429s). It is reached only if every burst of L requests takes no time; a
client that spreads requests evenly (one every 60/L s) would need ``(n - 1) * 60 / L``.
``pages / limit`` (n/L minutes) is shown for reference. The ticket count is chosen so that n
is just above a multiple of L: the last, partial burst then takes only a few requests'
time, which the bound does not include.

Before the measured fetch the server is sent one warm-up request (it builds its pre-encoded
dataset on first use, which is not the client's time); that request counts in the server's
window, so the benchmark waits until it has left the window (``--size full``).

**Unlimited.** The whole big sample export (~5M events) fetched with no rate limit: wall time,
events/s and the fetch process's peak RSS (goal <= 400 MB), with the RSS sampled over time to
show it does not grow with pages.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import (
    Result,
    Size,
    Table,
    current_rss_mb,
    fmt_mb,
    fmt_rate,
    fmt_s,
    run_isolated,
    spread,
)
from bench.server import Server, local_server, server_settings

NAME = "fetch"
TITLE = "zd.fetch through the local server (rate-limited: wall vs bound; unlimited: peak RSS)"
RSS_GOAL_MB = 400.0
BOUND_GOAL = 1.05
UNLIMITED_RPM = 1_000_000


def fetch_worker(base_url: str, data_dir: str, requests_per_minute: float) -> dict[str, Any]:
    """``zd.fetch`` of the metric events, with the process's RSS sampled every 0.25 s."""
    import zdevents as zd

    settings = server_settings(
        base_url, data_dir, requests_per_minute=requests_per_minute, timeout=600
    )
    trace: list[tuple[float, float]] = []
    done = threading.Event()
    start = time.perf_counter()

    def sample() -> None:
        while not done.wait(0.25):
            trace.append((round(time.perf_counter() - start, 2), round(current_rss_mb(), 1)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = zd.fetch("metric_events", settings=settings, progress=False)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    return {
        "wall": wall,
        "seconds": result.seconds,
        "pages": result.pages,
        "requests": result.requests,
        "rate_limited": result.rate_limited,
        "seconds_waited": result.seconds_waited,
        "events_received": result.events_received,
        "new_events": result.new_events,
        "rows": result.rows,
        "rss_trace": trace,
    }


def sliding_window_bound(requests: int, limit: int, window: float = 60.0) -> float:
    """Least seconds from the first to the last of ``requests`` sends under the limit.

    Examples
    --------
    >>> sliding_window_bound(600, 600), sliding_window_bound(601, 600)
    (0.0, 60.0)
    >>> sliding_window_bound(1830, 600)
    180.0
    """
    return window * ((requests - 1) // limit) if requests > 0 else 0.0


def _rate_limited(size: Size, server: Server, folder: Path, result: Result) -> dict[str, Any]:
    limit = int(size.fetch_rpm)
    work = Path(tempfile.mkdtemp(prefix="fetch-limited-", dir=folder))
    try:
        sent = time.monotonic()
        build = server.warm_up()
        waited = 0.0
        if size.settle:  # let the warm-up request leave the server's 60 s window
            waited = max(0.0, 61.0 - (time.monotonic() - sent))
            time.sleep(waited)
        run_ = run_isolated(
            "bench.fetch:fetch_worker",
            base_url=server.url,
            data_dir=str(work),
            requests_per_minute=size.fetch_rpm,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = run_["requests"]
    bound = sliding_window_bound(n, limit)
    even = (n - 1) * 60.0 / size.fetch_rpm
    per_limit = n * 60.0 / size.fetch_rpm
    wall = run_["seconds"]
    ratio = wall / bound if bound > 0 else None
    table = Table(
        f"Rate-limited fetch ({size.fetch_tickets:,} sample tickets, server and client at "
        f"{limit}/min)",
        [
            "pages",
            "requests",
            "events",
            "wall",
            "bound 60*floor((n-1)/L)",
            "wall / bound",
            "evenly spaced (n-1)*60/L",
            "pages / limit",
            "429s",
            "peak RSS",
        ],
    )
    table.rows.append(
        [
            f"{run_['pages']:,}",
            f"{n:,}",
            f"{run_['events_received']:,}",
            fmt_s(wall),
            fmt_s(bound),
            "n/a" if ratio is None else f"{ratio:.3f}x",
            fmt_s(even),
            fmt_s(per_limit),
            str(run_["rate_limited"]),
            fmt_mb(run_["peak_rss_mb"]),
        ]
    )
    result.tables.append(table)
    result.ratio(
        "rate-limited fetch wall / sliding-window bound",
        ratio,
        f"<= {BOUND_GOAL:.2f}x",
        None if ratio is None else ratio <= BOUND_GOAL,
    )
    result.ratio(
        "429 answers received in the rate-limited fetch",
        run_["rate_limited"],
        "0",
        run_["rate_limited"] == 0,
        unit="",
    )
    result.notes.append(
        f"rate-limited: the server built its dataset in {build:.1f} s on the warm-up request "
        f"(not timed); waited {waited:.0f} s for that request to leave the window; the client "
        f"slept {run_['seconds_waited']:.1f} s for pacing"
    )
    if bound == 0:
        result.notes.append(
            "rate-limited: every request fits in one window (bound 0 s): "
            "the ratio needs more pages than the limit (--size full)"
        )
    return {"server_build_seconds": build, "waited": waited, **run_, "bound": bound}


def _unlimited(size: Size, server: Server, folder: Path, result: Result) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="fetch-unlimited-", dir=folder))
    try:
        build = server.warm_up()
        run_ = run_isolated(
            "bench.fetch:fetch_worker",
            base_url=server.url,
            data_dir=str(work),
            requests_per_minute=UNLIMITED_RPM,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = Table(
        f"Unlimited fetch of the whole sample export ({size.tickets:,} tickets)",
        [
            "pages",
            "events received",
            "unique rows",
            "wall",
            "events/s",
            "peak RSS",
            "RSS over time (s: MB)",
        ],
    )
    trace = run_["rss_trace"]
    picks = spread(trace, 6)
    table.rows.append(
        [
            f"{run_['pages']:,}",
            f"{run_['events_received']:,}",
            f"{run_['rows']:,}",
            fmt_s(run_["seconds"]),
            fmt_rate(run_["events_received"], run_["seconds"]),
            fmt_mb(run_["peak_rss_mb"]),
            ", ".join(f"{t:.0f}: {m:.0f}" for t, m in picks),
        ]
    )
    result.tables.append(table)
    events = run_["events_received"]
    label = f"{events / 1e6:.1f}M" if events >= 1e6 else f"{events / 1e3:.0f}k"
    result.ratio(
        f"peak RSS of the unlimited fetch of {label} events (whole process)",
        run_["peak_rss_mb"],
        f"<= {RSS_GOAL_MB:.0f} MB",
        run_["peak_rss_mb"] <= RSS_GOAL_MB,
        unit=" MB",
    )
    if len(trace) >= 10:
        tenth = max(m for _, m in trace[: max(1, len(trace) // 5)])
        rest = max(m for _, m in trace)
        result.ratio(
            "fetch RSS, peak of the whole fetch / peak of its first fifth",
            rest / tenth,
            "<= 1.10x (flat)",
            rest / tenth <= 1.10,
        )
    result.notes.append(
        f"unlimited: the server built its dataset in {build:.1f} s on the "
        "warm-up request (not timed)"
    )
    return {"server_build_seconds": build, **run_}


def run(size: Size, folder: Path) -> Result:
    result = Result(NAME, TITLE)
    # Both servers start together (their start-up overlaps); each builds its data on its
    # warm-up request, just before its own measurement.
    with (
        local_server(size.fetch_tickets, requests_per_minute=size.fetch_rpm) as limited,
        local_server(size.tickets) as unlimited,
    ):
        raw = {
            "rate_limited": _rate_limited(size, limited, folder, result),
            "unlimited": _unlimited(size, unlimited, folder, result),
        }
    result.raw = raw
    return result

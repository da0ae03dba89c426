"""The demo's data: the sample account served on 127.0.0.1 and fetched into a cache.

:func:`prepare_sample` fetches the sample through the real client; ``zd.run_demo`` (in
:mod:`zdevents.pipeline`, the floor that builds reports) adds the status, the report and
the deck, which is what ``zdevents demo`` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..config import Settings
from ..export.fetch import fetch
from ..export.names import fetch_names
from .account import SampleAccount
from .server import LocalZendesk

__all__ = ["prepare_sample"]


def prepare_sample(
    data_dir: str | Path = "data",
    *,
    tickets: int = 3000,
    seed: int = 7,
    progress: bool = False,
    echo: Callable[[str], object] | None = None,
    table_format: str = "delta",
) -> Settings:
    """Fetch the sample account into ``data_dir`` through the real client; return its settings.

    Serves :class:`~zdevents.sample.account.SampleAccount` on 127.0.0.1 for the duration and fetches
    both streams (ticket events with comments). A second call only asks for what is newer than
    the cursor (nothing). The returned settings name the ``sample`` account's cache and carry
    no credentials, so ``load_frame(settings=...)`` reads the cache (a Delta table, or the
    Parquet folder with ``table_format="parquet"``).

    Examples
    --------
    >>> settings = prepare_sample("data")  # doctest: +SKIP
    >>> events = zd.load_frame(settings=settings, refresh="never")  # doctest: +SKIP
    """
    account = SampleAccount(tickets=tickets, seed=seed)
    with LocalZendesk(account) as server:
        settings = server.settings(data_dir=Path(data_dir), table_format=table_format)
        if echo:
            echo(f"sample account ({tickets:,} tickets, seed {seed}) served at {server.url}")
        for stream in ("metric_events", "ticket_events"):
            result = fetch(
                stream,
                settings=settings,
                progress=progress,
                include_comments=stream == "ticket_events",
            )
            if echo:
                echo(str(result))
        fetch_names(settings)  # group and brand names, beside the exports
    return Settings(
        subdomain=settings.subdomain, data_dir=settings.data_dir, table_format=table_format
    )

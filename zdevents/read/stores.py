"""Which cache a read opens: the account resolved and the stream's store opened in one place.

The account is :func:`zdevents.config.resolve_account` (the configured one, or the only one
in the cache folder), as for the commands that only read the cache."""

from __future__ import annotations

import os
import sys

from ..config import Settings, resolve_account
from ..store import DeltaCache, open_store
from ..store.parquet import Cache
from ..streams import get_stream

__all__ = ["open_cache", "outside_package"]


def open_cache(
    stream: str = "metric_events", *, settings: Settings | None = None
) -> Cache | DeltaCache:
    """The cache of one stream of the configured account: a :class:`~zdevents.store.parquet.Cache`,
    or a :class:`~zdevents.store.DeltaCache` for a Delta table (see :func:`zdevents.store.open_store`).

    Examples
    --------
    >>> cache = open_cache("metric_events")  # doctest: +SKIP
    >>> cache.state().rows  # doctest: +SKIP
    712345
    """
    settings = settings if settings is not None else Settings.from_env()
    return open_store(
        settings.data_dir,
        resolve_account(settings),
        get_stream(stream).name,
        table_format=settings.table_format,
    )


def outside_package() -> int:
    """The ``stacklevel`` that attributes a warning to the first caller outside zdevents
    (the analyst's cell or script, not zdevents' own frames nor IPython's)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level

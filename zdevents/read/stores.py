"""Which cache a read opens: the account resolved and the stream's store opened in one place."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..config import Settings
from ..errors import ConfigError
from ..store import DeltaCache, open_store
from ..store.parquet import Cache
from ..streams import get_stream

__all__ = ["account_name", "open_cache", "outside_package"]


def account_name(settings: Settings) -> str:
    """The configured account, or the only account present in the cache folder.

    Raises
    ------
    ConfigError
        When no account is configured and the cache folder holds none, or several.
    """
    if settings.has_account:
        return settings.account
    root = Path(settings.data_dir)
    accounts = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if len(accounts) == 1:
        return accounts[0]
    if not accounts:
        raise ConfigError(
            f"no cached data in {root} and no Zendesk account configured: set "
            "ZENDESK_SUBDOMAIN, ZENDESK_EMAIL and ZENDESK_API_TOKEN (or run `zdevents demo` "
            "for the sample account)"
        )
    raise ConfigError(
        f"{root} holds several accounts ({', '.join(accounts)}): set ZENDESK_SUBDOMAIN to "
        "choose one"
    )


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
    return open_store(settings.data_dir, account_name(settings), get_stream(stream).name)


def outside_package() -> int:
    """The ``stacklevel`` that attributes a warning to the first caller outside zdevents
    (the analyst's cell or script, not zdevents' own frames nor IPython's)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level

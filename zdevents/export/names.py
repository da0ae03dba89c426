"""Names of the account's groups and brands, so tables and charts say "Billing", not 360001003.

Ticket events carry only ``group_id`` and ``brand_id``. :func:`fetch_names` reads Zendesk's
groups and brands lists (``GET /api/v2/groups``, ``GET /api/v2/brands``, the normal
paginated API) through :class:`zdevents.export.client.Client` and keeps them in a small JSON file
beside the exports (``<data dir>/<account>/names.json``). :func:`load_names` reads that file,
fetching it first when it is missing or older than a day and an account is configured.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..config import Settings, resolve_account
from ..errors import CacheError, ConfigError, ZdEventsError
from ..files import write_atomic

if TYPE_CHECKING:
    import requests

    from .client import Client

__all__ = ["NAMES_FILE", "Names", "fetch_names", "load_names"]

log = logging.getLogger(__name__)

#: The cache file's name, in the account's folder beside the stream folders.
NAMES_FILE = "names.json"
_LISTS = ("groups", "brands")
_PAGE_SIZE = 100
_MAX_AGE = 24 * 3600  # seconds before "auto" asks Zendesk again
_VERSION = 1


@dataclass(frozen=True)
class Names:
    """Group and brand names by id (empty when unknown).

    Attributes
    ----------
    groups, brands : dict of int to str
    fetched_at : float or None
        Unix time of the fetch the names come from.

    Examples
    --------
    >>> Names(groups={5: "Billing"}).groups[5]
    'Billing'
    """

    groups: dict[int, str] = field(default_factory=dict)
    brands: dict[int, str] = field(default_factory=dict)
    fetched_at: float | None = None

    def __bool__(self) -> bool:
        return bool(self.groups or self.brands)


def names_path(settings: Settings) -> Path:
    """``<data dir>/<account>/names.json`` for the settings' account."""
    return Path(settings.data_dir) / settings.account / NAMES_FILE


def _records(client: Client, kind: str) -> dict[int, str]:
    """Every ``{id: name}`` of one list, following cursor (``links.next``) or offset
    (``next_page``) pagination, whichever the answer uses."""
    out: dict[int, str] = {}
    url: str | None = f"/api/v2/{kind}"
    params: Mapping[str, object] | None = {"page[size]": _PAGE_SIZE}
    seen: set[str] = set()
    while url and url not in seen:
        seen.add(url)
        body = client.get(url, params).json()
        params = None  # the next URL carries its own parameters
        for record in body.get(kind) or []:
            if isinstance(record, dict) and isinstance(record.get("id"), int):
                out[record["id"]] = str(record.get("name") or record["id"])
        meta = body.get("meta") or {}
        if "has_more" in meta:
            url = (body.get("links") or {}).get("next") if meta.get("has_more") else None
        else:
            url = body.get("next_page")
    return out


def fetch_names(
    settings: Settings | None = None, *, session: requests.Session | None = None
) -> Names:
    """Fetch the groups and brands lists and write them to the cache file.

    Parameters
    ----------
    settings : Settings, optional
        Account and credentials (default: ``Settings.from_env()``).
    session : requests.Session, optional
        Passed to the client (tests point it at the local server).

    Returns
    -------
    Names

    Raises
    ------
    ConfigError, ApiError
        As for any request (no account, bad credentials, ...).

    Examples
    --------
    >>> names = fetch_names()  # doctest: +SKIP
    >>> names.groups  # doctest: +SKIP
    {360001001: 'Tier 1', ...}
    """
    from .client import Client

    settings = settings if settings is not None else Settings.from_env()
    with Client(settings, session=session) as client:
        lists = {kind: _records(client, kind) for kind in _LISTS}
    names = Names(groups=lists["groups"], brands=lists["brands"], fetched_at=time.time())
    _write(names_path(settings), names)
    log.info("fetched %d group and %d brand names", len(names.groups), len(names.brands))
    return names


def _write(path: Path, names: Names) -> None:
    """Write atomically: a temp file in the same folder, fsync, ``os.replace``."""
    payload = {
        "version": _VERSION,
        "fetched_at": names.fetched_at,
        "groups": {str(k): v for k, v in sorted(names.groups.items())},
        "brands": {str(k): v for k, v in sorted(names.brands.items())},
    }
    write_atomic(path, json.dumps(payload, indent=1, ensure_ascii=False).encode("utf-8"))


def _read(path: Path) -> Names | None:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        return Names(
            groups={int(k): str(v) for k, v in payload["groups"].items()},
            brands={int(k): str(v) for k, v in payload["brands"].items()},
            fetched_at=float(payload["fetched_at"]) if payload.get("fetched_at") else None,
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CacheError(
            f"cannot read {path} ({exc.__class__.__name__}): delete it and it is fetched again"
        ) from None


def load_names(
    *,
    settings: Settings | None = None,
    refresh: Literal["auto", "never", "force"] = "auto",
) -> Names:
    """Group and brand names of the account, from the cache file (fetched when needed).

    Parameters
    ----------
    settings : Settings, optional
        Default: ``Settings.from_env()``.
    refresh : {"auto", "never", "force"}
        ``"auto"`` fetches when the file is missing or more than a day old and an account
        with credentials is configured (a failed refresh keeps the file's names);
        ``"never"`` only reads; ``"force"`` always fetches.

    Returns
    -------
    Names
        Empty when nothing is cached and nothing could be fetched.

    Examples
    --------
    >>> names = load_names(settings=zd.prepare_sample("data"))  # doctest: +SKIP
    >>> targets = zd.attach_ticket_attributes(targets, changes, groups=names.groups,
    ...                                       brands=names.brands)  # doctest: +SKIP
    """
    if refresh not in ("auto", "never", "force"):
        raise ValueError(f"refresh must be 'auto', 'never' or 'force', not {refresh!r}")
    settings = settings if settings is not None else Settings.from_env()
    if not settings.has_account:
        if refresh == "force":
            settings.account  # noqa: B018 - raises ConfigError naming what to set
        # like load_frame: the only account in the cache folder (the demo's, say), read only
        try:
            account = resolve_account(settings)
        except ConfigError:  # no cached account, or several: nothing to read
            return Names()
        return _read(Path(settings.data_dir) / account / NAMES_FILE) or Names()
    path = names_path(settings)
    cached = _read(path)
    if refresh == "force":
        return fetch_names(settings)
    stale = cached is None or (time.time() - (cached.fetched_at or 0)) > _MAX_AGE
    if refresh == "auto" and stale and settings.has_credentials:
        try:
            return fetch_names(settings)
        except ConfigError:
            raise
        except ZdEventsError as exc:  # the cached names are still good
            if cached is None:
                raise
            log.info("could not refresh group and brand names (%s); using %s", exc, path)
    return cached if cached is not None else Names()

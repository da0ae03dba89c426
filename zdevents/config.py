"""Settings: where the account is, how to authenticate, where the cache lives.

Built from arguments, then the environment, then a ``.env`` file in the working folder
(arguments win). Nothing is read at import time.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError

__all__ = ["Settings", "resolve_account"]

_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_ENV = {
    "subdomain": "ZENDESK_SUBDOMAIN",
    "email": "ZENDESK_EMAIL",
    "api_token": "ZENDESK_API_TOKEN",
    "oauth_token": "ZENDESK_OAUTH_TOKEN",
    "password": "ZENDESK_PASSWORD",
    "base_url": "ZENDESK_BASE_URL",
    "data_dir": "ZDEVENTS_DATA_DIR",
    "requests_per_minute": "ZDEVENTS_REQUESTS_PER_MINUTE",
    "max_retry_after": "ZDEVENTS_MAX_RETRY_AFTER",
    "max_page_bytes": "ZDEVENTS_MAX_PAGE_BYTES",
    "table_format": "ZDEVENTS_TABLE_FORMAT",
}
TABLE_FORMATS = ("delta", "parquet")
"""The stores a local cache can be: a Delta Lake table (the default) or the Parquet folder."""
_SECRETS = ("api_token", "oauth_token", "password")
# What says where credentials go: they must come from the same place as the credentials.
_ADDRESS = ("subdomain", "base_url")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


LOCAL_DATA_DIR = Path("data")
"""The folder ``zdevents demo`` fills; the default cache root when it holds a cache."""


def holds_cache(folder: Path) -> bool:
    """True when ``folder`` holds a zdevents cache (``<account>/<stream>/state.json``, or a
    Delta table's ``_delta_log``)."""
    return any(
        any(folder.glob(f"*/{stream}/{marker}"))
        for stream in ("metric_events", "ticket_events")
        for marker in ("state.json", "_delta_log")
    )


def _default_data_dir() -> Path:
    """``./data`` when it holds a zdevents cache (as after the demo), else the user folder."""
    if holds_cache(LOCAL_DATA_DIR):
        return LOCAL_DATA_DIR.absolute()
    import platformdirs

    return Path(platformdirs.user_data_dir("zdevents", appauthor=False))


@dataclass(frozen=True)
class Settings:
    """Connection and cache settings (immutable).

    Parameters
    ----------
    subdomain : str, optional
        ``acme`` for ``https://acme.zendesk.com``. Names the account's cache folder.
    email : str, optional
        The admin's email, used with ``api_token`` (or the deprecated ``password``).
    api_token, oauth_token, password : str, optional
        Credentials. Never shown in reprs, logs, errors, state files or Parquet metadata.
    base_url : str, optional
        Overrides ``https://{subdomain}.zendesk.com``. Plain ``http`` only for loopback hosts.
    data_dir : path, optional
        Cache root. Default: ``ZDEVENTS_DATA_DIR``; else ``./data`` when it holds a
        zdevents cache (``zdevents demo`` puts the sample there, so commands run in the same
        folder find it); else the platform's user data folder for ``zdevents``.
    requests_per_minute : float
        Budget for the incremental exports (10; 30 with Zendesk's High Volume add-on).
    timeout : float
        Seconds one HTTP request may take in all (connecting, waiting, reading the whole
        body) before it is abandoned and retried: a server that sends a byte now and then
        cannot hold a request open longer.
    max_retries : int
        Retries of one request after 429, 5xx, timeouts and connection failures.
    max_retry_after : float
        Longest ``Retry-After`` (seconds) that a 429 or a 5xx answer may ask for: a longer
        one stops the fetch at once with a message saying when to run it again (600).
    max_page_bytes : int
        Largest page body, after decompression (256 MiB): a larger one is a ``PageError``,
        so a compressed bomb cannot exhaust memory.
    table_format : {"delta", "parquet"}
        The store of a local cache (``ZDEVENTS_TABLE_FORMAT``): ``"delta"`` (default), a Delta
        Lake table that other engines read directly (a Parquet cache folder found there is
        converted once, on first use); ``"parquet"`` keeps the Parquet cache folder. An
        object-store data dir is always a Delta table.

    Examples
    --------
    >>> s = Settings(subdomain="acme", email="a@acme.test", api_token="t0k3n")
    >>> s.url
    'https://acme.zendesk.com'
    >>> "t0k3n" in repr(s)
    False
    """

    subdomain: str | None = None
    email: str | None = None
    api_token: str | None = field(default=None, repr=False)
    oauth_token: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    base_url: str | None = None
    data_dir: Path = field(default_factory=_default_data_dir)
    requests_per_minute: float = 10.0
    timeout: float = 30.0
    max_retries: int = 6
    max_retry_after: float = 600.0
    max_page_bytes: int = 256 * 1024 * 1024
    table_format: str = "delta"

    def __post_init__(self) -> None:
        if self.subdomain is not None:
            sub = self.subdomain.strip().lower()
            if not _SUBDOMAIN.match(sub):
                raise ConfigError(
                    f"ZENDESK_SUBDOMAIN {self.subdomain!r} is not a subdomain: use the part before "
                    "'.zendesk.com', letters, digits and '-' only (e.g. 'acme')"
                )
            object.__setattr__(self, "subdomain", sub)
        if self.base_url is not None:
            object.__setattr__(self, "base_url", _check_base_url(self.base_url))
        token = self.oauth_token
        if token and not re.fullmatch(r"[\x21-\x7e]+", token):
            # it goes into an HTTP header as is (never shown: it is a secret)
            raise ConfigError(
                "ZENDESK_OAUTH_TOKEN must be printable ASCII without spaces; check that it "
                "was copied whole"
            )
        object.__setattr__(self, "data_dir", _check_data_dir(self.data_dir))
        rpm = _number(
            self.requests_per_minute, "ZDEVENTS_REQUESTS_PER_MINUTE", "requests_per_minute"
        )
        object.__setattr__(self, "requests_per_minute", rpm)
        object.__setattr__(self, "timeout", _number(self.timeout, "timeout", "timeout"))
        object.__setattr__(
            self,
            "max_retry_after",
            _number(self.max_retry_after, "ZDEVENTS_MAX_RETRY_AFTER", "max_retry_after", zero=True),
        )
        page = _number(self.max_page_bytes, "ZDEVENTS_MAX_PAGE_BYTES", "max_page_bytes")
        if page != int(page) or page < 1024:
            raise ConfigError(
                "ZDEVENTS_MAX_PAGE_BYTES must be a whole number of bytes, 1024 or more"
            )
        object.__setattr__(self, "max_page_bytes", int(page))
        form = str(self.table_format).strip().lower()
        if form not in TABLE_FORMATS:
            raise ConfigError(
                f"ZDEVENTS_TABLE_FORMAT {self.table_format!r} is not a table format: use "
                + " or ".join(repr(f) for f in TABLE_FORMATS)
            )
        object.__setattr__(self, "table_format", form)
        retries = self.max_retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"max_retries must be a whole number, 0 or more, not {retries!r}")

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRETS:
                if value is not None:
                    shown.append(f"{f.name}='***'")
                continue
            if value is not None:
                shown.append(f"{f.name}={str(value)!r}")
        return f"Settings({', '.join(shown)})"

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        dotenv: str | os.PathLike[str] | bool = True,
        **overrides,
    ) -> Settings:
        """Build settings from ``overrides``, then ``env`` (default ``os.environ``), then ``.env``.

        Parameters
        ----------
        env : mapping, optional
            Environment to read (default: ``os.environ``).
        dotenv : bool or path
            ``True`` reads ``.env`` in the working folder if present; a path reads that file;
            ``False`` reads none. The file never changes ``os.environ``.
        **overrides
            Field values; ``None`` values are ignored.

        Examples
        --------
        >>> s = Settings.from_env({"ZENDESK_SUBDOMAIN": "acme"}, dotenv=False, data_dir="/tmp/z")
        >>> s.subdomain, str(s.data_dir)
        ('acme', '/tmp/z')
        """
        values: dict[str, object] = {}
        origin: dict[str, str] = {}
        if dotenv:
            from dotenv import dotenv_values

            path = Path(".env") if dotenv is True else Path(dotenv)
            if path.is_file():
                found = {k: v for k, v in dotenv_values(path).items() if v}
                values.update(found)
                origin.update(dict.fromkeys(found, f"the .env file {path}"))
        source = os.environ if env is None else env
        from_source = {k: v for k, v in source.items() if v}
        values.update(from_source)
        origin.update(dict.fromkeys(from_source, "the environment"))
        kwargs: dict[str, object] = {}
        where: dict[str, tuple[str, str]] = {}  # field -> (what, which place)
        for name, var in _ENV.items():
            if var in values:
                kwargs[name] = values[var]
                where[name] = (f"{var} from {origin[var]}", origin[var])
        for name, value in overrides.items():
            if value is not None:
                kwargs[name] = value
                where[name] = (f"the argument {name}=", "arguments")
        unknown = set(kwargs) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        _one_source(where)
        return cls(**kwargs)  # type: ignore[arg-type]

    def with_(self, **changes) -> Settings:
        """A copy with some fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    # ------------------------------------------------------------------ derived
    @property
    def url(self) -> str:
        """The account's base URL (``base_url`` or ``https://{subdomain}.zendesk.com``).

        Raises
        ------
        ConfigError
            When neither a subdomain nor a base URL is set.
        """
        if self.base_url:
            return self.base_url
        if self.subdomain:
            return f"https://{self.subdomain}.zendesk.com"
        raise ConfigError(
            "no Zendesk account configured: set ZENDESK_SUBDOMAIN (e.g. 'acme' for "
            "acme.zendesk.com) or ZENDESK_BASE_URL"
        )

    @property
    def has_account(self) -> bool:
        """True when a subdomain or a base URL is set."""
        return bool(self.subdomain or self.base_url)

    @property
    def has_credentials(self) -> bool:
        """True when some complete set of credentials is present."""
        return bool(self.oauth_token or (self.email and (self.api_token or self.password)))

    @property
    def account(self) -> str:
        """Name of the account's folder in the cache: the subdomain, else the base URL's host."""
        if self.subdomain:
            return self.subdomain
        if self.base_url:
            parts = urlsplit(self.base_url)
            host = (parts.hostname or "local").lower()
            if ":" in host:  # IPv6: "::1" -> "ipv6-0-1" ("::" stands for zero groups)
                host = "ipv6-" + host.replace("::", "-0-").replace(":", "-").strip("-")
            return re.sub(r"[^a-z0-9.-]", "-", host)
        raise ConfigError(
            "no Zendesk account configured: set ZENDESK_SUBDOMAIN or ZENDESK_BASE_URL "
            "to say which account's cache to use"
        )

    def auth(self) -> tuple[str, str] | None:
        """Basic-auth pair for ``requests`` (None when an OAuth token is used or none is set)."""
        if self.oauth_token:
            return None
        if self.email and self.api_token:
            return (f"{self.email}/token", self.api_token)
        if self.email and self.password:
            return (self.email, self.password)
        return None

    def auth_headers(self) -> dict[str, str]:
        """Bearer header when an OAuth token is set, else an empty dict."""
        return {"Authorization": f"Bearer {self.oauth_token}"} if self.oauth_token else {}

    def require_credentials(self) -> None:
        """Raise :class:`ConfigError` naming what to set when no credentials are complete."""
        if self.has_credentials:
            return
        if self.email and not (self.api_token or self.password):
            raise ConfigError("ZENDESK_EMAIL is set but ZENDESK_API_TOKEN is not: set it")
        if (self.api_token or self.password) and not self.email:
            raise ConfigError("ZENDESK_API_TOKEN is set but ZENDESK_EMAIL is not: set it")
        raise ConfigError(
            "no Zendesk credentials: set ZENDESK_EMAIL and ZENDESK_API_TOKEN "
            "(or ZENDESK_OAUTH_TOKEN) for an admin of the account"
        )

    def secrets(self) -> tuple[str, ...]:
        """The secret values set (for scrubbing text before it is shown)."""
        return tuple(v for v in (getattr(self, n) for n in _SECRETS) if v)


def resolve_account(settings: Settings) -> str:
    """The configured account, or else the only account present in the cache folder.

    Commands that only read the cache (``status``, ``report``, ``cache migrate``...) need no
    account setting when the data folder holds one account's cache, as after ``zdevents demo``.

    Raises
    ------
    ConfigError
        When no account is configured and the folder holds none, or several.

    Examples
    --------
    >>> resolve_account(Settings(subdomain="acme", data_dir="/nonexistent"))
    'acme'
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


def _number(value: object, variable: str, name: str, *, zero: bool = False) -> float:
    """A finite number greater than 0 (or at least 0 with ``zero``), else a ConfigError."""
    what = "0 or more" if zero else "greater than 0"
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{variable} must be a number {what}, not {value!r}") from None
    if (
        isinstance(value, bool)
        or not math.isfinite(number)
        or number < 0
        or (number == 0 and not zero)
    ):
        raise ConfigError(f"{variable} must be a finite number {what}, not {value!r}")
    return number


def _one_source(where: Mapping[str, tuple[str, str]]) -> None:
    """Refuse credentials and an account address that come from different places.

    A ``.env`` in a cloned folder that sets ``ZENDESK_BASE_URL`` must not receive the token
    of the environment (or the other way round).
    """
    secrets = [where[n] for n in _SECRETS if n in where]
    address = [where[n] for n in _ADDRESS if n in where]
    if not secrets or not address:
        return
    if len({place for _, place in secrets + address}) > 1:
        raise ConfigError(
            f"the credentials ({', '.join(w for w, _ in secrets)}) and the account address "
            f"({', '.join(w for w, _ in address)}) come from different places; set them in "
            "one place (all in the environment, all in .env, or all as arguments) so the "
            "credentials go only to the account you chose"
        )


def _check_base_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"ZENDESK_BASE_URL {raw!r} is not a URL like https://acme.zendesk.com")
    if parts.username or parts.password:
        raise ConfigError("ZENDESK_BASE_URL must not contain credentials; use ZENDESK_EMAIL/TOKEN")
    if parts.query or parts.fragment:
        raise ConfigError(f"ZENDESK_BASE_URL {raw!r} must not have a query or fragment")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            "ZENDESK_BASE_URL must use https (plain http is accepted only for 127.0.0.1/localhost)"
        )
    return url


def _check_data_dir(value: object) -> Path:
    if value is None or str(value).strip() == "":
        raise ConfigError("ZDEVENTS_DATA_DIR is empty: give a folder path")
    text = str(value)
    if "\x00" in text:
        raise ConfigError("ZDEVENTS_DATA_DIR contains a NUL character")
    return Path(text).expanduser()

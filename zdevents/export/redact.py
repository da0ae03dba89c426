"""What messages, logs and saved pages may show: secrets masked, long texts cut, origins.

Credentials are sent only to the account's origin (scheme, host and port of the base URL);
every text that leaves the client (an error message, a log line, a page kept for inspection)
goes through :class:`Redactor` first, so a token never appears in it, whole or cut short.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from ..config import Settings

__all__ = ["Redactor", "iso_time", "origin", "origin_text", "secret_bytes", "shorten"]

SECRET_PREFIX = 4
"""The shortest cut-off secret prefix (followed by ``...``) that is still masked."""


class Redactor:
    """Masks an account's secrets in any text: as sent, URL-quoted, JSON-escaped, as the
    Basic-auth token, and cut short by an excerpt (``zd-SECRET-TOK...``).

    Parameters
    ----------
    settings : Settings
        Its :meth:`~zdevents.config.Settings.secrets` and email/token pair are masked.

    Examples
    --------
    >>> redact = Redactor(Settings(subdomain="acme", email="a@acme.test", api_token="t0k3n-xyz"))
    >>> redact("GET https://acme.zendesk.com/?token=t0k3n-xyz failed: t0k3n...")
    'GET https://acme.zendesk.com/?token=*** failed: ***...'
    """

    def __init__(self, settings: Settings) -> None:
        texts = set()
        for secret in settings.secrets():
            texts.update({secret, quote(secret, safe=""), json.dumps(secret)[1:-1]})
        pair = settings.auth()
        if pair is not None:
            texts.add(base64.b64encode(f"{pair[0]}:{pair[1]}".encode()).decode())
        # longest first, so a secret containing another is removed whole
        self._secrets = tuple(sorted((t for t in texts if t), key=len, reverse=True))

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
            # a secret cut short by an excerpt ("zd-SECRET-TOK...") is still a secret
            for keep in range(len(secret) - 1, min(SECRET_PREFIX, len(secret)) - 1, -1):
                text = text.replace(secret[:keep] + "...", "***...")
        return text

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"


def secret_bytes(settings: Settings) -> list[bytes]:
    """The secrets (and the Basic-auth token) as bytes, longest first, to mask in raw bodies.

    Examples
    --------
    >>> secret_bytes(Settings(subdomain="acme", oauth_token="abc"))
    [b'abc']
    """
    secrets = [s.encode() for s in settings.secrets()]
    pair = settings.auth()
    if pair is not None:
        secrets.append(base64.b64encode(f"{pair[0]}:{pair[1]}".encode()))
    return sorted(secrets, key=len, reverse=True)


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url``, lower-cased, the port made explicit: the key that
    decides where credentials may go.

    Examples
    --------
    >>> origin("https://ACME.zendesk.com/api/v2")
    'https://acme.zendesk.com:443'
    """
    parts = urlsplit(url)
    scheme = (parts.scheme or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme, -1)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def origin_text(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` as a message shows it (no path, no query).

    Examples
    --------
    >>> origin_text("http://127.0.0.1:8080/api/v2/x?start_time=0")
    'http://127.0.0.1:8080'
    """
    parts = urlsplit(url)
    host = parts.hostname or "?"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def shorten(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut to ``limit`` characters (ending in ``...`` when cut).

    Examples
    --------
    >>> shorten("a\\n  b " * 3, 8)
    'a b a...'
    """
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def iso_time(seconds: int | float) -> str:
    """Unix seconds as ``2024-01-02T03:04:05Z`` (or ``"a date beyond 9999"``).

    Examples
    --------
    >>> iso_time(1704164645)
    '2024-01-02T03:04:05Z'
    """
    try:
        return datetime.fromtimestamp(int(seconds), tz=UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return "a date beyond 9999"

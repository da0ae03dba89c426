"""Credentials -> request headers: Basic (email/token, UTF-8) or the OAuth bearer.

The headers are set by an auth object, which also keeps ``requests`` from replacing them
with ``~/.netrc`` credentials, and whose repr shows no secret.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

import requests
import requests.auth

from ..config import Settings

__all__ = ["HeaderAuth", "auth_for"]


class HeaderAuth(requests.auth.AuthBase):
    """Sets fixed headers on every request (``Authorization``).

    Examples
    --------
    >>> HeaderAuth({"Authorization": "Bearer abc"})
    HeaderAuth(***)
    """

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self._headers)
        return request

    def __repr__(self) -> str:
        return "HeaderAuth(***)"


def auth_for(settings: Settings) -> HeaderAuth:
    """The auth object of the settings' credentials.

    Email and API token (or password) become a Basic header encoded in UTF-8, so any
    password works (``requests`` would use Latin-1); otherwise the settings' own headers
    (the OAuth bearer).

    Examples
    --------
    >>> auth_for(Settings(subdomain="acme", email="a@acme.test", api_token="t"))
    HeaderAuth(***)
    """
    pair = settings.auth()
    if pair is None:
        return HeaderAuth(settings.auth_headers())
    token = base64.b64encode(f"{pair[0]}:{pair[1]}".encode()).decode("ascii")
    return HeaderAuth({"Authorization": f"Basic {token}"})

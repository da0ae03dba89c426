"""zdevents: Zendesk's incremental exports as cached, analysis-ready pandas data."""

from .config import Settings
from .errors import (
    ApiError,
    AuthError,
    CacheError,
    CacheLocked,
    ConfigError,
    NotFound,
    PageError,
    PermissionDenied,
    RateLimited,
    ServerError,
    ZdEventsError,
)

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AuthError",
    "CacheError",
    "CacheLocked",
    "ConfigError",
    "NotFound",
    "PageError",
    "PermissionDenied",
    "RateLimited",
    "ServerError",
    "Settings",
    "ZdEventsError",
    "__version__",
]

"""Frame engines for the analyses: narwhals, and the few engine quirks it does not hide.

``nw`` is narwhals' stable API (v2 where installed, else v1): every module that builds a
narwhals plan imports it from here, so their expressions and frames share one API version.
"""

from __future__ import annotations

import warnings
from typing import Any

try:  # narwhals >= 2 has the v2 stable API; fall back to v1 on older installs
    import narwhals.stable.v2 as nw
except ImportError:  # pragma: no cover - depends on the installed narwhals
    import narwhals.stable.v1 as nw  # type: ignore[no-redef]

__all__ = ["from_native", "is_dask", "nw"]


def from_native(frame: Any) -> Any:
    """``nw.from_native``, without narwhals' notice that Dask support moves to ``narwhals-dask``.

    That package is not published yet, so there is nothing a user could install; the
    notice would only reach analysts as noise on every Dask analysis.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Dask support is moving out of Narwhals", category=FutureWarning
        )
        return nw.from_native(frame)


def is_dask(frame: Any) -> bool:
    """Whether a narwhals frame wraps a Dask DataFrame."""
    return bool(frame.implementation.is_dask())

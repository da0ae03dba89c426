"""Where a Delta table lives: a local folder or an object-store URL (``s3://``, ``gs://``...)."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["Location", "is_object_store", "table_uri"]

_URL = re.compile(r"^(s3|s3a|gs|gcs|az|abfs|abfss)://?(?P<rest>.+)$")


def is_object_store(data_dir: object) -> bool:
    """True when ``data_dir`` names an object store (``s3://``, ``gs://``, ``az://``...).

    ``Path("s3://b/x")`` prints as ``s3:/b/x``; both spellings count.

    Examples
    --------
    >>> is_object_store("s3://bucket/zd"), is_object_store("/data/zd")
    (True, False)
    """
    return bool(_URL.match(str(data_dir).replace(os.sep, "/")))


def table_uri(data_dir: str | os.PathLike[str], account: str, stream: str) -> str:
    """The table location of one account's stream: a URL or an absolute local path.

    Examples
    --------
    >>> table_uri("s3://bucket/zd/", "acme", "metric_events")
    's3://bucket/zd/acme/metric_events'
    """
    text = str(data_dir).replace(os.sep, "/")
    match = _URL.match(text)
    if match:
        scheme = text.split(":", 1)[0]
        return f"{scheme}://{match.group('rest').strip('/')}/{account}/{stream}"
    return str(Path(data_dir).expanduser().absolute() / account / stream)


class Location(str):
    """An object-store location shown as its URL; ``/`` joins like a path.

    Examples
    --------
    >>> Location("s3://bucket/zd") / "acme"
    's3://bucket/zd/acme'
    """

    def __truediv__(self, other: str) -> Location:
        return Location(f"{self.rstrip('/')}/{other}")

    def is_dir(self) -> bool:
        """Always True: an object store has no folders to check."""
        return True

    def exists(self) -> bool:
        """Always True (see :meth:`is_dir`)."""
        return True

    def mkdir(self, *args: Any, **kwargs: Any) -> None:
        """Refused: only a local cache keeps files beside the table."""
        raise OSError(errno.EROFS, "only a local cache keeps files beside the table")

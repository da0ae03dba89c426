"""Writing a file so that readers see the old content or the new one, never a half-written file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["write_atomic"]


def write_atomic(
    path: str | os.PathLike[str],
    content: bytes | Callable[[BinaryIO], object],
    *,
    mode: int = 0o644,
) -> Path:
    """Write ``path`` through a temp file in the same folder, fsync, then ``os.replace``.

    Parameters
    ----------
    path : str or PathLike
        The file to write; its folder is created when missing.
    content : bytes or callable
        The bytes to write, or a function that writes them to the open binary file.
    mode : int
        Permission bits of the new file (``mkstemp`` would leave 0600; reports, charts
        and decks are meant to be shared).

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
    >>> write_atomic(target, b"hello").read_bytes()
    b'hello'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(content, bytes | bytearray):
                fh.write(content)
            else:
                content(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path

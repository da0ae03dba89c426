"""The writer's lock of one stream: a lock file beside the data, one writer at a time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import filelock

from ..errors import CacheError, CacheLocked

__all__ = ["WriteLock"]


class WriteLock:
    """A lock file held by the process that writes a stream's cache.

    Not thread-local: a fetch holds it and commits from its writer thread.

    Parameters
    ----------
    folder : Path
        The stream folder (created when the lock is taken).
    name : str
        The lock file's name in it.
    stream : str
        For the messages.
    released_hint : str
        Appended to the "another fetch is writing" message.

    Examples
    --------
    >>> import tempfile
    >>> lock = WriteLock(Path(tempfile.mkdtemp()), ".lock", "metric_events")
    >>> with lock.held():
    ...     lock.is_locked
    True
    """

    def __init__(self, folder: Path, name: str, stream: str, released_hint: str = "") -> None:
        self.folder = folder
        self.path = folder / name
        self.stream = stream
        self.released_hint = released_hint
        self._lock = filelock.FileLock(str(self.path), thread_local=False)

    @property
    def is_locked(self) -> bool:
        """True while this object holds the lock."""
        return self._lock.is_locked

    def acquire(self, timeout: float | None = 0, *, readonly_hint: str) -> None:
        """Take the lock (0: fail at once, None: wait forever).

        Raises
        ------
        CacheLocked
            When another process (or another lock object) holds it.
        CacheError
            When the folder cannot be created or written (``readonly_hint`` says what to do).
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(
                f"cannot create the cache folder {self.folder} ({exc.strerror or exc}): check "
                "ZDEVENTS_DATA_DIR",
                path=str(self.folder),
            ) from exc
        try:
            self._lock.acquire(timeout=-1 if timeout is None else timeout)
        except filelock.Timeout:
            raise CacheLocked(
                f"another zdevents fetch is writing {self.stream} in {self.folder}; wait for "
                "it to finish and try again, or use `zdevents fetch --wait SECONDS`"
                f"{self.released_hint}",
                path=str(self.path),
            ) from None
        except OSError as exc:  # a read-only folder or file system: filelock cannot open it
            raise CacheError(
                f"cannot write the cache folder {self.folder} ({exc.strerror or exc}): it is "
                f"read-only for this user; {readonly_hint}",
                path=str(self.folder),
            ) from None

    def release(self) -> None:
        """Let the lock go."""
        self._lock.release()

    @contextlib.contextmanager
    def held(self, timeout: float | None = 0, *, readonly_hint: str = "") -> Iterator[None]:
        """Hold the lock for a ``with`` block."""
        self.acquire(timeout, readonly_hint=readonly_hint)
        try:
            yield
        finally:
            self.release()

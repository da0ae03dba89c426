"""Reading a Delta table of the cache: one table version's state and its rows.

:class:`DeltaReader` is the read side of :class:`~zdevents.store.delta.DeltaCache` (which
adds the writer's lock, commits, repair and maintenance): it never waits for a writer and
never sees half a commit, since it reads only the files of one table version.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from .delta_files import DeltaFiles
from .delta_log import DeltaLog, DeltaState
from .layout import check_name
from .location import Location, is_object_store, table_uri
from .manifest import SCHEMA_VERSION, CacheState
from .ranges import Window
from .rows import STORAGE_SCHEMAS, conform
from .snapshot import Snapshot, StoreReads

__all__ = ["DeltaReader"]


class DeltaReader(StoreReads):
    """The versions of one account's stream table and reads of them (see ``DeltaCache``).

    Parameters
    ----------
    data_dir : path or URL
    account, stream : str
    folder : str, optional
        The table's folder name when it is not ``stream``.

    Examples
    --------
    >>> import tempfile
    >>> DeltaReader(tempfile.mkdtemp(), "acme", "metric_events").state().version is None
    True
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        account: str,
        stream: str,
        *,
        folder: str | None = None,
    ) -> None:
        self.account = check_name(account, "account")
        self.stream = check_name(stream, "stream")
        self.data_dir = data_dir
        # folder: the table under another folder name of the account (a migration builds
        # the table beside the Parquet folder, then swaps the two)
        self.uri = table_uri(data_dir, account, check_name(folder or stream, "folder"))
        self.remote = is_object_store(data_dir)
        self.dir: Path | Location = Location(self.uri) if self.remote else Path(self.uri)
        self._schema = STORAGE_SCHEMAS.get(stream)
        self._log = DeltaLog(self.uri, stream, self._schema)
        self._files = DeltaFiles(self._log, self.remote, self._conform)

    def __repr__(self) -> str:
        return f"DeltaReader({self.uri!r})"

    @property
    def schema(self) -> pa.Schema | None:
        """The Arrow storage schema of this stream (what :meth:`read` returns)."""
        return self._schema

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """The table's pyarrow file system and its root path on it (engines read with it)."""
        return self._log.filesystem()

    def _conform(self, table: pa.Table) -> pa.Table:
        return conform(table, self._schema, self.stream)

    # ------------------------------------------------------------------ state
    def state(self, *, version: int | None = None, as_of_commit: object = None) -> DeltaState:
        """The cache state at the latest table version (or at ``version`` / ``as_of_commit``).

        Raises
        ------
        CacheError
            When the table holds data files but no commit carries zdevents' state (written
            by another tool, or the log was truncated); the message gives the rebuild command.

        Examples
        --------
        >>> import tempfile
        >>> DeltaReader(tempfile.mkdtemp(), "acme", "metric_events").state().rows
        0
        """
        table = self._log.table(version, as_of_commit)
        if table is None:
            return DeltaState(schema_version=SCHEMA_VERSION, stream=self.stream, footers={})
        return self._log.state_of(table)

    def snapshot(self, *, version: int | None = None, as_of_commit: object = None) -> Snapshot:
        """One table version's state and reads bound to it (the latest by default).

        Examples
        --------
        >>> import tempfile
        >>> DeltaReader(tempfile.mkdtemp(), "acme", "metric_events").snapshot().version is None
        True
        """
        return Snapshot(self, self.state(version=version, as_of_commit=as_of_commit))

    # ------------------------------------------------------------------ read
    def files(
        self, since: object = None, until: object = None, *, version: int | None = None
    ) -> list[str]:
        """URIs (local: paths) of the data files of a version that may hold ``[since, until)``.

        Examples
        --------
        >>> import tempfile
        >>> DeltaReader(tempfile.mkdtemp(), "acme", "metric_events").files()
        []
        """
        state = self.state(version=version)
        return [f"{self.uri}/{p.path}" for p in self.parts(since, until, state=state)]

    def read(
        self,
        columns: list[str] | None = None,
        since: object = None,
        until: object = None,
        *,
        version: int | None = None,
        as_of_commit: object = None,
        state: DeltaState | None = None,
    ) -> pa.Table:
        """Read the rows with ``since <= time < until`` of one table version, ordered by time.

        Parameters
        ----------
        columns : list of str, optional
        since, until : time, optional
            Half-open range; naive values are UTC.
        version : int, optional
            The table version to read (default: the latest).
        as_of_commit : time, optional
            Read the version that was current at this time (naive: UTC).
        state : DeltaState, optional
            A snapshot already read (its version is read; overrides the two above).

        Raises
        ------
        CacheError
            When a data file is damaged or missing (named, with the refetch command).

        Examples
        --------
        >>> import tempfile
        >>> DeltaReader(tempfile.mkdtemp(), "acme", "metric_events").read().num_rows
        0
        """
        if state is None:
            state = self.state(version=version, as_of_commit=as_of_commit)
        return self.read_parts(state, columns, Window.of(since, until))

    def read_parts(self, state: CacheState, columns: list[str] | None, window: Window) -> pa.Table:
        """The rows in ``window`` of the files of ``state``'s version (see ``Snapshot.read``)."""
        return self._files.read_many(Snapshot(self, state).parts(window), columns, window)

    def size_bytes(self) -> int:
        """Bytes of the latest version's data files.

        Examples
        --------
        >>> import tempfile
        >>> DeltaReader(tempfile.mkdtemp(), "acme", "metric_events").size_bytes()
        0
        """
        return sum(p.size or 0 for p in self.state().files)

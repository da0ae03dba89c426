"""The part files of a Parquet cache: written durably, verified against the manifest, read.

Every data page carries a CRC32 (verified on read) and the manifest records each file's size
and the CRC32 of its footer, so a damaged file is an error, never a wrong number. Part files
carry only ``{"zdevents_schema_version": "1", "stream": ...}`` as metadata - no settings.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..errors import CacheError
from .manifest import PartFile, footer_crc32, fsync_dir, write_error
from .ranges import Window
from .rows import ORDER, ROW_GROUP_ROWS, dictionary_columns, time_range

__all__ = ["PARQUET_FORMAT", "PartFolder", "Vanished", "time_filter"]

PARQUET_FORMAT = ds.ParquetFileFormat(
    default_fragment_scan_options=ds.ParquetFragmentScanOptions(page_checksum_verification=True)
)
"""Dataset reads that verify every page's CRC32."""


class Vanished(Exception):
    """A listed part file is gone (a concurrent commit replaced it): read a newer snapshot."""

    def __init__(self, part: PartFile) -> None:
        super().__init__(part.path)
        self.part = part


class PartFolder:
    """The part files of one stream folder (``month=YYYY-MM/part-<uuid>.parquet``).

    Parameters
    ----------
    folder : Path
        The stream folder.
    stream : str
    schema : pyarrow.Schema or None
        The storage schema files are read with.
    """

    def __init__(self, folder: Path, stream: str, schema: pa.Schema | None) -> None:
        self.folder = folder
        self.stream = stream
        self.schema = schema
        # the last part this object wrote, as (path, table): the next commit's overlap check
        # and compaction read it from memory (part files never change once written)
        self._written: tuple[str, pa.Table | None] | None = None

    def write(self, table: pa.Table | Iterator[pa.Table], month: str) -> PartFile:
        """Write one part file from a table, or from a stream of time-ordered tables."""
        folder = self.folder / f"month={month}"
        name = f"part-{uuid.uuid4().hex}.parquet"
        tmp = folder / f".{name}.tmp"
        whole = table if isinstance(table, pa.Table) else None
        tables = iter([table]) if whole is not None else table
        rows, lo, hi = 0, None, None
        try:
            if not folder.exists():
                folder.mkdir(parents=True, exist_ok=True)
                fsync_dir(self.folder)
            with open(tmp, "w+b") as fh:
                writer = None
                try:
                    for piece in tables:
                        if writer is None:
                            writer = pq.ParquetWriter(
                                fh,
                                piece.schema,
                                compression="zstd",
                                use_dictionary=dictionary_columns(piece.schema),
                                write_page_checksum=True,
                            )
                        if not piece.num_rows:
                            continue
                        writer.write_table(piece, row_group_size=ROW_GROUP_ROWS)
                        first, last = time_range(piece)
                        rows += piece.num_rows
                        lo = first if lo is None else min(lo, first)
                        hi = last if hi is None else max(hi, last)
                finally:
                    if writer is not None:
                        writer.close()
                if writer is None or not rows:
                    raise ValueError("a part file needs at least one row")
                fh.flush()
                os.fsync(fh.fileno())
                size, crc = footer_crc32(fh)
            os.replace(tmp, folder / name)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, OSError):
                raise CacheError(
                    write_error(exc, f"a cache file in {folder}"), path=str(folder)
                ) from exc
            raise
        fsync_dir(folder)
        path = f"month={month}/{name}"
        self._written = (path, whole)
        return PartFile(path, month, rows, lo, hi, size, crc)

    def recent(self, part: PartFile, columns: list[str] | None = None) -> pa.Table:
        """:meth:`read`, served from memory when this object just wrote the file."""
        path, table = self._written or (None, None)
        if path == part.path and table is not None:
            return table if columns is None else table.select(columns)
        return self.read(part, columns)

    def read(self, part: PartFile, columns: list[str] | None = None) -> pa.Table:
        """One part file in full (verified); CacheError naming it when damaged or missing."""
        path = self.folder / part.path
        try:
            self.verify(part)
            return pq.read_table(
                path, columns=columns, schema=self.schema, page_checksum_verification=True
            )
        except FileNotFoundError:
            raise self.error(part, "is missing") from None
        except (OSError, pa.ArrowException) as exc:
            raise self.error(part, f"is damaged ({exc})") from None

    def verify(self, part: PartFile) -> None:
        """Check the file's size and footer against the manifest (FileNotFoundError if gone)."""
        if part.size is None or part.footer_crc32 is None:
            return  # written before the manifest recorded them: page checksums only
        try:
            with open(self.folder / part.path, "rb") as fh:
                found = footer_crc32(fh)
        except ValueError as exc:
            raise self.error(part, f"is damaged ({exc})") from None
        if found != (part.size, part.footer_crc32):
            raise self.error(
                part,
                f"is damaged: {found[0]} bytes and footer CRC32 {found[1]:08x}, but state.json "
                f"recorded {part.size} bytes and {part.footer_crc32:08x}",
            )

    def error(self, part: PartFile, problem: str) -> CacheError:
        """The error of a damaged or missing part, with the command that refetches its month."""
        path = self.folder / part.path
        return CacheError(
            f"the cache file {path} (month {part.month}) {problem}. Refetch that month: "
            f"zdevents fetch --stream {self.stream} --since {part.month}-01 --force",
            path=str(path),
        )

    def read_many(
        self, parts: list[PartFile], columns: list[str] | None, window: Window
    ) -> pa.Table:
        """The rows of ``parts`` inside ``window``, ordered by time.

        Raises
        ------
        Vanished
            When a listed file is gone (a concurrent commit replaced it).
        CacheError
            When a file is damaged.
        """
        schema = self.schema
        if not parts:
            base = schema.empty_table() if schema is not None else pa.table({})
            return base.select(columns) if columns is not None else base
        overlapping = any(b.min_time < a.max_time for a, b in zip(parts, parts[1:], strict=False))
        wanted = columns
        if overlapping and columns is not None:
            wanted = list(dict.fromkeys([*columns, "time", "id"]))
        for part in parts:
            try:
                self.verify(part)
            except FileNotFoundError:
                raise Vanished(part) from None
        paths = [str(self.folder / p.path) for p in parts]
        condition = time_filter(parts, window)
        try:
            dataset = ds.dataset(paths, format=PARQUET_FORMAT, schema=schema)
            table = dataset.to_table(columns=wanted, filter=condition)
        except (OSError, pa.ArrowException) as exc:
            self._diagnose(parts, exc)
            raise
        if overlapping:
            table = table.sort_by(ORDER)
            if columns is not None:
                table = table.select(columns)
        return table.replace_schema_metadata(None)

    def _diagnose(self, parts: list[PartFile], exc: BaseException) -> None:
        for part in parts:
            if not (self.folder / part.path).exists():
                raise Vanished(part) from None
        for part in parts:
            self.read(part)  # raises CacheError naming the damaged file
        raise CacheError(f"could not read the cache in {self.folder}: {exc}", path=str(self.folder))


def time_filter(parts: list[PartFile], window: Window) -> ds.Expression | None:
    """The row filter of ``window`` over ``parts`` (None where every part lies inside it)."""
    lo, hi = window.lo_ms, window.hi_ms
    # a bound every listed file lies inside needs no row filter (a whole month, say)
    if lo is not None and all(p.min_time >= lo for p in parts):
        lo = None
    if hi is not None and all(p.max_time < hi for p in parts):
        hi = None
    condition = None
    if lo is not None:
        condition = ds.field("time") >= pa.scalar(lo, pa.timestamp("ms", "UTC"))
    if hi is not None:
        upper = ds.field("time") < pa.scalar(hi, pa.timestamp("ms", "UTC"))
        condition = upper if condition is None else condition & upper
    return condition

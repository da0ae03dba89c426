"""The data files of a Delta table: written by pyarrow with page checksums, verified, read.

Each file's size is in the table's log and its footer CRC32 in zdevents' commit metadata, so
a damaged file is an error naming it (and the refetch command), never a wrong number.

A writer keeps the rows of the files its last commit wrote in memory (:meth:`DeltaFiles.recent`):
the next commit's first rows usually repeat the last ones (page boundaries), and comparing
them needs those files, which it then does not read back from storage.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
import zlib
from collections.abc import Callable

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..errors import CacheError
from . import compaction
from .delta_log import DeltaLog, delta_type, short, to_delta_types, write_message
from .manifest import PartFile
from .parts import PARQUET_FORMAT, time_filter
from .ranges import Window
from .rows import (
    ORDER,
    ROW_GROUP_ROWS,
    Merged,
    dictionary_columns,
    is_time_ordered,
    time_range,
)

__all__ = ["DeltaFiles", "file_schema", "read_format"]

log = logging.getLogger(__name__)


def file_schema(schema: pa.Schema) -> pa.Schema:
    """What the data files of a table of ``schema`` read as with :func:`read_format`.

    Delta's types (:func:`~zdevents.store.delta_log.delta_type`: microsecond times, strings),
    except that the dictionary columns of ``schema`` stay dictionaries: Parquet's dictionary
    pages are read straight into them, where casting the strings back would hash every value.

    Examples
    --------
    >>> from zdevents.schema import METRIC_EVENTS_SCHEMA
    >>> read = file_schema(METRIC_EVENTS_SCHEMA)
    >>> str(read.field("metric").type), str(read.field("time").type)
    ('dictionary<values=string, indices=int32, ordered=0>', 'timestamp[us, tz=UTC]')
    """
    return pa.schema(
        [f if pa.types.is_dictionary(f.type) else f.with_type(delta_type(f.type)) for f in schema]
    )


def read_format(schema: pa.Schema) -> ds.ParquetFileFormat:
    """The Parquet format that reads ``schema``'s dictionary columns as dictionaries and
    verifies every page's CRC32 (the files are written with page checksums)."""
    dictionaries = [f.name for f in schema if pa.types.is_dictionary(f.type)]
    return ds.ParquetFileFormat(
        read_options=ds.ParquetReadOptions(dictionary_columns=dictionaries),
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(
            page_checksum_verification=True
        ),
    )


class DeltaFiles:
    """Reads and writes the data files of the table ``log`` describes.

    Parameters
    ----------
    log : DeltaLog
    remote : bool
        True on object storage (no folders to create).
    conform : callable
        Checks and casts a table to the stream's storage schema.
    """

    def __init__(
        self, log: DeltaLog, remote: bool, conform: Callable[[pa.Table], pa.Table]
    ) -> None:
        self.log = log
        self.remote = remote
        self.conform = conform
        # {path: rows} of the files written by this writer: by the commit under way, and by
        # its last commit (those still live); see recent()
        self._fresh: dict[str, pa.Table] = {}
        self._kept: dict[str, pa.Table] = {}

    @property
    def uri(self) -> str:
        return self.log.uri

    def write(self, table: pa.Table, month: str, footers: dict, *, keep: bool = False) -> PartFile:
        """Write one data file (pyarrow, page checksums) and record its footer CRC32.

        ``keep``: also keep its rows in memory for :meth:`recent` (see :meth:`settle`).
        """
        fs, root = self.log.filesystem()
        path = f"month={month}/part-{uuid.uuid4().hex}.parquet"
        table = self.conform(table)
        if not is_time_ordered(table):
            table = table.sort_by(ORDER)
        sink = pa.BufferOutputStream()
        pq.write_table(
            to_delta_types(table),
            sink,
            compression="zstd",
            row_group_size=ROW_GROUP_ROWS,
            use_dictionary=dictionary_columns(table.schema),
            write_page_checksum=True,
            write_statistics=True,
        )
        data = sink.getvalue()
        try:
            if not self.remote:
                fs.create_dir(f"{root}/month={month}", recursive=True)
            with fs.open_output_stream(f"{root}/{path}") as out:
                out.write(data)
        except (OSError, pa.ArrowException) as exc:
            with contextlib.suppress(Exception):
                fs.delete_file(f"{root}/{path}")
            raise CacheError(write_message(exc, f"{self.uri}/{path}"), path=self.uri) from None
        size = data.size
        length = int.from_bytes(data[size - 8 : size - 4].to_pybytes(), "little")
        crc = zlib.crc32(data[size - 8 - length :].to_pybytes())
        footers[path] = crc
        if keep:
            self._fresh[path] = table
        lo, hi = time_range(table)
        return PartFile(path, month, table.num_rows, lo, hi, size, crc)

    def recent(self, part: PartFile, columns: list[str] | None = None) -> pa.Table:
        """:meth:`read`, from memory when this writer wrote the file in its commit under way
        or its last one (the rows it wrote: what reading the file back gives)."""
        table = self._fresh.get(part.path)
        if table is None:
            table = self._kept.get(part.path)
        if table is None:
            return self.read(part, columns)
        return table.select(columns) if columns is not None else table

    def settle(self, live: set[str]) -> None:
        """The commit under way landed: keep the rows of its files in ``live`` (only)."""
        self._kept = {path: rows for path, rows in self._fresh.items() if path in live}
        self._fresh = {}

    def forget(self) -> None:
        """Keep no rows in memory (the writer's session ended, or its commit failed)."""
        self._fresh = {}
        self._kept = {}

    def compact(self, merged: Merged, month: str, footers: dict) -> None:
        """Merge the small files of ``month`` in ``merged`` into one when there are too many.

        The merged file's rows are not kept in memory (it can be large); the small files
        this writer just wrote are read from memory.
        """
        small = [
            p for p in merged.files if p.month == month and p.rows < compaction.SMALL_PART_ROWS
        ]
        if len(small) <= compaction.MAX_PARTS_PER_MONTH:
            return
        rows = pa.concat_tables([self.recent(p) for p in small]).sort_by(ORDER)
        made = self.write(rows, month, footers)
        log.debug("compacted %d files of %s into 1", len(small), month)
        merged.files = [p for p in merged.files if p not in small] + [made]
        merged.written.append(made)
        merged.removed += small

    def discard(self, parts: list[PartFile]) -> None:
        """Delete data files this writer made but never committed (best effort)."""
        self.forget()
        fs, root = self.log.filesystem()
        for part in parts:
            with contextlib.suppress(Exception):
                fs.delete_file(f"{root}/{part.path}")

    def read(self, part: PartFile, columns: list[str] | None = None) -> pa.Table:
        """One data file in full (verified), in the storage schema."""
        fs, root = self.log.filesystem()
        schema = self.log.schema
        self.verify(part)
        try:
            with fs.open_input_file(f"{root}/{part.path}") as fh:
                table = pq.read_table(fh, columns=columns, page_checksum_verification=True)
            if schema is not None:
                wanted = (
                    schema if columns is None else pa.schema([schema.field(c) for c in columns])
                )
                table = table.select(wanted.names).cast(wanted)
            return table
        except FileNotFoundError:
            raise self.error(part, "is missing") from None
        except (OSError, pa.ArrowException) as exc:
            raise self.error(part, f"is damaged ({short(exc)})") from None

    def verify(self, part: PartFile) -> None:
        """Check the file's size (and footer CRC32 when recorded) against the table's log."""
        fs, root = self.log.filesystem()
        try:
            with fs.open_input_file(f"{root}/{part.path}") as fh:
                size = fh.size()
                if part.footer_crc32 is None or size != part.size:
                    found = (size, None)
                else:
                    fh.seek(size - 8)
                    tail = fh.read(8)
                    length = int.from_bytes(tail[:4], "little")
                    if tail[4:] != b"PAR1" or length + 12 > size:
                        raise ValueError("no Parquet footer at its end (truncated?)")
                    fh.seek(size - 8 - length)
                    found = (size, zlib.crc32(fh.read(length + 8)))
        except FileNotFoundError:
            raise self.error(part, "is listed but missing") from None
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise self.error(part, f"is damaged ({short(exc)})") from None
        if part.size is not None and found[0] != part.size:
            raise self.error(
                part, f"is damaged: {found[0]} bytes, but the table recorded {part.size}"
            )
        if part.footer_crc32 is not None and found[1] != part.footer_crc32:
            raise self.error(
                part,
                f"is damaged: footer CRC32 {found[1]:08x}, but the table recorded "
                f"{part.footer_crc32:08x}",
            )

    def error(self, part: PartFile, problem: str) -> CacheError:
        """The error of a damaged or missing file, with the command that refetches its month."""
        return CacheError(
            f"the cache file {self.uri}/{part.path} (month {part.month}) {problem}. Refetch "
            f"that month: zdevents fetch --stream {self.log.stream} --since {part.month}-01 "
            "--force",
            path=f"{self.uri}/{part.path}",
        )

    def read_many(
        self, parts: list[PartFile], columns: list[str] | None, window: Window
    ) -> pa.Table:
        """The rows of ``parts`` inside ``window``, ordered by time."""
        schema = self.log.schema
        if not parts:
            base = schema.empty_table() if schema is not None else pa.table({})
            return base.select(columns) if columns is not None else base
        for part in parts:
            self.verify(part)
        condition = time_filter(parts, window)
        overlapping = any(b.min_time < a.max_time for a, b in zip(parts, parts[1:], strict=False))
        fs, root = self.log.filesystem()
        try:
            dataset = ds.dataset(
                [f"{root}/{p.path}" for p in parts],
                format=read_format(schema) if schema is not None else PARQUET_FORMAT,
                schema=file_schema(schema) if schema is not None else None,
                filesystem=fs,
            )
            table = dataset.to_table(columns=columns, filter=condition)
        except (OSError, pa.ArrowException) as exc:
            for part in parts:
                self.read(part)  # names the damaged file
            raise CacheError(f"could not read the table {self.uri}: {short(exc)}") from None
        if schema is not None:  # to the storage schema: only the times change (us to ms)
            table = table.cast(pa.schema([schema.field(name) for name in table.column_names]))
        if overlapping and (columns is None or {"time", "id"} <= set(columns)):
            table = table.sort_by(ORDER)
        return table.replace_schema_metadata(None)

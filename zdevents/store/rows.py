"""Rows as both stores keep them: the storage schema, keep-last by ``id``, (time, id) order.

An event's time never changes, so only the parts of its month whose time range holds it can
hold an older copy of its ``id``: :func:`merge_rows` reads just those, drops identical
repeats (Zendesk repeats rows at page boundaries) and replaces changed rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..schema import METRIC_EVENTS_SCHEMA, TICKET_EVENTS_SCHEMA
from .manifest import SCHEMA_VERSION, PartFile

__all__ = [
    "ORDER",
    "ROW_GROUP_ROWS",
    "STORAGE_SCHEMAS",
    "Merged",
    "conform",
    "dedupe_keep_last",
    "dictionary_columns",
    "is_time_ordered",
    "merge_rows",
    "same_rows",
    "split_by_month",
    "time_ms",
    "time_range",
]

ROW_GROUP_ROWS = 128 * 1024
STORAGE_SCHEMAS = {"metric_events": METRIC_EVENTS_SCHEMA, "ticket_events": TICKET_EVENTS_SCHEMA}
"""The Arrow storage schema of each stream zdevents knows."""
ORDER = [("time", "ascending"), ("id", "ascending")]
"""The order of the rows in every part file."""


def conform(table: pa.Table, schema: pa.Schema | None, stream: str) -> pa.Table:
    """``table`` checked and cast to the stream's storage schema, with zdevents' metadata.

    Raises
    ------
    TypeError, ValueError
        When it is not a table, lacks ``id``/``time`` (or has nulls there) or does not fit.
    """
    if not isinstance(table, pa.Table):
        raise TypeError(f"commit() needs a pyarrow.Table, not {type(table).__name__}")
    missing = {"id", "time"} - set(table.column_names)
    if missing:
        raise ValueError(f"the table has no {', '.join(sorted(missing))} column")
    if schema is not None:
        try:
            table = table.select(schema.names).cast(schema)
        except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
            raise ValueError(f"the table does not fit the {stream} schema: {exc}") from exc
    for name in ("id", "time"):
        if table[name].null_count:
            raise ValueError(f"the table has rows without {name!r}")
    if not pa.types.is_timestamp(table.schema.field("time").type):
        raise ValueError("the table's time column is not a timestamp")
    metadata = {"zdevents_schema_version": str(SCHEMA_VERSION), "stream": stream}
    return table.replace_schema_metadata(metadata)


@dataclass
class Merged:
    """What :func:`merge_rows` did: the parts now listed, the ones written and removed."""

    files: list[PartFile]
    written: list[PartFile] = field(default_factory=list)
    removed: list[PartFile] = field(default_factory=list)
    replaced_rows: int = 0


def merge_rows(
    out: Merged,
    table: pa.Table,
    read: Callable[..., pa.Table],
    write: Callable[[pa.Table, str], PartFile],
) -> Merged:
    """Add the rows of a deduped, time-ordered ``table`` to ``out.files``, keep-last by ``id``.

    ``read(part, columns=None)`` reads a listed part; ``write(table, month)`` writes a new
    one. Parts that hold a changed copy of an incoming row are rewritten without it (and
    listed in ``out.removed``); identical repeats are dropped from the incoming rows. Data
    files are listed in ``out.written`` as soon as they are written, so when a later step
    fails the caller can remove them.
    """
    for month, chunk in split_by_month(table):
        lo, hi = time_range(chunk)
        ids = chunk["id"].combine_chunks()
        for part in [
            p for p in out.files if p.month == month and p.max_time >= lo and p.min_time <= hi
        ]:
            # the ids first (one column): a whole file only when it holds a repeat
            hits = pc.is_in(read(part, ["id"])["id"], value_set=ids)
            replaced = pc.sum(hits).as_py() or 0
            if not replaced:
                continue
            out.replaced_rows += replaced
            old = read(part)
            old_dups = old.filter(hits)
            in_old = pc.is_in(chunk["id"], value_set=old_dups["id"].combine_chunks())
            if same_rows(old_dups, chunk.filter(in_old)):
                # the usual page-boundary repeat: identical rows, keep the old file
                chunk = chunk.filter(pc.invert(in_old))
                ids = chunk["id"].combine_chunks()
                continue
            kept = old.filter(pc.invert(hits))
            out.removed.append(part)
            if kept.num_rows:
                out.written.append(write(kept, month))
        if chunk.num_rows:
            out.written.append(write(chunk, month))
    out.files = [p for p in out.files if p not in out.removed] + [
        p for p in out.written if p not in out.removed
    ]
    return out


def dedupe_keep_last(table: pa.Table) -> pa.Table:
    """Keep the last row of each ``id`` (hash-based, order kept)."""
    if table.num_rows < 2:
        return table
    repeated = pd.Index(table["id"].to_numpy()).duplicated(keep="last")
    if not repeated.any():
        return table
    return table.take(pa.array(np.flatnonzero(~repeated)))  # also joins the chunks


def time_ms(table: pa.Table) -> np.ndarray:
    """The ``time`` column as Unix milliseconds."""
    return table["time"].cast(pa.timestamp("ms", "UTC")).cast(pa.int64()).to_numpy()


def is_time_ordered(table: pa.Table) -> bool:
    """True when the rows are in (time, id) order already."""
    if table.num_rows < 2:
        return True
    ms = time_ms(table)
    ids = table["id"].to_numpy()
    step = np.diff(ms)
    return bool(np.all((step > 0) | ((step == 0) & (np.diff(ids) > 0))))


def time_range(table: pa.Table) -> tuple[int, int]:
    """(first, last) event time of a non-empty table, Unix milliseconds."""
    ms = time_ms(table)
    return int(ms.min()), int(ms.max())


def split_by_month(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """Consecutive slices of a time-sorted table, one per UTC month."""
    if table.num_rows == 0:
        return
    months = time_ms(table).astype("datetime64[ms]").astype("datetime64[M]")
    edges = [0, *(np.flatnonzero(months[1:] != months[:-1]) + 1).tolist(), len(months)]
    for start, stop in zip(edges, edges[1:], strict=False):
        yield str(months[start]), table.slice(start, stop - start)


def same_rows(old: pa.Table, new: pa.Table) -> bool:
    """True when two small tables hold the same rows (any order, dictionaries decoded)."""
    if old.num_rows != new.num_rows:
        return False

    def plain(table: pa.Table) -> pa.Table:
        table = table.sort_by("id").replace_schema_metadata(None)
        for i, column in enumerate(table.schema):
            if pa.types.is_dictionary(column.type):
                table = table.set_column(i, column.name, table[i].cast(column.type.value_type))
        return table.combine_chunks()

    return plain(old).equals(plain(new))


def dictionary_columns(schema: pa.Schema) -> list[str] | bool:
    """Parquet dictionary encoding only where values repeat (not ids and times): smaller, faster."""
    if any(pa.types.is_nested(f.type) for f in schema):
        return True
    return [f.name for f in schema if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type)]

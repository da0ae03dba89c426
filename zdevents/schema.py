"""The storage schemas and pandas dtypes of every stream: the one source each layer imports.

The export's parsers build tables in these schemas, the stores write them, the readers turn
them into frames with :func:`to_pandas`, and the analysis checks its inputs against them.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

__all__ = [
    "CHILD_EVENT_TYPE",
    "METRIC_EVENTS_SCHEMA",
    "TICKET_CHANGES_SCHEMA",
    "TICKET_EVENTS_SCHEMA",
    "TIME_TYPE",
    "empty_table",
    "schema_for",
    "to_pandas",
]

TIME_TYPE = pa.timestamp("ms", tz="UTC")
DICT_TYPE = pa.dictionary(pa.int32(), pa.string())

METRIC_EVENTS_SCHEMA: pa.Schema = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("ticket_id", pa.int64(), nullable=False),
        pa.field("metric", DICT_TYPE, nullable=False),
        pa.field("instance_id", pa.int32()),
        pa.field("type", DICT_TYPE, nullable=False),
        pa.field("time", TIME_TYPE, nullable=False),
        pa.field("sla_kind", DICT_TYPE),
        pa.field("sla_target_minutes", pa.int32()),
        pa.field("sla_business_hours", pa.bool_()),
        pa.field("policy_id", pa.int64()),
        pa.field("policy_title", pa.string()),
        pa.field("status_calendar_minutes", pa.int32()),
        pa.field("status_business_minutes", pa.int32()),
        pa.field("deleted", pa.bool_()),
    ]
)
"""Arrow storage schema of SLA metric events (column order == the pandas frame's)."""

CHILD_EVENT_TYPE: pa.StructType = pa.struct(
    [
        ("id", pa.int64()),
        ("event_type", pa.string()),
        ("field", pa.string()),
        ("value", pa.string()),
        ("previous_value", pa.string()),
        ("via_channel", pa.string()),
        ("author_id", pa.int64()),
        ("public", pa.bool_()),
        ("body", pa.string()),
    ]
)

TICKET_EVENTS_SCHEMA: pa.Schema = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("ticket_id", pa.int64(), nullable=False),
        pa.field("time", TIME_TYPE, nullable=False),
        pa.field("updater_id", pa.int64()),
        pa.field("via_channel", pa.string()),
        pa.field("event_type", pa.string()),
        pa.field("child_events", pa.list_(CHILD_EVENT_TYPE)),
    ]
)
"""Arrow storage schema of ticket events: one row per audit, its changes in ``child_events``."""

TICKET_CHANGES_SCHEMA: pa.Schema = pa.schema(
    [
        pa.field("ticket_id", pa.int64()),
        pa.field("audit_id", pa.int64()),
        pa.field("time", TIME_TYPE),
        pa.field("updater_id", pa.int64()),
        pa.field("via_channel", DICT_TYPE),
        pa.field("event_id", pa.int64()),
        pa.field("event_type", DICT_TYPE),
        pa.field("field", DICT_TYPE),
        pa.field("value", pa.string()),
        pa.field("previous_value", pa.string()),
        pa.field("author_id", pa.int64()),
        pa.field("public", pa.bool_()),
        pa.field("body", pa.string()),
    ]
)
"""Long form of ticket events (:func:`ticket_changes`): one row per field change or comment."""

_SCHEMAS = {
    "metric_events": METRIC_EVENTS_SCHEMA,
    "ticket_events": TICKET_EVENTS_SCHEMA,
    "ticket_changes": TICKET_CHANGES_SCHEMA,
}


def schema_for(stream_name: str) -> pa.Schema:
    """The Arrow storage schema of ``stream_name``.

    Parameters
    ----------
    stream_name : str
        ``"metric_events"``, ``"ticket_events"`` (audits) or ``"ticket_changes"`` (long form).

    Examples
    --------
    >>> schema_for("metric_events").names[:3]
    ['id', 'ticket_id', 'metric']
    """
    try:
        return _SCHEMAS[stream_name]
    except KeyError:
        raise ValueError(
            f"unknown stream {stream_name!r}; choose one of: {', '.join(sorted(_SCHEMAS))}"
        ) from None


def empty_table(stream_name: str) -> pa.Table:
    """An empty table in the storage schema of ``stream_name``.

    Examples
    --------
    >>> empty_table("metric_events").num_rows
    0
    """
    return schema_for(stream_name).empty_table()


# ---------------------------------------------------------------------------------- pandas
_PANDAS_TYPES = {
    pa.int64(): pd.Int64Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.bool_(): pd.BooleanDtype(),
    pa.string(): pd.StringDtype("pyarrow"),
    pa.large_string(): pd.StringDtype("pyarrow"),
}


def to_pandas(
    table: pa.Table,
    stream_name: str = "metric_events",
    *,
    child_events: bool = False,
    self_destruct: bool = False,
) -> pd.DataFrame:
    """Convert a table of ``stream_name`` to pandas with analysis-ready dtypes.

    Integers become ``Int64``/``Int32``, booleans ``boolean``, strings ``string[pyarrow]``,
    dictionary columns ``category`` (unknown values kept), times ``datetime64[ms, UTC]``.
    Columns missing from ``table`` (a projection) are simply absent.

    Parameters
    ----------
    table : pyarrow.Table
    stream_name : str
        ``"metric_events"``, ``"ticket_events"`` or ``"ticket_changes"``.
    child_events : bool
        For ``ticket_events``: keep the ``child_events`` list column (as Python objects);
        dropped by default (use :func:`ticket_changes` for the long form).
    self_destruct : bool
        Free each column of ``table`` as soon as it is converted (a lower peak of memory);
        ``table`` must not be used afterwards.

    Examples
    --------
    >>> frame = to_pandas(empty_table("metric_events"), "metric_events")
    >>> str(frame["metric"].dtype), str(frame["id"].dtype)
    ('category', 'Int64')
    """
    schema_for(stream_name)  # validates the name
    if stream_name == "ticket_events" and not child_events and "child_events" in table.column_names:
        table = table.drop_columns(["child_events"])
    table = table.replace_schema_metadata(None)
    schema = table.schema
    frame = table.to_pandas(
        types_mapper=_PANDAS_TYPES.get, self_destruct=self_destruct, split_blocks=self_destruct
    )
    for name in frame.columns:
        arrow_type = schema.field(name).type
        if pa.types.is_timestamp(arrow_type) and str(frame[name].dtype) != "datetime64[ms, UTC]":
            frame[name] = frame[name].astype("datetime64[ms, UTC]")
    return frame

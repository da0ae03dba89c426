"""Arrow tables of SLA targets as pandas frames with the dtypes every engine path gives."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

__all__ = ["ms_times", "targets_to_pandas"]

_STRING_NA = ("metric", "policy_title")  # string dtype with pd.NA, as load_frame's columns
_PANDAS_INTS = {
    pa.int64(): pd.Int64Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.bool_(): pd.BooleanDtype(),
    pa.float64(): pd.Float64Dtype(),
}


def _str_dtype(na_value: Any) -> Any:
    try:
        return pd.StringDtype("pyarrow", na_value=na_value)
    except TypeError:  # pragma: no cover - pandas < 2.3 has no NaN-valued string dtype
        return pd.StringDtype("pyarrow")


def ms_times(table: pa.Table) -> pa.Table:
    """Timestamps as ``timestamp[ms, UTC]`` (the cache's unit; DuckDB gives microseconds).

    Examples
    --------
    >>> t = pa.table({"t": pa.array([0], pa.timestamp("us", "UTC"))})
    >>> ms_times(t).schema.field("t").type
    TimestampType(timestamp[ms, tz=UTC])
    """
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            table = table.set_column(
                i, field.name, table.column(i).cast(pa.timestamp("ms", tz="UTC"))
            )
    return table


def targets_to_pandas(table: pa.Table) -> pd.DataFrame:
    """Target rows as pandas with nullable dtypes (what the narwhals plan gives on pandas).

    Examples
    --------
    >>> frame = targets_to_pandas(pa.table({"ticket_id": [7], "outcome": ["breached"]}))
    >>> [str(t) for t in frame.dtypes]
    ['Int64', 'str']
    """
    table = ms_times(table)
    strings = [f.name for f in table.schema if pa.types.is_string(f.type)]
    rest = table.drop_columns(strings)
    frame = rest.to_pandas(types_mapper=_PANDAS_INTS.get)
    na_string, nan_string = _str_dtype(pd.NA), _str_dtype(float("nan"))
    for name in strings:
        dtype = na_string if name in _STRING_NA else nan_string
        frame[name] = pd.Series(dtype.__from_arrow__(table.column(name)), index=frame.index)
    return frame[list(table.schema.names)]

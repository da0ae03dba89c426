"""Comparing results across engines (pandas, Dask, polars, DuckDB, Spark) in the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from zdevents.config import Settings
from zdevents.export.fetch import fetch
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk

COUNTS = ["targets", "breached", "achieved", "active"]
RATES = ["breach_rate", "achievement_rate", "ci_low", "ci_high"]
GROUPINGS = [("metric", None), (["metric", "policy_title"], None), ("metric", "W"), ("metric", "M")]
"""``(by, freq)`` of breach_rates compared on every engine."""


def sample_cache(data_dir: Path) -> Settings:
    """A real cache of the sample account (400 tickets, six months) in ``data_dir``: served
    by the local Zendesk server and fetched through the real client."""
    with LocalZendesk(SampleAccount(tickets=400, seed=5)) as server:
        settings = server.settings(data_dir=data_dir)
        fetch("metric_events", settings=settings, progress=False)
    return settings


def values(column: pd.Series) -> list:
    """Engine-neutral values: times as UTC Timestamps, every kind of null as None."""
    if column.dtype.kind == "M" or isinstance(column.dtype, pd.DatetimeTZDtype):
        column = pd.to_datetime(column, utc=True).astype("datetime64[ms, UTC]")
    column = column.astype(object)
    return column.where(column.notna(), None).tolist()


def assert_same(got: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> None:
    """Same columns and rows (sorted by ``keys``): exact, floats to 1e-12 relative."""
    got = got.sort_values(keys).reset_index(drop=True)
    expected = expected.sort_values(keys).reset_index(drop=True)
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)
    for col in expected.columns:
        if expected[col].dtype.kind == "f":
            np.testing.assert_allclose(
                got[col].astype("float64").to_numpy(),
                expected[col].astype("float64").to_numpy(),
                rtol=1e-12,
                equal_nan=True,
                err_msg=col,
            )
        else:
            assert values(got[col]) == values(expected[col]), col


def assert_rates_equal(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same groups, exactly equal counts, rates equal to float tolerance."""
    assert_same(got, expected, [c for c in expected.columns if c not in COUNTS + RATES])

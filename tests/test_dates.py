import datetime as dt

import pandas as pd
import pytest

from zdevents.dates import time_range, to_utc

JAN1 = pd.Timestamp("2024-01-01", tz="UTC")


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-01",
        "2024-01-01T00:00:00Z",
        "2024-01-01T01:00:00+01:00",
        dt.date(2024, 1, 1),
        dt.datetime(2024, 1, 1),  # naive means UTC
        dt.datetime(2023, 12, 31, 19, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        pd.Timestamp("2024-01-01"),
        1704067200,
        1704067200.0,
    ],
)
def test_every_input_kind_is_the_same_utc_instant(value):
    ts = to_utc(value)
    assert ts == JAN1
    assert str(ts.tz) == "UTC"


def test_none_stays_none():
    assert to_utc(None) is None
    assert time_range(None, None) == (None, None)


@pytest.mark.parametrize("value", ["yesterday-ish", "", "2024-13-01", True, object(), 1e15])
def test_unreadable_values_are_refused_with_the_argument_name(value):
    with pytest.raises(ValueError, match="since"):
        to_utc(value, name="since")


def test_since_after_until_is_a_plain_value_error():
    with pytest.raises(ValueError, match=r"since \(2024-02-01.*\) is after until"):
        time_range("2024-02-01", "2024-01-01")


def test_equal_bounds_are_an_empty_half_open_range_not_an_error():
    assert time_range("2024-01-01", "2024-01-01") == (JAN1, JAN1)

import datetime as dt

import numpy as np
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


# --- one parser, one set of rules, for every time input -------------------------------


@pytest.mark.slow
def test_epoch_seconds_mean_seconds_in_sla_targets_as_of():
    """1704067200 is 2024-01-01 for as_of too (it was read as nanoseconds: 0 targets)."""
    from zdevents.analysis.sla import sla_targets

    t = pd.Timestamp("2023-12-31 23:00", tz="UTC")
    events = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "ticket_id": 7,
            "metric": "reply_time",
            "instance_id": 1,
            "type": ["activate", "apply_sla", "fulfill"],
            "time": [t, t, t + pd.Timedelta(hours=2)],  # fulfilled at 01:00, after the as-of
            "sla_target_minutes": [None, 60, None],
        }
    )
    for as_of in (1704067200, 1704067200.0, "1704067200", "2024-01-01", JAN1):
        targets = sla_targets(events, as_of=as_of)
        assert targets["outcome"].tolist() == ["active"], as_of
        assert targets.attrs["zdevents_as_of"] == JAN1


@pytest.mark.parametrize("value", ["2024-01-01", 1704067200, dt.date(2024, 1, 1), "1704067200"])
def test_every_entry_point_reads_a_time_the_same_way(tmp_path, value):
    import pyarrow as pa

    from zdevents.analysis.sla import applied_between
    from zdevents.schema import METRIC_EVENTS_SCHEMA
    from zdevents.store.parquet import Cache

    targets = pd.DataFrame(
        {
            "applied_at": pd.to_datetime(
                ["2023-12-31T23:59:59.999Z", "2024-01-01T00:00:00.000Z"]
            ).astype("datetime64[ms, UTC]")
        }
    )
    assert applied_between(targets, since=value)["applied_at"].tolist() == [JAN1]
    assert time_range(value, value) == (JAN1, JAN1)
    cache = Cache(tmp_path, "acme", "metric_events")
    rows = [{"id": n, "ticket_id": 1, "metric": "reply_time", "instance_id": 1, "type": "activate",
             "time": t} for n, t in enumerate(targets["applied_at"], start=1)]  # fmt: skip
    with cache.lock():
        cache.commit(pa.Table.from_pylist(rows, schema=METRIC_EVENTS_SCHEMA), cursor=1704067300)
    assert cache.read(columns=["id"], since=value)["id"].to_pylist() == [2]
    assert cache.read(columns=["id"], until=value)["id"].to_pylist() == [1]


@pytest.mark.parametrize(
    "value",
    ["01/02/2024", "1/2/24", "2024/01/02", "02.01.2024", "Jan 2 2024", "2 January 2024",
     "last tuesday", "2024-1-2", "1e9", "2024-01-02T08"],
)  # fmt: skip
def test_ambiguous_or_informal_forms_are_refused_with_the_accepted_forms(value):
    with pytest.raises(ValueError) as raised:
        to_utc(value, name="since")
    message = str(raised.value)
    assert message.startswith(f"since={value!r} is not a date")
    assert "'2024-01-31'" in message and "Unix seconds" in message


@pytest.mark.parametrize("value", [1704067200000, 1704067200000000000, 20240102, "20240102"])
def test_milliseconds_nanoseconds_and_compact_dates_are_not_read_as_seconds(value):
    with pytest.raises(ValueError, match=r"outside 2000-2200 as Unix seconds.*'2024-01-31'"):
        to_utc(value, name="as_of")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2024-01-01 08:30", "2024-01-01 08:30"), ("2024-01-01T08:30:15.25Z", "2024-01-01 08:30:15.25"),
     ("2024-01-01T10:30+0200", "2024-01-01 08:30"), (np.datetime64("2024-01-01T08:30"), "2024-01-01 08:30"),
     (" 2024-01-01 ", "2024-01-01")],
)  # fmt: skip
def test_iso_forms_and_numpy_times_are_read_naive_as_utc(value, expected):
    assert to_utc(value) == pd.Timestamp(expected, tz="UTC")


def test_a_since_in_the_future_is_an_error_not_clamped():
    future = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1)
    with pytest.raises(ValueError, match=r"since=.* is in the future"):
        time_range(future)
    with pytest.raises(ValueError, match="is in the future"):
        time_range("2150-01-01", "2160-01-01")
    assert time_range("2024-01-01", "2150-01-01")[1] == pd.Timestamp("2150-01-01", tz="UTC")
    assert to_utc("2150-01-01", name="as_of") == pd.Timestamp("2150-01-01", tz="UTC")


def test_a_future_since_fails_before_any_request_or_file(tmp_path):
    import zdevents as zd
    from zdevents.sample.account import SampleAccount
    from zdevents.sample.server import LocalZendesk

    with LocalZendesk(SampleAccount(tickets=2)) as server:
        settings = server.settings(data_dir=tmp_path)
        with pytest.raises(ValueError, match="since='2150-01-01' is in the future"):
            zd.fetch("metric_events", "2150-01-01", settings=settings, progress=False)
        with pytest.raises(ValueError, match="is in the future"):
            zd.load_frame(since="2150-01-01", settings=settings)
        assert server.requests == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "phrase"),
    [(["fetch", "--since", "01/02/2024"], "since='01/02/2024' is not a date: use an ISO date"),
     (["fetch", "--since", "2150-01-01"], "since='2150-01-01' is in the future"),
     (["report", "--until", "1704067200000"], "as Unix seconds"),
     (["report", "--since", "02/01/2024"], "since='02/01/2024' is not a date")],
)  # fmt: skip
def test_cli_time_flags_use_the_same_parser_and_fail_in_one_line(
    argv, phrase, tmp_path, monkeypatch, capsys
):
    from zdevents import cli

    monkeypatch.setenv("ZDEVENTS_DATA_DIR", str(tmp_path))
    for name, value in {"ZENDESK_SUBDOMAIN": "acme", "ZENDESK_EMAIL": "a@acme.test",
                        "ZENDESK_API_TOKEN": "t0ken"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ZENDESK_BASE_URL", raising=False)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert phrase in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []

"""load_frame's arguments: progress while it fetches, and a typo in ``columns``."""

from __future__ import annotations

import pytest

import zdevents as zd
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk


@pytest.fixture(scope="module")
def server():
    with LocalZendesk(SampleAccount(tickets=40, seed=5)) as srv:
        yield srv


@pytest.mark.e2e
def test_load_frame_shows_the_fetch_progress_by_default(server, tmp_path, capsys):
    events = zd.load_frame(settings=server.settings(data_dir=tmp_path / "a"))
    err = capsys.readouterr().err
    assert len(events) > 0
    assert "fetch metric_events:" in err and "caught up to" in err and "ETA done" in err
    zd.load_frame(settings=server.settings(data_dir=tmp_path / "b"), progress=False)
    assert capsys.readouterr().err == ""


def test_an_unknown_column_is_a_value_error_naming_it_and_the_available_ones(tmp_path):
    settings = zd.Settings(subdomain="acme", data_dir=tmp_path)
    with pytest.raises(
        ValueError,
        match=r"metric_events has no column 'nope'; available: id, "
        r"ticket_id, metric, .*deleted",
    ) as info:
        zd.load_frame(columns=["id", "nope"], refresh="never", settings=settings)
    assert not isinstance(info.value, zd.CacheError)

"""What one fetch reads: only what the cache lacks, or exactly the forced range."""

from __future__ import annotations

import pandas as pd
import pytest

from zdevents.export.plan import fetch_plan
from zdevents.store.parquet import CacheState


def state(coverage=(), cursor=None, covered_since=None) -> CacheState:
    if covered_since is None and coverage:
        covered_since = coverage[0][0]
    return CacheState(1, "metric_events", cursor=cursor, covered_since=covered_since,
                      coverage=tuple(coverage))  # fmt: skip


def t(seconds: int | None) -> pd.Timestamp | None:
    return None if seconds is None else pd.Timestamp(seconds, unit="s", tz="UTC")


@pytest.mark.parametrize(
    ("held", "since", "until", "force", "plan"),
    [
        # a first fetch: from since (or the beginning) to the present, or to until
        (state(), None, None, False, [(0, None)]),
        (state(), 50, 150, False, [(50, 150)]),
        # caught up: one request from the cursor
        (state([(100, 200)], 200), None, None, False, [(200, None)]),
        (state([(100, 200)], 200), 150, None, False, [(200, None)]),
        # a backfill: only [since, start of the cache), then on from the cursor
        (state([(100, 200)], 200), 50, None, False, [(50, 100), (200, None)]),
        # a gap left by a forced range or a repair is filled before going on
        (state([(100, 150), (170, 200)], 200), None, None, False, [(150, 170), (200, None)]),
        # a repair that dropped the first data: from the earliest time ever covered
        (state([(100, 200)], 200, covered_since=80), None, None, False, [(80, 100), (200, None)]),
        (state([(100, 200)], 200, covered_since=80), 50, None, False, [(50, 100), (200, None)]),
        # a gap between the coverage and the cursor (the newest file dropped)
        (state([(100, 180)], 200), None, None, False, [(180, None)]),
        # until ends every range
        (state([(100, 200)], 200), 50, 150, False, [(50, 100)]),
        (state([(100, 200)], 200), 50, 80, False, [(50, 80)]),
        # force: exactly [since, until), whatever is cached
        (state([(100, 200)], 200), 120, 160, True, [(120, 160)]),
        (state([(100, 200)], 200), 300, None, True, [(300, None)]),
        (state([(100, 200)], 200), None, None, True, [(100, None)]),
        (state(), None, 150, True, [(0, 150)]),
    ],
)
def test_plan(held, since, until, force, plan):
    assert fetch_plan(held, t(since), t(until), force) == plan


def test_an_until_inside_a_second_still_reads_that_second():
    held = state()
    assert fetch_plan(held, t(50), pd.Timestamp(150.5, unit="s", tz="UTC"), True) == [(50, 151)]

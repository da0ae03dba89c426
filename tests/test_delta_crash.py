"""Crashes on the Delta store: a real fetch process SIGKILLed mid-fetch, local and on S3.

Each trial runs ``zdevents fetch`` (the real CLI code) in its own process, committing after
every page, into a Delta table on local disk or on the S3 stand-in, and kills it after a
seeded random delay, or right after the k-th data file reached storage (before any commit
lists it), or right after the k-th commit. A reader must then see one consistent version
(unique ids, rows equal to what the server sent, the cursor never past unstored events), and
a normal fetch must bring the table to exactly the served events.
"""

from __future__ import annotations

import multiprocessing
import random
import time
import uuid
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from _delta_child import DELTA_KILL_POINTS
from _delta_s3 import BUCKET, s3_server
from _reliability import assert_cursor_covers, child_env, plain

import zdevents as zd
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk
from zdevents.store import DeltaCache, open_store

pytest.importorskip("deltalake")
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEED = 20261202
TICKETS = 60
PAGE_SIZE = 100
DELAY_TRIALS = 8
POINT_TRIALS = 2  # per kill point


@pytest.fixture(scope="module")
def s3():
    pytest.importorskip("moto.server")
    with s3_server() as env:
        yield env


@pytest.fixture(scope="module")
def server():
    account = SampleAccount(tickets=TICKETS, seed=SEED % 1000)
    with LocalZendesk(
        account, page_size=PAGE_SIZE, metric_end_of_stream=True, tcp_nodelay=True
    ) as srv:
        srv.preload()
        yield srv


@pytest.fixture(scope="module")
def truth(server, tmp_path_factory):
    settings = server.settings(data_dir=tmp_path_factory.mktemp("clean"))
    zd.fetch("metric_events", settings=settings, progress=False)
    table = plain(open_store(settings.data_dir, settings.account, "metric_events").read())
    assert set(table["id"].to_pylist()) == server.unique_ids("metric_events")
    return table


@pytest.fixture(scope="module")
def forkserver():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["zdevents.cli", "zdevents.export.fetch", "_fetch_child"])
    return ctx


def start_child(ctx, server, data_dir: str, log_dir: Path, env: dict, **options):
    from _delta_child import run_delta_fetch

    log_dir.mkdir(parents=True, exist_ok=True)
    process = ctx.Process(
        target=run_delta_fetch,
        args=(["fetch", "--quiet"], {**child_env(server, data_dir), **env}),  # type: ignore[arg-type]
        kwargs={"log_path": str(log_dir / "child.log"), **options},
        daemon=True,
    )
    process.start()
    return process


def check_snapshot(cache: DeltaCache, truth: pa.Table) -> None:
    """What a reader sees after the kill is one consistent version of a prefix of the truth."""
    state = cache.state()
    got = plain(cache.read())
    assert pc.count_distinct(got["id"]).as_py() == got.num_rows, "duplicate ids"
    assert state.rows == got.num_rows
    expected = truth.filter(pc.is_in(truth["id"], value_set=got["id"]))
    assert expected.equals(got), "a stored row differs from what the server sent"
    assert_cursor_covers(state.cursor, got, truth)


@pytest.mark.parametrize("where", ["local", "s3"])
def test_sigkill_mid_fetch_then_resume_gives_exactly_the_served_events(
    where, server, truth, forkserver, tmp_path, request
):
    env = request.getfixturevalue("s3") if where == "s3" else {}

    def location(name: str) -> str:
        if where == "s3":
            return f"s3://{BUCKET}/{uuid.uuid4().hex}-{name}"
        data_dir = tmp_path / name
        DeltaCache(data_dir, server.subdomain, "metric_events").create()  # a Delta table
        return str(data_dir)

    started = time.monotonic()
    whole = location("whole")
    child = start_child(forkserver, server, whole, tmp_path / "whole", env)
    child.join(180)
    duration = time.monotonic() - started
    assert child.exitcode == 0, (tmp_path / "whole" / "child.log").read_text()
    cache = DeltaCache(whole, server.subdomain, "metric_events")
    assert plain(cache.read()).equals(truth)
    commits = cache.state().version
    assert commits > 10

    rng = random.Random(SEED)
    plan = [("delay", 0)] * DELAY_TRIALS + [
        (point, rng.randint(1, commits - 2))
        for point in DELTA_KILL_POINTS
        for _ in range(POINT_TRIALS)
    ]
    outcomes: Counter[str] = Counter()
    for trial, (kind, kill_on) in enumerate(plan):
        data_dir = location(f"trial-{trial:02d}")
        logs = tmp_path / f"trial-{trial:02d}"
        if kind == "delay":
            child = start_child(forkserver, server, data_dir, logs, env)
            time.sleep(rng.uniform(0.2, duration * 0.6))
            child.kill()
        else:
            child = start_child(
                forkserver, server, data_dir, logs, env, kill_point=kind, kill_on=kill_on
            )
        child.join(120)
        assert child.exitcode is not None, f"trial {trial} ({kind}) did not end"
        if child.exitcode == -9:
            outcomes[f"{kind}: killed"] += 1
        else:
            assert child.exitcode == 0, (logs / "child.log").read_text()
            outcomes[f"{kind}: finished before the kill"] += 1
        cache = DeltaCache(data_dir, server.subdomain, "metric_events")
        check_snapshot(cache, truth)
        settings = server.settings(data_dir=data_dir)
        zd.fetch("metric_events", settings=settings, progress=False)
        got = plain(cache.read())
        assert got.num_rows == truth.num_rows and got.equals(truth)
    killed = sum(n for k, n in outcomes.items() if k.endswith("killed"))
    print(
        f"\n{where}: {len(plan)} seeded trials (seed {SEED}), {killed} SIGKILLed mid-fetch; "
        f"each resumed to exactly the {truth.num_rows:,} served events (0 lost, 0 duplicated)"
    )
    for outcome, count in sorted(outcomes.items()):
        print(f"  {count:3d}  {outcome}")
    for point in DELTA_KILL_POINTS:  # the targeted points are always reached
        assert outcomes[f"{point}: killed"] == POINT_TRIALS

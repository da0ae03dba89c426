"""zd.scan(engine="spark") and the SLA analysis on a local Spark session equal the pandas path.

Skipped unless pyspark is importable and a Java runtime is found: pyspark is not a
dependency of zdevents (about 0.5 GB, and it needs Java 17). To run it::

    pip install pyspark          # and a Java 17 runtime, e.g. apt-get install openjdk-17-jre-headless
    pytest tests/test_spark.py
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pandas as pd
import pytest


def _missing() -> list[str]:
    missing = []
    if importlib.util.find_spec("pyspark") is None:
        missing.append("pyspark is not installed")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        missing.append("no `java` on PATH and JAVA_HOME is unset")
    return missing


if _missing():
    pytest.skip(
        "Spark path not tested: "
        + "; ".join(_missing())
        + ". To enable: `pip install pyspark` and install Java 17 "
        "(e.g. `apt-get install openjdk-17-jre-headless`), then rerun tests/test_spark.py",
        allow_module_level=True,
    )

from _engines import GROUPINGS, assert_rates_equal, assert_same, sample_cache  # noqa: E402

from zdevents.analysis.sla import breach_rates, sla_targets  # noqa: E402
from zdevents.read.frame import load_frame  # noqa: E402
from zdevents.read.scan import scan, scan_as_of  # noqa: E402

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.filterwarnings(
        "ignore::FutureWarning"
    ),  # pyspark 4.x: pandas 3 "not fully supported"
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return sample_cache(tmp_path_factory.mktemp("zd-spark-cache"))


@pytest.fixture(scope="module")
def events(settings) -> pd.DataFrame:
    return load_frame(refresh="never", settings=settings)


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("zdevents-tests")
        .config("spark.sql.session.timeZone", "UTC")  # UTC week/month buckets
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


def test_spark_scan_equals_load_frame_and_prunes_months(spark, settings, events):
    frame = scan(settings=settings, engine="spark", session=spark)
    assert frame.columns == list(events.columns)  # no month=... column from the folders
    assert_same(frame.toPandas(), events, ["id"])
    march = scan("2024-03-01", "2024-04-01", settings=settings, engine="spark", session=spark)
    assert len(march.inputFiles()) == 1
    expected = load_frame("2024-03-01", "2024-04-01", refresh="never", settings=settings)
    assert sorted(r.id for r in march.select("id").collect()) == sorted(expected["id"])


def test_sla_on_spark_equals_pandas(spark, settings, events):
    as_of = scan_as_of(settings=settings)
    expected_targets = sla_targets(events, as_of=as_of)
    targets = sla_targets(scan(settings=settings, engine="spark", session=spark), as_of=as_of)
    targets = targets.localCheckpoint()  # computed once; later plans start from it
    assert_same(
        targets.toPandas(), expected_targets, ["ticket_id", "metric", "instance_id", "sla_kind"]
    )
    for by, freq in GROUPINGS:
        expected = breach_rates(expected_targets, by=by, freq=freq)
        got = breach_rates(targets, by=by, freq=freq).toPandas()
        assert_rates_equal(got, expected)

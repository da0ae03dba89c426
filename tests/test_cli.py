"""The command line, run as a real process against the local Zendesk server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from zdevents.cli import build_parser
from zdevents.sample import SampleAccount
from zdevents.testing import LocalZendesk

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zdevents", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=240,
    )


@pytest.fixture(scope="module")
def server():
    with LocalZendesk(SampleAccount(tickets=120, seed=3)) as srv:
        yield srv


@pytest.fixture
def env(server, tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ZENDESK_", "ZDEVENTS_"))}
    base.update(
        ZENDESK_BASE_URL=server.url,
        ZENDESK_SUBDOMAIN="sample",
        ZENDESK_EMAIL=server.email,
        ZENDESK_API_TOKEN=server.api_token,
        ZDEVENTS_DATA_DIR=str(tmp_path / "cache"),
        ZDEVENTS_REQUESTS_PER_MINUTE="10000",
    )
    return base


@pytest.mark.e2e
def test_fetch_then_status_report_rows_and_cursor(server, env, tmp_path):
    fetched = run_cli("fetch", "--stream", "all", "--include-comments", env=env, cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    n_metric = len(server.unique_ids("metric_events"))
    assert f"{n_metric:,} cached" in fetched.stdout
    assert "caught up to" in fetched.stderr  # the progress bar
    status = run_cli("status", env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    line = next(x for x in status.stdout.splitlines() if "metric_events" in x)
    assert f"{n_metric:,}" in line
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", line)


@pytest.mark.e2e
def test_expected_failures_print_one_line_without_traceback_or_secret(env, tmp_path):
    bad = dict(env, ZENDESK_API_TOKEN="not-the-token-XYZ")
    out = run_cli("fetch", env=bad, cwd=tmp_path)
    assert out.returncode == 2
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "error:" in lines[0]
    assert "Traceback" not in out.stderr
    assert "not-the-token-XYZ" not in out.stderr + out.stdout


def test_bad_since_is_a_clear_error(env, tmp_path):
    out = run_cli("fetch", "--since", "last tuesday", env=env, cwd=tmp_path)
    assert out.returncode == 2
    assert "since='last tuesday' is not a date" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_configuration_names_the_variables(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENDESK_", "ZDEVENTS_"))}
    env["ZDEVENTS_DATA_DIR"] = str(tmp_path)
    out = run_cli("fetch", env=env, cwd=tmp_path)
    assert out.returncode == 2
    assert "ZENDESK_EMAIL" in out.stderr and "ZENDESK_API_TOKEN" in out.stderr


def test_every_cli_command_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        assert f"`zdevents {name}" in readme, f"zdevents {name} is not in the README"
        for action in sub._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag not in ("--help", "--stream-dir"):
                    assert flag in readme, f"zdevents {name} {flag} is not in the README"

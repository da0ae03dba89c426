"""The command line, run as a real process against the local Zendesk server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from zdevents.cli import build_parser
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zdevents", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
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


@pytest.mark.slow
def test_bad_since_is_a_clear_error(env, tmp_path):
    out = run_cli("fetch", "--since", "last tuesday", env=env, cwd=tmp_path)
    assert out.returncode == 2
    assert "since='last tuesday' is not a date" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
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
    table = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `zdevents ")]
    for name, sub in commands.items():
        assert f"`zdevents {name}" in readme, f"zdevents {name} is not in the README"
        # each command has its row in the Command line table, naming every flag it takes
        if name == "cache":
            row = " ".join(r for r in rows if r.startswith("| `zdevents cache "))
            sub = sub._subparsers._group_actions[0].choices["rebuild"]
        else:
            row = next((r for r in rows if r.startswith(f"| `zdevents {name} ")), "")
        assert row, f"zdevents {name} has no row in the README's Command line table"
        for action in sub._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in row, f"zdevents {name} {flag} is not in its README row"


def bare_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENDESK_", "ZDEVENTS_"))}
    env.update(extra)
    return env


@pytest.mark.e2e
def test_after_the_demo_status_report_and_load_frame_find_the_sample_in_the_same_folder(tmp_path):
    env = bare_env()  # no ZDEVENTS_DATA_DIR, no account: what a new user has
    demo = run_cli("demo", "--tickets", "40", "--quiet", env=env, cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    status = run_cli("status", env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[0] == f"cache folder: {tmp_path / 'data'}"
    line = next(x for x in status.stdout.splitlines() if "metric_events" in x)
    assert line.startswith("sample") and not re.search(r"\s0\s", line)
    report = run_cli("report", "--out", "out", env=env, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "out" / "index.html").read_text()
    # the sample's account and its group names, as the demo's own report shows them
    assert "Account: sample." in html and "<td>Tier 1</td>" in html
    code = (
        "import zdevents as zd; print(len(zd.load_frame(refresh='never'))); "
        "print(zd.load_names().groups[360001001])"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    rows, group = loaded.stdout.split("\n")[:2]
    assert int(rows) == int(line.split()[2].replace(",", ""))
    assert group == "Tier 1"


def test_help_texts_state_the_real_data_dir_defaults():
    commands = build_parser()._subparsers._group_actions[0].choices
    demo = next(a for a in commands["demo"]._actions if "--data-dir" in a.option_strings)
    assert demo.default is None and "default: ZDEVENTS_DATA_DIR, else ./data" in demo.help
    for name in ("fetch", "status", "report"):
        action = next(a for a in commands[name]._actions if "--data-dir" in a.option_strings)
        assert "else ./data when it holds a zdevents cache" in action.help


@pytest.mark.slow
def test_report_without_data_exits_non_zero_and_says_to_fetch(tmp_path):
    out = run_cli("report", env=bare_env(ZDEVENTS_DATA_DIR=str(tmp_path / "empty")), cwd=tmp_path)
    assert out.returncode == 2
    assert "run `zdevents fetch` first" in out.stderr and str(tmp_path / "empty") in out.stderr
    configured = bare_env(ZDEVENTS_DATA_DIR=str(tmp_path / "empty"), ZENDESK_SUBDOMAIN="acme")
    out = run_cli("report", env=configured, cwd=tmp_path)
    assert out.returncode == 2 and "no SLA metric events cached for acme" in out.stderr
    assert not (tmp_path / "reports").exists()


@pytest.mark.slow
def test_status_names_the_folder_it_read(tmp_path):
    out = run_cli("status", "--data-dir", str(tmp_path / "c"), env=bare_env(), cwd=tmp_path)
    assert out.returncode == 0
    assert out.stdout.splitlines()[0] == f"cache folder: {tmp_path / 'c'}"
    assert "the cache is empty: run `zdevents fetch`" in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("where", ["unresolvable", "refused"])
def test_an_unreachable_account_fails_in_seconds_and_leaves_nothing_behind(where, tmp_path):
    import socket
    import time

    if where == "unresolvable":
        url, expected = (
            "https://zdevents-no-such-host.invalid",
            ("cannot resolve zdevents-no-such-host.invalid: check ZENDESK_BASE_URL"),
        )
    else:
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        listener.close()
        url, expected = (
            f"http://127.0.0.1:{port}",
            (f"cannot connect to 127.0.0.1:{port} (connection refused)"),
        )
    cache = tmp_path / "cache"
    env = bare_env(
        ZENDESK_BASE_URL=url,
        ZENDESK_EMAIL="a@x.test",
        ZENDESK_API_TOKEN="t",
        ZDEVENTS_DATA_DIR=str(cache),
    )
    started = time.monotonic()
    out = run_cli("fetch", "--quiet", env=env, cwd=tmp_path)
    assert time.monotonic() - started < 20  # was 25-50 s of retries
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"zdevents fetch: error: {expected}"] or (
        expected in out.stderr and len(out.stderr.strip().splitlines()) == 1
    )
    assert "try again later" not in out.stderr
    assert not cache.exists() or list(cache.iterdir()) == []  # no account folder, no lock


LIBRARY_FETCH = "import zdevents as zd; zd.fetch()"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("signame", "command"),
    [("SIGTERM", "cli"), ("SIGHUP", "cli"), ("SIGTERM", "library")],
)
def test_sigterm_and_sighup_keep_what_was_fetched(signame, command, tmp_path):
    import signal
    import threading
    import time

    from zdevents.store import open_store

    number = getattr(signal, signame)
    with LocalZendesk(
        SampleAccount(tickets=120, seed=3), page_size=100, metric_end_of_stream=True
    ) as srv:
        srv.slow_next(0.15, times=None, stream="metric_events")  # a paced export
        env = bare_env(
            ZENDESK_BASE_URL=srv.url,
            ZENDESK_SUBDOMAIN="sample",
            ZENDESK_EMAIL=srv.email,
            ZENDESK_API_TOKEN=srv.api_token,
            ZDEVENTS_DATA_DIR=str(tmp_path / "cache"),
            PYTHONFAULTHANDLER="1",  # a child that does not end shows where it is (SIGABRT)
        )
        argv = ["-m", "zdevents", "fetch"] if command == "cli" else ["-c", LIBRARY_FETCH]
        proc = subprocess.Popen(
            [sys.executable, *argv],
            env=env,
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # as from a terminal: a test run started under nohup passes SIGHUP on ignored, and
            # an ignored SIGHUP rightly stays ignored by the fetch
            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
        )
        seen = bytearray()

        def pump() -> None:  # the bar's redraws, as they come
            while chunk := proc.stderr.read1(4096):  # type: ignore[union-attr]
                seen.extend(chunk)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 60
            while b"8 pages" not in seen and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            assert b"8 pages" in seen, seen.decode(errors="replace")
            proc.send_signal(number)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGABRT)  # the threads' tracebacks, to stderr
                proc.wait(timeout=30)
                reader.join(timeout=10)
                pytest.fail(f"the fetch did not end after {signame}:\n{seen.decode()[-8000:]}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(timeout=10)
        served = srv.unique_count("metric_events")
    stderr = seen.decode(errors="replace")
    if command == "cli":  # one line, and the conventional status
        assert proc.returncode == 128 + number, stderr
        assert f"stopped by {signame}; everything fetched before this point is kept" in stderr
    else:  # the process still ends by the signal, as it asked, once the pages are kept
        assert proc.returncode == -number, stderr
    state = open_store(tmp_path / "cache", "sample", "metric_events").state()
    assert state.rows >= 700 and state.cursor is not None  # 8 pages of ~100, less repeats
    assert state.rows <= served


@pytest.mark.slow
def test_errors_use_the_command_line_words(tmp_path):
    env = bare_env(ZDEVENTS_DATA_DIR=str(tmp_path))
    out = run_cli("report", "--since", "2024-02-01", "--until", "2024-01-01", env=env, cwd=tmp_path)
    assert out.returncode == 2
    assert "--since (2024-02-01" in out.stderr and "is after --until (2024-01-01" in out.stderr
    creds = dict(env, ZENDESK_SUBDOMAIN="acme", ZENDESK_EMAIL="a@x.test", ZENDESK_API_TOKEN="t")
    out = run_cli("fetch", "--since", "someday", env=creds, cwd=tmp_path)
    assert out.returncode == 2 and "--since='someday'" in out.stderr
    for text in (out.stderr, out.stdout):
        assert "settings=" not in text


@pytest.mark.e2e
def test_the_demo_uses_the_data_dir_of_a_dotenv_that_status_reads_too(tmp_path):
    (tmp_path / ".env").write_text("ZDEVENTS_DATA_DIR=elsewhere\n")
    env = bare_env()
    demo = run_cli("demo", "--tickets", "20", "--quiet", env=env, cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert (tmp_path / "elsewhere" / "sample" / "metric_events" / "_delta_log").is_dir()
    assert not (tmp_path / "data").exists()
    status = run_cli("status", env=env, cwd=tmp_path)
    assert status.stdout.splitlines()[0] == f"cache folder: {tmp_path / 'elsewhere'}"


@pytest.mark.e2e
def test_the_demo_keeps_the_table_format_the_environment_or_dotenv_asks_for(tmp_path):
    (tmp_path / ".env").write_text("ZDEVENTS_TABLE_FORMAT=parquet\n")
    demo = run_cli("demo", "--tickets", "20", "--quiet", env=bare_env(), cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    folder = tmp_path / "data" / "sample" / "metric_events"
    assert (folder / "state.json").is_file() and not (folder / "_delta_log").exists()
    env = bare_env(ZDEVENTS_TABLE_FORMAT="delta")  # the environment wins over .env
    demo = run_cli("demo", "--tickets", "20", "--quiet", "--data-dir", "d2", env=env, cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert (tmp_path / "d2" / "sample" / "metric_events" / "_delta_log").is_dir()

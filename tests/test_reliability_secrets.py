"""Secrets: a recognisable token through every failure path, and credentials stay home.

Each path runs twice with the token ``zd-SECRET-TOKEN-4242`` (or a password / OAuth token of
the same shape): through the library, capturing DEBUG logs of every logger and the
exception (str, repr, args, url/path, the whole cause chain and its formatted traceback),
and through the command line with ``--verbose`` and the progress bar on, capturing stdout
and stderr. Then every file in the data folder (state.json, Parquet bytes and metadata,
rejected pages, the lock) is read. The token, its base64 basic-auth form and any cut-off
prefix of them must appear nowhere.

Every test runs on both local stores (``table_format``). On the Delta table the files read
include every ``_delta_log`` entry, also decoded: each action and the ``zdevents`` commit
metadata (cursor, coverage, footers) as text, and each data file's key-value metadata.
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from _reliability import TABLE_FORMATS, cache_of, cli_env, store_of

import zdevents as zd
from zdevents import cli
from zdevents.export import client as client_module
from zdevents.sample.account import SampleAccount
from zdevents.sample.server import LocalZendesk

pytestmark = pytest.mark.e2e

TOKEN = "zd-SECRET-TOKEN-4242"
PASSWORD = "zd-SECRET-PASSWORD-7777"
OAUTH = "zd-SECRET-OAUTH-9999"
EMAIL = "admin@sample.test"


def needles(secret: str, user: str | None) -> list[bytes]:
    """The secret, its basic-auth base64 form, and prefixes long enough to mean a leak."""
    forms = [secret.encode(), b"zd-SECRET", secret[:12].encode()]
    if user is not None:
        pair = base64.b64encode(f"{user}:{secret}".encode())
        forms += [pair, pair[:44]]  # 44 characters reach well into the secret
        # the base64 of the secret alone, as it sits inside the pair when aligned
        forms.append(base64.b64encode(secret.encode())[:12])
    return forms


ALL_NEEDLES = needles(TOKEN, f"{EMAIL}/token") + needles(PASSWORD, EMAIL) + needles(OAUTH, None)


def assert_clean(texts: list[str | bytes], where: str) -> None:
    for text in texts:
        data = text.encode("utf-8", "replace") if isinstance(text, str) else text
        for needle in ALL_NEEDLES:
            assert needle not in data, (
                f"{needle!r} leaked in {where}: ...{_around(data, needle)}..."
            )


def _around(data: bytes, needle: bytes) -> bytes:
    at = data.find(needle)
    return data[max(0, at - 60) : at + len(needle) + 20]


def exception_texts(exc: BaseException | None) -> list[str]:
    texts: list[str] = []
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        texts += [str(exc), repr(exc), repr(exc.args), str(getattr(exc, "url", "")),
                  str(getattr(exc, "path", ""))]  # fmt: skip
        texts += traceback.format_exception(exc)
        exc = exc.__cause__ or exc.__context__
    return texts


def files_texts(root: Path) -> Iterator[bytes]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path.read_bytes()
            if path.parent.name == "_delta_log" and path.suffix == ".json":
                yield from _log_texts(path.read_bytes())
            if path.suffix == ".parquet" and path.stat().st_size > 12:
                try:
                    meta = pq.read_metadata(path)
                    yield str(meta).encode() + repr(meta.metadata).encode()
                    yield repr(pq.read_schema(path).metadata).encode()
                except Exception:  # a damaged file: its raw bytes were scanned above
                    pass


def _log_texts(data: bytes) -> Iterator[bytes]:
    """A Delta log entry decoded: every action, and the commit metadata's JSON texts."""
    for line in data.splitlines():
        action = json.loads(line)  # a log entry of the table parses, line by line
        yield json.dumps(action, ensure_ascii=False).encode()
        info = action.get("commitInfo") or {}
        for value in info.values():
            if isinstance(value, str) and value.startswith("{"):
                yield json.dumps(json.loads(value), ensure_ascii=False).encode()


def assert_store(root: Path, table_format: str) -> None:
    """Every stream folder under ``root`` is of the store the test asked for."""
    tables = list(root.rglob("_delta_log"))
    states = list(root.rglob("state.json"))
    assert not (states if table_format == "delta" else tables), (table_format, tables, states)


# ------------------------------------------------------------------------------ servers
@pytest.fixture(params=TABLE_FORMATS)
def table_format(request) -> str:
    """The store of each test: the Delta table, then the Parquet cache folder."""
    return request.param


@pytest.fixture(scope="module")
def account():
    return SampleAccount(tickets=30, seed=99)


@pytest.fixture(scope="module")
def server(account):
    with LocalZendesk(account, api_token=TOKEN, page_size=40,
                      metric_end_of_stream=True, tcp_nodelay=True) as srv:  # fmt: skip
        srv.preload()
        yield srv


@pytest.fixture(scope="module")
def foreign(account):
    """Another server on 127.0.0.1 that must never be asked anything."""
    with LocalZendesk(account, api_token=TOKEN) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _fast(monkeypatch, server):
    monkeypatch.setattr(client_module, "BACKOFF_BASE", 0.01)
    server.clear_faults()
    yield
    server.clear_faults()


def run_both(
    settings: zd.Settings,
    env: dict[str, str],
    action: Callable[[], object],
    argv: list[str],
    caplog,
    capsys,
    monkeypatch,
    setup: Callable[[], None] = lambda: None,
) -> BaseException | None:
    """Run ``action`` (library) then ``zdevents --verbose <argv>`` (CLI); scan everything."""
    caplog.set_level(logging.DEBUG)
    setup()
    error: BaseException | None = None
    try:
        result = action()
        assert_clean([str(result), repr(result)], "the result")
    except zd.ZdEventsError as exc:
        error = exc
    setup()
    for name in [
        k for k in list(__import__("os").environ) if k.startswith(("ZENDESK_", "ZDEVENTS_"))
    ]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = cli.main(["--verbose", *argv])
    out, err = capsys.readouterr()
    assert_clean([out, err], "CLI output")
    assert_clean([caplog.text, *(r.getMessage() for r in caplog.records)], "the logs")
    assert_clean(exception_texts(error), "the exception")
    assert_clean(list(files_texts(Path(settings.data_dir))), "the data folder")
    assert_store(Path(settings.data_dir), settings.table_format)
    assert env["ZDEVENTS_TABLE_FORMAT"] == settings.table_format
    assert_clean([repr(settings), str(settings)], "the settings repr")
    if error is not None:
        assert code == 2, err
        assert "Traceback" not in err
    return error


def env_for(
    server: LocalZendesk, data_dir: Path, table_format: str, **extra: str
) -> dict[str, str]:
    env = cli_env(server, data_dir, table_format)
    env = {k: v for k, v in env.items() if k.startswith(("ZEN", "ZDE"))}
    env.update(extra)
    return env


# ------------------------------------------------------------------------------ failure paths
@pytest.mark.parametrize("auth", ["api_token", "password", "oauth_token"])
def test_refused_credentials(account, tmp_path, caplog, capsys, monkeypatch, auth, table_format):
    secret = {"api_token": TOKEN, "password": PASSWORD, "oauth_token": OAUTH}[auth]
    with LocalZendesk(account, api_token="the-right-one", oauth_token="the-right-oauth") as srv:
        settings = zd.Settings(subdomain="sample", base_url=srv.url, data_dir=tmp_path,
                               table_format=table_format,
                               email=None if auth == "oauth_token" else EMAIL,
                               **{auth: secret})  # fmt: skip
        env = {"ZENDESK_BASE_URL": srv.url, "ZENDESK_SUBDOMAIN": "sample",
               "ZDEVENTS_DATA_DIR": str(tmp_path), f"ZENDESK_{auth.upper()}": secret,
               "ZDEVENTS_TABLE_FORMAT": table_format}  # fmt: skip
        if auth != "oauth_token":
            env["ZENDESK_EMAIL"] = EMAIL
        error = run_both(settings, env, lambda: zd.fetch(settings=settings, progress=False),
                         ["fetch"], caplog, capsys, monkeypatch)  # fmt: skip
        assert isinstance(error, zd.AuthError)
        assert all(r.has_auth for r in srv.request_log)  # they were sent, to it only


FAULTS = {
    "5xx after the retry budget": (lambda s: s.fail_next(503, times=None, after=3),
                                   zd.ServerError),
    "connection resets": (lambda s: s.inject("reset", times=None, after=3), zd.ServerError),
    "malformed page every time": (lambda s: s.malformed_next(times=None), zd.PageError),
    "HTML page every time": (lambda s: s.html_next(times=None), zd.PageError),
    "429 storm": (lambda s: s.inject("rate_limit", times=None, after=2, retry_after=None),
                  zd.RateLimited),
    "slower than the timeout": (lambda s: s.inject("slow", times=None, seconds=1.0),
                                zd.ServerError),
    "next_page loop": (lambda s: s.loop_next(times=None), zd.PageError),
    "empty page, end_of_stream false": (lambda s: s.empty_next(times=1), zd.PageError),
}  # fmt: skip


@pytest.mark.parametrize("case", list(FAULTS))
def test_server_faults(server, tmp_path, caplog, capsys, monkeypatch, case, table_format):
    inject, error_class = FAULTS[case]
    settings = server.settings(
        data_dir=tmp_path, max_retries=1, timeout=0.5, table_format=table_format
    )
    env = env_for(server, tmp_path, table_format)
    monkeypatch.setattr(zd.Settings, "from_env", _with_retries(zd.Settings.from_env))
    error = run_both(settings, env, lambda: zd.fetch(settings=settings, progress=False),
                     ["fetch"], caplog, capsys, monkeypatch,
                     setup=lambda: (server.clear_faults(), inject(server)))  # fmt: skip
    assert isinstance(error, error_class)


def _with_retries(from_env):
    def quick(*args, **kwargs):
        return from_env(*args, **kwargs).with_(max_retries=1, timeout=0.5)

    return staticmethod(quick)


def test_foreign_next_page_reaches_no_other_server(server, foreign, tmp_path, caplog, capsys,
                                                   monkeypatch, table_format):  # fmt: skip
    host = f"127.0.0.1:{foreign.url.rsplit(':', 1)[1]}"
    settings = server.settings(data_dir=tmp_path, table_format=table_format)
    error = run_both(settings, env_for(server, tmp_path, table_format),
                     lambda: zd.fetch(settings=settings, progress=False), ["fetch"],
                     caplog, capsys, monkeypatch,
                     setup=lambda: (server.clear_faults(), server.foreign_next_page(host)))  # fmt: skip
    assert isinstance(error, zd.PageError) and "next_page points at" in str(error)
    assert foreign.request_log == []


def test_a_redirect_to_another_host_is_not_followed(foreign, tmp_path, caplog, capsys,
                                                    monkeypatch, table_format):  # fmt: skip
    target = f"{foreign.url}/api/v2/incremental/ticket_metric_events?start_time=0"

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", target)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with _tiny_server(answer) as url:
        settings = zd.Settings(base_url=url, subdomain="sample", email=EMAIL, api_token=TOKEN,
                               data_dir=tmp_path, requests_per_minute=1e6,
                               table_format=table_format)  # fmt: skip
        env = {"ZENDESK_BASE_URL": url, "ZENDESK_SUBDOMAIN": "sample", "ZENDESK_EMAIL": EMAIL,
               "ZENDESK_API_TOKEN": TOKEN, "ZDEVENTS_DATA_DIR": str(tmp_path),
               "ZDEVENTS_TABLE_FORMAT": table_format}  # fmt: skip
        error = run_both(settings, env, lambda: zd.fetch(settings=settings, progress=False),
                         ["fetch"], caplog, capsys, monkeypatch)  # fmt: skip
    assert isinstance(error, zd.ApiError) and "does not follow redirects" in str(error)
    assert foreign.request_log == []


def test_a_page_that_cannot_be_read_is_kept_without_the_token(
    account, tmp_path, caplog, capsys, monkeypatch, table_format
):
    events = list(account.metric_events())[:50]
    hostile = {**events[-1], "id": 1, "ticket_id": TOKEN}  # wrong type, and it echoes our token
    with LocalZendesk(metric_events=[*events, hostile], api_token=TOKEN) as srv:
        settings = srv.settings(data_dir=tmp_path, table_format=table_format)
        error = run_both(settings, env_for(srv, tmp_path, table_format),
                         lambda: zd.fetch(settings=settings, progress=False), ["fetch"],
                         caplog, capsys, monkeypatch)  # fmt: skip
    assert isinstance(error, zd.PageError) and "ticket_id" in str(error)
    saved = list((cache_of(settings).dir / "rejected").glob("*.json"))
    assert saved and all(b'"ticket_id":"***"' in p.read_bytes() for p in saved)


def test_lock_refusal(server, tmp_path, caplog, capsys, monkeypatch, table_format):
    settings = server.settings(data_dir=tmp_path, table_format=table_format)
    cache = store_of(tmp_path, settings.account, "metric_events", table_format)
    with cache.lock():
        error = run_both(settings, env_for(server, tmp_path, table_format),
                         lambda: zd.fetch(settings=settings, progress=False), ["fetch"],
                         caplog, capsys, monkeypatch)  # fmt: skip
    assert isinstance(error, zd.CacheLocked)


def test_corrupt_cache(server, tmp_path, caplog, capsys, monkeypatch, table_format):
    settings = server.settings(data_dir=tmp_path, table_format=table_format)
    zd.fetch(settings=settings, progress=False)
    part = cache_of(settings).dir / cache_of(settings).state().files[0].path
    part.write_bytes(part.read_bytes()[:-50])
    error = run_both(settings, env_for(server, tmp_path, table_format),
                     lambda: zd.load_frame(refresh="never", settings=settings),
                     ["report", "--out", str(tmp_path / "out")], caplog, capsys, monkeypatch)  # fmt: skip
    assert isinstance(error, zd.CacheError) and "--force" in str(error)


def test_a_successful_fetch_with_progress_bars(server, tmp_path, caplog, capsys, monkeypatch,
                                               table_format):  # fmt: skip
    settings = server.settings(data_dir=tmp_path, table_format=table_format)
    error = run_both(settings, env_for(server, tmp_path, table_format),
                     lambda: zd.fetch(settings=settings, progress=True), ["fetch", "--stream", "all"],
                     caplog, capsys, monkeypatch)  # fmt: skip
    assert error is None
    assert any(p.suffix == ".parquet" for p in tmp_path.rglob("*"))
    if table_format == "delta":  # the table's log, with zdevents' commit metadata, was scanned
        log = [p.read_bytes() for p in tmp_path.rglob("_delta_log/*.json")]
        assert log and any(b'"zdevents"' in entry and b"cursor" in entry for entry in log)


# ------------------------------------------------------------------------------ a hostile echo
class _Handler(BaseHTTPRequestHandler):
    answer: Callable[[BaseHTTPRequestHandler], None]

    def do_GET(self) -> None:
        type(self).answer(self)

    def log_message(self, *args: object) -> None:
        pass


class _tiny_server:
    """A one-route server on 127.0.0.1 answering every GET with ``answer(handler)``."""

    def __init__(self, answer: Callable[[BaseHTTPRequestHandler], None]) -> None:
        handler = type("Handler", (_Handler,), {"answer": staticmethod(answer)})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _echoing(kind: str, knob: dict[str, int]) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        padding = knob["padding"]
        auth = handler.headers.get("Authorization", "")
        echo = f"{auth} {auth.split()[-1] if auth else ''} {TOKEN}"
        if kind == "error body":  # an HTTP 400 whose text repeats the credentials
            status, body = 400, ("x" * padding + " you sent " + echo).encode()
        elif kind == "end_time":  # a page whose envelope carries them where a number belongs
            status = 200
            body = ('{"ticket_metric_events": [], "end_time": "' + "x" * (padding % 30)
                    + echo + '"}').encode()  # fmt: skip
        else:  # next_page with them in its path (logged as a warning)
            status = 200
            body = ('{"ticket_metric_events": [], "count": 0, "end_of_stream": true, '
                    f'"end_time": 1700000000, "next_page": "{handler.headers["Host"]}'
                    f'/x/{TOKEN}/{"y" * padding}"}}').encode()  # fmt: skip
            body = body.replace(b'"next_page": "', b'"next_page": "http://')
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


@pytest.mark.parametrize("kind", ["error body", "end_time", "next_page path"])
def test_a_server_echoing_the_credentials_cut_at_any_length(kind, tmp_path, caplog, table_format):
    """Excerpts are cut to a length; the cut must never leave a readable piece of a secret."""
    caplog.set_level(logging.DEBUG)
    paddings = range(140, 215) if kind == "error body" else range(0, 30)
    knob = {"padding": 0}
    with _tiny_server(_echoing(kind, knob)) as url:
        for padding in paddings:
            knob["padding"] = padding
            settings = zd.Settings(base_url=url, subdomain="sample", email=EMAIL,
                                   api_token=TOKEN, data_dir=tmp_path / str(padding),
                                   requests_per_minute=1e6, max_retries=0,
                                   table_format=table_format)  # fmt: skip
            error = None
            try:
                zd.fetch(settings=settings, progress=False, since="2023-11-14")
            except zd.ZdEventsError as exc:
                error = exc
            _check_echo(kind, padding, error, caplog)


def _check_echo(kind: str, padding: int, error: BaseException | None, caplog) -> None:
    if kind != "next_page path":
        assert error is not None
    assert_clean(exception_texts(error), f"the exception ({kind}, padding {padding})")
    assert_clean([caplog.text], f"the logs ({kind}, padding {padding})")


@pytest.mark.slow
def test_the_real_command_with_verbose_logging_and_progress(server, tmp_path, table_format):
    """A real ``python -m zdevents --verbose fetch`` refused mid-fetch after three pages."""
    env = cli_env(server, tmp_path, table_format)
    server.fail_next(401, times=None, after=3)
    out = subprocess.run([sys.executable, "-m", "zdevents", "--verbose", "fetch"], env=env,
                         capture_output=True, timeout=240)  # fmt: skip
    assert out.returncode == 2
    assert b"DEBUG zdevents.export.client: GET" in out.stderr  # the verbose log really ran
    assert b"caught up to" in out.stderr  # and the progress bar
    assert_clean([out.stdout, out.stderr], "the real command's output")
    assert_clean(list(files_texts(tmp_path)), "the data folder")
    assert_store(tmp_path, table_format)

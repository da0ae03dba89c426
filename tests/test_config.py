from pathlib import Path

import pytest

from zdevents import ConfigError, Settings

TOKEN = "tok-SECRET-123"


def test_env_then_overrides_and_dotenv(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("ZENDESK_SUBDOMAIN=fromfile\nZENDESK_EMAIL=file@x.test\n")
    s = Settings.from_env(
        {"ZENDESK_SUBDOMAIN": "fromenv", "ZDEVENTS_REQUESTS_PER_MINUTE": "30"},
        dotenv=env_file,
        data_dir=tmp_path,
    )
    assert s.subdomain == "fromenv"  # environment beats .env
    assert s.email == "file@x.test"  # .env fills what the environment lacks
    assert s.requests_per_minute == 30.0
    assert s.data_dir == tmp_path


def test_dotenv_does_not_touch_os_environ(tmp_path, monkeypatch):
    monkeypatch.delenv("ZENDESK_API_TOKEN", raising=False)
    (tmp_path / ".env").write_text(f"ZENDESK_API_TOKEN={TOKEN}\n")
    s = Settings.from_env({}, dotenv=tmp_path / ".env", data_dir=tmp_path)
    import os

    assert s.api_token == TOKEN
    assert "ZENDESK_API_TOKEN" not in os.environ


def test_secrets_never_in_repr_or_str():
    s = Settings(
        subdomain="acme",
        email="a@acme.test",
        api_token=TOKEN,
        password=TOKEN + "p",
        oauth_token=TOKEN + "o",
        data_dir=Path("/tmp/x"),
    )
    for text in (repr(s), str(s)):
        assert TOKEN not in text
        assert "api_token='***'" in text


def test_base_url_defaults_to_subdomain_and_names_the_account():
    s = Settings(subdomain="Acme", data_dir=Path("/tmp/x"))
    assert s.url == "https://acme.zendesk.com"
    assert s.account == "acme"


@pytest.mark.parametrize(
    "url",
    [
        "http://acme.zendesk.com",
        "ftp://x",
        "not a url",
        "https://u:p@acme.zendesk.com",
        "https://a.test/?q=1",
    ],
)
def test_bad_base_urls_are_refused(url):
    with pytest.raises(ConfigError, match="ZENDESK_BASE_URL"):
        Settings(base_url=url, data_dir=Path("/tmp/x"))


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9"])
def test_plain_http_only_for_loopback(url):
    assert Settings(base_url=url, data_dir=Path("/tmp/x")).url == url


@pytest.mark.parametrize("sub", ["acme.zendesk.com", "../etc", "a/b", "-x", "x" * 70, "a b"])
def test_malformed_subdomains_are_refused(sub):
    with pytest.raises(ConfigError, match="ZENDESK_SUBDOMAIN"):
        Settings(subdomain=sub, data_dir=Path("/tmp/x"))


def test_credentials_messages_name_what_to_set():
    with pytest.raises(ConfigError, match="ZENDESK_API_TOKEN"):
        Settings(subdomain="a", email="a@b.test", data_dir=Path("/tmp/x")).require_credentials()
    with pytest.raises(ConfigError, match="ZENDESK_EMAIL"):
        Settings(subdomain="a", api_token="t", data_dir=Path("/tmp/x")).require_credentials()
    with pytest.raises(ConfigError, match="ZENDESK_SUBDOMAIN"):
        Settings(data_dir=Path("/tmp/x")).url  # noqa: B018


def test_auth_forms():
    base = dict(subdomain="a", data_dir=Path("/tmp/x"))
    assert Settings(email="e@x.test", api_token="t", **base).auth() == ("e@x.test/token", "t")
    assert Settings(email="e@x.test", password="p", **base).auth() == ("e@x.test", "p")
    oauth = Settings(oauth_token="o", **base)
    assert oauth.auth() is None
    assert oauth.auth_headers() == {"Authorization": "Bearer o"}


@pytest.mark.parametrize("rpm", ["0", "-3", "ten"])
def test_requests_per_minute_must_be_positive_number(rpm):
    with pytest.raises(ConfigError, match="ZDEVENTS_REQUESTS_PER_MINUTE"):
        Settings.from_env({"ZDEVENTS_REQUESTS_PER_MINUTE": rpm}, dotenv=False)


def test_credentials_and_base_url_from_different_places_are_refused(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("ZENDESK_BASE_URL=https://collector.example.com\n")
    env = {"ZENDESK_EMAIL": "a@acme.test", "ZENDESK_API_TOKEN": TOKEN}
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env, dotenv=dotenv, data_dir=tmp_path)
    message = str(info.value)
    assert "ZENDESK_API_TOKEN from the environment" in message
    assert f"ZENDESK_BASE_URL from the .env file {dotenv}" in message
    assert TOKEN not in message
    # the other way round, and an argument against the environment
    dotenv.write_text(f"ZENDESK_API_TOKEN={TOKEN}\nZENDESK_EMAIL=a@acme.test\n")
    with pytest.raises(ConfigError, match="come from different places"):
        Settings.from_env({"ZENDESK_SUBDOMAIN": "acme"}, dotenv=dotenv, data_dir=tmp_path)
    with pytest.raises(ConfigError, match="the argument base_url="):
        Settings.from_env(env, dotenv=False, base_url="https://other.example.com")


def test_one_place_for_everything_is_accepted(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        f"ZENDESK_SUBDOMAIN=acme\nZENDESK_EMAIL=a@acme.test\nZENDESK_API_TOKEN={TOKEN}\n"
    )
    assert Settings.from_env({}, dotenv=dotenv, data_dir=tmp_path).url == "https://acme.zendesk.com"
    env = {"ZENDESK_SUBDOMAIN": "acme", "ZENDESK_API_TOKEN": TOKEN, "ZENDESK_EMAIL": "a@acme.test"}
    assert Settings.from_env(env, dotenv=False).has_credentials
    # an account from anywhere, with no credentials at all, only reads the cache: allowed
    assert Settings.from_env({"ZENDESK_SUBDOMAIN": "acme"}, dotenv=dotenv.with_name("none"))


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ZDEVENTS_REQUESTS_PER_MINUTE", "inf"),
        ("ZDEVENTS_REQUESTS_PER_MINUTE", "nan"),
        ("ZDEVENTS_REQUESTS_PER_MINUTE", "1e400"),
        ("ZDEVENTS_MAX_RETRY_AFTER", "-1"),
        ("ZDEVENTS_MAX_RETRY_AFTER", "inf"),
        ("ZDEVENTS_MAX_RETRY_AFTER", "soon"),
        ("ZDEVENTS_MAX_PAGE_BYTES", "12.5"),
        ("ZDEVENTS_MAX_PAGE_BYTES", "0"),
    ],
)
def test_every_numeric_setting_is_a_one_line_config_error(variable, value):
    with pytest.raises(ConfigError, match=variable) as info:
        Settings.from_env({variable: value}, dotenv=False, data_dir="/tmp/x")
    assert "\n" not in str(info.value)


def test_new_limits_read_from_the_environment():
    s = Settings.from_env(
        {"ZDEVENTS_MAX_RETRY_AFTER": "120", "ZDEVENTS_MAX_PAGE_BYTES": "1048576"},
        dotenv=False,
        data_dir="/tmp/x",
    )
    assert (s.max_retry_after, s.max_page_bytes) == (120.0, 1048576)


@pytest.mark.parametrize(
    ("url", "account"),
    [
        ("http://[::1]:8080", "ipv6-0-1"),
        ("https://[fe80::1:2]", "ipv6-fe80-0-1-2"),
        ("http://127.0.0.1:9", "127.0.0.1"),
        ("http://localhost:1", "localhost"),
        ("https://Support.Example.com", "support.example.com"),
    ],
)
def test_base_url_hosts_give_sensible_account_names(url, account):
    assert Settings(base_url=url, data_dir=Path("/tmp/x")).account == account


@pytest.mark.parametrize("token", ["tok en", "tok\nX-Injected: 1", "tökén"])
def test_an_oauth_token_that_cannot_be_a_header_is_a_config_error_without_the_token(token):
    with pytest.raises(ConfigError, match="ZENDESK_OAUTH_TOKEN must be printable ASCII") as info:
        Settings(subdomain="a", oauth_token=token, data_dir="/tmp/x")
    assert token not in str(info.value)


def test_the_account_is_the_configured_one_else_the_only_one_cached(tmp_path):
    from zdevents.config import resolve_account

    assert resolve_account(Settings(subdomain="acme", data_dir=tmp_path)) == "acme"
    with pytest.raises(ConfigError, match="no cached data in .* run `zdevents demo`"):
        resolve_account(Settings(data_dir=tmp_path))
    (tmp_path / "sample" / "metric_events").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("not an account")
    assert resolve_account(Settings(data_dir=tmp_path)) == "sample"
    (tmp_path / "acme").mkdir()
    with pytest.raises(ConfigError, match=r"several accounts \(acme, sample\)"):
        resolve_account(Settings(data_dir=tmp_path))
    assert resolve_account(Settings(subdomain="other", data_dir=tmp_path)) == "other"

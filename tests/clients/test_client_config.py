"""Client settings: the url forms, and flags over environment over config file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clients.config import DEFAULT_URL, Endpoint, default_config_path, resolve
from clients.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "ws", "http"),
    [
        ("ws://h:1/ws", "ws://h:1/ws", "http://h:1"),
        ("http://h:1", "ws://h:1/ws", "http://h:1"),
        ("h:1", "ws://h:1/ws", "http://h:1"),
        (
            "https://ex.example/cux/",
            "wss://ex.example/cux/ws",
            "https://ex.example/cux",
        ),
        ("wss://ex.example/ws", "wss://ex.example/ws", "https://ex.example"),
        ("[::1]:8700", "ws://[::1]:8700/ws", "http://[::1]:8700"),
        (" http://[::1]:8700/ ", "ws://[::1]:8700/ws", "http://[::1]:8700"),
    ],
)
def test_endpoint_derives_both_addresses_from_any_url_form(
    url: str, ws: str, http: str
) -> None:
    assert Endpoint.parse(url) == Endpoint(ws, http)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://h:1", "the scheme must be ws, wss, http or https"),
        ("://x", "the scheme must be ws, wss, http or https"),
        ("ws://", "it names no host"),
        ("", "it names no host"),
        (":8700", "it names no host"),
        ("http://[::1", "an address in [ ] must be a whole IPv6 address"),
        ("ws://[nope]:1", "an address in [ ] must be a whole IPv6 address"),
        ("h:abc", "the port must be a number from 1 to 65535"),
        ("h:65536", "the port must be a number from 1 to 65535"),
        ("h:0", "the port must be a number from 1 to 65535"),
        ("ws://h h:1", "the host name has a space in it"),
        ("ws://alice@h:1", "the account goes in --key and --secret"),
        ("h:1/ws?x=1", "a server url has no ?query or #fragment"),
        ("h:1/#top", "a server url has no ?query or #fragment"),
    ],
)
def test_endpoint_refuses_other_urls_saying_why(url: str, why: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Endpoint.parse(url)

    assert str(refused.value).startswith(f"not a cux server url: {url!r} ({why}")


def test_a_bad_url_from_any_source_is_refused_at_resolve() -> None:
    with pytest.raises(ConfigError, match="it names no host"):
        resolve(env={"CUX_URL": "ws://:1", "CUX_CONFIG": "/nonexistent/c.toml"})


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_flags_beat_environment_which_beats_the_file(tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.toml", 'url = "f:1"\nkey = "file"\nsecret = "file-secret"\n'
    )
    env = {"CUX_KEY": "env", "CUX_SECRET": "env-secret"}

    from_file = resolve(config=config, env={})
    assert (from_file.url, from_file.key, from_file.secret) == (
        "f:1",
        "file",
        "file-secret",
    )
    from_env = resolve(config=config, env=env)
    assert (from_env.url, from_env.key) == ("f:1", "env")
    flagged = resolve(key="flag", secret="s", config=config, env=env)
    assert (flagged.key, flagged.secret) == ("flag", "s")


def test_a_profile_overrides_the_top_level_keys(tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.toml",
        'key = "alice"\nsecret = "a"\n[profiles.bob]\nkey = "bob"\nsecret = "b"\n',
    )
    assert resolve(config=config, profile="bob", env={}).key == "bob"
    assert resolve(config=config, env={"CUX_PROFILE": "bob"}).key == "bob"
    with pytest.raises(ConfigError, match=r"no \[profiles.carol\]"):
        resolve(config=config, profile="carol", env={})


def test_the_default_file_is_under_xdg_config_home_and_may_be_missing(
    tmp_path: Path,
) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert default_config_path(env) == tmp_path / "cux" / "client.toml"
    settings = resolve(env=env)
    assert (settings.url, settings.key, settings.secret) == (DEFAULT_URL, None, None)
    (tmp_path / "cux").mkdir()
    write(tmp_path / "cux" / "client.toml", 'key = "k"\nsecret = "s"\n')
    assert resolve(env=env).require_credentials() == ("k", "s")
    assert default_config_path({"CUX_CONFIG": "/x.toml"}) == Path("/x.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('kye = "alice"\n', "unknown keys kye"),
        ("key = 3\n", "key must be a string"),
        ("key = \n", "not valid TOML"),
        ("profiles = 5\n", r"c\.toml: profiles must be tables .* not an integer"),
        ("[profiles]\nbob = 3\n", r"c\.toml: profiles\.bob must be a table"),
    ],
)
def test_a_bad_config_file_names_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    config = write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError, match=message):
        resolve(config=config, env={})


def test_a_config_file_given_by_flag_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        resolve(config=tmp_path / "missing.toml", env={})


def test_missing_credentials_say_where_to_set_them() -> None:
    with pytest.raises(ConfigError, match=r"--key and --secret.*CUX_KEY"):
        resolve(env={"CUX_CONFIG": "/nonexistent/c.toml"}).require_credentials()


def test_missing_credentials_name_the_config_file_given_not_the_default(
    tmp_path: Path,
) -> None:
    config = write(tmp_path / "mine.toml", 'url = "127.0.0.1:8700"\n')

    with pytest.raises(ConfigError, match=f"write them into {re.escape(str(config))}$"):
        resolve(config=config, env={}).require_credentials()

"""Where the client connects and as whom: flags, environment, config file.

Each setting comes from the first of these that has it:

1. a command-line flag (``--url``, ``--key``, ``--secret``),
2. the environment (``CUX_URL``, ``CUX_KEY``, ``CUX_SECRET``),
3. the config file: ``--config FILE``, else ``$CUX_CONFIG``, else
   ``$XDG_CONFIG_HOME/cux/client.toml`` (``~/.config/cux/client.toml``),
4. the default url ``ws://127.0.0.1:8700/ws`` (there is no default key).

The config file is TOML. Its top-level keys are the defaults; a
``[profiles.NAME]`` table overrides them when ``--profile NAME`` (or
``$CUX_PROFILE``) picks it:

```toml
url = "ws://127.0.0.1:8700/ws"
key = "alice"
secret = "alice-secret"

[profiles.bob]
key = "bob"
secret = "bob-secret"
```

A url may be the websocket endpoint (``ws://host:port/ws``, ``wss://...``), the
server's base (``http://host:port``) or just ``host:port``; `Endpoint` derives
both the websocket and the REST address from it. An IPv6 address goes in
brackets (``[::1]:8700``). Anything else is refused with a `ConfigError` saying
why: another scheme, no host, a port that is not 1 to 65535, an unclosed ``[``,
a ``user@`` part (the account goes in ``key`` and ``secret``), a ``?query`` or
a ``#fragment``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from clients.errors import ConfigError

__all__ = ["DEFAULT_URL", "ClientConfig", "Endpoint", "default_config_path", "resolve"]

DEFAULT_URL = "ws://127.0.0.1:8700/ws"
_KEYS = ("url", "key", "secret")


@dataclass(frozen=True)
class Endpoint:
    """A server's two addresses: ``ws`` (the ``/ws`` endpoint) and ``http``
    (the base of ``/api/v1/...``)."""

    ws: str
    http: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """The endpoint of ``url`` (see the module docstring for the forms).

        Raises:
            ConfigError: not a url of one of those forms; the message says why.
        """
        text = url.strip()
        if "://" not in text:
            text = "ws://" + text
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"not a cux server url: {url!r} ({_why(exc)})") from None
        secure = _SCHEMES.get(parts.scheme)
        problem = _problem(parts, secure, port)
        if problem is not None:
            raise ConfigError(f"not a cux server url: {url!r} ({problem})")
        path = parts.path.rstrip("/")
        if path.endswith("/ws"):
            path = path[: -len("/ws")]
        ws_scheme, http_scheme = ("wss", "https") if secure else ("ws", "http")
        return cls(
            ws=f"{ws_scheme}://{parts.netloc}{path}/ws",
            http=f"{http_scheme}://{parts.netloc}{path}",
        )


_SCHEMES = {"ws": False, "http": False, "wss": True, "https": True}
"""The schemes a server url may have: whether each is secure (TLS)."""


def _problem(parts: SplitResult, secure: bool | None, port: int | None) -> str | None:
    """What makes a split url no cux server url, or None."""
    if secure is None:
        return "the scheme must be ws, wss, http or https"
    if not parts.hostname:
        return "it names no host"
    if any(c.isspace() for c in parts.hostname):
        return "the host name has a space in it"
    if port == 0:
        return "the port must be a number from 1 to 65535"
    if parts.username is not None or parts.password is not None:
        return "the account goes in --key and --secret, not in the url"
    if parts.query or parts.fragment:
        return "a server url has no ?query or #fragment"
    return None


def _why(exc: ValueError) -> str:
    """`urlsplit`'s complaint in the words of this module."""
    text = str(exc)
    if text.startswith("Port"):
        return "the port must be a number from 1 to 65535"
    if "IPv6" in text or "IPv4" in text:
        return "an address in [ ] must be a whole IPv6 address, as in [::1]:8700"
    return text


@dataclass(frozen=True)
class ClientConfig:
    """Resolved settings: the server's ``url`` and the credentials (None when
    no source gave them; public market data needs none)."""

    url: str
    key: str | None
    secret: str | None
    config_path: Path | None = None
    """The config file these settings were looked for in (None: the default
    path), named when a setting is missing."""

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint.parse(self.url)

    def require_credentials(self) -> tuple[str, str]:
        """The key and secret.

        Raises:
            ConfigError: one of them is missing, with where to set it.
        """
        if not self.key or not self.secret:
            raise ConfigError(
                "this command needs a key and a secret: pass --key and --secret, "
                "set CUX_KEY and CUX_SECRET, or write them into "
                f"{self.config_path or default_config_path()}"
            )
        return self.key, self.secret


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$CUX_CONFIG``, else ``$XDG_CONFIG_HOME/cux/client.toml`` (default
    ``~/.config/cux/client.toml``)."""
    env = os.environ if env is None else env
    if env.get("CUX_CONFIG"):
        return Path(env["CUX_CONFIG"])
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cux" / "client.toml"


def resolve(
    *,
    url: str | None = None,
    key: str | None = None,
    secret: str | None = None,
    config: Path | None = None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ClientConfig:
    """The settings from flags (the arguments), environment and config file.

    Args:
        url, key, secret: values from flags; None where not given.
        config: the config file from ``--config``; it must exist. None: the
            default path, which may be missing.
        profile: a ``[profiles.NAME]`` of the file; None: ``$CUX_PROFILE``.
        env: the environment (default: ``os.environ``).

    Raises:
        ConfigError: the file is unreadable, not TOML, has unknown keys, or
            lacks the profile asked for.
    """
    env = os.environ if env is None else env
    flags = {"url": url, "key": key, "secret": secret}
    from_env = {name: env.get(f"CUX_{name.upper()}") or None for name in _KEYS}
    from_file = _file_settings(
        config, profile or env.get("CUX_PROFILE") or None, env, required=bool(config)
    )
    merged: dict[str, str | None] = {}
    for name in _KEYS:
        merged[name] = flags[name] or from_env[name] or from_file.get(name)
    Endpoint.parse(merged["url"] or DEFAULT_URL)
    return ClientConfig(
        url=merged["url"] or DEFAULT_URL,
        key=merged["key"],
        secret=merged["secret"],
        config_path=config or default_config_path(env),
    )


def _file_settings(
    path: Path | None, profile: str | None, env: Mapping[str, str], *, required: bool
) -> dict[str, str]:
    path = path or default_config_path(env)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if required or profile:
            raise ConfigError(f"config file {path} not found") from None
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.start} is {byte:#04x})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    settings = _settings(raw, str(path), allow_profiles=True)
    profiles = raw.get("profiles", {})
    _check_profiles(profiles, path)
    if profile is not None:
        if profile not in profiles:
            raise ConfigError(f"{path} has no [profiles.{profile}]")
        where = f"{path} [profiles.{profile}]"
        settings.update(_settings(profiles[profile], where, allow_profiles=False))
    return settings


def _check_profiles(profiles: Any, path: Path) -> None:
    """Refuse a ``profiles`` that is not tables of tables, whichever profile
    is picked: a mistyped file is said, not half read."""
    if not isinstance(profiles, dict):
        raise ConfigError(
            f"{path}: profiles must be tables [profiles.NAME], "
            f"not {_toml_kind(profiles)}"
        )
    for name, table in profiles.items():
        if not isinstance(table, dict):
            raise ConfigError(
                f"{path}: profiles.{name} must be a table [profiles.{name}], "
                f"not {_toml_kind(table)}"
            )


def _toml_kind(value: Any) -> str:
    """What TOML calls the kind of ``value``."""
    kinds = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
    if isinstance(value, list):
        return "an array"
    return kinds.get(type(value), "a date or time")


def _settings(table: Any, where: str, *, allow_profiles: bool) -> dict[str, str]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    allowed = set(_KEYS) | ({"profiles"} if allow_profiles else set())
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(unknown)}")
    out: dict[str, str] = {}
    for name in _KEYS:
        if name in table:
            if not isinstance(table[name], str):
                raise ConfigError(f"{where}: {name} must be a string")
            out[name] = table[name]
    return out

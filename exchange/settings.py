"""The server's configuration: the market, the accounts and the server's own knobs.

`cux serve --config FILE` reads a TOML file; without one, `default_settings`
gives a small market with three well-known accounts, for trying cux out. The
file is checked at start-up: a wrong key, type or value stops the server with a
message naming it.

```toml
[server]                      # every key optional
fsync = "batch"               # batch | interval | none  (see the journal)
journal_writer = "process"    # process | thread: where the journal writes
snapshot_every = 100_000      # commands between two snapshots
heartbeat_seconds = 5         # server heartbeat messages
rate_limit = 500              # requests per second per connection (burst: twice)
max_queue = 10_000            # messages queued to one connection before resync
login_failures = 20           # failed logins from one address (IPv6: a /64) in
login_failure_seconds = 60    # one window of this many seconds, before its logins
                              # get RATE_LIMITED until the window ends
# clock_start = 1796317200000000000  # simulated start, ns (default: real time)
clock_speed = 1.0             # simulated seconds per real second (exchange.clock)

[dispatch]                    # jobs: every key optional
shard_timeout_seconds = 30    # a shard's deadline: this plus 4× its expected run
max_attempts = 3              # sends of one shard before its inputs fail
results_ttl_seconds = 3600    # how long a finished job's results are kept

[[classes]]                   # a resource class: see matching.config.ResourceClass
name = "cpu"
lot_cu = 100
tick = 1
taker_fee_bps = 10
maker_fee_bps = 0

[[accounts]]
key = "alice"                 # the account's name and login key
secret = "alice-secret"
deposit = 1_000_000_000       # µcr, credited when the account is first opened
roles = ["consumer"]          # consumer, provider, operator: one or more, each once
# capacity = { cpu-SPOT = 50 }  # lots it may sell, per spot instrument (providers)
```
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from matching.commands import Role
from matching.config import MAX_AMOUNT, MAX_QTY, MarketConfig, ResourceClass
from matching.errors import ConfigError

__all__ = [
    "AccountSettings",
    "DispatchSettings",
    "ServerSettings",
    "Settings",
    "default_settings",
    "load",
]

Key = Annotated[str, msgspec.Meta(pattern=r"\A[A-Za-z0-9_.@-]{1,64}\Z")]


class ServerSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The server's own knobs; see the module docstring for their meaning."""

    fsync: Literal["batch", "interval", "none"] = "batch"
    journal_writer: Literal["process", "thread"] = "process"
    snapshot_every: Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)] = 100_000
    heartbeat_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 5.0
    rate_limit: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 500
    max_queue: Annotated[int, msgspec.Meta(ge=10, le=10_000_000)] = 10_000
    login_failures: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 20
    login_failure_seconds: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 60.0
    clock_start: Annotated[int, msgspec.Meta(ge=0, le=2**62)] | None = None
    clock_speed: Annotated[float, msgspec.Meta(gt=0, le=100_000)] = 1.0


class DispatchSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How jobs run; see the module docstring for their meaning."""

    shard_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 30.0
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3
    results_ttl_seconds: Annotated[float, msgspec.Meta(gt=0, le=30 * 86_400)] = 3600.0


class AccountSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One account: its key (also its name), secret, opening deposit and roles."""

    key: Key
    secret: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    deposit: Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT)] = 0
    roles: tuple[Role, ...] = ("consumer",)
    capacity: dict[str, Annotated[int, msgspec.Meta(ge=0, le=MAX_QTY)]] = {}


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A whole server configuration file: one or more classes (a market with
    none would list no instrument)."""

    classes: Annotated[list[ResourceClass], msgspec.Meta(min_length=1)]
    accounts: list[AccountSettings] = []
    server: ServerSettings = ServerSettings()
    dispatch: DispatchSettings = DispatchSettings()

    def __post_init__(self) -> None:
        keys = [a.key for a in self.accounts]
        if len(set(keys)) != len(keys):
            raise ConfigError("account keys must be unique")
        spot = {f"{c.name}-SPOT" for c in self.classes}
        for i, account in enumerate(self.accounts):
            problem = _account_problem(account, spot)
            if problem is not None:
                what, field = problem
                raise ConfigError(f"{what} - at `$.accounts[{i}].{field}`")

    @property
    def market(self) -> MarketConfig:
        return MarketConfig(classes=list(self.classes))

    def account(self, key: str) -> AccountSettings | None:
        for account in self.accounts:
            if account.key == key:
                return account
        return None


def _account_problem(
    account: AccountSettings, spot: set[str]
) -> tuple[str, str] | None:
    """What is wrong with ``account`` and the field it is in, if anything: the
    engine would reject its opening commands, which the journal would then
    hold on every start."""
    if not account.roles:
        return "an account needs one or more roles", "roles"
    if len(set(account.roles)) != len(account.roles):
        return f"roles must each be given once, got {list(account.roles)}", "roles"
    if account.capacity and "provider" not in account.roles:
        return "capacity needs the provider role", "capacity"
    for symbol in account.capacity:
        if symbol not in spot:
            known = ", ".join(sorted(spot))
            return (
                f"capacity names no instrument of the market: {symbol!r} "
                f"(capacity is set on spot instruments: {known})",
                "capacity",
            )
    return None


def load(path: Path) -> Settings:
    """Read and check a TOML configuration file.

    Raises:
        ConfigError: the file is missing, is not UTF-8 TOML, or a value is
            wrong (an account's roles empty or repeated, capacity on an
            account without the provider role or on no spot instrument).
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text: byte {exc.object[exc.start]:#04x} at "
            f"offset {exc.start}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    try:
        settings = msgspec.convert(raw, Settings)
        settings.market  # noqa: B018 - validates the classes together
    except (msgspec.ValidationError, ConfigError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return settings


def default_settings() -> Settings:
    """A small market to try cux with: a cpu and a gpu class, two traders and an
    operator whose secrets are their names with ``-secret`` appended."""
    return Settings(
        classes=[
            ResourceClass("cpu", lot_cu=100, tick=1, taker_fee_bps=10),
            ResourceClass(
                "gpu", lot_cu=1000, tick=10, taker_fee_bps=25, maker_fee_bps=10
            ),
        ],
        accounts=[
            AccountSettings(
                "alice", "alice-secret", deposit=1_000_000_000, roles=("consumer",)
            ),
            AccountSettings(
                "bob",
                "bob-secret",
                deposit=1_000_000_000,
                roles=("consumer", "provider"),
                capacity={"cpu-SPOT": 1000, "gpu-SPOT": 100},
            ),
            AccountSettings("operator", "operator-secret", roles=("operator",)),
        ],
    )

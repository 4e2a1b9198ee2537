"""Typed, validated configuration of the market: resource classes and instruments.

A resource class names a kind of hardware (``cpu``, ``gpu-a100``, ...) with its lot
size, tick and fees. Each class lists one spot instrument, ``<class>-SPOT``.

Units: ``lot_cu`` is compute units (10^9 FLOPs) per lot; ``tick`` is µcr per lot;
fees are basis points (1/10,000) of a fill's notional, rounded up to the µcr.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Final, Literal

import msgspec

from matching.errors import ConfigError

__all__ = [
    "MAX_AMOUNT",
    "MAX_LABEL",
    "MAX_PRICE",
    "MAX_QTY",
    "MAX_TIME",
    "MAX_TOTAL",
    "InstrumentSpec",
    "MarketConfig",
    "ResourceClass",
    "load_market",
]

MAX_QTY: Final = 1_000_000_000
"""The largest quantity of one order, in lots."""
MAX_PRICE: Final = 1_000_000_000_000
"""The largest price of one order, in µcr per lot (one million credits)."""
MAX_AMOUNT: Final = 10**15
"""The largest single deposit or withdrawal, in µcr (one billion credits)."""
MAX_TOTAL: Final = 2**62
"""The most µcr all deposits together may reach: every balance, hold and total
then fits in a signed 64-bit integer, as snapshots and other systems need."""
MAX_TIME: Final = 2**63 - 1
"""The latest timestamp or expiry, in ns since the epoch."""
MAX_LABEL: Final = 64
"""The longest account name or client order id, in characters."""

ClassName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
Bps = Annotated[int, msgspec.Meta(ge=0, le=1000)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class ResourceClass(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One kind of hardware that the market trades.

    Attributes:
        name: lower-case name, e.g. ``cpu`` or ``gpu-h100``.
        lot_cu: compute units in one lot.
        tick: price increment, in µcr per lot.
        taker_fee_bps: fee of the order that takes liquidity, in basis points.
        maker_fee_bps: fee of the resting order, in basis points.
        lease_seconds: how long a spot lease stays valid after its trade.
    """

    name: ClassName
    lot_cu: Positive
    tick: Positive
    taker_fee_bps: Bps = 0
    maker_fee_bps: Bps = 0
    lease_seconds: Positive = 300


class InstrumentSpec(msgspec.Struct, frozen=True):
    """One tradable instrument, derived from its resource class.

    Attributes:
        symbol: ``<class>-SPOT`` for spot.
        resource_class: the class it trades.
        kind: ``spot`` (work to start now) or ``future`` (a delivery window).
        lot_cu, tick, taker_fee_bps, maker_fee_bps: as in `ResourceClass`.
    """

    symbol: str
    resource_class: str
    kind: Literal["spot", "future"]
    lot_cu: int
    tick: int
    taker_fee_bps: int
    maker_fee_bps: int

    @property
    def max_fee_bps(self) -> int:
        """The higher of the two fee rates: what a buy order's hold must cover."""
        return max(self.taker_fee_bps, self.maker_fee_bps)


class MarketConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The whole market's static configuration.

    Attributes:
        classes: the resource classes; names must be unique.
    """

    classes: list[ResourceClass]

    def __post_init__(self) -> None:
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ConfigError(f"resource class names must be unique, got {names}")

    def instruments(self) -> list[InstrumentSpec]:
        """The instruments listed from the start: one spot instrument per class."""
        return [spot_instrument(c) for c in self.classes]

    def digest(self) -> str:
        """A hex SHA-256 of the configuration, so a replay can refuse another."""
        return hashlib.sha256(msgspec.json.encode(self)).hexdigest()


def spot_instrument(rc: ResourceClass) -> InstrumentSpec:
    """The spot instrument of a resource class."""
    return InstrumentSpec(
        symbol=f"{rc.name}-SPOT",
        resource_class=rc.name,
        kind="spot",
        lot_cu=rc.lot_cu,
        tick=rc.tick,
        taker_fee_bps=rc.taker_fee_bps,
        maker_fee_bps=rc.maker_fee_bps,
    )


def load_market(raw: object) -> MarketConfig:
    """Validate plain data (as read from TOML or JSON) into a `MarketConfig`.

    Raises:
        ConfigError: naming the field that is wrong and why.
    """
    try:
        return msgspec.convert(raw, MarketConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid market configuration: {exc}") from None

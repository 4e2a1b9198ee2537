"""Typed, validated configuration of the market: resource classes and instruments.

A resource class names a kind of hardware (``cpu``, ``gpu-a100``, ...) with its lot
size, tick and fees. Each class lists one spot instrument, ``<class>-SPOT``, and,
if it has `FuturesTerms`, futures: ``<class>-<YYYYMMDD>T<HH>`` is the capacity
delivered in the one-hour window starting then (UTC, half-open ``[start, end)``),
and ``<class>-<YYYYMMDD>T<HH>-<N>H`` a block of N hours listed by command.

Units: ``lot_cu`` is compute units (10^9 FLOPs) per lot; ``tick`` is µcr per lot;
fees are basis points (1/10,000) of a fill's notional, rounded up to the µcr.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Final, Literal

import msgspec

from matching.errors import ConfigError

__all__ = [
    "HOUR",
    "MAX_AMOUNT",
    "MAX_BATCH_MS",
    "MAX_LABEL",
    "MAX_LEASE_SECONDS",
    "MAX_LOT_CU",
    "MAX_PRICE",
    "MAX_QTY",
    "MAX_TIME",
    "MAX_TOTAL",
    "FuturesTerms",
    "InstrumentSpec",
    "MarketConfig",
    "ResourceClass",
    "future_instrument",
    "load_market",
    "spot_instrument",
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
HOUR: Final = 3_600_000_000_000
"""One hour in ns: futures windows start on whole hours and last whole hours."""
MAX_BATCH_MS: Final = 3_600_000
"""The longest interval between two batch auctions, in ms (one hour)."""
MAX_LOT_CU: Final = 1_000_000_000
"""The most compute units in one lot: a lot's FLOPs (10^18) fit in 64 bits."""
MAX_LEASE_SECONDS: Final = 366 * 24 * 3600
"""The longest a spot lease may stay valid, in seconds (a leap year)."""

ClassName = Annotated[str, msgspec.Meta(pattern=r"\A[a-z0-9][a-z0-9-]{0,31}\Z")]
Bps = Annotated[int, msgspec.Meta(ge=0, le=1000)]
Seconds = Annotated[int, msgspec.Meta(ge=0, le=7 * 24 * 3600)]
Hours = Annotated[int, msgspec.Meta(ge=0, le=7 * 24)]
BatchMs = Annotated[int, msgspec.Meta(ge=1, le=MAX_BATCH_MS)]
LotCu = Annotated[int, msgspec.Meta(ge=1, le=MAX_LOT_CU)]
Tick = Annotated[int, msgspec.Meta(ge=1, le=MAX_PRICE)]
LeaseSeconds = Annotated[int, msgspec.Meta(ge=1, le=MAX_LEASE_SECONDS)]
SpotPhase = Literal["pre_open", "continuous", "batch", "halted", "closed"]


class FuturesTerms(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a resource class's futures are listed and closed.

    A window is listed ``list_ahead_hours`` before it starts, trades continuously,
    enters its closing call ``closing_call_seconds`` before its gate, and at the
    gate (``gate_seconds`` before the window starts) its closing auction sets the
    settlement price and trading ends. At the window's start the positions are
    delivered as leases.

    Attributes:
        list_ahead_hours: how far ahead hourly windows are listed as the clock
            advances; 0 lists windows only by `ListFuture` command.
        gate_seconds: seconds before the window's start at which trading ends.
        closing_call_seconds: length of the closing call before the gate; 0
            ends trading at the gate without a closing call.
    """

    list_ahead_hours: Hours = 24
    gate_seconds: Seconds = 300
    closing_call_seconds: Seconds = 60


class ResourceClass(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One kind of hardware that the market trades.

    Attributes:
        name: lower-case name, e.g. ``cpu`` or ``gpu-h100``.
        lot_cu: compute units in one lot, 1 to `MAX_LOT_CU`.
        tick: price increment, in µcr per lot, 1 to `MAX_PRICE` (a price is a
            multiple of the tick).
        taker_fee_bps: fee of the order that takes liquidity, in basis points.
        maker_fee_bps: fee of the resting order, in basis points.
        lease_seconds: how long a spot lease stays valid after its trade, 1 to
            `MAX_LEASE_SECONDS`.
        spot_phase: the phase the spot instrument starts in.
        batch_interval_ms: the time between two auctions in the ``batch``
            phase, unless the phase change names another.
        futures: how the class's futures are listed and closed; None lists none.
    """

    name: ClassName
    lot_cu: LotCu
    tick: Tick
    taker_fee_bps: Bps = 0
    maker_fee_bps: Bps = 0
    lease_seconds: LeaseSeconds = 300
    spot_phase: SpotPhase = "continuous"
    batch_interval_ms: BatchMs = 1000
    futures: FuturesTerms | None = None


class InstrumentSpec(msgspec.Struct, frozen=True):
    """One tradable instrument, derived from its resource class.

    Attributes:
        symbol: ``<class>-SPOT`` for spot, ``<class>-<YYYYMMDD>T<HH>`` (or
            with ``-<N>H`` for a block of N hours) for a future.
        resource_class: the class it trades.
        kind: ``spot`` (work to start now) or ``future`` (a delivery window).
        lot_cu, tick, taker_fee_bps, maker_fee_bps: as in `ResourceClass`.
        start, end: a future's delivery window ``[start, end)`` in ns since the
            epoch; 0 for spot.
        lease_seconds: how long a spot trade's lease stays valid; 0 for a
            future, whose leases last its window.
    """

    symbol: str
    resource_class: str
    kind: Literal["spot", "future"]
    lot_cu: int
    tick: int
    taker_fee_bps: int
    maker_fee_bps: int
    start: int = 0
    end: int = 0
    lease_seconds: int = 0

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

    def resource_class(self, name: object) -> ResourceClass | None:
        """The class called ``name``, or None if there is none."""
        for rc in self.classes:
            if rc.name == name:
                return rc
        return None

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
        lease_seconds=rc.lease_seconds,
    )


def future_instrument(rc: ResourceClass, start: int, hours: int) -> InstrumentSpec:
    """The future of ``rc`` delivered in ``[start, start + hours)``.

    ``start`` is in ns since the epoch, on a whole hour.
    """
    stamp = datetime.fromtimestamp(start // 10**9, UTC).strftime("%Y%m%dT%H")
    suffix = "" if hours == 1 else f"-{hours}H"
    return InstrumentSpec(
        symbol=f"{rc.name}-{stamp}{suffix}",
        resource_class=rc.name,
        kind="future",
        lot_cu=rc.lot_cu,
        tick=rc.tick,
        taker_fee_bps=rc.taker_fee_bps,
        maker_fee_bps=rc.maker_fee_bps,
        start=start,
        end=start + hours * HOUR,
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

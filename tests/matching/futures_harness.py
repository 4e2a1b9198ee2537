"""Markets with futures for the tests of `matching.futures`.

Times are real: the test day is Monday 2 March 2026 (UTC), and `at` gives a time
of that day (or a later one) in ns since the epoch. Two resource classes have
futures listed by command only (``list_ahead_hours`` 0), so that a test sees
exactly the windows it lists; `AUTO_CONFIG` lists hourly windows 24 h ahead.

Every class closes its futures the same way: the gate is 5 minutes before the
window's start, and the closing call starts 1 minute before the gate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from harness import Market

from matching import (
    AuctionTrade,
    FutureListed,
    FuturesTerms,
    ListFuture,
    MarketConfig,
    ResourceClass,
    SetCapacity,
)

SECOND: Final = 1_000_000_000
MINUTE: Final = 60 * SECOND
HOUR: Final = 60 * MINUTE


def at(hour: int, minute: int = 0, second: int = 0, *, day: int = 2) -> int:
    """``day`` March 2026 at ``hour:minute:second`` UTC, in ns since the epoch."""
    moment = datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)
    return int(moment.timestamp()) * SECOND


TERMS: Final = FuturesTerms(
    list_ahead_hours=0, gate_seconds=300, closing_call_seconds=60
)
CPU_CLASS: Final = ResourceClass("cpu", lot_cu=100, tick=1, futures=TERMS)
"""Fee-free, tick 1 µcr: a trade of n lots at p costs exactly n × p."""
GPU_CLASS: Final = ResourceClass(
    "gpu", lot_cu=1000, tick=10, taker_fee_bps=25, maker_fee_bps=10, futures=TERMS
)
"""With fees: taker 25 bps, maker 10 bps; tick 10 µcr."""
FPGA_CLASS: Final = ResourceClass("fpga", lot_cu=10, tick=1)
"""Spot only: no futures terms."""
CONFIG: Final = MarketConfig(classes=[CPU_CLASS, GPU_CLASS, FPGA_CLASS])

AUTO_TERMS: Final = FuturesTerms(
    list_ahead_hours=24, gate_seconds=300, closing_call_seconds=60
)
AUTO_CONFIG: Final = MarketConfig(
    classes=[ResourceClass("gpu", lot_cu=1000, tick=10, futures=AUTO_TERMS)]
)

START: Final = at(10)
"""The window most tests trade: 10:00 to 11:00 on the test day."""
END: Final = at(11)
GATE: Final = at(9, 55)
CALL: Final = at(9, 54)
W10: Final = "cpu-20260302T10"
"""The cpu future delivered in [10:00, 11:00)."""
G10: Final = "gpu-20260302T10"
"""The gpu future delivered in [10:00, 11:00)."""
OPEN_AT: Final = at(8)
"""When the test markets open: two hours before `START`."""


def listed(
    symbol: str, resource_class: str, start: int, hours: int = 1
) -> FutureListed:
    """The `FutureListed` event of a window with the test terms."""
    gate = start - 5 * MINUTE
    return FutureListed(
        symbol=symbol,
        resource_class=resource_class,
        start=start,
        end=start + hours * HOUR,
        closing_call_at=gate - MINUTE,
        gate_at=gate,
    )


def auction_trade(
    trade_id: int,
    symbol: str,
    *,
    price: int,
    qty: int,
    buy: tuple[int, str, int],
    sell: tuple[int, str, int],
    buyer_fee: int = 0,
) -> AuctionTrade:
    """An auction trade; ``buy`` and ``sell`` are (order id, account, leaves)."""
    return AuctionTrade(
        trade_id=trade_id,
        symbol=symbol,
        price=price,
        qty=qty,
        buy_order_id=buy[0],
        sell_order_id=sell[0],
        buyer=buy[1],
        seller=sell[1],
        buy_leaves=buy[2],
        sell_leaves=sell[2],
        buyer_fee=buyer_fee,
    )


def futures_market(*windows: tuple[str, int, int]) -> Market:
    """A `CONFIG` market at `OPEN_AT` with the given (class, start, hours) listed."""
    m = Market(CONFIG)
    m.tick(at=OPEN_AT)
    for resource_class, start, hours in windows:
        m.apply(ListFuture(resource_class, start, hours))
    return m


def provider(m: Market, name: str, capacity: dict[str, int], deposit: int = 0) -> None:
    """Open a provider account with sell capacity per future (and a deposit)."""
    m.open(name, deposit=deposit, roles=("consumer", "provider"))
    for symbol, lots in capacity.items():
        m.apply(SetCapacity(name, symbol, lots))


def consumer(m: Market, name: str, deposit: int) -> None:
    """Open a consumer account (no capacity) and fund it."""
    m.open(name, deposit=deposit, roles=("consumer",))

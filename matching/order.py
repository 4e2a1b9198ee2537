"""The live order record, the integer constants the hot path uses, and fee math.

Inside the core, sides, times in force and self-trade modes are small ints, and a
live order is one `Order` struct that the book and the engine share. `Order` is
created with ``gc=False``: it holds only ints and strings, so Python's cycle
collector never has to walk the tens of thousands of them that rest on a book.
"""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = [
    "BUY",
    "CANCEL_BOTH",
    "CANCEL_MAKER",
    "CANCEL_TAKER",
    "FOK",
    "GTC",
    "GTD",
    "IOC",
    "MARKET_BUY_LIMIT",
    "MARKET_SELL_LIMIT",
    "NO_ASK",
    "NO_BID",
    "SELL",
    "SIDE_NAMES",
    "STPS",
    "STP_NAMES",
    "TIFS",
    "TIF_NAMES",
    "UNLIMITED",
    "Order",
    "affordable_lots",
    "fee_for",
    "unit_hold",
]

BUY: Final = 0
SELL: Final = 1
SIDE_NAMES: Final = ("buy", "sell")

GTC: Final = 0
IOC: Final = 1
FOK: Final = 2
GTD: Final = 3
TIF_NAMES: Final = ("GTC", "IOC", "FOK", "GTD")
TIFS: Final = {"GTC": GTC, "IOC": IOC, "FOK": FOK, "GTD": GTD}

CANCEL_TAKER: Final = 0
CANCEL_MAKER: Final = 1
CANCEL_BOTH: Final = 2
STP_NAMES: Final = ("cancel_taker", "cancel_maker", "cancel_both")
STPS: Final = {
    "cancel_taker": CANCEL_TAKER,
    "cancel_maker": CANCEL_MAKER,
    "cancel_both": CANCEL_BOTH,
}

NO_BID: Final = 0
"""The best bid of a book without bids: below every valid price."""
NO_ASK: Final = 1 << 62
"""The best ask of a book without asks: above every valid price."""
MARKET_BUY_LIMIT: Final = NO_ASK - 1
"""The limit a market buy walks the asks with: every ask crosses it."""
MARKET_SELL_LIMIT: Final = 1
"""The limit a market sell walks the bids with: every bid crosses it."""
UNLIMITED: Final = -1
"""A budget of -1 means the taker's fills are not limited by money."""


class Order(msgspec.Struct, gc=False):
    """One open order, shared by the book (queue place) and the engine (state).

    Attributes:
        order_id: the engine's id (the sequence number of its place command).
        account: the owner's index in the ledger.
        side: `BUY` or `SELL`.
        price: limit price in µcr per lot; for a market order, the walk limit.
        leaves: open quantity in lots; 0 once the order has left the book.
        filled: lots traded so far.
        unit_hold: µcr held per open lot (buys: price plus the most fee a lot can
            cost; sells and market orders: 0).
        tif: `GTC`, `IOC`, `FOK` or `GTD`.
        expire_at: GTD expiry in ns since the epoch; 0 for other orders.
        stp: the self-trade prevention mode used when this order is the taker.
        is_market: True for a market order.
        post_only: True if it may never take liquidity, on entry or on amend.
        client_order_id: the client's own label.
        symbol: the instrument.
    """

    order_id: int
    account: int
    side: int
    price: int
    leaves: int
    filled: int
    unit_hold: int
    tif: int
    expire_at: int
    stp: int
    is_market: bool
    post_only: bool
    client_order_id: str | None
    symbol: str

    def copy(self) -> Order:
        """A new record with the same fields: used when an order loses priority."""
        return msgspec.structs.replace(self)


def fee_for(notional: int, bps: int) -> int:
    """The fee on ``notional`` µcr at ``bps`` basis points, rounded up to the µcr."""
    return (notional * bps + 9_999) // 10_000


def unit_hold(price: int, bps: int) -> int:
    """µcr a buy order holds per open lot at ``price``.

    Fees round up per fill and a fill is at least one lot, so the most fee that a
    lot can cost is the fee of a one-lot fill at the limit price. Holding that
    per lot covers every way the order can fill, exactly in the worst case.
    """
    return price + fee_for(price, bps)


def affordable_lots(price: int, bps: int, budget: int) -> int:
    """The most lots at ``price`` whose cost plus fee fits within ``budget`` µcr.

    ``n + ceil(n * bps / 10^4) <= budget`` holds exactly when
    ``n * (10^4 + bps) <= budget * 10^4``, since ``budget`` is an integer.
    """
    return budget * 10_000 // (price * (10_000 + bps))

"""Sizing orders from a budget, in integers, always rounding down.

A buy limit order holds, per lot, its price plus the largest fee one lot can
cost: ``price + ceil(price × fee_bps / 10,000)``, where ``fee_bps`` is the
higher of the instrument's taker and maker rates (the engine's
``matching.order.unit_hold``). So the most lots a budget buys at a price is the
budget divided by that, rounded down: the order's hold never exceeds the
budget, and one lot more would be refused with ``INSUFFICIENT_FUNDS``.

```python
from clients.sizing import max_buy_qty, parse_credits

budget = parse_credits("24.01")              # 24_010_000 µcr
max_buy_qty(budget, price=2_000_000, fee_bps=10)  # 11, not 12: 12 lots hold 24.024
```

Quantities are whole lots and money is integer µcr, so nothing here ever
touches a float.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

__all__ = [
    "MICRO",
    "buy_cost",
    "fee",
    "format_credits",
    "max_buy_qty",
    "max_market_buy_qty",
    "parse_credits",
    "price_on_tick",
    "unit_cost",
]

MICRO = 1_000_000
"""µcr per credit."""


def fee(notional: int, fee_bps: int) -> int:
    """The fee on ``notional`` µcr at ``fee_bps``, rounded up to the µcr."""
    return (notional * fee_bps + 9_999) // 10_000


def unit_cost(price: int, fee_bps: int) -> int:
    """µcr a buy holds per lot at ``price``: the price and one lot's most fee."""
    return price + fee(price, fee_bps)


def buy_cost(qty: int, price: int, fee_bps: int) -> int:
    """µcr a buy limit order of ``qty`` lots at ``price`` holds."""
    return qty * unit_cost(price, fee_bps)


def max_buy_qty(
    budget: int, price: int, fee_bps: int, *, max_qty: int | None = None
) -> int:
    """The most lots a buy limit order at ``price`` may be for, so that its
    hold (`buy_cost`) stays within ``budget`` µcr: rounded down, never up.

    Args:
        budget: µcr available (for example the balance's ``available``).
        price: µcr per lot, > 0.
        fee_bps: the higher of the instrument's taker and maker fee rates.
        max_qty: a cap on the answer (None: none).
    """
    if price <= 0:
        raise ValueError(f"price must be positive, got {price}")
    if budget <= 0:
        return 0
    qty = budget // unit_cost(price, fee_bps)
    return qty if max_qty is None else min(qty, max_qty)


def max_market_buy_qty(
    budget: int, asks: Iterable[tuple[int, int]], fee_bps: int
) -> int:
    """The most lots a market buy can take from ``asks`` (best first) within
    ``budget`` µcr, counting each lot at its level's `unit_cost` (a fee rounds
    up per fill, so this is the most it can cost). The book may move before
    the order arrives; a market buy stops by itself when money runs out."""
    qty = 0
    left = budget
    for price, size in asks:
        lots = min(size, left // unit_cost(price, fee_bps))
        qty += lots
        left -= lots * unit_cost(price, fee_bps)
        if lots < size:
            break
    return qty


def price_on_tick(price: int, tick: int, side: str) -> int:
    """``price`` moved onto the tick grid, never to a worse price for the side:
    down for a buy, up for a sell."""
    if tick <= 0:
        raise ValueError(f"tick must be positive, got {tick}")
    if side == "buy":
        return price // tick * tick
    if side == "sell":
        return -(-price // tick) * tick
    raise ValueError(f"side must be buy or sell, got {side!r}")


def parse_credits(text: str) -> int:
    """Credits written in decimal (``"25.00"``) as µcr, exactly.

    Raises:
        ValueError: not a decimal number, negative, or finer than 1 µcr.
    """
    try:
        amount = Decimal(text.strip().replace("_", ""))
    except InvalidOperation:
        raise ValueError(f"not an amount of credits: {text!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"not an amount of credits: {text!r}")
    micro = amount * MICRO
    if micro != micro.to_integral_value():
        raise ValueError(f"{text!r} is finer than 1 µcr (6 decimals)")
    return int(micro)


def format_credits(micro: int) -> str:
    """µcr as credits with 6 decimals: ``24880350`` → ``"24.880350"``."""
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), MICRO)
    return f"{sign}{whole:,}.{frac:06d}"

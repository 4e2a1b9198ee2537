"""A node's pricing strategy: what it asks per lot, in integer µcr.

The reservation price is the least a lot must earn to cover what the machine
costs while it computes that lot. It comes from a cost per hour, in USD: either
the operator's own (energy and hardware, `--cost-per-hour`) or a real market
price, derived from a GPU rental price series (`usd_per_hour_from_series`).
USD become credits at `CREDITS_PER_USD` (1 credit = 10^6 µcr), so::

    reservation = ceil(cost_µusd_per_hour × CREDITS_PER_USD × lot_cu × 1000
                       / (3600 × cu_per_second_milli))

rounded up to the instrument's tick: the machine delivers
``cu_per_second_milli / 1000`` CU a second, so one lot takes
``lot_cu × 1000 / cu_per_second_milli`` seconds of an hour's cost.

The ask is the reservation plus a markup that rises with utilisation, the
share of the node's capacity already sold: ``base_bps`` when nothing is sold,
``base_bps + slope_bps`` when all of it is. A node that is busy has less left
to sell and charges more for it; the ask is never below the reservation.

Everything here is pure integer arithmetic: no clock, no I/O.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

__all__ = [
    "CREDITS_PER_USD",
    "UCR_PER_CREDIT",
    "Pricing",
    "micro_usd",
    "reservation_price",
    "usd_per_hour_from_series",
]

UCR_PER_CREDIT = 1_000_000
"""µcr in one credit."""

CREDITS_PER_USD = 1
"""The documented rate: one credit is worth one US dollar, so one µcr is one
µUSD."""

_BPS = 10_000


def micro_usd(text: str) -> int:
    """A USD amount written in decimal (``"0.25"``) as whole µUSD, rounded up.

    Raises:
        ValueError: ``text`` is not a non-negative decimal number.
    """
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a USD amount: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"not a USD amount: {text!r}")
    return int((value * 1_000_000).to_integral_value(rounding="ROUND_CEILING"))


def reservation_price(
    cost_micro_usd_per_hour: int,
    cu_per_second_milli: int,
    lot_cu: int,
    tick: int = 1,
    credits_per_usd: int = CREDITS_PER_USD,
) -> int:
    """The least price per lot, µcr, that covers the machine's cost.

    Args:
        cost_micro_usd_per_hour: what an hour of the machine costs, µUSD.
        cu_per_second_milli: what the machine delivers, thousandths of a CU a
            second; at least 1.
        lot_cu: CU in one lot.
        tick: the instrument's tick, µcr; the price is rounded up to it.
        credits_per_usd: credits per USD (`CREDITS_PER_USD` by default).
    """
    if cu_per_second_milli < 1 or lot_cu < 1 or tick < 1:
        raise ValueError("capacity, lot size and tick must be at least 1")
    numerator = cost_micro_usd_per_hour * credits_per_usd * lot_cu * 1000
    denominator = 3600 * cu_per_second_milli
    price = -(-numerator // denominator)
    return max(tick, _round_up(price, tick))


@dataclass(frozen=True, slots=True)
class Pricing:
    """The ask for a lot, given the reservation price and the utilisation.

    Attributes:
        reservation: the least price per lot, µcr (see `reservation_price`).
        tick: the instrument's tick, µcr; asks are multiples of it.
        base_bps: markup when nothing is sold, basis points (default 10%).
        slope_bps: extra markup when everything is sold, basis points; it grows
            linearly with the share sold (default 40%).
    """

    reservation: int
    tick: int = 1
    base_bps: int = 1_000
    slope_bps: int = 4_000

    def __post_init__(self) -> None:
        if self.reservation < 1 or self.tick < 1:
            raise ValueError("reservation and tick must be at least 1")
        if self.base_bps < 0 or self.slope_bps < 0:
            raise ValueError("markups cannot be negative")

    def markup_bps(self, sold: int, capacity: int) -> int:
        """The markup, basis points, with ``sold`` of ``capacity`` lots sold."""
        if capacity <= 0:
            return self.base_bps + self.slope_bps
        sold = min(max(sold, 0), capacity)
        return self.base_bps + self.slope_bps * sold // capacity

    def ask(self, sold: int, capacity: int) -> int:
        """The price per lot, µcr, to ask with ``sold`` of ``capacity`` lots
        sold: the reservation marked up, rounded up to the tick."""
        bps = _BPS + self.markup_bps(sold, capacity)
        price = -(-self.reservation * bps // _BPS)
        return max(self.reservation, _round_up(price, self.tick))


def usd_per_hour_from_series(path: Path, statistic: str = "median") -> str:
    """A machine's cost per hour, USD as decimal text, from a price series.

    ``path`` is a JSON-lines file with one snapshot of GPU rental prices a line
    (the format of ``gpu-prices/*.jsonl`` in the shared data: each line's
    ``price_stats`` holds percentiles in USD per GPU-hour). The result is the
    median over the snapshots of ``statistic`` (``min``, ``p25``, ``median``
    …): a price the market paid, not one outlier.

    Raises:
        ValueError: the file holds no snapshot with that statistic.
    """
    values = []
    for line in path.read_text().splitlines():
        if line.strip():
            stats = json.loads(line).get("price_stats", {})
            if isinstance(stats.get(statistic), int | float):
                values.append(Decimal(str(stats[statistic])))
    if not values:
        raise ValueError(f"{path}: no price_stats.{statistic} in any line")
    return str(statistics.median(values))


def _round_up(price: int, tick: int) -> int:
    return -(-price // tick) * tick

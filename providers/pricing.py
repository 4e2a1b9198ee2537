"""A node's pricing strategy: what it asks per lot, in integer µcr.

The reservation price is the least a lot must earn to cover what the machine
costs while it computes that lot. It comes from a cost per hour, in USD: either
the operator's own cost model (energy plus hardware, `cost_per_hour`) or a real
market price, the median of a GPU rental price series
(`usd_per_hour_from_series`: the series the project ships, a file in its
format, or the raw JSON lines it was derived from).
USD become credits at `CREDITS_PER_USD` (1 credit = 10^6 µcr), so::

    reservation = ceil(cost_µusd_per_hour × CREDITS_PER_USD × lot_cu × 1000
                       / (3600 × cu_per_second_milli))

rounded up to the instrument's tick: the machine delivers
``cu_per_second_milli / 1000`` CU a second, so one lot takes
``lot_cu × 1000 / cu_per_second_milli`` seconds of an hour's cost.

The ask is the reservation plus a markup that rises with utilisation, the
share of the node's capacity already sold: ``base_bps`` when nothing is sold,
``base_bps + slope_bps`` when all of it is (`cux node --markup-min-bps` and
``--markup-max-bps`` set the two ends). A node that is busy has less left
to sell and charges more for it; the ask is never below the reservation.

Prices are pure integer arithmetic: no clock, no I/O (only reading a series
touches a file).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

__all__ = [
    "CREDITS_PER_USD",
    "DEFAULT_GPU",
    "SHIPPED",
    "UCR_PER_CREDIT",
    "Pricing",
    "cost_per_hour",
    "micro_usd",
    "reservation_price",
    "usd_per_hour_from_series",
]

UCR_PER_CREDIT = 1_000_000
"""µcr in one credit."""

CREDITS_PER_USD = 1
"""The documented rate: one credit is worth one US dollar, so one µcr is one
µUSD."""

SHIPPED = "shipped"
"""The price series source that names the series the project ships
(``clients/data/gpu_prices.json``)."""

DEFAULT_GPU = "H100_80GB_SXM5"
"""The GPU model whose prices a derived series gives, unless told another."""

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


def cost_per_hour(energy: str | None, hardware: str | None) -> int:
    """A cost model's cost per hour, µUSD: energy plus hardware, each USD per
    hour as decimal text (None: nothing)."""
    return sum(micro_usd(part) for part in (energy, hardware) if part is not None)


def usd_per_hour_from_series(
    source: Path | str, statistic: str = "median", gpu: str = DEFAULT_GPU
) -> str:
    """A machine's cost per hour, USD as decimal text, from a price series.

    ``source`` is one of:

    - `SHIPPED` (``"shipped"``): the series the project ships,
      ``clients/data/gpu_prices.json`` (see ``docs/agents.md``);
    - a file in that format (one JSON object whose ``gpus`` hold, per GPU
      model, a price path per statistic in US cents per GPU-hour): the path of
      ``gpu``, a model's full name or a prefix that names one (``"H100"``);
    - a JSON-lines file of snapshots of one GPU model's rental prices (the
      format of ``gpu-prices/*.jsonl`` in the shared data that the shipped
      series is derived from: each line's ``price_stats`` holds percentiles in
      USD per GPU-hour).

    The result is the median over the series of ``statistic`` (``min``,
    ``p25``, ``median`` …): a price the market paid, not one outlier.

    Raises:
        OSError: the file cannot be read.
        ValueError: the series has no such statistic or GPU model, or is in
            neither format.
    """
    if str(source) == SHIPPED:
        return _from_derived(None, statistic, gpu)
    path = Path(source)
    text = path.read_text(encoding="utf-8")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and "gpus" in whole:
        return _from_derived(path, statistic, gpu)
    return _from_snapshots(path, text, statistic)


def _from_derived(path: Path | None, statistic: str, gpu: str) -> str:
    # The clients' own reader: one parser of the shipped format.
    from clients.agents.prices import load_gpu_prices

    where = SHIPPED if path is None else str(path)
    try:
        series = load_gpu_prices(path).series
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{where}: not a price series ({exc})") from None
    name = _gpu_named(gpu, sorted(series), where)
    cents = series[name].get(statistic)
    if not cents:
        raise ValueError(f"{where}: no {statistic!r} prices for {name}")
    usd = statistics.median(Decimal(c) for c in cents) / 100
    return format(usd, "f")


def _gpu_named(wanted: str, names: list[str], where: str) -> str:
    if wanted in names:
        return wanted
    found = [n for n in names if n.startswith(wanted)]
    if len(found) != 1:
        raise ValueError(
            f"{where}: {wanted!r} names no single GPU model of {', '.join(names)}"
        )
    return found[0]


def _from_snapshots(path: Path, text: str, statistic: str) -> str:
    values = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            stats = json.loads(line).get("price_stats", {})
        except (json.JSONDecodeError, AttributeError):
            raise ValueError(f"{path}: neither a price series nor JSON lines") from None
        if isinstance(stats.get(statistic), int | float):
            values.append(Decimal(str(stats[statistic])))
    if not values:
        raise ValueError(f"{path}: no price_stats.{statistic} in any line")
    return str(statistics.median(values))


def _round_up(price: int, tick: int) -> int:
    return -(-price // tick) * tick

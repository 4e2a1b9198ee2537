"""Real GPU rental prices, as prices per lot in integer µcr.

The project ships one price path per GPU model (``clients/data/gpu_prices.json``,
derived from a public price tracker by ``scripts/derive_gpu_prices.py``; see the
README beside it for the source and its licence): every 30 minutes, the lowest
price and percentiles of all offers, in whole US cents per GPU-hour.
`load_gpu_prices` reads it into a `PriceSeries`.

A price per GPU-hour becomes a price per lot with three stated facts:

- one credit is one US dollar (`CREDITS_PER_USD`), so one µcr is one µUSD and a
  cent is 10,000 µcr;
- a lot holds ``lot_cu`` CU (the instrument's; 100 CU = 10^11 FLOPs by
  default);
- a machine delivers ``cu_per_second`` CU a second. For a GPU model that is an
  assumption, written in `GPUS`: its dense FP16/BF16 tensor peak times
  `UTILISATION_BPS` (10%), what a small encoder such as all-MiniLM-L6-v2 on short
  inputs gets out of it. For a machine that measured itself (a provider node
  registers its CU/s), use its own figure.

A lot then takes ``lot_cu / cu_per_second`` seconds of an hour that costs
``usd_per_hour``::

    price_per_lot_µcr = usd_per_hour × 10^6 × lot_cu / (cu_per_second × 3600)

computed exactly in integers (cents and thousandths of a CU/s) and rounded to
a multiple of the tick (`lot_price`), never below one tick.

Known limitation: at a GPU's own throughput a 100-CU lot is worth well under
one µcr (an H100 at $2.69 an hour: about 0.76 µcr), so a GPU class needs lots of
10^5 CU or more for the tick not to swamp the price. A simulation on CPU nodes
can instead price a lot at the nodes' own CU/s, as `cux node --price-series`
does: the GPU's rental price then stands for what an hour of a machine is worth.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

__all__ = [
    "CREDITS_PER_USD",
    "GPUS",
    "UCR_PER_CENT",
    "UTILISATION_BPS",
    "Gpu",
    "LotPricer",
    "PriceSeries",
    "Rounding",
    "load_gpu_prices",
    "lot_price",
]

CREDITS_PER_USD = 1
"""The documented rate: one credit is one US dollar, so one µcr is one µUSD."""

UCR_PER_CENT = 10_000 * CREDITS_PER_USD
"""µcr in one US cent."""

UTILISATION_BPS = 1_000
"""The share of a GPU's dense FP16 peak that embedding inference with a small
encoder is assumed to reach, basis points (10%)."""

Rounding = Literal["nearest", "down", "up"]
"""How a price is brought to the tick: the nearest multiple (a half rounds
up), the one below (a buyer's limit: never more than the price is worth) or the
one above (a seller's reservation: never less)."""


@dataclass(frozen=True, slots=True)
class Gpu:
    """A GPU model's assumed throughput.

    Attributes:
        name: the model as the price file names it.
        peak_tflops: its dense (not sparse) FP16/BF16 tensor peak, TFLOP/s,
            from the vendor's data sheet.
    """

    name: str
    peak_tflops: int

    @property
    def cu_per_second_milli(self) -> int:
        """The assumed effective rate, thousandths of a CU a second: the peak
        (10^12 FLOP/s per TFLOP/s, 10^9 FLOPs per CU) times `UTILISATION_BPS`."""
        return self.peak_tflops * 1000 * 1000 * UTILISATION_BPS // 10_000


GPUS: dict[str, Gpu] = {
    gpu.name: gpu
    for gpu in (
        Gpu("A100_80GB_SXM4", 312),
        Gpu("H100_80GB_SXM5", 989),
        Gpu("H200_141GB", 989),
        Gpu("B200_180GB", 2250),
    )
}
"""The GPU models in the shipped price file, with their assumed throughput:
at 10% of the peak an A100 delivers 31,200 CU/s, an H100 or H200 98,900 and a
B200 225,000."""


def lot_price(
    cents_per_hour: int,
    cu_per_second_milli: int,
    lot_cu: int = 100,
    tick: int = 1,
    rounding: Rounding = "nearest",
) -> int:
    """The price of a lot, µcr, from the price of an hour of a machine.

    Exactly ``cents_per_hour × UCR_PER_CENT × lot_cu × 1000 /
    (cu_per_second_milli × 3600)``, rounded to a multiple of ``tick`` as
    ``rounding`` says, and at least ``tick``.

    Args:
        cents_per_hour: what an hour of the machine costs, US cents.
        cu_per_second_milli: what it delivers, thousandths of a CU a second.
        lot_cu: CU in one lot.
        tick: the instrument's tick, µcr.
        rounding: see `Rounding`.

    Raises:
        ValueError: a negative price, or a throughput, lot or tick below 1.
    """
    if cents_per_hour < 0:
        raise ValueError("a price cannot be negative")
    if cu_per_second_milli < 1 or lot_cu < 1 or tick < 1:
        raise ValueError("throughput, lot size and tick must be at least 1")
    numerator = cents_per_hour * UCR_PER_CENT * lot_cu * 1000
    denominator = cu_per_second_milli * 3600 * tick
    if rounding == "down":
        ticks = numerator // denominator
    elif rounding == "up":
        ticks = -(-numerator // denominator)
    elif rounding == "nearest":
        ticks = (2 * numerator + denominator) // (2 * denominator)
    else:
        raise ValueError(f"unknown rounding {rounding!r}")
    return max(1, ticks) * tick


@dataclass(frozen=True, slots=True)
class PriceSeries:
    """Prices of GPU-hours on a regular grid.

    Attributes:
        start: the first point, seconds since the epoch (UTC).
        step_seconds: seconds between two points.
        points: how many points each series has.
        series: cents per GPU-hour, by GPU model, then by statistic (``min``,
            ``p25``, ``median``, ``p75``, ``p90``).
    """

    start: int
    step_seconds: int
    points: int
    series: dict[str, dict[str, tuple[int, ...]]]

    @property
    def duration_seconds(self) -> int:
        """The time the series covers: one step per point."""
        return self.points * self.step_seconds

    def index_at(self, offset_seconds: float) -> int:
        """The point in force ``offset_seconds`` after the start: the last one
        at or before it. Past the end the series starts over (it loops), so a
        replay can run as long as it likes."""
        if not math.isfinite(offset_seconds) or offset_seconds < 0:
            raise ValueError(
                f"an offset is a finite number of seconds >= 0, not {offset_seconds!r}"
            )
        return int(offset_seconds // self.step_seconds) % self.points

    def cents(self, gpu: str, statistic: str, offset_seconds: float) -> int:
        """Cents per GPU-hour of ``gpu``'s ``statistic`` at the offset.

        Raises:
            KeyError: no such GPU model or statistic in the series.
        """
        return self.series[gpu][statistic][self.index_at(offset_seconds)]


def load_gpu_prices(path: Path | None = None) -> PriceSeries:
    """The shipped GPU price series, or the file at ``path`` in its format.

    Raises:
        ValueError: the file is not a price series (a series of the wrong
            length, a price that is not a whole number of cents).
    """
    if path is None:
        text = (
            resources.files("clients")
            .joinpath("data/gpu_prices.json")
            .read_text(encoding="utf-8")
        )
    else:
        text = path.read_text(encoding="utf-8")
    raw = json.loads(text)
    start = _epoch_seconds(raw["start"])
    points = int(raw["points"])
    statistics = list(raw["statistics"])
    series: dict[str, dict[str, tuple[int, ...]]] = {}
    for gpu, entry in raw["gpus"].items():
        series[gpu] = {}
        for statistic in statistics:
            values = entry[statistic]
            if len(values) != points or not all(
                type(v) is int and v >= 0 for v in values
            ):
                raise ValueError(f"{gpu}.{statistic}: not {points} whole cents")
            series[gpu][statistic] = tuple(values)
    return PriceSeries(start, int(raw["step_seconds"]), points, series)


def _epoch_seconds(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


@dataclass(frozen=True, slots=True)
class LotPricer:
    """One GPU model's price path, as prices per lot of one instrument.

    Attributes:
        series: the price series (`load_gpu_prices`).
        gpu: the GPU model whose prices to follow.
        statistic: which price of that model (``median`` by default).
        lot_cu: CU in one lot of the instrument.
        tick: the instrument's tick, µcr.
        cu_per_second_milli: the throughput a lot is priced at, thousandths of
            a CU a second; None takes the GPU's assumed rate (`GPUS`).
    """

    series: PriceSeries
    gpu: str = "H100_80GB_SXM5"
    statistic: str = "median"
    lot_cu: int = 100
    tick: int = 1
    cu_per_second_milli: int | None = None

    def __post_init__(self) -> None:
        if self.gpu not in self.series.series:
            raise ValueError(f"no prices for GPU model {self.gpu!r}")
        if self.statistic not in self.series.series[self.gpu]:
            raise ValueError(f"no statistic {self.statistic!r} for {self.gpu}")
        if self.cu_per_second_milli is None and self.gpu not in GPUS:
            raise ValueError(f"no assumed throughput for {self.gpu!r}: give one")

    @property
    def throughput_milli(self) -> int:
        """The throughput lots are priced at, thousandths of a CU a second."""
        if self.cu_per_second_milli is not None:
            return self.cu_per_second_milli
        return GPUS[self.gpu].cu_per_second_milli

    def price(self, offset_seconds: float, rounding: Rounding = "nearest") -> int:
        """The price of a lot, µcr, ``offset_seconds`` into the series."""
        cents = self.series.cents(self.gpu, self.statistic, offset_seconds)
        return lot_price(cents, self.throughput_milli, self.lot_cu, self.tick, rounding)

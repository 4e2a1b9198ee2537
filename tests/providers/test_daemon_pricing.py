"""The pricing strategy: exact integer prices from cost, capacity and utilisation."""

import json
from pathlib import Path

import pytest

from providers.pricing import (
    Pricing,
    micro_usd,
    reservation_price,
    usd_per_hour_from_series,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "gpu-prices"


def test_a_usd_amount_becomes_whole_micro_usd_rounded_up() -> None:
    assert micro_usd("0.10") == 100_000
    assert micro_usd("2.4") == 2_400_000
    assert micro_usd("0.0000001") == 1
    with pytest.raises(ValueError, match="not a USD amount"):
        micro_usd("-1")
    with pytest.raises(ValueError, match="not a USD amount"):
        micro_usd("cheap")


def test_the_reservation_price_covers_the_cost_of_a_lot_rounded_up() -> None:
    # $0.10 an hour at 25 CU/s: a 100 CU lot takes 4 s, 111.1 µUSD of cost.
    assert reservation_price(100_000, 25_000, 100) == 112
    assert reservation_price(100_000, 25_000, 100, tick=5) == 115
    # Twice the capacity halves the price; a free machine still asks one tick.
    assert reservation_price(100_000, 50_000, 100) == 56
    assert reservation_price(0, 25_000, 100, tick=3) == 3


def test_the_ask_is_the_reservation_marked_up_by_utilisation() -> None:
    pricing = Pricing(reservation=112)

    assert pricing.ask(sold=0, capacity=100) == 124  # 112 × 1.10 = 123.2
    assert pricing.ask(sold=50, capacity=100) == 146  # 112 × 1.30 = 145.6
    assert pricing.ask(sold=100, capacity=100) == 168  # 112 × 1.50


def test_the_markup_rises_with_utilisation_and_never_goes_below_reservation() -> None:
    for pricing in (Pricing(997, tick=7), Pricing(5, base_bps=0, slope_bps=0)):
        asks = [pricing.ask(sold, 37) for sold in range(38)]

        assert asks == sorted(asks)
        assert min(asks) >= pricing.reservation
        assert all(ask % pricing.tick == 0 for ask in asks)
    assert Pricing(5, base_bps=0, slope_bps=0).ask(3, 10) == 5


def test_a_price_series_gives_the_median_of_its_hourly_prices(tmp_path: Path) -> None:
    series = tmp_path / "gpu.jsonl"
    series.write_text(
        "\n".join(
            json.dumps({"price_stats": {"median": m, "min": 1.0}})
            for m in (2.4, 2.0, 3.0)
        )
    )

    assert usd_per_hour_from_series(series) == "2.4"
    assert usd_per_hour_from_series(series, "min") == "1.0"
    with pytest.raises(ValueError, match=r"no price_stats\.p99"):
        usd_per_hour_from_series(series, "p99")


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared price data is not here")
def test_the_shared_h100_series_prices_a_lot_above_zero() -> None:
    usd = usd_per_hour_from_series(SHARED / "H100_80GB_SXM5.jsonl")

    assert 0.5 < float(usd) < 10
    assert reservation_price(micro_usd(usd), 25_000, 100) > 0

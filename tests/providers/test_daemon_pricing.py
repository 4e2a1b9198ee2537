"""The pricing strategy: exact integer prices from cost, capacity and utilisation."""

import json
from pathlib import Path

import pytest

from providers.pricing import (
    Pricing,
    cost_per_hour,
    micro_usd,
    reservation_price,
    usd_per_hour_from_series,
)

SHIPPED = Path(__file__).resolve().parents[2] / "clients" / "data" / "gpu_prices.json"


def test_a_usd_amount_becomes_whole_micro_usd_rounded_up() -> None:
    assert micro_usd("0.10") == 100_000
    assert micro_usd("2.4") == 2_400_000
    assert micro_usd("0.0000001") == 1
    with pytest.raises(ValueError, match="not a USD amount"):
        micro_usd("-1")
    with pytest.raises(ValueError, match="not a USD amount"):
        micro_usd("cheap")


def test_a_cost_model_is_its_energy_plus_its_hardware_cost() -> None:
    assert cost_per_hour("0.04", "0.06") == 100_000
    assert cost_per_hour(None, "1.5") == 1_500_000
    assert cost_per_hour(None, None) == 0
    with pytest.raises(ValueError, match="not a USD amount: 'lots'"):
        cost_per_hour("lots", "1")


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


def test_the_shipped_series_gives_the_median_h100_price_by_default() -> None:
    raw = json.loads(SHIPPED.read_text(encoding="utf-8"))
    h100 = sorted(raw["gpus"]["H100_80GB_SXM5"]["median"])
    middle = h100[len(h100) // 2]  # the series has an odd number of points

    usd = usd_per_hour_from_series("shipped")

    assert len(h100) % 2 == 1
    assert micro_usd(usd) == middle * 10_000
    assert usd_per_hour_from_series(SHIPPED) == usd
    assert 0.5 < float(usd) < 10
    assert reservation_price(micro_usd(usd), 25_000, 100) > 0


def test_the_shipped_series_names_a_gpu_by_its_prefix_and_a_statistic() -> None:
    b200 = usd_per_hour_from_series("shipped", gpu="B200")
    a100_min = usd_per_hour_from_series("shipped", "min", "A100_80GB_SXM4")

    assert b200 == usd_per_hour_from_series("shipped", gpu="B200_180GB")
    assert float(a100_min) < float(usd_per_hour_from_series("shipped", gpu="A100"))
    assert float(b200) > float(usd_per_hour_from_series("shipped"))
    with pytest.raises(ValueError, match="'H' names no single GPU model of A100"):
        usd_per_hour_from_series("shipped", gpu="H")
    with pytest.raises(ValueError, match="no 'p99' prices for H100_80GB_SXM5"):
        usd_per_hour_from_series("shipped", "p99")


def test_a_file_that_is_no_price_series_is_refused_by_name(tmp_path: Path) -> None:
    prose = tmp_path / "notes.txt"
    prose.write_text("the price of an hour\n")

    with pytest.raises(ValueError, match=r"notes\.txt: neither a price series"):
        usd_per_hour_from_series(prose)
    with pytest.raises(FileNotFoundError):
        usd_per_hour_from_series(tmp_path / "missing.json")

"""The shipped GPU price file and the conversion of USD per GPU-hour to µcr per
lot."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clients.agents.prices import (
    GPUS,
    UCR_PER_CENT,
    LotPricer,
    PriceSeries,
    load_gpu_prices,
    lot_price,
)
from providers.pricing import reservation_price

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "clients" / "data"
RAW = ROOT.parent / "shared" / "data" / "gpu-prices"


# -- the conversion ------------------------------------------------------------------


def test_lot_price_of_a_cpu_hour_is_the_hours_cost_times_the_lots_share_of_it() -> None:
    # $0.10 an hour, 25 CU/s, 100-CU lots: a lot takes 4 s, 1/900 of the hour:
    # 100,000 µcr / 900 = 111.1 µcr.
    assert lot_price(10, 25_000, lot_cu=100, rounding="nearest") == 111
    assert lot_price(10, 25_000, lot_cu=100, rounding="down") == 111
    assert lot_price(10, 25_000, lot_cu=100, rounding="up") == 112


def test_lot_price_of_an_h100_hour_with_large_lots_rounds_to_the_tick() -> None:
    # $2.69 an hour at 98,900 CU/s, lots of 10^6 CU: 2.69e6 × 1e6 / (98,900 ×
    # 3600) = 7,555.33 µcr.
    h100 = GPUS["H100_80GB_SXM5"].cu_per_second_milli
    assert h100 == 98_900_000
    assert lot_price(269, h100, lot_cu=1_000_000) == 7_555
    assert lot_price(269, h100, lot_cu=1_000_000, rounding="up") == 7_556
    assert lot_price(269, h100, lot_cu=1_000_000, tick=10) == 7_560
    assert lot_price(269, h100, lot_cu=1_000_000, tick=10, rounding="down") == 7_550


def test_lot_price_rounds_an_exact_half_up_when_rounding_to_nearest() -> None:
    # 9 cents an hour at 10 CU/s, 1-CU lots: 90,000 µcr / 36,000 = 2.5 µcr.
    assert lot_price(9, 10_000, lot_cu=1, rounding="nearest") == 3
    assert lot_price(9, 10_000, lot_cu=1, rounding="down") == 2
    assert lot_price(9, 10_000, lot_cu=1, rounding="up") == 3


def test_lot_price_below_one_tick_is_one_tick() -> None:
    # An H100's 100-CU lot at $2.69 an hour is worth 0.76 µcr.
    h100 = GPUS["H100_80GB_SXM5"].cu_per_second_milli
    assert lot_price(269, h100, lot_cu=100, rounding="down") == 1
    assert lot_price(0, h100, lot_cu=100, tick=5) == 5


@pytest.mark.parametrize(
    ("cents", "milli", "lot", "tick"),
    [(-1, 1, 1, 1), (1, 0, 1, 1), (1, 1, 0, 1), (1, 1, 1, 0)],
)
def test_lot_price_refuses_a_negative_price_or_a_zero_throughput_lot_or_tick(
    cents: int, milli: int, lot: int, tick: int
) -> None:
    with pytest.raises(ValueError, match=r"must be at least 1|cannot be negative"):
        lot_price(cents, milli, lot, tick)


@given(
    cents=st.integers(0, 100_000),
    milli=st.integers(1, 10**9),
    lot=st.integers(1, 10**7),
    tick=st.integers(1, 1000),
)
def test_lot_price_rounded_up_equals_the_provider_nodes_reservation_price(
    cents: int, milli: int, lot: int, tick: int
) -> None:
    # The same rule, 1 credit = 1 USD, on both sides of the market.
    expected = reservation_price(cents * UCR_PER_CENT, milli, lot, tick)
    assert lot_price(cents, milli, lot, tick, rounding="up") == expected


@given(
    cents=st.integers(0, 100_000),
    milli=st.integers(1, 10**9),
    lot=st.integers(1, 10**7),
    tick=st.integers(1, 1000),
)
def test_lot_price_is_the_exact_quotient_brought_to_the_tick(
    cents: int, milli: int, lot: int, tick: int
) -> None:
    down = lot_price(cents, milli, lot, tick, rounding="down")
    up = lot_price(cents, milli, lot, tick, rounding="up")
    near = lot_price(cents, milli, lot, tick, rounding="nearest")
    # The price is numerator / denominator µcr: cents × 10^4 µcr × lot_cu /
    # (CU/s × 3600 s), with the CU/s in thousandths.
    numerator, denominator = cents * 10_000 * lot * 1000, milli * 3600
    for price in (down, up, near):
        assert price % tick == 0
        assert price >= tick
    if numerator >= tick * denominator:  # worth at least a tick
        assert down * denominator <= numerator < (down + tick) * denominator
        assert (up - tick) * denominator < numerator <= up * denominator
        assert abs(2 * near * denominator - 2 * numerator) <= tick * denominator


# -- the shipped file ----------------------------------------------------------------


def test_the_shipped_series_covers_four_gpus_every_half_hour_for_four_weeks() -> None:
    series = load_gpu_prices()

    assert datetime.fromtimestamp(series.start, UTC) == datetime(
        2025, 10, 19, 21, 30, tzinfo=UTC
    )
    assert series.step_seconds == 1800
    assert series.points == 1315
    assert sorted(series.series) == sorted(GPUS)
    for stats in series.series.values():
        assert list(stats) == ["min", "p25", "median", "p75", "p90"]
        for i in range(series.points):
            values = [stats[s][i] for s in stats]
            assert values == sorted(values)  # percentiles in order
            assert values[0] > 0


def test_the_shipped_series_is_what_the_script_derives_from_the_raw_data(
    tmp_path: Path,
) -> None:
    out = tmp_path / "gpu_prices.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "derive_gpu_prices.py"),
            "--source",
            str(RAW),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == (DATA / "gpu_prices.json").read_bytes()


def test_the_shipped_series_takes_the_last_raw_snapshot_at_or_before_each_point() -> (
    None
):
    series = load_gpu_prices()
    rows = [
        json.loads(line)
        for line in (RAW / "H200_141GB.jsonl").read_text().splitlines()
        if line.strip()
    ]
    times = [datetime.fromisoformat(row["timestamp"]).timestamp() for row in rows]
    for index in (0, 1, 100, 657, series.points - 1):
        point = series.start + index * series.step_seconds
        last = max(i for i, t in enumerate(times) if t <= point)
        usd = rows[last]["price_stats"]["median"]
        offset = index * series.step_seconds
        assert series.cents("H200_141GB", "median", offset) == round(usd * 100)


def test_the_shipped_series_is_small_and_carries_its_licence_and_attribution() -> None:
    assert (DATA / "gpu_prices.json").stat().st_size < 200_000
    licence = (DATA / "LICENSE").read_text()
    assert licence == (RAW / "LICENSE").read_text()
    assert "Copyright (c) 2025 Piotr Mazurek" in licence
    readme = (DATA / "README.md").read_text()
    assert "tugot17/gpu-price-tracker" in readme
    assert "718a831" in readme
    assert "MIT" in readme


def test_a_price_file_with_a_short_series_is_refused(tmp_path: Path) -> None:
    raw = json.loads((DATA / "gpu_prices.json").read_text())
    raw["gpus"]["B200_180GB"]["p90"].pop()
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(raw))

    with pytest.raises(ValueError, match=r"B200_180GB\.p90: not 1315 whole cents"):
        load_gpu_prices(path)


# -- the series in time --------------------------------------------------------------


def small_series(*cents: int) -> PriceSeries:
    values = tuple(cents)
    return PriceSeries(0, 1800, len(values), {"H100_80GB_SXM5": {"median": values}})


def test_the_price_in_force_is_the_last_point_at_or_before_the_offset() -> None:
    series = small_series(100, 200, 300)

    assert series.cents("H100_80GB_SXM5", "median", 0) == 100
    assert series.cents("H100_80GB_SXM5", "median", 1799.9) == 100
    assert series.cents("H100_80GB_SXM5", "median", 1800) == 200
    assert series.cents("H100_80GB_SXM5", "median", 3600) == 300


def test_a_replay_past_the_end_of_the_series_starts_it_over() -> None:
    series = small_series(100, 200, 300)

    assert series.cents("H100_80GB_SXM5", "median", 5400) == 100
    assert series.cents("H100_80GB_SXM5", "median", 5400 * 7 + 1800) == 200


@pytest.mark.parametrize("offset", [-1.0, float("nan"), float("inf")])
def test_an_offset_that_is_negative_or_not_finite_is_refused(offset: float) -> None:
    with pytest.raises(ValueError, match="finite number of seconds"):
        small_series(100).index_at(offset)


def test_a_lot_pricer_prices_the_series_at_the_gpus_assumed_throughput() -> None:
    series = small_series(269, 199)
    pricer = LotPricer(series, lot_cu=1_000_000, tick=1)

    assert pricer.price(0) == 7_555
    assert pricer.price(1800) == lot_price(199, 98_900_000, 1_000_000)


def test_a_lot_pricer_with_a_throughput_of_its_own_prices_at_that_throughput() -> None:
    series = small_series(269)
    pricer = LotPricer(series, lot_cu=100, cu_per_second_milli=25_000)

    # 2,690,000 µcr an hour; a lot is 4 s of it: 2,988.9 µcr.
    assert pricer.price(0) == 2_989
    assert pricer.price(0, rounding="down") == 2_988


def test_a_lot_pricer_refuses_a_gpu_or_statistic_the_series_lacks() -> None:
    series = small_series(100)
    with pytest.raises(ValueError, match="no prices for GPU model 'TPU'"):
        LotPricer(series, gpu="TPU")
    with pytest.raises(ValueError, match="no statistic 'p99'"):
        LotPricer(series, statistic="p99")

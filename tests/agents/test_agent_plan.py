"""A consumer's seeded plan and a market maker's quote prices, without a server."""

from __future__ import annotations

import itertools
import statistics

import pytest

from clients.agents import (
    ConsumerConfig,
    LotPricer,
    PlannedJob,
    PriceSeries,
    estimated_flops,
    load_gpu_prices,
    load_passages,
    plan_jobs,
    quote_prices,
)

PASSAGES = load_passages()


def pricer() -> LotPricer:
    return LotPricer(load_gpu_prices(), cu_per_second_milli=25_000)


def first(config: ConsumerConfig, count: int) -> list[PlannedJob]:
    return list(itertools.islice(plan_jobs(config, pricer().price, PASSAGES), count))


def test_the_same_seed_gives_the_same_jobs_and_another_seed_other_jobs() -> None:
    config = ConsumerConfig(seed=3)

    assert first(config, 50) == first(ConsumerConfig(seed=3), 50)
    other = first(ConsumerConfig(seed=4), 50)
    assert [j.inputs for j in other] != [j.inputs for j in first(config, 50)]
    assert [j.at_seconds for j in other] != [j.at_seconds for j in first(config, 50)]


def test_jobs_arrive_as_a_poisson_process_of_the_configured_rate() -> None:
    jobs = first(ConsumerConfig(rate_per_second=4.0, seed=11), 4000)
    gaps = [b.at_seconds - a.at_seconds for a, b in itertools.pairwise(jobs)]

    assert all(gap > 0 for gap in gaps)
    # Exponential gaps: mean and standard deviation both 1/rate.
    assert statistics.mean(gaps) == pytest.approx(0.25, rel=0.05)
    assert statistics.stdev(gaps) == pytest.approx(0.25, rel=0.08)


def test_a_jobs_max_price_is_the_series_price_at_its_replay_time_times_a_factor() -> (
    None
):
    config = ConsumerConfig(willingness_bps=9_000, speed=50_000, tick=1, seed=5)
    p = pricer()
    jobs = first(config, 300)

    for job in jobs:
        assert job.offset_seconds == job.at_seconds * 50_000
        assert job.max_price == p.price(job.offset_seconds) * 9_000 // 10_000
    assert len({job.max_price for job in jobs}) > 3  # it follows a moving series


def test_a_jobs_max_price_is_rounded_down_to_the_tick() -> None:
    series = PriceSeries(0, 1800, 1, {"H100_80GB_SXM5": {"median": (269,)}})
    p = LotPricer(series, cu_per_second_milli=25_000, tick=10)  # 2,990 µcr a lot
    config = ConsumerConfig(willingness_bps=10_500, tick=10, max_jobs=3)

    jobs = list(plan_jobs(config, p.price, PASSAGES))

    # 2,990 × 1.05 = 3,139.5, so 3,130 on a 10 µcr tick.
    assert [job.max_price for job in jobs] == [3_130, 3_130, 3_130]


def test_a_jobs_inputs_come_from_the_corpus_and_its_budget_from_their_cost() -> None:
    config = ConsumerConfig(inputs_min=2, inputs_max=5, budget_bps=20_000, lot_cu=3)
    for job in first(config, 100):
        assert 2 <= len(job.inputs) <= 5
        assert all(text in PASSAGES for text in job.inputs)
        flops = sum(estimated_flops(text) for text in job.inputs)
        assert job.budget_cu == -(-flops * 2 // 10**9)
        # The lots the exchange buys: the expected cost, within the budget.
        assert job.lots == -(-min(flops, job.budget_cu * 10**9) // (3 * 10**9))
        assert job.tier == "exact"


def test_a_plan_with_max_jobs_ends_after_that_many() -> None:
    jobs = list(plan_jobs(ConsumerConfig(max_jobs=7), pricer().price, PASSAGES))

    assert [job.number for job in jobs] == [1, 2, 3, 4, 5, 6, 7]


def test_the_estimated_cost_follows_the_published_formula_at_a_byte_based_count() -> (
    None
):
    # 40 bytes: 10 tokens and the 2 special ones.
    assert estimated_flops("x" * 40) == 6 * (3_538_944 * 12 + 1_536 * 144)
    # Cut at 256 tokens, as the node's tokenizer does.
    assert estimated_flops("x" * 10_000) == 6 * (3_538_944 * 256 + 1_536 * 256**2)


@pytest.mark.parametrize(
    "fields",
    [
        {"inputs_min": 0},
        {"inputs_min": 5, "inputs_max": 4},
        {"rate_per_second": 0},
        {"willingness_bps": 0},
        {"speed": -1},
    ],
)
def test_a_consumer_config_out_of_range_is_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        ConsumerConfig(**fields)  # type: ignore[arg-type]


def test_a_plan_needs_passages() -> None:
    with pytest.raises(ValueError, match="no passages"):
        next(plan_jobs(ConsumerConfig(), pricer().price, []))


# -- quote prices --------------------------------------------------------------------


def test_quotes_sit_half_the_spread_either_side_of_the_reference() -> None:
    assert quote_prices(10_000, 200, 1) == (9_900, 10_100)
    assert quote_prices(10_000, 200, 30) == (9_900, 10_110)  # bid down, ask up


def test_quotes_are_at_least_a_tick_from_the_reference_and_the_bid_one_tick() -> None:
    assert quote_prices(100, 0, 1) == (99, 101)
    assert quote_prices(100, 10, 1) == (99, 101)
    assert quote_prices(1, 200, 1) == (1, 2)
    assert quote_prices(5, 200, 10) == (10, 20)

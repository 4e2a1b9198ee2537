"""Budgets: shares are never exceeded, and no input depends on the others."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.errors import JobSpecError
from providers.jobs import JobBudget, full_depth_flops, plan_inputs
from providers.metering import MINILM_L6, budget_share, input_flops
from providers.model import EncoderModel
from providers.runtime import run_job
from providers.tiers import TIERS

TEXTS = [
    "The river flooded the fields after the storm.",
    "Wash your hands.",
    "Thousands of fans filled the stadium to watch the derby between the two "
    "rival clubs from the city, and the police closed the streets around it.",
    "This soup needs more salt.",
    "I need to withdraw some cash from the machine before the shops close.",
]


@given(
    tokens=st.lists(st.integers(1, 256), min_size=1, max_size=30),
    budget_per_mille=st.integers(0, 1200),
    tier=st.sampled_from(list(TIERS)),
)
def test_no_input_spends_more_than_its_share(
    tokens: list[int], budget_per_mille: int, tier: str
) -> None:
    full = full_depth_flops(tokens)
    budget = JobBudget(full * budget_per_mille // 1000, full)

    plans = plan_inputs(tokens, tier, budget)

    for n, plan in zip(tokens, plans, strict=True):
        share = budget_share(budget.budget_flops, input_flops(MINILM_L6, n, 6), full)
        assert plan.flops <= share
        assert plan.layers <= TIERS[tier].layers
        assert plan.exit == "budget" or plan.layers == TIERS[tier].layers
    assert sum(p.flops for p in plans) <= budget.budget_flops


@given(
    tokens=st.lists(st.integers(1, 256), min_size=2, max_size=30),
    budget_per_mille=st.integers(0, 1200),
    cut=st.integers(1, 29),
    seed=st.randoms(use_true_random=False),
)
def test_a_plan_is_the_same_in_any_order_and_any_split(
    tokens: list[int], budget_per_mille: int, cut: int, seed: object
) -> None:
    full = full_depth_flops(tokens)
    budget = JobBudget(full * budget_per_mille // 1000, full)
    whole = plan_inputs(tokens, "exact", budget)

    cut = min(cut, len(tokens) - 1)
    shards = plan_inputs(tokens[:cut], "exact", budget) + plan_inputs(
        tokens[cut:], "exact", budget
    )
    order = list(range(len(tokens)))
    seed.shuffle(order)  # type: ignore[attr-defined]
    shuffled = plan_inputs([tokens[i] for i in order], "exact", budget)

    assert shards == whole
    assert [shuffled[order.index(i)] for i in range(len(tokens))] == whole


def test_a_tight_budget_stops_inputs_at_the_layers_they_can_afford(
    model: EncoderModel,
) -> None:
    tokens = [len(row) for row in model.tokenize(TEXTS)]
    full = full_depth_flops(tokens)

    report = run_job(model, TEXTS, budget=JobBudget(full // 2, full)).report

    assert all(p.exit == "budget" and p.layers == 3 for p in report.inputs)
    assert report.flops == full // 2  # 3 of 6 layers, each input's exact share


def test_a_cheap_tier_spends_less_than_the_budget_and_the_rest_is_not_spent(
    model: EncoderModel,
) -> None:
    tokens = [len(row) for row in model.tokenize(TEXTS)]
    full = full_depth_flops(tokens)

    report = run_job(model, TEXTS, "fast", JobBudget(full, full)).report

    assert [p.layers for p in report.inputs] == [2] * len(TEXTS)
    assert {p.exit for p in report.inputs} == {"tier"}
    assert report.flops == full // 3  # a third of the budget spent, the rest not


def test_results_do_not_depend_on_the_order_of_the_inputs(model: EncoderModel) -> None:
    tokens = [len(row) for row in model.tokenize(TEXTS)]
    budget = JobBudget(full_depth_flops(tokens) * 2 // 3, full_depth_flops(tokens))
    order = [3, 0, 4, 2, 1]

    forward = run_job(model, TEXTS, budget=budget)
    shuffled = run_job(model, [TEXTS[i] for i in order], budget=budget)

    for j, i in enumerate(order):
        assert shuffled.report.inputs[j] == forward.report.inputs[i]
        diff = (shuffled.embeddings[j] - forward.embeddings[i]).abs().max().item()
        assert diff < 1e-5


def test_a_job_split_into_two_shards_gives_each_input_the_same_result(
    model: EncoderModel,
) -> None:
    tokens = [len(row) for row in model.tokenize(TEXTS)]
    budget = JobBudget(full_depth_flops(tokens) * 5 // 6, full_depth_flops(tokens))

    whole = run_job(model, TEXTS, budget=budget)
    first = run_job(model, TEXTS[:2], budget=budget)
    second = run_job(model, TEXTS[2:], budget=budget)

    assert first.report.inputs + second.report.inputs == whole.report.inputs
    assert first.report.flops + second.report.flops == whole.report.flops
    merged = first.embeddings.tolist() + second.embeddings.tolist()
    for a, b in zip(merged, whole.embeddings.tolist(), strict=True):
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-5


def test_a_shard_that_costs_more_than_its_job_total_is_refused() -> None:
    with pytest.raises(JobSpecError, match="cost more at full depth"):
        plan_inputs([10, 20], "exact", JobBudget(10**12, full_depth_flops([10])))


def test_an_unknown_tier_is_refused_with_the_known_ones() -> None:
    with pytest.raises(
        JobSpecError, match="unknown quality tier 'cheap'; known: exact"
    ):
        plan_inputs([10], "cheap")

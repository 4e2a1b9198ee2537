"""The metering formula: exact integers, checked against torch's flop counter."""

import pytest
from torch.utils.flop_counter import FlopCounterMode

from providers.jobs import JobBudget, full_depth_flops
from providers.metering import (
    MINILM_L6,
    ModelShape,
    affordable_layers,
    cu,
    input_flops,
    layer_flops,
)
from providers.model import EncoderModel
from providers.runtime import run_job
from providers.tokens import TokenCounter


def _row(tokens: int) -> list[int]:
    return [101] + [1996 + i for i in range(tokens - 2)] + [102]


def test_the_formula_is_within_1_percent_of_torch_flop_counter(
    model: EncoderModel,
) -> None:
    for tokens in (2, 17, 128):
        for layers in (1, 4, 6):
            counter = FlopCounterMode(display=False)
            with counter:
                _, computed = model.embed_batch([_row(tokens)], [layers])

            billed = input_flops(MINILM_L6, tokens, layers)
            assert abs(counter.get_total_flops() - billed) <= billed // 100
            assert computed == billed


def test_the_formula_for_minilm_gives_the_published_figures() -> None:
    assert layer_flops(MINILM_L6, 1) == 3_538_944 + 1_536
    assert input_flops(MINILM_L6, 12, 6) == 256_131_072
    assert input_flops(MINILM_L6, 128, 6) == 2_868_903_936
    assert input_flops(MINILM_L6, 12, 0) == 0
    assert cu(input_flops(MINILM_L6, 128, 6)) == pytest.approx(2.868903936)


def test_forced_exits_are_billed_exactly_by_the_formula(model: EncoderModel) -> None:
    texts = ["short", "a somewhat longer sentence about the weather today"] * 2
    tokens = [len(row) for row in model.tokenize(texts)]
    full = full_depth_flops(tokens)

    for tier in ("exact", "high", "balanced", "fast"):
        for fraction in (1, 4, 7):
            budget = JobBudget(full * fraction // 7, full)
            report = run_job(model, texts, tier, budget).report

            for n, plan in zip(tokens, report.inputs, strict=True):
                assert plan.tokens == n
                assert plan.flops == input_flops(MINILM_L6, n, plan.layers)
            assert report.flops == sum(p.flops for p in report.inputs)


def test_an_input_affords_only_whole_layers() -> None:
    one = layer_flops(MINILM_L6, 20)

    assert affordable_layers(MINILM_L6, 20, one - 1) == 0
    assert affordable_layers(MINILM_L6, 20, 3 * one + one // 2) == 3
    assert affordable_layers(MINILM_L6, 20, 100 * one) == 6


def test_a_shape_or_count_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="does not divide"):
        ModelShape(hidden=384, intermediate=1536, heads=7, layers=6, max_tokens=256)
    with pytest.raises(ValueError, match="tokens must be"):
        layer_flops(MINILM_L6, 257)
    with pytest.raises(ValueError, match="layers must be"):
        input_flops(MINILM_L6, 10, 7)


def test_the_exchange_counts_the_tokens_the_node_bills_without_torch(
    model: EncoderModel,
) -> None:
    texts = ["", "ok", "A fox crossed the road.", "word " * 300, "naïve café ünïcode"]

    counted = TokenCounter().count(texts)

    assert counted == [len(row) for row in model.tokenize(texts)]
    assert counted[:2] == [2, 3]
    assert counted[3] == MINILM_L6.max_tokens

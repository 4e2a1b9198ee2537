"""The pure parts of dispatch (`exchange.dispatch_plan`), without processes:
splitting a job's inputs over its leases in proportion to their lots, checking
a node's report against the metering formula, reading its embeddings."""

from __future__ import annotations

import base64
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.dispatch_plan import check_report, decode_embeddings, split
from exchange.protocol_jobs import ShardInput
from matching.leases import flops_capacity
from providers.jobs import InputReport, JobBudget, full_depth_flops, plan_inputs
from providers.metering import MINILM_L6, input_flops

LOT = flops_capacity(1, 10)
"""The FLOPs of one lot of 10 CU."""


# -- split --------------------------------------------------------------------


def test_equal_inputs_split_in_the_lots_proportion() -> None:
    # Three lots and one: three quarters of the inputs, then the last quarter.
    shards, left = split([1] * 8, [3 * LOT, 1 * LOT])
    assert shards == [[0, 1, 2, 3, 4, 5], [6, 7]]
    assert left == []


def test_a_remainder_goes_to_the_lease_whose_share_it_is_mostly_in() -> None:
    # 10 inputs over 2 : 1 lots: shares of 6.67 and 3.33 inputs. The 7th
    # input (its midpoint at 6.5) is inside the first share; the rest follow.
    shards, left = split([5] * 10, [2 * LOT, 1 * LOT])
    assert shards == [list(range(7)), [7, 8, 9]]
    assert left == []
    # 7 inputs over three equal leases: 2.33 each, so 2, 3 (midpoints 2.5,
    # 3.5 and 4.5 against a bound at 4.67), 2.
    shards, _ = split([1] * 7, [LOT, LOT, LOT])
    assert shards == [[0, 1], [2, 3, 4], [5, 6]]


def test_the_split_follows_cost_not_count() -> None:
    # One costly input first: it alone is the first lease's half.
    shards, left = split([6, 1, 1, 1, 1, 1, 1], [LOT, LOT])
    assert shards == [[0], [1, 2, 3, 4, 5, 6]]
    assert left == []


def test_a_lease_never_gets_more_than_its_room() -> None:
    # Room for exactly the inputs: 3 and 2 of cost 10 each.
    shards, left = split([10] * 5, [30, 20])
    assert shards == [[0, 1, 2], [3, 4]]
    assert left == []
    # An input that does not fit where its share puts it goes to the next
    # lease with room, and one that fits nowhere is left over.
    shards, left = split([10, 10, 25, 10], [25, 25])
    assert shards == [[0, 1], [2]]
    assert left == [3]
    shards, left = split([40, 1], [30, 30])
    assert shards == [[], [1]]
    assert left == [0]


def test_an_input_with_no_room_left_in_later_leases_goes_back_to_an_earlier() -> None:
    # Input 2's share is on the second lease, which the 5 before it filled
    # but for 1: it goes to the first, which has room for it.
    shards, left = split([3, 5, 2], [5, 6])
    assert shards == [[0, 2], [1]]
    assert left == []
    # The first input, too big for the first lease, goes to the second; the
    # next one then takes the first.
    assert split([4, 2], [2, 5]) == ([[1], [0]], [])


def test_no_lease_or_no_room_leaves_every_input() -> None:
    assert split([1, 2, 3], []) == ([], [0, 1, 2])
    assert split([1, 2], [0, 0]) == ([[], []], [0, 1])
    assert split([], [LOT]) == ([[]], [])


@given(
    st.lists(st.integers(1, 10**6), min_size=1, max_size=60),
    st.lists(st.integers(0, 10**7), min_size=1, max_size=6),
)
def test_every_input_is_placed_once_within_room_and_in_order(
    costs: list[int], room: list[int]
) -> None:
    shards, left = split(costs, room)
    placed = sorted(i for shard in shards for i in shard) + left
    assert sorted(placed) == list(range(len(costs)))
    for shard, free in zip(shards, room, strict=True):
        assert sum(costs[i] for i in shard) <= free
        assert shard == sorted(shard)
    # An input is left over only when no lease had room for it at its turn,
    # and so none has room for it at the end either.
    for i in left:
        for shard, free in zip(shards, room, strict=True):
            assert sum(costs[j] for j in shard if j < i) + costs[i] > free


@given(
    st.lists(st.integers(1, 1000), min_size=1, max_size=80),
    st.lists(st.integers(1, 20), min_size=1, max_size=5),
)
def test_with_room_to_spare_the_leases_get_contiguous_proportional_shares(
    costs: list[int], lots: list[int]
) -> None:
    # Leases with twice the room the job needs: nothing overflows, so each
    # lease's share of the cost is its share of the lots, within one input.
    total = sum(costs)
    unit = 2 * total + 2 * max(costs)
    room = [n * unit for n in lots]
    shards, left = split(costs, room)
    assert left == []
    flat = [i for shard in shards for i in shard]
    assert flat == list(range(len(costs)))  # contiguous runs, in lease order
    for shard, n in zip(shards, lots, strict=True):
        share = sum(costs[i] for i in shard)
        fair = total * n / sum(lots)
        assert math.isclose(share, fair, abs_tol=max(costs)), (share, fair)


# -- check_report ----------------------------------------------------------------

TOKENS = [12, 40, 7, 128]
PLAN = plan_inputs(TOKENS, "exact", JobBudget(10**15, full_depth_flops(TOKENS)))


def honest(plans: list[InputReport]) -> list[ShardInput]:
    return [ShardInput(p.tokens, p.layers, p.exit, p.flops) for p in plans]


def test_the_plan_itself_is_accepted() -> None:
    assert check_report(honest(PLAN), PLAN) is None
    # A budget-limited plan too: its shallower inputs are billed as planned.
    tight = plan_inputs(TOKENS, "exact", JobBudget(10**8, full_depth_flops(TOKENS)))
    assert any(p.exit == "budget" for p in tight)
    assert check_report(honest(tight), tight) is None


def test_plans_bill_the_metering_formula() -> None:
    for plan, n in zip(PLAN, TOKENS, strict=True):
        assert (plan.tokens, plan.layers, plan.exit) == (n, MINILM_L6.layers, "full")
        assert plan.flops == input_flops(MINILM_L6, n, MINILM_L6.layers)


def test_a_report_claiming_more_flops_than_the_formula_is_refused() -> None:
    report = honest(PLAN)
    report[2] = ShardInput(TOKENS[2], MINILM_L6.layers, "full", PLAN[2].flops + 1)
    reason = check_report(report, PLAN)
    assert reason is not None
    assert reason.startswith("input 2:")
    assert f"{PLAN[2].flops + 1} FLOPs claimed" in reason
    assert f"the formula gives {PLAN[2].flops}" in reason
    # Doubled, as the inflating node does; and fewer FLOPs are refused too.
    doubled = [ShardInput(p.tokens, p.layers, p.exit, 2 * p.flops) for p in PLAN]
    assert check_report(doubled, PLAN) is not None
    report[2] = ShardInput(TOKENS[2], MINILM_L6.layers, "full", PLAN[2].flops - 1)
    assert check_report(report, PLAN) is not None


def test_a_report_with_other_tokens_is_refused_even_if_its_flops_match_them() -> None:
    # More tokens than the exchange counted, billed by the formula for them.
    more = TOKENS[1] + 10
    report = honest(PLAN)
    report[1] = ShardInput(
        more, MINILM_L6.layers, "full", input_flops(MINILM_L6, more, MINILM_L6.layers)
    )
    reason = check_report(report, PLAN)
    assert reason == f"input 1: {more} tokens reported, {TOKENS[1]} counted"


def test_a_report_with_other_layers_or_exit_is_refused() -> None:
    layers = MINILM_L6.layers - 2
    deeper_claim = honest(PLAN)
    deeper_claim[3] = ShardInput(
        TOKENS[3], layers, "tier", input_flops(MINILM_L6, TOKENS[3], layers)
    )
    reason = check_report(deeper_claim, PLAN)
    assert reason == (
        f"input 3: {layers} layers (tier) reported, {MINILM_L6.layers} (full) planned"
    )
    wrong_exit = honest(PLAN)
    wrong_exit[0] = ShardInput(TOKENS[0], MINILM_L6.layers, "budget", PLAN[0].flops)
    assert check_report(wrong_exit, PLAN) is not None


def test_a_report_with_too_few_or_too_many_inputs_is_refused() -> None:
    assert check_report(honest(PLAN)[:-1], PLAN) == "3 input reports for 4 inputs"
    extra = [*honest(PLAN), honest(PLAN)[0]]
    assert check_report(extra, PLAN) == "5 input reports for 4 inputs"


# -- decode_embeddings ---------------------------------------------------------


def encoded(matrix: np.ndarray) -> str:
    return base64.b64encode(matrix.astype("<f4").tobytes()).decode()


def test_embeddings_of_the_right_shape_are_read() -> None:
    rows = np.arange(2 * 384, dtype=np.float32).reshape(2, 384) / 1000
    got = decode_embeddings(encoded(rows), 2, 384)
    assert got is not None
    assert np.array_equal(got, rows)


@pytest.mark.parametrize(
    "data",
    [
        encoded(np.zeros((3, 384))),  # a row too many
        encoded(np.zeros((2, 383))),  # rows too short
        "not base64!",
        encoded(np.full((2, 384), np.nan)),
        encoded(np.full((2, 384), np.inf)),
    ],
)
def test_other_embeddings_are_refused(data: str) -> None:
    assert decode_embeddings(data, 2, 384) is None

"""A job's plan and report: what each input runs, and what it is billed.

Everything here is pure integer Python, shared by the node, which runs the plan,
and the exchange, which checks the node's report against the plan it computes
itself from the token counts, the tier and the budget:
``plan_inputs(tokens, tier, budget) == report.inputs`` for an honest node.

An input's depth is the tier's depth, lowered to the layers its share of the
budget affords (see :mod:`providers.metering`). Its exit reason says which
limit stopped it: ``full`` (it ran every layer), ``tier`` (the tier's depth)
or ``budget`` (its share ran out first). Because every share is computed from
the job's two totals and the input's own cost, the plan of one input never
depends on the others: shards of a job plan exactly as the whole job does.

Batches are planned here too: by token length (bucketing), so that rows in a
batch need little padding, or in arrival order, which the bench compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec

from providers.errors import JobSpecError
from providers.metering import (
    MINILM_L6,
    ModelShape,
    affordable_layers,
    budget_share,
    cu,
    input_flops,
)
from providers.tiers import tier as find_tier

__all__ = [
    "ExitReason",
    "InputReport",
    "JobBudget",
    "JobReport",
    "full_depth_flops",
    "plan_batches",
    "plan_inputs",
]

ExitReason = Literal["full", "tier", "budget"]


class JobBudget(msgspec.Struct, frozen=True):
    """A job's budget, as every shard of the job carries it.

    Attributes:
        budget_flops: the whole job's budget, in FLOPs (CU × 10^9).
        job_full_flops: the full-depth cost of all the job's inputs, on every
            shard together (see :func:`full_depth_flops`).
    """

    budget_flops: int
    job_full_flops: int

    def __post_init__(self) -> None:
        if self.budget_flops < 0 or self.job_full_flops < 0:
            raise JobSpecError(f"a budget cannot be negative: {self}")


class InputReport(msgspec.Struct, frozen=True):
    """What one input ran and what it is billed.

    Attributes:
        tokens: unpadded tokens, special tokens included, after truncation.
        layers: encoder layers run (0 to the model's depth).
        exit: what stopped it: ``full``, ``tier`` or ``budget``.
        flops: the FLOPs billed, by the metering formula.
    """

    tokens: int
    layers: int
    exit: ExitReason
    flops: int

    @property
    def cu(self) -> float:
        """The billed compute in CU, for display only."""
        return cu(self.flops)


class JobReport(msgspec.Struct, frozen=True):
    """What a job (or a shard of one) ran.

    Attributes:
        inputs: one report per input, in input order.
        flops: the exact total billed, the sum of the inputs' FLOPs.
        wall_ns: wall time of the run, tokenizing included, in nanoseconds.
        computed_flops: what the node computed, padding included; for the
            node's own accounting, never billed.
    """

    inputs: list[InputReport]
    flops: int
    wall_ns: int
    computed_flops: int

    @property
    def cu(self) -> float:
        """The billed total in CU, for display only."""
        return cu(self.flops)


def full_depth_flops(tokens: Sequence[int], shape: ModelShape = MINILM_L6) -> int:
    """The full-depth cost of inputs of these token counts: a job's total."""
    return sum(input_flops(shape, n, shape.layers) for n in tokens)


def plan_inputs(
    tokens: Sequence[int],
    tier: str,
    budget: JobBudget | None = None,
    shape: ModelShape = MINILM_L6,
) -> list[InputReport]:
    """Each input's depth, exit reason and FLOPs, as an honest node reports them.

    Args:
        tokens: the inputs' token counts.
        tier: the job's quality tier.
        budget: the job's budget; None runs every input to the tier's depth.
        shape: the model's shape.
    """
    depth = min(find_tier(tier).layers, shape.layers)
    if budget is not None and full_depth_flops(tokens, shape) > budget.job_full_flops:
        raise JobSpecError(
            "these inputs alone cost more at full depth than the job's total "
            f"{budget.job_full_flops} FLOPs"
        )

    plans = []
    for n in tokens:
        reason: ExitReason = "full" if depth == shape.layers else "tier"
        layers = depth
        if budget is not None:
            full = input_flops(shape, n, shape.layers)
            share = budget_share(budget.budget_flops, full, budget.job_full_flops)
            affordable = affordable_layers(shape, n, share)
            if affordable < layers:
                layers, reason = affordable, "budget"
        plans.append(InputReport(n, layers, reason, input_flops(shape, n, layers)))
    return plans


def plan_batches(
    tokens: Sequence[int],
    *,
    batch_tokens: int,
    max_rows: int,
    bucketing: bool = True,
    max_padding: float = 0.1,
) -> list[list[int]]:
    """Group inputs into batches; each batch is a list of input indices.

    A batch is padded to its longest row, so it holds at most ``max_rows``
    rows and ``rows × longest ≤ batch_tokens`` (a row longer than that goes
    alone).

    Args:
        tokens: the inputs' token counts.
        batch_tokens: the most padded tokens a batch holds.
        max_rows: the most rows a batch holds.
        bucketing: sort by length first (ties keep input order) and close a
            batch before its padding exceeds ``max_padding``; False keeps the
            arrival order, padding short rows to long neighbours (the bench's
            baseline).
        max_padding: with bucketing, the most padding a batch may add, as a
            fraction of its rows' own tokens (0.1: at most 10% more).
    """
    if batch_tokens < 1 or max_rows < 1 or max_padding < 0:
        raise ValueError("batch_tokens, max_rows and max_padding must be positive")
    order = sorted(range(len(tokens)), key=lambda i: (tokens[i], i))
    if not bucketing:
        order, max_padding = list(range(len(tokens))), float("inf")

    batches: list[list[int]] = []
    batch: list[int] = []
    longest = real = 0
    for i in order:
        wider = max(longest, tokens[i])
        padded = (len(batch) + 1) * wider
        if batch and (
            len(batch) == max_rows
            or padded > batch_tokens
            or padded > (1 + max_padding) * (real + tokens[i])
        ):
            batches.append(batch)
            batch, wider, real = [], tokens[i], 0
        batch.append(i)
        longest, real = wider, real + tokens[i]
    if batch:
        batches.append(batch)
    return batches

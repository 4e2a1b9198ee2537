"""Running a job on the model: plan, batch by length, embed, report.

:func:`run_job` tokenizes the job's texts, plans every input's depth from the
tier and the budget (:func:`providers.jobs.plan_inputs`), groups the inputs
into batches of similar length, runs each batch through the layer loop with
every row leaving at its own depth, and puts the embeddings back in input
order. The report bills each input by the metering formula on its own token
count: whatever padding the batches needed is the node's cost, not the
consumer's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from providers.jobs import JobBudget, JobReport, plan_batches, plan_inputs
from providers.model import EncoderModel
from providers.tiers import DEFAULT_TIER

__all__ = ["BATCH_ROWS", "BATCH_TOKENS", "JobResult", "run_job"]

BATCH_TOKENS = 4096
"""Default most padded tokens in one batch."""

BATCH_ROWS = 64
"""Default most rows in one batch."""


@dataclass(frozen=True, slots=True)
class JobResult:
    """A job's embeddings and report.

    Attributes:
        embeddings: one normalised row per input, in input order, float32 on
            the CPU, shape ``(inputs, hidden)``.
        report: what each input ran and costs; the total and the wall time.
    """

    embeddings: torch.Tensor
    report: JobReport


def run_job(
    model: EncoderModel,
    texts: Sequence[str],
    tier: str = DEFAULT_TIER,
    budget: JobBudget | None = None,
    *,
    batch_tokens: int = BATCH_TOKENS,
    batch_rows: int = BATCH_ROWS,
    bucketing: bool = True,
) -> JobResult:
    """Embed ``texts`` at ``tier`` within ``budget``.

    Args:
        model: the loaded model.
        texts: the job's inputs (or one shard's).
        tier: the quality tier (see :mod:`providers.tiers`); ``exact`` by default.
        budget: the job's budget and full-depth total, the same on every shard;
            None lets every input run to the tier's depth.
        batch_tokens: the most padded tokens a batch holds.
        batch_rows: the most rows a batch holds.
        bucketing: batch by token length; False keeps arrival order (for the
            bench's comparison).
    """
    start = time.perf_counter_ns()
    rows = model.tokenize(texts)
    tokens = [len(row) for row in rows]
    plans = plan_inputs(tokens, tier, budget, model.shape)

    embeddings = torch.empty((len(rows), model.shape.hidden))
    computed = 0
    batches = plan_batches(
        tokens, batch_tokens=batch_tokens, max_rows=batch_rows, bucketing=bucketing
    )
    for batch in batches:
        vectors, spent = model.embed_batch(
            [rows[i] for i in batch], [plans[i].layers for i in batch]
        )
        embeddings[batch] = vectors.float().cpu()
        computed += spent

    report = JobReport(
        inputs=plans,
        flops=sum(plan.flops for plan in plans),
        wall_ns=time.perf_counter_ns() - start,
        computed_flops=computed,
    )
    return JobResult(embeddings, report)

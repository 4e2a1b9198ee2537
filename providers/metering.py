"""The metering formula: exact integer FLOPs of an input, from the model's shape.

A node bills what an input actually cost, and the exchange must be able to
check the bill without running the model. Both sides therefore compute FLOPs
with the same integer formula, from three things the exchange knows: the
model's shape, the input's token count (the tokenizer alone gives it) and the
number of layers the input ran. This module is pure integer Python and imports
no torch, so the exchange can use it as it is.

The formula. For an encoder layer with hidden size ``d``, feed-forward size
``f`` and ``h`` heads of size ``d / h``, an input of ``n`` unpadded tokens
costs, in multiply-adds::

    query, key and value projections   3 · n · d · d
    attention scores (Q · Kᵀ)          h · n · n · (d / h)  =  n · n · d
    weighted values (P · V)            h · n · n · (d / h)  =  n · n · d
    attention output projection        n · d · d
    feed-forward, up and down          2 · n · d · f

Two FLOPs per multiply-add give the FLOPs of one layer::

    layer_flops(n) = 8·n·d² + 4·n²·d + 4·n·d·f

and an input that ran ``k`` layers costs ``k · layer_flops(n)``. One compute
unit (CU) is 10^9 FLOPs; CU are derived for display only, the bill is in whole
FLOPs. For all-MiniLM-L6-v2 (d = 384, f = 1536, 12 heads, 6 layers) that is
``layer_flops(n) = 3,538,944·n + 1,536·n²``: a 12-token sentence costs
0.256 GFLOP at full depth, a 128-token passage 2.87 GFLOP.

What it counts and leaves out, on purpose:

- ``n`` is the input's own token count, special tokens ([CLS], [SEP]) included,
  after truncation to the model's maximum length. Padding added to batch inputs
  together is never billed: its cost is the node's to avoid (it batches by
  length).
- Only the matrix products are counted, as ``torch.utils.flop_counter`` counts
  them. The token embedding lookup costs no multiply; layer norms, softmax,
  GELU, bias additions, pooling and normalisation together add well under 1%
  and are not billed.
- The vocabulary size does not enter: embeddings are looked up, not multiplied.

Budgets. A job carries its CU budget and the full-depth cost of all its inputs
(the sum of ``input_flops(n, L)`` over the whole job, however it is sharded).
Each input's share of the budget is ``budget · full_i // job_full`` (rounded
down), computed from those two job-level numbers and the input's own cost, so a
share never depends on the order of inputs or on which node runs them. An input
runs the layers it can afford within its share; what it does not spend is
refunded to the consumer, never spent on another input.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "FLOPS_PER_CU",
    "MINILM_L6",
    "ModelShape",
    "affordable_layers",
    "budget_share",
    "cu",
    "input_flops",
    "layer_flops",
]

FLOPS_PER_CU = 10**9
"""One compute unit (CU) is 10^9 floating-point operations."""


class ModelShape(msgspec.Struct, frozen=True):
    """The shape of a transformer encoder, all that metering needs of it.

    Attributes:
        hidden: hidden size ``d`` (the width of a token's vector).
        intermediate: the feed-forward layer's inner size ``f``.
        heads: attention heads; ``hidden`` must divide evenly among them.
        layers: encoder layers at full depth ``L``.
        max_tokens: the most tokens an input keeps after truncation.
    """

    hidden: int
    intermediate: int
    heads: int
    layers: int
    max_tokens: int

    def __post_init__(self) -> None:
        for name in ("hidden", "intermediate", "heads", "layers", "max_tokens"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.hidden % self.heads:
            raise ValueError(
                f"hidden ({self.hidden}) does not divide among {self.heads} heads"
            )


MINILM_L6 = ModelShape(
    hidden=384, intermediate=1536, heads=12, layers=6, max_tokens=256
)
"""The shape of all-MiniLM-L6-v2, the model the node serves."""


def layer_flops(shape: ModelShape, tokens: int) -> int:
    """FLOPs of one encoder layer on one input of ``tokens`` unpadded tokens."""
    _check_tokens(shape, tokens)
    d, f, n = shape.hidden, shape.intermediate, tokens
    head = d // shape.heads

    # Written term by term, as in the module docstring, in multiply-adds.
    projections = 4 * n * d * d  # Q, K, V and the attention output
    attention = 2 * shape.heads * n * n * head  # Q·Kᵀ and P·V, every head
    feed_forward = 2 * n * d * f
    return 2 * (projections + attention + feed_forward)


def input_flops(shape: ModelShape, tokens: int, layers: int) -> int:
    """FLOPs billed for one input of ``tokens`` tokens that ran ``layers`` layers."""
    if type(layers) is not int or not 0 <= layers <= shape.layers:
        raise ValueError(f"layers must be an int in 0..{shape.layers}, got {layers!r}")
    return layers * layer_flops(shape, tokens)


def budget_share(budget_flops: int, full_flops: int, job_full_flops: int) -> int:
    """One input's share of a job's budget, in FLOPs, rounded down.

    Args:
        budget_flops: the whole job's budget in FLOPs.
        full_flops: this input's cost at full depth (``input_flops(n, L)``).
        job_full_flops: the sum of every input's full-depth cost over the whole
            job, on every node it is split across.
    """
    if budget_flops < 0 or full_flops < 0 or job_full_flops < full_flops:
        raise ValueError(
            "need 0 <= full_flops <= job_full_flops and budget_flops >= 0, got "
            f"{full_flops}, {job_full_flops} and {budget_flops}"
        )
    if job_full_flops == 0:
        return 0
    return budget_flops * full_flops // job_full_flops


def affordable_layers(shape: ModelShape, tokens: int, share_flops: int) -> int:
    """The most layers an input of ``tokens`` tokens can run within its share."""
    return min(shape.layers, share_flops // layer_flops(shape, tokens))


def cu(flops: int) -> float:
    """FLOPs as compute units, a float for display only (bills stay in FLOPs)."""
    return flops / FLOPS_PER_CU


def _check_tokens(shape: ModelShape, tokens: int) -> None:
    if type(tokens) is not int or not 1 <= tokens <= shape.max_tokens:
        raise ValueError(
            f"tokens must be an int in 1..{shape.max_tokens}, got {tokens!r}"
        )

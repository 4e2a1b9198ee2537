"""Quality tiers: what a consumer picks instead of a raw exit threshold.

A tier fixes the depth every input of a job runs to (unless its share of the
budget runs out first). A fixed depth, rather than an exit criterion measured
on the input, was chosen for three reasons:

- the exchange can verify a report exactly: from the tier, the budget and the
  token counts it computes every input's layers and FLOPs itself;
- the result does not depend on how inputs are batched, on which node they run
  or on rounding differences between devices;
- on this model, a criterion (exit when two successive layers' embeddings agree
  to a cosine threshold) mixes embeddings from different layers in one job, and
  those live in different spaces: paraphrase retrieval fell below that of every
  fixed depth of equal cost (see bench/README.md, "Provider node").

Known limitation: all-MiniLM-L6-v2's intermediate layers were not trained to
be outputs, so every tier below ``exact`` loses much of the full-depth
embedding. The measured loss per tier is in ``providers/data/quality_profile.json``
(``python -m providers.profile`` measures it again).

Pure Python: the exchange validates tier names and computes depths with it.
"""

from __future__ import annotations

import msgspec

from providers.errors import JobSpecError
from providers.metering import MINILM_L6

__all__ = ["DEFAULT_TIER", "TIERS", "Tier", "tier"]


class Tier(msgspec.Struct, frozen=True):
    """A quality tier.

    Attributes:
        name: what consumers ask for.
        layers: the encoder layers every input runs, at most.
        summary: one line for users.
    """

    name: str
    layers: int
    summary: str


TIERS: dict[str, Tier] = {
    t.name: t
    for t in (
        Tier("exact", MINILM_L6.layers, "full depth: the model's own embedding"),
        Tier("high", 5, "5 of 6 layers: 5/6 of the compute"),
        Tier("balanced", 3, "3 of 6 layers: half the compute"),
        Tier("fast", 2, "2 of 6 layers: a third of the compute"),
    )
}
"""The tiers, cheapest last."""

DEFAULT_TIER = "exact"


def tier(name: str) -> Tier:
    """The tier called ``name``; :class:`JobSpecError` names the known ones."""
    found = TIERS.get(name)
    if found is None:
        raise JobSpecError(f"unknown quality tier {name!r}; known: {', '.join(TIERS)}")
    return found

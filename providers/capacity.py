"""A node's capacity: the CU per second it delivers on the served model.

`measure_capacity` runs the real model at full depth (tier ``exact``) on the
shipped probe sentences, in an order shuffled by a seeded RNG, batch after
batch until a time box is spent, and divides the metered CU by the wall time.
Metered CU are what a consumer is billed (padding excluded), so the figure is
what the node can sell, not what its hardware computes. The result is integer
thousandths of a CU per second, the unit of ``register_node``.
"""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING

from providers.probe import load_probe_set

if TYPE_CHECKING:
    from providers.model import EncoderModel

__all__ = ["measure_capacity"]

log = logging.getLogger("cux.node")


def measure_capacity(
    model: EncoderModel, seconds: float = 3.0, seed: int = 0, batch: int = 32
) -> int:
    """The model's delivered capacity, thousandths of a CU per second.

    Args:
        model: the loaded model.
        seconds: the time box, seconds; at least one batch runs however short.
        seed: the seed of the probe sentences' order.
        batch: sentences per job.
    """
    from providers.runtime import run_job

    sentences = list(load_probe_set().sentences)
    random.Random(seed).shuffle(sentences)

    # One untimed batch first: the first call pays for lazy initialisation.
    run_job(model, sentences[:batch])

    flops = 0
    wall_ns = 0
    position = 0
    deadline = time.perf_counter() + seconds
    while wall_ns == 0 or time.perf_counter() < deadline:
        texts = [sentences[(position + i) % len(sentences)] for i in range(batch)]
        position += batch
        report = run_job(model, texts).report
        flops += report.flops
        wall_ns += report.wall_ns

    # CU/s = (flops / 1e9) / (wall_ns / 1e9) = flops / wall_ns.
    milli = max(1, flops * 1000 // max(1, wall_ns))
    log.info(
        "capacity probe: %.3f CU/s at full depth (%d sentences in %.2f s)",
        milli / 1000,
        position,
        wall_ns / 1e9,
    )
    return milli

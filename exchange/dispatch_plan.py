"""The pure parts of dispatch: splitting a job over leases, checking a report.

`split` gives each lease a contiguous run of the job's inputs, in proportion
to what the leases can hold, never more than a lease's free FLOPs. `check_report`
compares what a node says it ran with what the exchange planned for the same
inputs (`providers.jobs.plan_inputs` on the token counts the exchange counted
itself): an honest node's report equals the plan exactly, so anything else —
more FLOPs, other token counts, other depths — is refused. `decode_embeddings`
reads the rows a node sent.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

import numpy as np

from exchange.protocol_jobs import ShardInput
from providers.jobs import InputReport

__all__ = ["check_report", "decode_embeddings", "split"]


def split(
    costs: Sequence[int], room: Sequence[int]
) -> tuple[list[list[int]], list[int]]:
    """Assign inputs to leases: one list of input indices per lease, and the
    inputs no lease had room for.

    Inputs keep their order, each lease taking the next contiguous run, sized
    so that every lease's share of the total cost is its share of the total
    room (the lots). A lease never gets more than its room: an input that does
    not fit goes to the next lease with room.

    Args:
        costs: each input's planned FLOPs.
        room: each lease's free FLOPs, in the order the leases are used.
    """
    total_cost = sum(costs)
    total_room = sum(room)
    shards: list[list[int]] = [[] for _ in room]
    used = [0] * len(room)
    left: list[int] = []
    spent = 0
    target_end = 0
    lease = 0
    bound = room[0] * total_cost if room else 0
    for i, cost in enumerate(costs):
        # Move on when this lease's proportional share is reached: the input's
        # midpoint past the lease's bound (compared in integers, scaled).
        midpoint = (2 * spent + cost) * total_room
        while lease < len(room) - 1 and midpoint > 2 * bound:
            lease += 1
            bound += room[lease] * total_cost
        spent += cost
        target_end = lease
        for j in range(target_end, len(room)):
            if used[j] + cost <= room[j]:
                shards[j].append(i)
                used[j] += cost
                break
        else:
            fits = next(
                (j for j in range(target_end) if used[j] + cost <= room[j]), None
            )
            if fits is None:
                left.append(i)
            else:
                shards[fits].append(i)
                used[fits] += cost
    return shards, left


def check_report(
    reported: Sequence[ShardInput], planned: Sequence[InputReport]
) -> str | None:
    """Why a node's per-input report is refused, or None if it is the plan."""
    if len(reported) != len(planned):
        return f"{len(reported)} input reports for {len(planned)} inputs"
    for n, (got, want) in enumerate(zip(reported, planned, strict=True)):
        if got.tokens != want.tokens:
            return f"input {n}: {got.tokens} tokens reported, {want.tokens} counted"
        if got.layers != want.layers or got.exit != want.exit:
            return (
                f"input {n}: {got.layers} layers ({got.exit}) reported, "
                f"{want.layers} ({want.exit}) planned"
            )
        if got.flops != want.flops:
            return (
                f"input {n}: {got.flops} FLOPs claimed, the formula gives {want.flops}"
            )
    return None


def decode_embeddings(data: str, rows: int, width: int) -> np.ndarray | None:
    """The ``rows × width`` float32 embeddings in base64 ``data``, or None if
    they are not that (wrong size, not base64, not finite)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != rows * width * 4:
        return None
    matrix = np.frombuffer(raw, dtype="<f4").reshape(rows, width)
    if not np.isfinite(matrix).all():
        return None
    return matrix

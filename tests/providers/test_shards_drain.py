"""`Shards.drain`, the node's half of SIGTERM: the shard running finishes and
its result is answered before drain returns; the queued shards, and one that
arrives while it drains, are handed back."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest

from providers.jobs import JobBudget, JobReport
from providers.shards import ShardOutcome, Shards


def shard(shard_id: int) -> dict[str, Any]:
    return {
        "type": "shard",
        "shard_id": shard_id,
        "inputs": ["a sentence"],
        "tier": "exact",
        "budget_flops": 10**12,
        "job_full_flops": 10**10,
    }


class Exchange:
    """Answers every request, the result of a shard only after the others'."""

    def __init__(self) -> None:
        self.answered: list[tuple[str, int]] = []

    async def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        if payload["op"] == "shard_result":
            await asyncio.sleep(0.3)  # a slow answer: drain must wait for it
        self.answered.append((payload["op"], payload["shard_id"]))
        return {"type": "ack"}


async def test_draining_sends_the_running_shards_result_and_hands_back_the_rest() -> (
    None
):
    started, release = threading.Event(), threading.Event()

    def run(texts: list[str], tier: str, budget: JobBudget) -> ShardOutcome:
        started.set()
        release.wait(30)
        return ShardOutcome(np.zeros((1, 384), "<f4"), JobReport([], 0, 1, 0))

    exchange = Exchange()
    shards = Shards(run, exchange.request)
    worker = asyncio.create_task(shards.work())
    for shard_id in (1, 2, 3):
        shards.received(shard(shard_id))
    await asyncio.to_thread(started.wait, 30)

    draining = asyncio.create_task(shards.drain(timeout=30))
    shards.received(shard(4))  # sent by the exchange before it heard of the stop
    await asyncio.sleep(0)
    release.set()
    await draining

    # When drain returns, the result has been answered: the node may close.
    assert exchange.answered == [
        ("shard_result", 1),
        ("shard_failed", 2),
        ("shard_failed", 3),
        ("shard_failed", 4),
    ]
    assert shards.sent == 1
    worker.cancel()


async def test_every_shard_handed_back_or_dropped_on_a_stop_is_logged_as_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started, release = threading.Event(), threading.Event()

    def run(texts: list[str], tier: str, budget: JobBudget) -> ShardOutcome:
        started.set()
        release.wait(30)
        return ShardOutcome(np.zeros((1, 384), "<f4"), JobReport([], 0, 1, 0))

    shards = Shards(run, Exchange().request)
    worker = asyncio.create_task(shards.work())
    for shard_id in (1, 2):
        shards.received(shard(shard_id))
    await asyncio.to_thread(started.wait, 30)

    # Shard 1 outlives the drain's time box; shard 2 is handed back; shard 3
    # comes after the hand-back, as the connection closes.
    await shards.drain(timeout=0.01)
    shards.received(shard(3))
    shards.forget("the connection closed")
    worker.cancel()
    release.set()

    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "shard 2 handed back: the node is stopping" in warnings
    assert "shard 1 dropped while it ran: the connection closed" in warnings
    assert "shard 3 dropped before it ran: the connection closed" in warnings

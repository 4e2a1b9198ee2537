"""Running the shards the exchange dispatches to a node.

The exchange sends a node ``shard`` messages (`exchange.protocol_jobs`): some
inputs of a job, its tier and its budget. `Shards` queues them and runs them
one at a time in a worker thread (the event loop keeps answering pings), and
sends each result back as ``shard_result``: the embeddings as base64 of
little-endian float32 rows, and the report the exchange checks against its
own plan. A ``shard_cancelled`` message drops a shard that has not run, and
the result of one that was running is not sent.

When the node stops (`Shards.drain`), the shard running finishes and its
result is sent before drain returns (so before the connection closes); those
still queued, and any that arrive meanwhile, are handed back with
``shard_failed``, so that the exchange sends them elsewhere at once. The queue
belongs to one connection: when it drops, the exchange fails the node's shards
itself, and the node forgets them (`Shards.forget`). Every shard handed back
or dropped is logged at WARNING with its id.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from providers.jobs import JobBudget, JobReport

__all__ = ["Run", "ShardOutcome", "Shards", "shard_payload"]

log = logging.getLogger("cux.node")


@dataclass(frozen=True, slots=True)
class ShardOutcome:
    """What running a shard gave: float32 rows in input order, and the report."""

    embeddings: np.ndarray
    report: JobReport


Run = Callable[[list[str], str, JobBudget], ShardOutcome]
"""Runs inputs at a tier within a budget (in a worker thread)."""

Request = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def shard_payload(shard_id: int, outcome: ShardOutcome) -> dict[str, Any]:
    """The ``shard_result`` request of an honest node."""
    rows = np.ascontiguousarray(outcome.embeddings, dtype="<f4")
    report = outcome.report
    return {
        "op": "shard_result",
        "shard_id": shard_id,
        "inputs": [
            {"tokens": i.tokens, "layers": i.layers, "exit": i.exit, "flops": i.flops}
            for i in report.inputs
        ],
        "embeddings": base64.b64encode(rows.tobytes()).decode("ascii"),
        "flops": report.flops,
        "wall_ns": report.wall_ns,
    }


class Shards:
    """The shards of one connection (see the module doc).

    Args:
        run: what runs a shard's inputs.
        request: sends a request and returns its response (raises on refusal).
        payload: builds the ``shard_result`` request of a shard's outcome.
        delivered: told the FLOPs and wall time of each shard sent.
    """

    def __init__(
        self,
        run: Run,
        request: Request,
        payload: Callable[[int, ShardOutcome], dict[str, Any]] = shard_payload,
        delivered: Callable[[int, int], None] | None = None,
    ) -> None:
        self._run = run
        self._request = request
        self._payload = payload
        self._delivered = delivered
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._cancelled: set[int] = set()
        self._draining = False
        # Clear from a shard's start until its result is sent: what drain
        # waits for (the result must leave before the connection closes).
        self._idle = asyncio.Event()
        self._idle.set()
        self.running: int | None = None
        self.sent = 0

    def received(self, message: dict[str, Any]) -> None:
        """A ``shard`` message arrived."""
        self._queue.put_nowait(message)

    def cancelled(self, shard_id: int) -> None:
        """A ``shard_cancelled`` message arrived."""
        self._cancelled.add(shard_id)

    async def work(self) -> None:
        """Run shards as they come, until cancelled; once draining, hand each
        one that comes back instead."""
        while True:
            message = await self._queue.get()
            shard_id = int(message["shard_id"])
            if shard_id in self._cancelled:
                continue
            if self._draining:
                await self._hand_back(shard_id, "the node is stopping")
                continue
            self._idle.clear()
            try:
                await self._one(shard_id, message)
            finally:
                self._idle.set()

    async def drain(self, timeout: float) -> None:
        """Finish the shard running and send its result (within ``timeout``
        s), then hand back the shards still queued."""
        self._draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning(
                "shard %s still running after %.0f s: left to the exchange",
                self.running,
                timeout,
            )
        await self._hand_back_all()

    def forget(self, reason: str) -> None:
        """The connection is closing: log each shard dropped unfinished (the
        one running, those queued), which the exchange fails itself."""
        if self.running is not None and self.running not in self._cancelled:
            log.warning("shard %d dropped while it ran: %s", self.running, reason)
        while not self._queue.empty():
            shard_id = int(self._queue.get_nowait()["shard_id"])
            if shard_id not in self._cancelled:
                log.warning("shard %d dropped before it ran: %s", shard_id, reason)

    async def _one(self, shard_id: int, message: dict[str, Any]) -> None:
        """Run a shard and send its result (or hand it back if it failed)."""
        texts = [str(t) for t in message["inputs"]]
        budget = JobBudget(int(message["budget_flops"]), int(message["job_full_flops"]))
        self.running = shard_id
        try:
            outcome = await asyncio.to_thread(
                self._run, texts, str(message["tier"]), budget
            )
        except Exception as exc:  # the model failed on this input: hand it back
            log.exception("shard %d failed to run", shard_id)
            await self._hand_back(shard_id, f"the node failed: {exc}"[:200])
            return
        finally:
            self.running = None
        if shard_id in self._cancelled:
            log.info("shard %d was cancelled while it ran; result dropped", shard_id)
            return
        try:
            await self._request(self._payload(shard_id, outcome))
        except Exception as exc:
            log.warning("result of shard %d not accepted: %s", shard_id, exc)
            return
        self.sent += 1
        report = outcome.report
        log.info(
            "shard %d done: %d inputs, %.3f CU in %.3f s",
            shard_id,
            len(report.inputs),
            report.flops / 1e9,
            report.wall_ns / 1e9,
        )
        if self._delivered is not None:
            self._delivered(report.flops, report.wall_ns)

    async def _hand_back_all(self) -> None:
        while not self._queue.empty():
            message = self._queue.get_nowait()
            shard_id = int(message["shard_id"])
            if shard_id not in self._cancelled:
                await self._hand_back(shard_id, "the node is stopping")

    async def _hand_back(self, shard_id: int, reason: str) -> None:
        try:
            await self._request(
                {"op": "shard_failed", "shard_id": shard_id, "reason": reason}
            )
            log.warning("shard %d handed back: %s", shard_id, reason)
        except Exception as exc:
            log.warning("could not hand back shard %d: %s", shard_id, exc)

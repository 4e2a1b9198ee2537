"""A consumer agent: submits embedding jobs of real text at a random rate.

A `Consumer` follows a plan (`plan_jobs`) that its seed fixes entirely:

- jobs arrive as a Poisson process of ``rate_per_second`` (exponential gaps
  drawn by ``random.Random(seed)``);
- each job embeds ``inputs_min`` to ``inputs_max`` passages drawn from the
  corpus (`clients.agents.corpus`), with the quality ``tier`` and a CU budget
  of ``budget_bps`` of what the inputs are expected to cost at full depth
  (`estimated_flops`), at least 1 CU;
- it is willing to pay, per lot, the price series at the replayed time (the
  job's arrival time × ``speed``, from ``start_offset``) times
  ``willingness_bps``, rounded down to the tick: ``max_price``.

The plan does not depend on the clock or on the exchange's answers: the same
seed and settings give the same jobs, prices and inputs. `Consumer.run` sends
them at their times, as job orders (``submit_job``: the exchange buys spot lots
IOC up to ``max_price`` and runs the job on them), or, with ``mode="order"``,
as the plain IOC buy a job order makes (its expected cost in lots at
``max_price``), for a server without jobs.

After its plan's last job it waits for its jobs to end (on the ``jobs``
channel). `Consumer.stop` stops submitting and waiting; jobs still running are
cancelled (``cancel_jobs_on_stop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from clients.agents.venue import Venue
from clients.errors import ClientError, ServerError

__all__ = [
    "Consumer",
    "ConsumerConfig",
    "ConsumerStats",
    "PlannedJob",
    "estimated_flops",
    "plan_jobs",
]

log = logging.getLogger("cux.agents.consumer")

_TERMINAL_JOB = frozenset({"done", "failed", "cancelled"})


def estimated_flops(text: str) -> int:
    """What embedding ``text`` at full depth is expected to cost, FLOPs.

    The node's published metering formula for all-MiniLM-L6-v2 (6 layers:
    ``6 × (3,538,944·n + 1,536·n²)``) at an estimated token count ``n`` of one
    token per 4 bytes of UTF-8 plus the 2 special tokens, cut at 256 like the
    node's tokenizer. An estimate for a budget, not a bill: the node counts
    the real tokens.
    """
    tokens = min(256, -(-len(text.encode()) // 4) + 2)
    return 6 * (3_538_944 * tokens + 1_536 * tokens * tokens)


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    """A consumer's settings.

    Attributes:
        name: the consumer's name, the prefix of its client order ids.
        symbol: the spot instrument it buys.
        lot_cu: CU in one lot of it.
        tick: its tick, µcr.
        rate_per_second: jobs per second, on average (Poisson).
        inputs_min: the fewest passages in a job.
        inputs_max: the most passages in a job.
        tier: the quality tier of its jobs.
        budget_bps: the CU budget, basis points of the inputs' estimated
            full-depth cost (15,000: half as much again).
        willingness_bps: what it pays, basis points of the series' price.
        speed: seconds of the price series that pass in one second.
        start_offset: where in the price series to start, seconds.
        seed: the seed of everything random in its plan.
        max_jobs: stop after this many jobs; None: until stopped.
        mode: ``job`` (job orders) or ``order`` (the IOC buys alone).
        cancel_jobs_on_stop: cancel its running jobs when it stops.
    """

    name: str = "consumer"
    symbol: str = "cpu-SPOT"
    lot_cu: int = 100
    tick: int = 1
    rate_per_second: float = 1.0
    inputs_min: int = 1
    inputs_max: int = 8
    tier: str = "exact"
    budget_bps: int = 15_000
    willingness_bps: int = 10_000
    speed: float = 1800.0
    start_offset: float = 0.0
    seed: int = 0
    max_jobs: int | None = None
    mode: Literal["job", "order"] = "job"
    cancel_jobs_on_stop: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.inputs_min <= self.inputs_max:
            raise ValueError("need 1 <= inputs_min <= inputs_max")
        if self.rate_per_second <= 0 or self.lot_cu < 1 or self.tick < 1:
            raise ValueError("rate must be positive, lot_cu and tick at least 1")
        if self.budget_bps < 1 or self.willingness_bps < 1:
            raise ValueError("budget_bps and willingness_bps must be at least 1")
        if self.speed < 0 or self.start_offset < 0:
            raise ValueError("speed and start_offset must be >= 0")


@dataclass(frozen=True, slots=True)
class PlannedJob:
    """One job of a consumer's plan.

    Attributes:
        number: its place in the plan, from 1.
        at_seconds: when to send it, seconds after the consumer starts.
        offset_seconds: the replayed time it is priced at, seconds into the
            price series.
        inputs: the passages to embed.
        tier: the quality tier.
        budget_cu: the CU budget.
        lots: the lots a job order buys for it: its expected cost, at most
            the budget, in lots, rounded up (as the exchange does with the
            real token counts).
        max_price: the most it pays per lot, µcr.
    """

    number: int
    at_seconds: float
    offset_seconds: float
    inputs: tuple[str, ...]
    tier: str
    budget_cu: int
    lots: int
    max_price: int


def plan_jobs(
    config: ConsumerConfig,
    price: Callable[[float], int],
    passages: Sequence[str],
) -> Iterator[PlannedJob]:
    """The consumer's jobs, in order, endlessly (or ``max_jobs`` of them).

    Args:
        config: the consumer's settings.
        price: the series' price per lot, µcr, at a number of seconds into it.
        passages: the corpus to draw inputs from (not empty).
    """
    if not passages:
        raise ValueError("no passages to embed")
    rng = random.Random(config.seed)
    at = 0.0
    number = 0
    while config.max_jobs is None or number < config.max_jobs:
        number += 1
        at += rng.expovariate(config.rate_per_second)
        count = rng.randint(config.inputs_min, config.inputs_max)
        inputs = tuple(passages[rng.randrange(len(passages))] for _ in range(count))
        flops = sum(estimated_flops(text) for text in inputs)
        budget_cu = max(1, -(-flops * config.budget_bps // (10_000 * 10**9)))
        offset = config.start_offset + at * config.speed
        willing = price(offset) * config.willingness_bps // 10_000
        yield PlannedJob(
            number=number,
            at_seconds=at,
            offset_seconds=offset,
            inputs=inputs,
            tier=config.tier,
            budget_cu=budget_cu,
            lots=-(-min(flops, budget_cu * 10**9) // (config.lot_cu * 10**9)),
            max_price=max(config.tick, willing // config.tick * config.tick),
        )


@dataclass(slots=True)
class ConsumerStats:
    """What a consumer did.

    Attributes:
        submitted: jobs (or orders) sent.
        accepted: of those, the ones the exchange acknowledged.
        refused: the others, by the error's code (``ConnectionLost`` or
            ``RequestTimeout`` when no answer came).
        jobs: the status of every accepted job, by job id (``order`` mode: none).
        lots_bought: lots its orders or jobs bought.
        spent: µcr those lots cost (price × lots, fees apart).
        flops: FLOPs its ended jobs ran.
        cost: µcr its ended jobs cost (metered usage and fees).
        refund: µcr its ended jobs got back from escrow.
    """

    submitted: int = 0
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    jobs: dict[str, str] = field(default_factory=dict)
    lots_bought: int = 0
    spent: int = 0
    flops: int = 0
    cost: int = 0
    refund: int = 0


class Consumer:
    """Sends its plan's jobs at their times (see the module doc).

    Args:
        venue: the consumer's account on the exchange.
        config: its settings.
        price: the series' price per lot, µcr, at a number of seconds into it
            (a `clients.agents.prices.LotPricer`'s ``price``).
        passages: the corpus (`clients.agents.corpus.load_passages`).
    """

    def __init__(
        self,
        venue: Venue,
        config: ConsumerConfig,
        price: Callable[[float], int],
        passages: Sequence[str],
    ) -> None:
        self.venue = venue
        self.config = config
        self.plan = plan_jobs(config, price, passages)
        self.stats = ConsumerStats()
        self.sent: list[PlannedJob] = []
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()

    def running(self) -> list[str]:
        """The ids of its accepted jobs that have not ended."""
        return [j for j, s in self.stats.jobs.items() if s not in _TERMINAL_JOB]

    def stop(self) -> None:
        """End `run` (it cancels the running jobs on its way out)."""
        self._stopping.set()

    async def run(self) -> None:
        """Send the plan's jobs at their times until it ends or `stop`; after
        the last one, wait (until `stop`) for the running jobs to end."""
        listener = asyncio.create_task(self._listen(await self.venue.private()))
        start = asyncio.get_running_loop().time()
        try:
            for job in self.plan:
                delay = start + job.at_seconds - asyncio.get_running_loop().time()
                if await self._stopped_within(delay):
                    break
                await self._send(job)
            while self.running() and not self._stopping.is_set():
                self._changed.clear()
                await self._wait_change()
        finally:
            if self.config.cancel_jobs_on_stop:
                await self._cancel_running()
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        log.info(
            "%s stopped: %d sent, %d accepted",
            self.config.name,
            self.stats.submitted,
            self.stats.accepted,
        )

    async def _wait_change(self) -> None:
        changed = asyncio.create_task(self._changed.wait())
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait((changed, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            stopping.cancel()

    async def _stopped_within(self, delay: float) -> bool:
        if delay <= 0:
            return self._stopping.is_set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)
        return self._stopping.is_set()

    async def _send(self, job: PlannedJob) -> None:
        c = self.config
        self.sent.append(job)
        self.stats.submitted += 1
        try:
            if c.mode == "job":
                job_id = await self.venue.submit_job(
                    symbol=c.symbol,
                    inputs=list(job.inputs),
                    tier=job.tier,
                    budget_cu=job.budget_cu,
                    max_price=job.max_price,
                )
                # Its first message may have come before the ack.
                self.stats.jobs.setdefault(job_id, "running")
            else:
                await self.venue.place(
                    symbol=c.symbol,
                    side="buy",
                    qty=job.lots,
                    price=job.max_price,
                    tif="IOC",
                    client_order_id=f"{c.name}.{job.number}",
                )
        except ClientError as exc:
            # A refusal counts by its code; no answer, by its kind.
            code = exc.code if isinstance(exc, ServerError) else type(exc).__name__
            self.stats.refused[code] = self.stats.refused.get(code, 0) + 1
            log.warning("%s: job %d not accepted: %s", c.name, job.number, exc)
            return
        self.stats.accepted += 1

    async def _cancel_running(self) -> None:
        for job_id in self.running():
            with contextlib.suppress(ClientError):
                await self.venue.cancel_job(job_id)

    async def _listen(self, messages: AsyncIterator[dict[str, Any]]) -> None:
        async for message in messages:
            self._on_message(message)

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "job":
            job_id, status = str(message["job_id"]), str(message["status"])
            if self.stats.jobs.get(job_id) in _TERMINAL_JOB:
                return
            self.stats.jobs[job_id] = status
            if status in _TERMINAL_JOB:
                self.stats.flops += int(message.get("flops") or 0)
                self.stats.cost += int(message.get("cost") or 0)
                self.stats.refund += int(message.get("refund") or 0)
            self._changed.set()
        elif kind == "fill" and message.get("side") == "buy":
            qty = int(message["qty"])
            self.stats.lots_bought += qty
            self.stats.spent += qty * int(message["price"])

"""What the dispatcher keeps of a running job: its inputs, leases and shards.

These are the exchange's working records (`exchange.dispatch`); the engine
keeps only the job's summary (`matching.jobs`) and the money.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from exchange.protocol_jobs import InputResult, JobMessage
from providers.jobs import InputReport, JobBudget

__all__ = ["JobRun", "LeaseRef", "Shard"]


@dataclass(slots=True, eq=False)
class LeaseRef:
    """A lease a job runs on.

    Attributes:
        symbol, lease_id: the lease (a spot lease's id is its trade's).
        provider: the selling account, whose nodes run its shards.
        resource_class: the class of its instrument.
        room: the FLOPs it can still take for this job.
        spot: a spot lease (metered, ended by the dispatcher) or a future's
            (firm, ends with its window).
        ends_at: when it stops accepting usage, ns since the epoch.
        failed: a shard on it failed (it then ends ``failed``).
        ending: an `EndLease` was sent; ended: its escrow was settled.
    """

    symbol: str
    lease_id: int
    provider: str
    resource_class: str
    room: int
    spot: bool
    ends_at: int
    failed: bool = False
    ending: bool = False
    ended: bool = False


@dataclass(slots=True, eq=False)
class Shard:
    """Inputs of one job sent to one node, on one lease.

    Attributes:
        shard_id: unique on the exchange.
        job: the job.
        lease: the lease that pays for it.
        indices: the job's input indices it carries, in order.
        cost: its planned FLOPs (reserved on the lease).
        node: (account, node id) of the node running it; None while waiting.
        tried: the nodes it failed on, never sent to again.
        attempts: how many times it was sent.
        timer: its deadline.
        session: the connection of the node it was sent to.
    """

    shard_id: int
    job: JobRun
    lease: LeaseRef
    indices: list[int]
    cost: int
    node: tuple[str, str] | None = None
    tried: set[tuple[str, str]] = field(default_factory=set)
    attempts: int = 0
    timer: asyncio.TimerHandle | None = None
    session: object = None


@dataclass(slots=True, eq=False)
class JobRun:
    """A job from submission until its results are forgotten.

    Attributes:
        job_id: the engine's number.
        account, symbol, tier: who, where, how well.
        texts: the inputs; tokens: their counts; plans: what each runs.
        budget: the job's budget, the same on every shard.
        max_price: the job order's limit (None: it runs on given leases).
        planned: the FLOPs of the whole plan.
        leases: the leases it runs on; shards: those not yet finished.
        waiting: inputs waiting for lots being bought; the purchase in flight
            was sized for the first ``bought_for`` of them (those that came
            later get a purchase of their own after it).
        tries: how many times each input's shard failed.
        failed_nodes: the nodes that failed one of its shards, or that a shard
            of it waited for in vain: they run none of its shards again, and
            lots bought for it later come only from providers with another
            node.
        min_reputation_bps: the least reputation of a node that runs it.
        node_wall_ns: the nodes' reported time on its shards.
        embeddings: one row per input, filled as shards finish.
        done, failed: which inputs finished, which will not run (with why).
        cost, refund: µcr paid (payouts and buyer fees) and given back.
        status: ``running``, then ``done``, ``failed`` or ``cancelled``.
        closing: the `CloseJob` was sent.
        ended_at: when it ended, ns (0 while running).
        changed_at: when it last changed, ns: its submission, then each
            update the ``jobs`` channel sent; the ``ts`` of every read of it
            (``get_job``, REST) until the next.
        waiters: called once it has ended (``get_job`` with ``wait``).
    """

    job_id: int
    account: str
    symbol: str
    tier: str
    texts: list[str]
    tokens: list[int]
    plans: list[InputReport]
    budget: JobBudget
    max_price: int | None
    planned: int = 0
    leases: list[LeaseRef] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)
    bought_for: int = 0
    tries: dict[int, int] = field(default_factory=dict)
    failed_nodes: set[tuple[str, str]] = field(default_factory=set)
    min_reputation_bps: int = 0
    node_wall_ns: int = 0
    shards: dict[int, Shard] = field(default_factory=dict)
    embeddings: np.ndarray | None = None
    done: set[int] = field(default_factory=set)
    failed: dict[int, str] = field(default_factory=dict)
    cost: int = 0
    refund: int = 0
    status: str = "running"
    closing: bool = False
    ended_at: int = 0
    changed_at: int = 0
    waiters: list[Callable[[], None]] = field(default_factory=list)

    @property
    def flops(self) -> int:
        """FLOPs of the inputs that finished: what the job used."""
        return sum(self.plans[i].flops for i in self.done)

    @property
    def resolved(self) -> bool:
        return len(self.done) + len(self.failed) == len(self.texts)

    def message(self, ts: int | None = None) -> JobMessage:
        """The job as the ``jobs`` channel and ``get_job`` show it, at ``ts``
        (default: `changed_at`, when it last changed)."""
        reason = next(iter(self.failed.values()), None) if self.failed else None
        if self.status == "cancelled":
            reason = "cancelled by the consumer"
        # Done or failed once its close is durable (`ended_at` is set then):
        # until that write lands, its last inputs are not counted yet either.
        status = self.status
        if status != "cancelled" and self.closing and not self.ended_at:
            status = "running"
        return JobMessage(
            str(self.job_id),
            self.symbol,
            status,
            self.tier,
            len(self.texts),
            len(self.done),
            len(self.failed),
            self.flops,
            self.budget.budget_flops,
            self.budget.job_full_flops,
            self.cost,
            self.refund,
            reason,
            self.changed_at if ts is None else ts,
            self.node_wall_ns,
        )

    def results(self, offset: int, limit: int) -> list[InputResult | None]:
        end = min(offset + limit, len(self.texts))
        if self.embeddings is None or not self.done:
            return [None] * max(0, end - offset)
        # One conversion for the page's rows (not one a row).
        rows = np.round(self.embeddings[offset:end].astype(np.float64), 7).tolist()
        out: list[InputResult | None] = []
        for i, row in enumerate(rows, offset):
            if i not in self.done:
                out.append(None)
                continue
            plan = self.plans[i]
            out.append(
                InputResult(row, plan.tokens, plan.layers, plan.exit, plan.flops)
            )
        return out

"""The consumers' jobs in a replay: CU used against full depth, per job and tier.

The exchange records each job in the core: `JobOpened` when it starts (its
account, instrument, quality tier, inputs, budget and the full-depth cost of
its inputs by the metering formula) and `JobClosed` when it ends (its status
and the FLOPs it used). `jobs` lists them; `job_totals` adds up the closed
ones per tier. A job's full-depth FLOPs less the FLOPs it used is what
adaptive compute saved it: a cheaper tier or a tighter budget runs fewer
layers. Amounts are integer FLOPs; 1 CU is 10^9 FLOPs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

import msgspec

from exchange.analysis import MarketReplay
from exchange.analysis_compute import FLOPS_PER_CU
from matching import JobClosed, JobOpened

__all__ = ["TIERS", "JobStats", "JobTotals", "job_totals", "jobs", "tier_order"]

TIERS: Final = ("exact", "high", "balanced", "fast")
"""The provider node's quality tiers, deepest first (see `providers.jobs`)."""


def tier_order(tier: str) -> tuple[int, str]:
    """A sort key: the known tiers deepest first, then any other by name."""
    return (TIERS.index(tier) if tier in TIERS else len(TIERS), tier)


class JobStats(msgspec.Struct, frozen=True):
    """A consumer's job, from its `JobOpened` and `JobClosed` events.

    Attributes:
        job_id: the engine's number for it.
        account, symbol, tier: who ran it, on which instrument's leases, at
            which quality tier.
        inputs: how many inputs it embedded.
        status: ``open`` until it closed, then ``done``, ``failed`` or
            ``cancelled``.
        budget_flops: the most it could use.
        full_flops: what its inputs cost at full depth.
        flops: what it used (0 while open).
        opened, closed: when it was opened and closed, ns; ``closed`` None
            while it is open.
        reason: why it failed or was cancelled; empty otherwise.
    """

    job_id: int
    account: str
    symbol: str
    tier: str
    inputs: int
    status: str
    budget_flops: int
    full_flops: int
    flops: int
    opened: int
    closed: int | None = None
    reason: str = ""

    @property
    def cu(self) -> float:
        return self.flops / FLOPS_PER_CU

    @property
    def full_cu(self) -> float:
        return self.full_flops / FLOPS_PER_CU

    @property
    def saved_flops(self) -> int:
        """What adaptive compute saved: full depth's FLOPs less those used
        (0 while the job is open)."""
        return self.full_flops - self.flops if self.closed is not None else 0

    @property
    def saved_share(self) -> float:
        """The saved share of the full-depth cost; NaN for a job of no cost."""
        return self.saved_flops / self.full_flops if self.full_flops else math.nan


def jobs(replay: MarketReplay) -> list[JobStats]:
    """Every job of the journal, in the order they opened."""
    found: dict[int, JobStats] = {}
    for timed in replay.events:
        event = timed.event
        if isinstance(event, JobOpened):
            found[event.job_id] = JobStats(
                event.job_id,
                event.account,
                event.symbol,
                event.tier,
                event.inputs,
                "open",
                event.budget_flops,
                event.full_flops,
                0,
                timed.ts,
            )
        elif isinstance(event, JobClosed) and event.job_id in found:
            found[event.job_id] = msgspec.structs.replace(
                found[event.job_id],
                status=event.status,
                flops=event.flops,
                closed=timed.ts,
                reason=event.reason,
            )
    return list(found.values())


class JobTotals(msgspec.Struct, frozen=True):
    """The closed jobs of one quality tier (or of all: ``tier`` ``all``).

    Attributes:
        jobs: how many closed; ``done`` of them ended done.
        inputs: their inputs.
        flops: the metered work they used.
        full_flops: what their inputs cost at full depth.
    """

    tier: str
    jobs: int
    done: int
    inputs: int
    flops: int
    full_flops: int

    @property
    def saved_flops(self) -> int:
        """What adaptive compute saved these jobs, FLOPs."""
        return self.full_flops - self.flops

    @property
    def saved_share(self) -> float:
        """The saved share of the full-depth cost; NaN for no cost."""
        return self.saved_flops / self.full_flops if self.full_flops else math.nan

    def describe(self) -> str:
        """The totals in one line, in CU."""
        return (
            f"{self.tier}: {self.jobs} jobs ({self.done} done), {self.inputs:,} "
            f"inputs, {self.flops / FLOPS_PER_CU:,.1f} CU used of "
            f"{self.full_flops / FLOPS_PER_CU:,.1f} at full depth: "
            f"{self.saved_share:.1%} saved"
        )


def job_totals(found: Iterable[JobStats]) -> list[JobTotals]:
    """The closed jobs of ``found`` added up per tier, then all together."""
    sums: dict[str, list[int]] = {}
    for job in found:
        if job.closed is None:
            continue
        for key in (job.tier, "all"):
            row = sums.setdefault(key, [0, 0, 0, 0, 0])
            row[0] += 1
            row[1] += job.status == "done"
            row[2] += job.inputs
            row[3] += job.flops
            row[4] += job.full_flops
    tiers = sorted(sums, key=lambda t: (t == "all", *tier_order(t)))
    return [JobTotals(tier, *sums[tier]) for tier in tiers]

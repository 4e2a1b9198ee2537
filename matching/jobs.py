"""Jobs: the record the engine keeps of each consumer job while it runs.

The exchange runs a job outside the core: it buys or picks the leases, splits
the inputs into shards, sends them to nodes and checks their reports (see
`exchange.dispatch`). The money of a job moves through the core's own commands
(orders, `RecordUsage`, `EndLease`). What the core keeps is the job itself, so
that it is journaled like everything else: `OpenJob` numbers it and records
who asked for what; `CloseJob` records how it ended and what it used. After a
restart the exchange finds the jobs that were still open in the engine and
closes them as failed; their spot leases expire and refund the consumer.

A job's numbers, all integers:

- ``inputs``: how many texts it embeds;
- ``budget_flops``: the most it may use, FLOPs (CU × 10^9);
- ``full_flops``: what its inputs cost at full depth by the metering formula
  (the exchange counts the tokens itself), so that ``full_flops − flops`` is
  what adaptive compute saved;
- ``flops``: what it used, the sum of the usage its shards' reports recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, get_args

import msgspec

from matching.codes import Code
from matching.commands import CloseJob, JobEnd, OpenJob
from matching.config import MAX_LABEL
from matching.events import Event, JobClosed, JobOpened, command_rejected

if TYPE_CHECKING:
    from matching.engine import Engine

__all__ = ["MAX_INPUTS", "Job", "close_job", "open_job"]

MAX_INPUTS: Final = 100_000
"""The most inputs one job may have."""

MAX_JOB_FLOPS: Final = 2**62
_ENDS: Final = get_args(JobEnd)


class Job(msgspec.Struct, frozen=True, gc=False):
    """An open job, as the engine keeps it (see the module doc)."""

    job_id: int
    account: str
    symbol: str
    tier: str
    inputs: int
    budget_flops: int
    full_flops: int
    opened_at: int


def open_job(engine: Engine, cmd: OpenJob, events: list[Event]) -> None:
    code = _check_open(engine, cmd)
    if code is not None:
        events.append(command_rejected(cmd, code))
        return
    engine.job_seq += 1
    job = Job(
        engine.job_seq,
        cmd.account,
        cmd.symbol,
        cmd.tier,
        cmd.inputs,
        cmd.budget_flops,
        cmd.full_flops,
        engine.now,
    )
    engine.jobs[job.job_id] = job
    events.append(
        JobOpened(
            job.job_id,
            job.account,
            job.symbol,
            job.tier,
            job.inputs,
            job.budget_flops,
            job.full_flops,
        )
    )


def close_job(engine: Engine, cmd: CloseJob, events: list[Event]) -> None:
    job = engine.jobs.get(cmd.job_id) if type(cmd.job_id) is int else None
    if job is None:
        events.append(command_rejected(cmd, Code.UNKNOWN_JOB))
        return
    if (
        cmd.status not in _ENDS
        or type(cmd.flops) is not int
        or not 0 <= cmd.flops <= MAX_JOB_FLOPS
        or type(cmd.reason) is not str
        or len(cmd.reason) > MAX_LABEL
    ):
        events.append(command_rejected(cmd, Code.INVALID_JOB))
        return
    del engine.jobs[job.job_id]
    events.append(
        JobClosed(
            job.job_id,
            job.account,
            job.symbol,
            cmd.status,
            job.inputs,
            job.budget_flops,
            job.full_flops,
            cmd.flops,
            cmd.reason,
        )
    )


def _check_open(engine: Engine, cmd: OpenJob) -> Code | None:
    if type(cmd.account) is not str or engine.ledger.index(cmd.account) is None:
        return Code.UNKNOWN_ACCOUNT
    if type(cmd.symbol) is not str or cmd.symbol not in engine.instruments:
        return Code.UNKNOWN_SYMBOL
    numbers = (cmd.inputs, cmd.budget_flops, cmd.full_flops)
    if (
        type(cmd.tier) is not str
        or not 1 <= len(cmd.tier) <= MAX_LABEL
        or any(type(n) is not int for n in numbers)
        or not 1 <= cmd.inputs <= MAX_INPUTS
        or not 1 <= cmd.budget_flops <= MAX_JOB_FLOPS
        or not 0 <= cmd.full_flops <= MAX_JOB_FLOPS
    ):
        return Code.INVALID_JOB
    return None

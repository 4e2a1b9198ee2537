"""The replay analysis of a job that a real `cux serve` dispatched to a real node
(`job_journal`): what the server journaled must give back, through the
analysis, what the server told alice and her provider: the job's FLOPs, its
full-depth cost, the provider's earnings and the leases used up.
"""

from __future__ import annotations

from job_harness import SYMBOL, JobJournal, job_journal

from exchange.analysis import open_market
from exchange.analysis_compute import leases, providers
from exchange.analysis_jobs import JobTotals, job_totals, jobs

__all__ = ["job_journal"]  # the fixture, imported for pytest


def test_a_dispatched_jobs_journal_gives_its_flops_savings_and_provider_earnings(
    job_journal: JobJournal,
) -> None:
    job, earned = job_journal.job, job_journal.earned
    assert job["status"] == "done", (job, job_journal.logs)

    replay = open_market(
        job_journal.data,
        expected_hash=job_journal.state_hash,
        expected_seq=job_journal.seq,
    )

    replay.verify()
    (found,) = jobs(replay)
    assert (found.account, found.symbol, found.tier, found.inputs, found.status) == (
        "alice", SYMBOL, "balanced", 24, "done"
    )  # fmt: skip
    assert (found.flops, found.full_flops) == (job["flops"], job["full_flops"])
    assert found.budget_flops == job["budget_flops"] == 1000 * 10**9
    # The balanced tier runs 3 of 6 layers: exactly half the full-depth FLOPs.
    assert found.saved_flops * 2 == found.full_flops
    assert job_totals([found])[-1] == JobTotals(
        "all", 1, 1, 24, job["flops"], job["full_flops"]
    )
    (p1,) = providers(replay)
    assert (p1.account, p1.used_flops, p1.revenue) == ("p1", job["flops"], earned)
    assert {lease.state for lease in leases(replay)} == {"used_up"}
    assert sum(lease.used_flops for lease in leases(replay)) == job["flops"]

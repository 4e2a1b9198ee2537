"""A restart of the exchange while a job runs, on real processes.

Jobs live in the exchange's memory (README, Known limitations; the module doc
of `exchange.dispatch`): at start-up the server closes the jobs a restart
interrupted as failed ("exchange restarted"), their spot leases expire and
refund the consumer, and the usage checked before the restart is paid.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from dispatch_harness import (
    LONG_TEXTS,
    SYMBOL,
    account,
    asks,
    balances,
    check_settlement,
    checked_replay,
    conserved,
    node,
    spot_leases,
    start_node,
    stop,
    wait_until,
    write_config,
)
from server_harness import ServerProcess, connected

from matching import JobClosed

LEASE_SECONDS = 6
"""Short, so that the lease expires soon after the restart, yet long enough
for the job still to run when the first server is killed."""


def test_a_job_running_when_the_exchange_is_killed_fails_and_its_lease_refunds(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, lease_seconds=LEASE_SECONDS)
    data = tmp_path / "data"

    # A job order runs on the only node; the exchange dies (SIGKILL) mid-shard.
    first = ServerProcess(config, data)
    worker = None
    logs = ""
    try:
        # At most 30 CU/s for 6 s: 18 lots, enough for the job's 4.
        worker = start_node(first, "p1", "n1", max_cu=30.0)
        wait_until(lambda: asks(first), what="a quote")
        before = balances(first, "alice", "p1")

        async def scenario() -> str:
            async with connected(first.url, "alice") as alice:
                ack = await alice.request(
                    "submit_job",
                    symbol=SYMBOL,
                    inputs=LONG_TEXTS[:8],
                    budget_cu=5000,
                    max_price=10**6,
                )
                assert ack["type"] == "ack", ack
                await asyncio.to_thread(
                    wait_until, lambda: node(first, "n1").get("busy"), 20
                )
                job = await alice.request("get_job", job_id=ack["job_id"])
                assert job["job"]["status"] == "running", job
                return str(ack["job_id"])

        job_id = asyncio.run(scenario())
        during = account(first, "alice")
        first.kill()
    finally:
        first.stop()
        if worker is not None:
            worker.kill()
            logs = stop(worker)
    assert during["escrow"] > 0, (during, logs)

    # The restarted exchange forgets the job; the lease's expiry refunds it.
    with ServerProcess(config, data) as second:
        gone = second.get_signed("alice", f"/api/v1/jobs/{job_id}")
        wait_until(
            lambda: account(second, "alice")["escrow"] == 0,
            LEASE_SECONDS + 15,
            "the lease's expiry",
        )
        after = balances(second, "alice", "p1")
    assert gone.status == 404, gone
    assert gone.body["code"] == "UNKNOWN_JOB", gone

    closed = [
        (e.job_id, e.status, e.reason)
        for _, events in checked_replay(data)
        for e in events
        if type(e) is JobClosed
    ]
    assert closed == [(int(job_id), "failed", "exchange restarted")]
    leases = spot_leases(data)
    assert {lease.state for lease in leases.values()} == {"expired"}, leases
    # p1 is paid for what was checked before the kill, alice refunded the rest.
    check_settlement(leases, None, before, after)
    conserved(second, config)

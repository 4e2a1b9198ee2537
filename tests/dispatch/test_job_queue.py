"""A shard queued for a provider whose only node stays busy, on real
processes: it waits ``shard_timeout_seconds`` once, then its lease fails and
its inputs go to lots bought from another provider; nothing waits forever."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from dispatch_harness import (
    SYMBOL,
    TEXTS,
    asks,
    balances,
    check_settlement,
    conserved,
    finish,
    node,
    spot_leases,
    start_node,
    stop,
    wait_until,
    write_config,
)
from server_harness import ServerProcess, connected
from test_job_stalls import CHEAP, scripted

TIMEOUT = 2.0


def test_a_shard_queued_for_a_node_that_stays_busy_moves_to_another_provider(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, timeout=TIMEOUT)
    with ServerProcess(config, tmp_path / "data") as server:
        # p1 sells cheapest, a lot in each of two orders, and its one node sits
        # on the first shard it gets: registered at 0.1 CU/s, that shard's
        # deadline is about a minute away, past the end of the test.
        sitting = scripted(server, "p1", "n1", "sit", lots=2, orders=2, max_cu=0.1)
        honest = start_node(server, "p2", "n2", cost_per_hour=2.0, max_cu=1.0)
        try:
            wait_until(lambda: len(asks(server)) == 2, what="two quotes")
            assert asks(server)[0][0] == CHEAP

            async def scenario() -> tuple[dict[str, Any], dict[str, Any], float]:
                async with connected(server.url, "alice") as alice:
                    first = await alice.request(
                        "submit_job",
                        symbol=SYMBOL,
                        inputs=TEXTS[:4],
                        budget_cu=100,
                        max_price=CHEAP,
                    )
                    assert first["type"] == "ack", first
                    await asyncio.to_thread(
                        wait_until, lambda: node(server, "n1").get("busy") == 1
                    )
                    started = time.monotonic()
                    second = await alice.request(
                        "submit_job",
                        symbol=SYMBOL,
                        inputs=TEXTS[:8],
                        budget_cu=100,
                        max_price=10**6,
                    )
                    assert second["type"] == "ack", second
                    job = await finish(alice, second["job_id"], 60)
                    took = time.monotonic() - started
                    state = await alice.request("get_job", job_id=first["job_id"])
                    assert state["job"]["status"] == "running", state
                    busy.update(node(server, "n1"))
                    # Then the first job is cancelled: its lease refunds.
                    cancelled = await alice.request(
                        "cancel_job", job_id=first["job_id"]
                    )
                    assert cancelled["type"] == "ack", cancelled
                    return job, await finish(alice, first["job_id"], 30), took

            busy: dict[str, Any] = {}
            before = balances(server, "alice", "p1", "p2")
            second, first, took = asyncio.run(scenario())
            n2 = node(server, "n2")["reputation"]
            after = balances(server, "alice", "p1", "p2")
        finally:
            logs = stop(sitting, honest)

    # The second job bought from p1 first (its cheapest ask), waited for p1's
    # busy node once, then ran on lots bought from p2, and finished.
    assert second["status"] == "done", (second, logs, server.text)
    assert second["done_inputs"] == 8
    assert TIMEOUT <= took < TIMEOUT + 20, took
    assert "no node of the provider was free in time" in server.text
    assert n2["shards_done"] >= 1
    # Meanwhile p1's node still sat on the first job's shard, and the wait
    # counted against no node.
    assert busy["busy"] == 1
    assert busy["reputation"]["shards_failed"] == 0
    assert first["status"] == "cancelled"

    # p1's leases ended with nothing used (the second job's one failed, the
    # first's cancelled) and refunded in full; p2 was paid for what it ran;
    # both jobs together settle to the micro-credit.
    leases = spot_leases(server.data)
    ends = {(lease.provider, lease.state, lease.used) for lease in leases.values()}
    assert {("p1", "failed", 0), ("p1", "cancelled", 0)} <= ends
    assert {state for provider, state, _ in ends if provider == "p2"} == {"used_up"}
    assert sum(lease.used for lease in leases.values()) == second["flops"]
    both = {key: first[key] + second[key] for key in ("cost", "refund")}
    check_settlement(leases, both, before, after)
    conserved(server, config)

"""A consumer that disconnects mid-job, on real processes (scenario S22 of the
shared cases): the job runs to its end and is settled without it, its results
wait for it ``results_ttl_seconds``, then they are gone with a coded error.
Also the node's published delivery rate after a real job."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from dispatch_harness import (
    LONG_TEXTS,
    SYMBOL,
    asks,
    balances,
    check_settlement,
    conserved,
    node,
    spot_leases,
    start_node,
    stop,
    wait_until,
    write_config,
)
from server_harness import ServerProcess, connected

TTL = 8.0
"""``results_ttl_seconds`` of these tests."""
INPUTS = LONG_TEXTS[:16]
"""Long inputs: their one shard runs for a second or more."""


def recent(server: ServerProcess, job_id: str) -> dict[str, Any] | None:
    """The job in the public list of recent jobs, if it is still kept."""
    jobs = server.get("/api/v1/jobs/recent").body["jobs"]
    return next((j for j in jobs if j["job_id"] == job_id), None)


def test_a_consumer_gone_mid_job_is_settled_and_its_results_kept_for_the_ttl(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, results_ttl=TTL)
    with ServerProcess(config, tmp_path / "data") as server:
        only = start_node(server, "p1", "n1", cost_per_hour=0.5, max_cu=2.0)
        try:
            [[_, quoted]] = wait_until(lambda: asks(server), what="a quote")
            before = balances(server, "alice", "p1")
            submitted = time.monotonic()

            async def submit_and_leave() -> str:
                async with connected(server.url, "alice") as alice:
                    await alice.request("subscribe", channels=["jobs", "leases"])
                    ack = await alice.request(
                        "submit_job",
                        symbol=SYMBOL,
                        inputs=INPUTS,
                        budget_cu=1000,
                        max_price=10**6,
                    )
                    assert ack["type"] == "ack", ack
                    await asyncio.to_thread(
                        wait_until, lambda: node(server, "n1").get("busy"), 60
                    )
                    job_id: str = ack["job_id"]
                    return job_id  # and the connection closes, mid-shard

            job_id = asyncio.run(submit_and_leave())
            left_while = recent(server, job_id)

            def seen_ended() -> dict[str, Any] | None:
                found = recent(server, job_id)
                return found if found and found["status"] != "running" else None

            ended = wait_until(seen_ended, 120, "the job's end")
            ended_at = time.monotonic()

            async def come_back() -> tuple[dict[str, Any], list[Any]]:
                async with connected(server.url, "alice") as alice:
                    results: list[Any] = []
                    offset: int | None = 0
                    while offset is not None:
                        page = await alice.request(
                            "get_job", job_id=job_id, offset=offset, limit=5
                        )
                        assert page["type"] == "result", page
                        results += page["results"]
                        offset = page["next_offset"]
                    return page["job"], results

            job, results = asyncio.run(come_back())
            over_rest = server.get_signed("alice", f"/api/v1/jobs/{job_id}")
            read_at = time.monotonic()
            after = balances(server, "alice", "p1")
            n1 = node(server, "n1")
            requoted = wait_until(
                lambda: sum(qty for _, qty in asks(server)) == quoted,
                30,
                "the node's whole quote again",
            )

            # Past the TTL (counted from when the job was seen ended, which is
            # after it was closed): the job is gone, with its results.
            time.sleep(max(0.0, ended_at + TTL + 1.0 - time.monotonic()))

            async def too_late() -> dict[str, Any]:
                async with connected(server.url, "alice") as alice:
                    return await alice.request("get_job", job_id=job_id)

            gone = asyncio.run(too_late())
            gone_rest = server.get_signed("alice", f"/api/v1/jobs/{job_id}")
            mine = server.get_signed("alice", "/api/v1/jobs").body["jobs"]
            forgotten = recent(server, job_id)
        finally:
            logs = stop(only)

    # The consumer left while its shard ran; the job finished without it.
    assert left_while is not None
    assert left_while["status"] == "running"
    assert ended["status"] == "done", (ended, logs)
    assert job["status"] == "done"
    assert job["done_inputs"] == len(INPUTS)

    # Back within the TTL, it reads the job and every result, over both APIs.
    assert read_at - ended_at < TTL - 1, read_at - ended_at
    assert len(results) == len(INPUTS)
    assert all(r is not None and len(r["embedding"]) == 384 for r in results)
    assert sum(r["flops"] for r in results) == job["flops"]
    assert over_rest.status == 200
    assert over_rest.body["job"]["status"] == "done"

    # After it, the job is gone: a coded error that says why it may be.
    assert gone["type"] == "error", gone
    assert gone["code"] == "UNKNOWN_JOB"
    assert "kept 8 s after it ends" in gone["message"]
    assert gone_rest.status == 404
    assert gone_rest.body["code"] == "UNKNOWN_JOB"
    assert mine == []
    assert forgotten is None

    # Settled without the consumer: the provider paid for the metered work,
    # the consumer refunded the rest, the lease ended once (used_up), and the
    # provider's capacity free again (it quotes all of it).
    leases = spot_leases(server.data)
    assert [(lease.provider, lease.state) for lease in leases.values()] == [
        ("p1", "used_up")
    ]
    [lease] = leases.values()
    assert lease.used == job["flops"]
    assert lease.metered > 0
    check_settlement(leases, job, before, after)
    assert requoted
    engine = conserved(server, config)
    assert not engine.ledger.escrows
    assert not engine.jobs

    # The node's record: what it delivered, and at what rate (CU per second of
    # its own reported run time, which is within the job's wall time).
    reputation = n1["reputation"]
    assert reputation["shards_done"] == 1
    assert reputation["shards_failed"] == 0
    assert reputation["flops_delivered"] == job["flops"]
    rate = reputation["delivered_cu_per_second"]
    assert rate == round(job["flops"] / job["node_wall_ns"], 3)
    assert rate >= job["flops"] / 1e9 / (ended_at - submitted)
    assert n1["cu_per_second"] > 0

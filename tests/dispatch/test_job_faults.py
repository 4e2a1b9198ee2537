"""Faults on real processes: a node killed mid-shard, a node that inflates its
bill, a job cancelled while it waits for a node."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

from dispatch_harness import (
    LONG_TEXTS,
    SYMBOL,
    TEXTS,
    account,
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

HERE = Path(__file__).resolve().parent


def test_a_node_killed_mid_shard_has_its_shard_run_on_the_other_provider(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    with ServerProcess(config, tmp_path / "data") as server:
        doomed = start_node(server, "p1", "n1", cost_per_hour=0.5, max_cu=0.5)
        spare = start_node(server, "p2", "n2", cost_per_hour=8.0, max_cu=2.0)
        try:
            wait_until(lambda: len(asks(server)) == 2, what="two quotes")
            before = balances(server, "alice", "p1", "p2")

            async def scenario() -> dict[str, Any]:
                async with connected(server.url, "alice") as alice:
                    ack = await alice.request(
                        "submit_job",
                        symbol=SYMBOL,
                        inputs=LONG_TEXTS,
                        budget_cu=5000,
                        max_price=10**6,
                    )
                    assert ack["type"] == "ack", ack
                    await asyncio.to_thread(
                        wait_until, lambda: node(server, "n1").get("busy"), 60
                    )
                    doomed.send_signal(signal.SIGKILL)
                    return await finish(alice, ack["job_id"])

            job = asyncio.run(scenario())
            n1 = wait_until(lambda: node(server, "n1") == {} and True, what="n1 gone")
            spare_stats = node(server, "n2")["reputation"]
            after = balances(server, "alice", "p1", "p2")
        finally:
            logs = stop(doomed, spare)
        assert n1
        assert job["status"] == "done", (job, logs)
        assert job["done_inputs"] == len(LONG_TEXTS)
        assert spare_stats["shards_done"] >= 2  # its own shard and n1's
    leases = spot_leases(server.data)
    # The lease n1 lost its shard on failed: p1 is paid only what was checked.
    assert {lease.state for lease in leases.values() if lease.provider == "p1"} == {
        "failed"
    }, leases
    assert {lease.state for lease in leases.values() if lease.provider == "p2"} == {
        "used_up"
    }, leases
    check_settlement(leases, job, before, after)
    conserved(server, config)


def test_a_node_that_inflates_its_bill_is_refused_and_not_paid(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with ServerProcess(config, tmp_path / "data") as server:
        cheat = start_node(
            server,
            "p1",
            "n1",
            cost_per_hour=0.05,
            script=str(HERE / "inflating_node.py"),
        )
        honest = start_node(server, "p2", "n2", cost_per_hour=4.0, max_cu=1.0)
        try:
            wait_until(lambda: len(asks(server)) == 2, what="two quotes")

            async def scenario() -> dict[str, Any]:
                async with connected(server.url, "alice") as alice:
                    ack = await alice.request(
                        "submit_job",
                        symbol=SYMBOL,
                        inputs=TEXTS,
                        budget_cu=1000,
                        max_price=10**6,
                    )
                    assert ack["type"] == "ack", ack
                    return await finish(alice, ack["job_id"])

            job = asyncio.run(scenario())
            cheat_stats = node(server, "n1")["reputation"]
            honest_stats = node(server, "n2")["reputation"]
            cheat_account = account(server, "p1")

            async def picky() -> dict[str, Any]:
                # Its reputation is now 0: a job order asking for 90% buys only
                # from the honest provider, though the cheat's quote is cheaper.
                async with connected(server.url, "alice") as alice:
                    ack = await alice.request(
                        "submit_job",
                        symbol=SYMBOL,
                        inputs=TEXTS[:16],
                        budget_cu=1000,
                        max_price=10**6,
                        min_reputation_bps=9_000,
                    )
                    assert ack["type"] == "ack", ack
                    return await finish(alice, ack["job_id"])

            second = asyncio.run(picky())
            cheat_after = node(server, "n1")["reputation"]
            recent = server.get("/api/v1/jobs/recent").body["jobs"]
        finally:
            logs = stop(cheat, honest)
        assert job["status"] == "done", (job, logs)
        assert cheat_stats["shards_failed"] >= 1, logs
        assert cheat_stats["shards_done"] == 0
        assert cheat_stats["reputation_bps"] == 0
        assert honest_stats["shards_done"] >= 1
        assert cheat_account["available"] == 0  # paid nothing
        assert cheat_account["escrow"] == 0
        assert "REPORT_REJECTED" in logs
        assert second["status"] == "done", second
        assert cheat_after == cheat_stats  # no shard of it was sent to the cheat
        assert recent[0]["providers"] == ["p2"]  # nor was anything bought from it
    conserved(server, config)


def test_cancelling_a_job_waiting_for_a_node_releases_its_leases_at_once(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    with ServerProcess(config, tmp_path / "data") as server:
        only = start_node(server, "p1", "n1", cost_per_hour=0.5, max_cu=2.0)
        try:
            [[_, quoted]] = wait_until(lambda: asks(server), what="a quote")

            def quoting() -> int:
                return sum(qty for _, qty in asks(server))

            async def scenario() -> tuple[dict[str, Any], dict[str, Any], Any]:
                async with connected(server.url, "alice") as alice:
                    await alice.request("subscribe", channels=["jobs"])
                    first = await alice.request(
                        "submit_job",
                        symbol=SYMBOL,
                        inputs=LONG_TEXTS,
                        budget_cu=5000,
                        max_price=10**6,
                    )
                    second = await alice.request(
                        "submit_job",
                        symbol=SYMBOL,
                        inputs=TEXTS[:8],
                        budget_cu=100,
                        max_price=10**6,
                    )
                    assert first["type"] == second["type"] == "ack", (first, second)
                    # The node runs the first job's shard; the second waits.
                    assert node(server, "n1")["busy"] == 1
                    during = account(server, "alice")
                    # Each job order bought its lots in one trade, oldest first.
                    path = f"/api/v1/trades/{SYMBOL}"
                    bought = [t["qty"] for t in server.get(path).body["trades"]]
                    assert len(bought) == 2, bought
                    # The node's quote has caught up with both fills, so that
                    # only the cancel can make it grow.
                    await asyncio.to_thread(
                        wait_until,
                        lambda: quoting() == quoted - sum(bought),
                        10,
                        "the quote of the unsold lots",
                    )
                    waiting = alice.next_id
                    alice.next_id += 1
                    await alice.ws.send(
                        json.dumps(
                            {
                                "op": "get_job",
                                "id": waiting,
                                "job_id": second["job_id"],
                                "wait": True,
                            }
                        )
                    )
                    cancelled = await alice.request(
                        "cancel_job", job_id=second["job_id"]
                    )
                    assert cancelled["type"] == "ack", cancelled
                    # A get_job waiting for the job's end hears of the cancel.
                    waited = await alice.response(waiting, 20)
                    assert waited["job"]["status"] == "cancelled", waited
                    second_job = await finish(alice, second["job_id"], 20)
                    after_cancel = account(server, "alice")
                    # The provider's capacity for the cancelled lots is free
                    # while the first job still holds its own: the server
                    # takes the node's quote of all but the first job's lots.
                    await asyncio.to_thread(
                        wait_until,
                        lambda: quoting() == quoted - bought[0],
                        10,
                        "the cancelled job's lots quoted again",
                    )
                    still = await alice.request("get_job", job_id=first["job_id"])
                    assert still["job"]["status"] == "running", still
                    first_job = await finish(alice, first["job_id"])
                    return first_job, second_job, (during, after_cancel, bought)

            first, second, (during, after_cancel, bought) = asyncio.run(scenario())
            final = account(server, "alice")
            # Once the first job ends, all of the capacity is quoted again.
            wait_until(lambda: quoting() == quoted, 30, "the full quote again")
        except AssertionError as exc:
            raise AssertionError((exc, asks(server), quoted, stop(only))) from None
        finally:
            logs = stop(only)
        assert second["status"] == "cancelled", (second, logs)
        assert second["flops"] == 0
        # Its whole escrow came back at once; only the buyer's fee was spent.
        assert after_cancel["escrow"] == during["escrow"] - second["refund"]
        assert second["cost"] > 0
        assert second["refund"] > 0
        assert first["status"] == "done", (first, logs)
        assert final["held"] == final["escrow"] == 0
    leases = spot_leases(server.data)
    # The first job's lease was used up, the cancelled job's was cancelled.
    assert [(leases[i].lots, leases[i].state) for i in sorted(leases)] == [
        (bought[0], "used_up"),
        (bought[1], "cancelled"),
    ], leases
    conserved(server, config)

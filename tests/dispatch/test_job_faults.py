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
    conserved,
    finish,
    node,
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
            alice = account(server, "alice")
        finally:
            logs = stop(doomed, spare)
        assert n1
        assert job["status"] == "done", (job, logs)
        assert job["done_inputs"] == len(LONG_TEXTS)
        assert spare_stats["shards_done"] >= 2  # its own shard and n1's
        assert alice["held"] == alice["escrow"] == 0
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
                    first_job = await finish(alice, first["job_id"])
                    return first_job, second_job, (during, after_cancel)

            first, second, (during, after_cancel) = asyncio.run(scenario())
            final = account(server, "alice")
            seen: list[Any] = []

            def requoted_all() -> bool:
                seen[:] = asks(server)
                return bool(sum(qty for _, qty in seen) == quoted)

            requoted = wait_until(requoted_all, 30, "the full quote again") and quoted
        except AssertionError:
            raise AssertionError((seen, quoted, stop(only))) from None
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
        # The provider's capacity is all free again: it quotes it all.
        assert requoted == quoted
    conserved(server, config)

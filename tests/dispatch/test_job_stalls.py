"""Nodes that take a shard and never deliver it, on real processes: one that
goes silent (no pings, no pongs) while its connection stays open, one that
stays healthy but passes the shard's deadline, and providers whose every node
hands its shards back, so that the job runs out of attempts.

The misbehaving nodes are `scripted_node.py`; the honest ones are ``cux
node``. Each test ends by checking the money: every lease settled once and
exactly (`dispatch_harness.check_settlement`), and the journal replays with
its invariants, conservation included.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections import Counter
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

SCRIPTED = str(Path(__file__).resolve().parent / "scripted_node.py")
CHEAP = 1000
"""A scripted node's price per lot: below any ``cux node`` of these tests, so
that a job order buys from it first."""


def scripted(
    server: ServerProcess,
    key: str,
    node_id: str,
    mode: str,
    *,
    lots: int,
    price: int = CHEAP,
    orders: int = 1,
    max_cu: float = 1.0,
) -> subprocess.Popen[str]:
    return start_node(
        server,
        key,
        node_id,
        max_cu=max_cu,
        script=SCRIPTED,
        extra=[
            *("--mode", mode, "--lots", str(lots), "--price", str(price)),
            *("--orders", str(orders)),
        ],
    )


def job_order(server: ServerProcess, inputs: list[str]) -> tuple[dict[str, Any], float]:
    """Alice's job order for ``inputs`` (full depth, any price), to its end;
    its last state and how long it took, seconds."""

    async def run() -> dict[str, Any]:
        async with connected(server.url, "alice") as alice:
            ack = await alice.request(
                "submit_job",
                symbol=SYMBOL,
                inputs=inputs,
                budget_cu=1000,
                max_price=10**6,
            )
            assert ack["type"] == "ack", ack
            return await finish(alice, ack["job_id"], 120)

    started = time.monotonic()
    job = asyncio.run(run())
    return job, time.monotonic() - started


def test_a_node_gone_silent_mid_shard_loses_it_to_the_other_providers_node(
    tmp_path: Path,
) -> None:
    # heartbeat_seconds = 1: a peer that sends nothing is pinged after 2 s and
    # dropped 1 s later without a pong; the shard's deadline is 30 s away.
    config = write_config(tmp_path, timeout=30)
    with ServerProcess(config, tmp_path / "data") as server:
        silent = scripted(server, "p1", "n1", "silent", lots=3)
        honest = start_node(server, "p2", "n2", cost_per_hour=2.0, max_cu=1.0)
        try:
            wait_until(lambda: len(asks(server)) == 2, what="two quotes")
            assert asks(server)[0][0] == CHEAP
            before = balances(server, "alice", "p1", "p2")

            job, took = job_order(server, TEXTS)

            hung_but_alive = silent.poll() is None
            dropped = node(server, "n1")
            n2 = node(server, "n2")["reputation"]
            after = balances(server, "alice", "p1", "p2")
        finally:
            logs = stop(silent, honest)
    assert job["status"] == "done", (job, logs, server.text)
    assert job["done_inputs"] == len(TEXTS)
    # The node took its shard and went quiet without closing its connection;
    # the server dropped it for its missed heartbeats, long before the shard's
    # deadline, and the shard went to the other provider's node.
    assert re.search(r"^silent$", logs, re.MULTILINE), logs
    assert hung_but_alive
    assert dropped == {}
    assert took < 25, took
    assert "failed: the node disconnected" in server.text
    assert "deadline" not in server.text
    assert n2["shards_done"] >= 2

    leases = spot_leases(server.data)
    assert {(lease.provider, lease.state, lease.used) for lease in leases.values()} >= {
        ("p1", "failed", 0)
    }
    assert {lease.state for lease in leases.values() if lease.provider == "p2"} == {
        "used_up"
    }
    assert sum(lease.used for lease in leases.values()) == job["flops"]
    check_settlement(leases, job, before, after)
    assert after["p1"] == before["p1"]  # paid nothing: it delivered nothing
    engine = conserved(server, config)
    assert not engine.ledger.escrows


def test_a_shard_past_its_deadline_is_taken_back_and_run_on_another_lease(
    tmp_path: Path,
) -> None:
    # A shard's deadline is shard_timeout_seconds (2) plus four times its run
    # at the node's registered rate: the scripted node registers 100 CU/s, so
    # its 41-CU shard is due in under 4 s.
    config = write_config(tmp_path, timeout=2)
    with ServerProcess(config, tmp_path / "data") as server:
        # It quotes 10 lots, twice what the job needs: when the job buys again
        # for the inputs it held, its quote is still the cheapest.
        sitter = scripted(server, "p1", "n1", "sit", lots=10, max_cu=100.0)
        honest = start_node(server, "p2", "n2", cost_per_hour=2.0, max_cu=2.0)
        try:
            wait_until(lambda: len(asks(server)) == 2, what="two quotes")
            assert asks(server)[0] == [CHEAP, 10]
            before = balances(server, "alice", "p1", "p2")

            job, took = job_order(server, TEXTS)

            n1 = node(server, "n1")
            n2 = node(server, "n2")["reputation"]
            after = balances(server, "alice", "p1", "p2")
            left = asks(server)
        finally:
            logs = stop(sitter, honest)
    assert job["status"] == "done", (job, logs, server.text)
    assert job["done_inputs"] == len(TEXTS)
    # The node was told to drop the shard when its deadline passed, and the
    # shard counts against it; it is still connected.
    cancelled = re.findall(r"cancelled (\d+): deadline passed", logs)
    assert len(cancelled) == 1, logs
    assert n1["reputation"]["shards_failed"] == 1
    assert n1["reputation"]["shards_done"] == 0
    assert n2["shards_done"] >= 1
    assert took < 60, took

    # The lots bought again came from the other provider: nothing more was
    # bought from the node that failed the job, whose quote still rests.
    leases = spot_leases(server.data)
    by_provider = Counter(lease.provider for lease in leases.values())
    assert by_provider["p1"] == 1, leases
    [held] = [lease for lease in leases.values() if lease.provider == "p1"]
    assert (held.state, held.used, held.payout) == ("failed", 0, 0)
    assert [CHEAP, 5] in left
    assert {lease.state for lease in leases.values() if lease.provider == "p2"} == {
        "used_up"
    }
    assert sum(lease.used for lease in leases.values()) == job["flops"]
    check_settlement(leases, job, before, after)
    conserved(server, config)


def test_a_job_whose_every_node_fails_runs_out_of_attempts_and_is_refunded(
    tmp_path: Path,
) -> None:
    # max_attempts = 2: a shard is sent to at most two nodes, and an input is
    # tried on at most two leases. Every node hands back every shard.
    config = write_config(tmp_path, max_attempts=2)
    with ServerProcess(config, tmp_path / "data") as server:
        nodes = [
            # p1's first lease (the job's 3 cheapest lots) and its re-buys.
            scripted(server, "p1", "n1a", "refuse", lots=3, price=1000),
            scripted(server, "p1", "n1b", "refuse", lots=0),
            scripted(server, "p1", "n1c", "refuse", lots=5, price=1002),
            scripted(server, "p2", "n2a", "refuse", lots=2, price=1001),
            scripted(server, "p2", "n2b", "refuse", lots=0),
            scripted(server, "p2", "n2c", "refuse", lots=5, price=1003),
        ]
        try:
            wait_until(lambda: len(asks(server)) == 4, what="four quotes")
            wait_until(
                lambda: len(server.get("/api/v1/nodes").body["nodes"]) == 6,
                what="six nodes",
            )
            before = balances(server, "alice", "p1", "p2")

            job, took = job_order(server, TEXTS)

            listing = server.get("/api/v1/nodes").body["nodes"]
            after = balances(server, "alice", "p1", "p2")
        finally:
            logs = stop(*nodes)
    assert job["status"] == "failed", (job, logs)
    assert job["done_inputs"] == 0
    assert job["failed_inputs"] == len(TEXTS)
    assert job["flops"] == 0
    assert job["reason"]
    assert took < 30, took

    # No shard was sent more than max_attempts times, and a shard handed back
    # went to another node of its provider first (n1b and n2b quote nothing:
    # they only ever ran shards of the others' leases).
    sends = Counter(re.findall(r"shard (\d+) of job \d+ failed", server.text))
    assert sends, server.text
    assert max(sends.values()) <= 2, sends
    failed = {n["node_id"]: n["reputation"]["shards_failed"] for n in listing}
    assert failed["n1b"] >= 1
    assert failed["n2b"] >= 1
    assert all(n["reputation"]["shards_done"] == 0 for n in listing)

    # Every lease ended failed and paid nothing; the consumer got every
    # escrow back and lost only the buyer's fees of its purchases.
    leases = spot_leases(server.data)
    assert len(leases) >= 3  # the first two, and at least one bought again
    assert {lease.state for lease in leases.values()} == {"failed"}
    assert {lease.payout for lease in leases.values()} == {0}
    assert job["refund"] == sum(lease.escrow for lease in leases.values())
    assert job["cost"] == sum(lease.buyer_fee for lease in leases.values())
    check_settlement(leases, job, before, after)
    assert after["p1"] == before["p1"]
    assert after["p2"] == before["p2"]
    engine = conserved(server, config)
    assert not engine.ledger.escrows
    assert not engine.jobs


def test_a_node_that_fails_a_shard_gets_none_of_its_jobs_others(
    tmp_path: Path,
) -> None:
    # The job's cheapest lots are three orders of one node, so three leases
    # whose shards all wait for it; it hands back the first. The two queued
    # behind it fail at once (not after shard_timeout_seconds, 30 s here),
    # and the job's inputs are bought again from the other provider only.
    config = write_config(tmp_path, timeout=30)
    with ServerProcess(config, tmp_path / "data") as server:
        refusing = scripted(server, "p1", "n1", "refuse", lots=6, orders=3)
        honest = start_node(server, "p2", "n2", cost_per_hour=2.0, max_cu=2.0)
        try:
            wait_until(lambda: len(asks(server)) == 2, what="two quotes")
            assert asks(server)[0] == [CHEAP, 6]
            before = balances(server, "alice", "p1", "p2")

            job, took = job_order(server, TEXTS)

            n1 = node(server, "n1")["reputation"]
            after = balances(server, "alice", "p1", "p2")
            left = asks(server)
        finally:
            logs = stop(refusing, honest)
    assert job["status"] == "done", (job, logs, server.text)
    assert took < 20, took
    assert n1["shards_failed"] == 1  # the other two never went to it
    assert len(re.findall(r"^shard \d+: \d+ inputs$", logs, re.MULTILINE)) == 1
    assert server.text.count("no other node of the provider for this job") == 2

    leases = spot_leases(server.data)
    mine = [lease for lease in leases.values() if lease.provider == "p1"]
    assert [(lease.lots, lease.state, lease.payout) for lease in mine] == [
        (2, "failed", 0),
        (2, "failed", 0),
        (1, "failed", 0),
    ]
    assert [CHEAP, 1] in left  # its last lot, still the cheapest, not bought
    assert {lease.state for lease in leases.values() if lease.provider == "p2"} == {
        "used_up"
    }
    check_settlement(leases, job, before, after)
    conserved(server, config)

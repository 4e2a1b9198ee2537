"""``cux node`` against a real ``cux serve`` through the two ends of its life
that a fake exchange cannot show: SIGTERM while it runs a shard of a real job,
and a restart of the server under it.

The market is the dispatch tests' (`dispatch_harness`): class ``emb`` of
10-CU lots, providers ``p1`` and ``p2``, consumer ``alice``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from dispatch_harness import LOT_CU, SYMBOL, asks, stop, wait_until, write_config
from server_harness import ROOT, ServerProcess, connected

from providers.pricing import Pricing, cost_per_hour, reservation_price

LONG_TEXTS = [
    " ".join(
        f"Sentence {j} of passage {i} says that a node finishes its work before "
        "it leaves the market."
        for j in range(8)
    )
    for i in range(40)
]
"""40 inputs of some 170 tokens (4 CU each at full depth): a node's shard of
them runs for seconds."""


def start_node(
    server: ServerProcess, key: str, node_id: str, *flags: str
) -> subprocess.Popen[str]:
    """``cux node`` for provider ``key`` on class ``emb``, priced by ``flags``."""
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "exchange", "node", "--exchange", server.url),
            *("--key", key, "--secret", f"{key}-secret", "--class", "emb"),
            *("--lot-cu", str(LOT_CU), "--node-id", node_id),
            *("--probe-seconds", "0.3", "--heartbeat-seconds", "0.5", *flags),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"},
    )


def nodes(server: ServerProcess) -> dict[str, dict[str, Any]]:
    listed = server.get("/api/v1/nodes").body["nodes"]
    return {n["node_id"]: n for n in listed}


def open_orders(server: ServerProcess, key: str) -> list[dict[str, Any]]:
    body = server.get_signed(key, f"/api/v1/orders?symbol={SYMBOL}").body
    return body["orders"]  # type: ignore[no-any-return]


async def run_job(url: str, node_busy: Any, then: Any) -> dict[str, Any]:
    """Alice's job order of `LONG_TEXTS`; ``then()`` once ``node_busy()``;
    the job as it ended."""
    async with connected(url, "alice") as alice:
        ack = await alice.request(
            "submit_job",
            symbol=SYMBOL,
            inputs=LONG_TEXTS,
            budget_cu=5000,
            max_price=10**6,
        )
        assert ack["type"] == "ack", ack
        await asyncio.to_thread(wait_until, node_busy, 60, "a busy node")
        then()
        for _ in range(1500):
            reply = await alice.request("get_job", job_id=ack["job_id"])
            if reply["job"]["status"] != "running":
                return reply["job"]  # type: ignore[no-any-return]
            await asyncio.sleep(0.2)
        raise AssertionError(f"the job never ended: {reply}")


def test_a_node_sent_sigterm_mid_shard_delivers_it_cancels_its_quote_and_exits_0(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    with ServerProcess(config, tmp_path / "data") as server:
        capped = ("--max-cu-per-second", "1.0")
        leaving = start_node(server, "p1", "n1", "--cost-per-hour", "0.5", *capped)
        staying = start_node(server, "p2", "n2", "--cost-per-hour", "8", *capped)
        try:
            wait_until(lambda: len(asks(server)) == 2, what="two quotes")
            earned_before = server.get_signed("p1", "/api/v1/account").body

            job = asyncio.run(
                run_job(
                    server.url,
                    lambda: nodes(server).get("n1", {}).get("busy"),
                    lambda: leaving.send_signal(signal.SIGTERM),
                )
            )
            log = leaving.communicate(timeout=90)[0]
            wait_until(lambda: "n1" not in nodes(server), what="n1 gone")
            p1_orders = open_orders(server, "p1")
            p1 = server.get_signed("p1", "/api/v1/account").body
            alice = server.get_signed("alice", "/api/v1/account").body
        finally:
            log_rest = stop(leaving, staying)

        assert leaving.returncode == 0, log + log_rest
        assert job["status"] == "done", (job, log, log_rest)
        assert job["done_inputs"] == len(LONG_TEXTS)
        # The shard it was running when told to stop, delivered and paid.
        _, after_stop = log.split("stopping: cancelling quotes", 1)
        assert " done: " in after_stop, log
        assert p1["available"] > earned_before["available"]
        assert p1_orders == []
        assert alice["held"] == alice["escrow"] == 0


def test_a_node_whose_server_restarts_reconnects_registers_and_quotes_again(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    data = tmp_path / "data"
    node: subprocess.Popen[str] | None = None
    try:
        with ServerProcess(config, data) as first:
            node = start_node(
                first,
                *("p1", "n1", "--max-cu-per-second", "0.5"),
                *("--energy-cost-per-hour", "0.3", "--hardware-cost-per-hour", "0.2"),
                *("--markup-min-bps", "0", "--markup-max-bps", "2000"),
            )
            [[price, lots]] = wait_until(lambda: asks(first), what="a quote")
            registered = nodes(first)["n1"]["cu_per_second"]

        with ServerProcess(config, data, "--port", str(first.port)) as second:
            again = wait_until(lambda: nodes(second).get("n1"), what="n1 again")
            quoted = wait_until(lambda: open_orders(second, "p1"), what="a quote")
            assert node is not None
            node.send_signal(signal.SIGTERM)
            log = node.communicate(timeout=60)[0]
            left = open_orders(second, "p1")
    finally:
        log_rest = "" if node is None else stop(node)

    assert node.returncode == 0, log + log_rest
    # Nothing sold: the ask is the reservation of the cost model, unmarked up.
    cost = cost_per_hour("0.3", "0.2")
    milli = round(registered * 1000)
    assert price == Pricing(reservation_price(cost, milli, LOT_CU), 1, 0, 2000).ask(
        0, lots
    )
    assert again["cu_per_second"] == registered
    assert [(o["price"], o["leaves"]) for o in quoted] == [(price, lots)]
    assert log.count("registered node n1") == 2
    assert log.count(f"quoted {lots} lots of {SYMBOL}") == 2
    assert "reconnecting in" in log
    assert left == []

"""A futures window end to end, on a simulated clock running 120 times fast:
traded before its gate, delivered into a lease, a job run on the lease during
the window, the provider paid in full after it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dispatch_harness import TEXTS, start_node, stop, wait_until
from server_harness import ServerProcess, connected, recovered_engine

HOUR = 3600 * 10**9
SPEED = 120
WINDOW_START = int(datetime(2026, 12, 4, 12, tzinfo=UTC).timestamp()) // 3600 * HOUR
"""12:00 UTC on 2026-12-04, simulated; the server starts 50 minutes before it."""

CONFIG = f"""
[server]
heartbeat_seconds = 1
clock_start = {WINDOW_START - 50 * 60 * 10**9}
clock_speed = {SPEED}

[[classes]]
name = "emb"
lot_cu = 10
tick = 1
taker_fee_bps = 10
maker_fee_bps = 5

[classes.futures]
list_ahead_hours = 0
gate_seconds = 120
closing_call_seconds = 0

[[accounts]]
key = "alice"
secret = "alice-secret"
deposit = 1_000_000_000
roles = ["consumer"]

[[accounts]]
key = "p1"
secret = "p1-secret"
roles = ["provider"]

[[accounts]]
key = "operator"
secret = "operator-secret"
roles = ["operator"]
"""

FUTURE = "emb-20261204T12"


def account(server: ServerProcess, key: str) -> dict[str, int]:
    body: dict[str, int] = server.get_signed(key, "/api/v1/account").body
    return body


def test_a_future_is_traded_delivered_used_by_a_job_and_settled(tmp_path: Path) -> None:
    config = tmp_path / "cux.toml"
    config.write_text(CONFIG, encoding="utf-8")
    with ServerProcess(config, tmp_path / "data") as server:
        provider = start_node(server, "p1", "n1", max_cu=0.1)
        try:

            async def scenario() -> tuple[dict[str, Any], dict[str, int], int]:
                async with (
                    connected(server.url, "operator") as operator,
                    connected(server.url, "alice") as alice,
                ):
                    listed = await operator.request(
                        "list_future", resource_class="emb", start=WINDOW_START
                    )
                    assert listed["type"] == "ack", listed
                    await alice.request("subscribe", channels=["leases", "jobs"])
                    # The node's capacity covers the window: 0.1 CU/s for an
                    # hour is 36 lots of 10 CU.
                    await asyncio.to_thread(
                        wait_until,
                        lambda: server.get("/api/v1/nodes").body["nodes"],
                        60,
                        "the node",
                    )
                    # The node quotes the window's capacity itself.
                    asks = await asyncio.to_thread(
                        wait_until,
                        lambda: server.get(f"/api/v1/book/{FUTURE}").body["asks"],
                        60,
                        "the node's quote on the window",
                    )
                    price = asks[0][0]
                    await alice.request("subscribe", channels=["fills"])
                    bought = await alice.request(
                        "place",
                        symbol=FUTURE,
                        side="buy",
                        qty=6,
                        price=price,
                        tif="IOC",
                    )
                    assert bought["type"] == "ack", bought
                    [fill] = await alice.wait_for("fill")
                    assert (fill["qty"], fill["price"]) == (6, price)
                    before_delivery = account(server, "p1")

                    # Delivery at the window's start: a lease for alice.
                    leases = await alice.wait_for("lease", timeout=60)
                    lease = leases[0]
                    assert lease["symbol"] == FUTURE
                    assert lease["lots"] == 6
                    job = {
                        "op": "submit_job",
                        "symbol": FUTURE,
                        "inputs": TEXTS[:16],
                        "budget_cu": 60,
                        "leases": [lease["lease_id"]],
                    }
                    # Two jobs on one lease at once: it runs one at a time.
                    ack, busy = await alice.request_many([job, job])
                    assert ack["type"] == "ack", ack
                    assert busy["code"] == "LEASE_IN_USE", busy
                    deadline = asyncio.get_running_loop().time() + 25
                    while True:
                        job = (await alice.request("get_job", job_id=ack["job_id"]))[
                            "job"
                        ]
                        if job["status"] != "running":
                            break
                        assert asyncio.get_running_loop().time() < deadline, job
                        await asyncio.sleep(0.1)
                    return job, before_delivery, price

            job, before, price = asyncio.run(scenario())
            # The window ends 30 real seconds after it starts; then p1 is paid.
            paid = wait_until(
                lambda: account(server, "p1")["available"] > before["available"],
                60,
                "settlement",
            )
            after = account(server, "p1")
        finally:
            logs = stop(provider)
        assert paid
        assert job["status"] == "done", (job, logs)
        assert job["done_inputs"] == 16
        assert job["cost"] == job["refund"] == 0  # firm: paid at the trade
        # 6 lots at its price, less the seller's 5 bps maker fee (its sell
        # rested), rounded up.
        notional = 6 * price
        fee = -(-notional * 5 // 10_000)
        assert after["available"] - before["available"] == notional - fee
    engine = recovered_engine(server.data, config)
    engine.check()
    assert FUTURE not in engine.instruments  # delisted after its window

"""``cux node`` against a real ``cux serve`` on a fast simulated clock: it
quotes a futures window as soon as it is listed, re-quotes the rest after a
consumer's buy, and has no quote left on it once its gate has passed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from dispatch_harness import start_node, stop, wait_until
from server_harness import ServerProcess, connected

from providers.pricing import Pricing, reservation_price

HOUR = 3600 * 10**9
SPEED = 240
"""Simulated seconds per real second: an hour takes 15 real seconds."""
GATE_SECONDS = 120
LEAD_SECONDS = 8
"""Real seconds at least between the listing and the window's gate."""

CONFIG = f"""
[server]
heartbeat_seconds = 1
clock_start = {1_893_492_000 * 10**9}
clock_speed = {SPEED}

[[classes]]
name = "emb"
lot_cu = 10
tick = 1
taker_fee_bps = 10
maker_fee_bps = 5

[classes.futures]
list_ahead_hours = 0
gate_seconds = {GATE_SECONDS}
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

# The node sells 0.1 CU/s at $1 an hour: 36 lots of 10 CU in an hour's window,
# at a reservation of 27,778 µcr a lot.
PRICING = Pricing(reservation_price(1_000_000, 100, 10))
LOTS = 36


def asks(server: ServerProcess, symbol: str) -> list[list[int]]:
    book: dict[str, Any] = server.get(f"/api/v1/book/{symbol}").body
    return book["asks"]  # type: ignore[no-any-return]


def open_orders(server: ServerProcess) -> list[dict[str, Any]]:
    body: dict[str, Any] = server.get_signed("p1", "/api/v1/orders").body
    return body["orders"]  # type: ignore[no-any-return]


async def trade_a_window(server: ServerProcess) -> str:
    """List the first window whose gate is `LEAD_SECONDS` away or more, check
    the node's quotes on it, buy some, and wait for its gate; its symbol."""
    url = server.url
    async with (
        connected(url, "operator") as operator,
        connected(url, "alice") as alice,
    ):
        await operator.request("subscribe", channels=["instruments", "phases"])
        now = (await operator.request("ping"))["server_time"]
        earliest = now + (LEAD_SECONDS * SPEED + GATE_SECONDS) * 10**9
        start = -(-earliest // HOUR) * HOUR
        listed = await operator.request(
            "list_future", resource_class="emb", start=start
        )
        assert listed["type"] == "ack", listed
        [message] = await operator.wait_for("listed")
        symbol = str(message["symbol"])

        # The node quotes the window at once, all of its capacity.
        quote = await asyncio.to_thread(
            wait_until, lambda: asks(server, symbol), 30, "the quote"
        )
        assert quote == [[PRICING.ask(0, LOTS), LOTS]]

        # A consumer buys 6 lots; the node quotes the other 30, dearer.
        await alice.request("subscribe", channels=["fills"])
        bought = await alice.request(
            "place",
            symbol=symbol,
            side="buy",
            qty=6,
            price=PRICING.ask(0, LOTS),
            tif="IOC",
        )
        assert bought["type"] == "ack", bought
        [fill] = await alice.wait_for("fill")
        assert fill["qty"] == 6
        rest = [[PRICING.ask(6, LOTS), LOTS - 6]]
        await asyncio.to_thread(
            wait_until,
            lambda: asks(server, symbol) == rest,
            30,
            "the re-quote",
        )

        # The gate.
        while not any(
            p["symbol"] == symbol and p["phase"] == "closed"
            for p in operator.messages["phase"]
        ):
            await operator.wait_for("phase", len(operator.messages["phase"]) + 1, 60)
        return symbol


def test_a_node_quotes_a_future_re_quotes_after_a_buy_and_drops_it_at_the_gate(
    tmp_path: Path,
) -> None:
    config = tmp_path / "cux.toml"
    config.write_text(CONFIG, encoding="utf-8")
    with ServerProcess(config, tmp_path / "data") as server:
        node = start_node(server, "p1", "n1", max_cu=0.1)
        try:
            wait_until(lambda: server.get("/api/v1/nodes").body["nodes"], 60, "node")
            wait_until(lambda: asks(server, "emb-SPOT"), 30, "the spot quote")

            symbol = asyncio.run(trade_a_window(server))
            after_gate = open_orders(server)
            book_after_gate = asks(server, symbol)
        finally:
            logs = stop(node)
        spot_left = asks(server, "emb-SPOT")

    assert node.returncode == 0, logs
    assert book_after_gate == []
    assert [o["symbol"] for o in after_gate] == ["emb-SPOT"]
    assert f"trading of {symbol} ended: 6 lots sold" in logs
    assert f"quote on {symbol} refused" not in logs
    assert spot_left == []

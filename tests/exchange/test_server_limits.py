"""`cux serve` end to end: rate limits and clients that cannot keep up."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from server_harness import (
    BookMirror,
    RawWebSocket,
    ServerProcess,
    connected,
    write_config,
)

from exchange.protocol import WIRE_CODES, WireCode

RATE_LIMITED = WIRE_CODES[WireCode.RATE_LIMITED]


def place(side: str, qty: int, price: int) -> dict[str, Any]:
    return {"op": "place", "symbol": "cpu-SPOT", "side": side, "qty": qty,
            "price": price}  # fmt: skip


# -- rate limits ------------------------------------------------------------------


async def test_requests_over_the_rate_limit_are_refused_and_later_ones_served(
    tmp_path: Path,
) -> None:
    with ServerProcess(write_config(tmp_path, rate_limit=5), tmp_path / "data") as s:
        async with connected(s.url, "alice") as alice, connected(s.url) as other:
            # A burst of 60 (the bucket holds 10, the login took one).
            replies = await alice.request_many(
                [place("buy", 1, 100 + i) for i in range(60)]
            )
            neighbour = await other.request("ping")
            await asyncio.sleep(0.5)
            later = await alice.request("ping")
            orders = await alice.request("orders")
        metrics = s.get("/metrics").body

    acked = [r for r in replies if r["type"] == "ack"]
    refused = [r for r in replies if r["type"] == "error"]
    # The first 9 get through; then about 5 a second.
    assert replies[:9] == acked[:9]
    assert len(refused) >= 30
    assert refused == [
        {"type": "error", "id": r["id"], "code": "RATE_LIMITED",
         "message": RATE_LIMITED}
        for r in replies
        if r["type"] != "ack"
    ]  # fmt: skip
    # Refused requests never reached the engine.
    assert sorted(o["order_id"] for o in orders["orders"]) == sorted(
        r["order_id"] for r in acked
    )
    # The limit is per connection, and the bucket fills again.
    assert neighbour["type"] == "pong"
    assert later["type"] == "pong"
    assert orders["type"] == "result"
    assert f"cux_rate_limited_total {float(len(refused))}" in metrics.splitlines()


# -- slow consumers ---------------------------------------------------------------


async def trade_until(server: ServerProcess, line: str, most: int) -> int | None:
    """Cross orders of alice and bob, 200 commands at a time, until the
    server's log shows ``line``, and then 600 more; return how many commands
    had been sent when it showed (None: not within ``most``)."""
    sent, seen_at = 0, None
    async with (
        connected(server.url, "alice") as alice,
        connected(server.url, "bob") as bob,
    ):
        while sent < most and (seen_at is None or sent < seen_at + 600):
            sells = [place("sell", 1, 1000 + i % 5) for i in range(100)]
            buys = [place("buy", 1, 1010) for _ in range(100)]
            replies = await asyncio.gather(
                bob.request_many(sells), alice.request_many(buys)
            )
            assert all(r["type"] == "ack" for rs in replies for r in rs)
            sent += 200
            if seen_at is None and line in server.text:
                seen_at = sent
    return seen_at


async def test_a_subscriber_that_stops_reading_gets_a_resync_and_no_gap(
    tmp_path: Path,
) -> None:
    """One subscriber never reads; another reads as it should. Only the first
    falls behind, though every batch of the sequencer brings the second more
    than ``max_queue`` messages at once."""
    channels = ["trades.cpu-SPOT", "candles.cpu-SPOT"]
    depths = [None, 10, 25, 50, 100, 500]
    config = write_config(tmp_path, max_queue=100, fsync="none")
    with ServerProcess(config, tmp_path / "data") as server:
        slow = RawWebSocket(server.port, receive_buffer=2048)
        for i, depth in enumerate(depths):
            slow.send({"op": "subscribe", "id": i, "channels": ["book.cpu-SPOT"],
                       "depth": depth})  # fmt: skip
        slow.send({"op": "subscribe", "id": 9, "channels": channels})
        async with connected(server.url, "carol") as fast:
            for depth in depths:
                await fast.request("subscribe", channels=["book.cpu-SPOT"], depth=depth)
            await fast.request("subscribe", channels=channels)
            memory = server.rss_kb()

            seen_at = await trade_until(server, "fell behind; resync", most=40_000)
            grown = server.rss_kb() - memory
            await fast.request("balance")
            book = server.get("/api/v1/book/cpu-SPOT").body

        slow.sock.settimeout(1.0)
        received, closed = slow.read_messages()
        messages = [m for m in received if m["type"] != "heartbeat"]
        # The client subscribes again, and is sent a fresh snapshot.
        slow.sock.settimeout(10.0)
        slow.send({"op": "subscribe", "id": 99, "channels": ["book.cpu-SPOT"]})
        answers = [_next_message(slow) for _ in range(2)]
        again = server.get("/api/v1/book/cpu-SPOT").body

    assert seen_at is not None, "the slow client never fell behind"
    assert closed is None
    resyncs = [m for m in messages if m["type"] == "resync"]
    assert resyncs == [
        {"type": "resync", "reason": "slow consumer",
         "channels": ["book.cpu-SPOT", "candles.cpu-SPOT", "trades.cpu-SPOT"]}
    ]  # fmt: skip
    # The resync came last: what was queued for the channels was dropped, and
    # nothing more was sent on them, though 600 more orders traded.
    assert messages[-1] == resyncs[0]
    # Up to the resync, every channel's updates follow on with no gap.
    for depth in depths:
        mirror = BookMirror()
        for message in messages:
            if message["type"] == "book" and message.get("depth") == depth:
                mirror.apply(message)
        assert mirror.seq is not None
        assert mirror.seq > 0
    # Memory stayed bounded: what was dropped was never kept.
    assert grown < 50_000, f"the server grew by {grown} KiB"
    assert answers[0] == {"type": "subscribed", "id": 99, "channels": ["book.cpu-SPOT"]}
    snapshot = answers[1]
    assert snapshot["snapshot"] is True
    assert (snapshot["seq"], snapshot["bids"], snapshot["asks"]) == (
        again["seq"], again["bids"], again["asks"],
    )  # fmt: skip

    # The reading subscriber kept every channel, with every update.
    assert fast.messages["resync"] == []
    assert len(fast.messages["trade"]) >= seen_at // 2
    for depth in depths:
        mirror = BookMirror()
        for message in fast.messages["book"]:
            if message.get("depth") == depth:
                mirror.apply(message)
        bids, asks = mirror.levels()
        assert (bids, asks) == (book["bids"][:depth], book["asks"][:depth])
    assert mirror.seq is not None


def _next_message(raw: RawWebSocket) -> dict[str, Any]:
    """The next JSON message, past heartbeats."""
    while True:
        opcode, payload = raw.read_frame()
        if opcode == 0x1:
            message: dict[str, Any] = json.loads(payload)
            if message["type"] != "heartbeat":
                return message


async def test_a_client_whose_replies_pile_up_is_closed_as_a_slow_consumer(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, max_queue=10, fsync="none")
    with ServerProcess(config, tmp_path / "data") as server:
        # A deep book, so that each snapshot is some 30 kB.
        async with connected(server.url, "bob") as bob:
            for start in range(1001, 3001, 500):
                await bob.request_many(
                    [place("sell", 1, p) for p in range(start, start + 500)]
                )
        slow = RawWebSocket(server.port, receive_buffer=2048)
        deadline = time.monotonic() + 30
        sent = 0
        while (
            "closed: slow consumer" not in server.text and time.monotonic() < deadline
        ):
            for _ in range(20):
                slow.send(
                    {"op": "subscribe", "id": sent, "channels": ["book.cpu-SPOT"]}
                )
                sent += 1
            await asyncio.sleep(0.05)
        async with connected(server.url, "alice") as alice:
            still = await alice.request("balance")
        messages, closed = slow.read_messages()

    assert "closed: slow consumer" in server.text
    assert closed == (1013, "slow consumer")
    assert messages[0]["type"] == "hello"
    assert all(m["type"] in ("subscribed", "book", "heartbeat") for m in messages[1:])
    assert still["type"] == "result"

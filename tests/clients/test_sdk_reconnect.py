"""The SDK's `Client` when the server goes away: it reconnects to a server
restarted on the same port and data folder, logs in again, restores its
subscriptions (each yields a ``reconnected`` resync, then fresh data), and a
request made during the outage completes once the server is back. Without
reconnection, or past its last attempt, subscriptions end with `ClientClosed`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from server_harness import ServerProcess, desk_config, http_get, write_config

from clients import Backoff, Client, LiveBook
from clients.errors import ClientClosed
from clients.messages import Balance, BookMessage, Resync, TradeMessage

FAST = Backoff(initial=0.05, maximum=0.5, jitter=0.1)


def config(folder: Path) -> Path:
    return write_config(folder, extra=desk_config("re"))


async def restart(config: Path, data: Path, port: int) -> ServerProcess:
    """``cux serve`` again on ``port`` and ``data``, started off the event loop
    so that the clients keep trying to reconnect meanwhile."""
    return await asyncio.to_thread(ServerProcess, config, data, "--port", str(port))


async def test_client_reconnects_after_a_restart_and_restores_its_subscriptions(
    tmp_path: Path,
) -> None:
    path, data = config(tmp_path), tmp_path / "data"
    server = ServerProcess(path, data)
    port = server.port
    try:
        async with (
            Client(server.url, "re-buyer", "re-buyer-secret", backoff=FAST) as buyer,
            Client(server.url, "re-seller", "re-seller-secret", backoff=FAST) as seller,
        ):
            trades = await buyer.subscribe("trades.re-SPOT")
            book = await LiveBook.open(buyer, "re-SPOT")
            resting = await buyer.buy("re-SPOT", 10, 1000)
            await book.wait_synced(timeout=10)

            await asyncio.to_thread(server.stop)
            await buyer.wait_disconnected(timeout=30)
            outage = asyncio.create_task(buyer.balance(timeout=60))
            server = await restart(path, data, port)
            await buyer.wait_connected(timeout=60)
            await seller.wait_connected(timeout=60)

            assert buyer.connections == 2
            assert isinstance(await outage, Balance)
            notice = await trades.next(timeout=10)
            assert notice == Resync(["trades.re-SPOT"], "reconnected")

            # The journal kept the order; the restored subscriptions carry on.
            assert [o.order_id for o in await buyer.orders()] == [resting.order_id]
            await seller.sell("re-SPOT", 4, 1000)
            trade = await trades.next(timeout=10)
            assert isinstance(trade, TradeMessage)
            assert (trade.price, trade.qty) == (1000, 4)

            url = f"{server.http}/api/v1/book/re-SPOT"
            rest = await asyncio.to_thread(http_get, url)
            await book.wait_seq(rest.body["seq"], timeout=10)
            assert [list(level) for level in book.mirror.bids()] == rest.body["bids"]
            assert book.mirror.bids() == [(1000, 6)]

            # Order tracking picks up again on the new connection.
            await seller.sell("re-SPOT", 6, 1000)
            result = await buyer.wait_order(resting.order_id, timeout=10)
            assert (result.status, result.filled) == ("filled", 10)
            assert [f.qty for f in result.fills] == [4, 6]
            await book.close()
    finally:
        server.stop()


async def test_a_book_subscription_after_reconnecting_yields_a_fresh_snapshot(
    tmp_path: Path,
) -> None:
    path, data = config(tmp_path), tmp_path / "data"
    server = ServerProcess(path, data)
    try:
        async with Client(server.url, backoff=FAST) as cux:
            book = await cux.subscribe("book.re-SPOT")
            first = await book.next(timeout=10)
            assert isinstance(first, BookMessage)
            assert first.snapshot
            await asyncio.to_thread(server.stop)
            server = await restart(path, data, server.port)
            notice = await book.next(timeout=60)
            assert notice == Resync(["book.re-SPOT"], "reconnected")
            again = await book.next(timeout=10)
            assert isinstance(again, BookMessage)
            assert again.snapshot
            await book.close()
    finally:
        server.stop()


async def test_without_reconnect_a_dropped_connection_ends_subscriptions(
    tmp_path: Path,
) -> None:
    server = ServerProcess(config(tmp_path), tmp_path / "data")
    try:
        async with Client(server.url, reconnect=False) as cux:
            trades = await cux.subscribe("trades.re-SPOT")
            await asyncio.to_thread(server.stop)
            with pytest.raises(ClientClosed):
                await trades.next(timeout=30)
            with pytest.raises(ClientClosed):
                await cux.ping()
    finally:
        server.stop()


async def test_the_client_gives_up_after_its_last_reconnection_attempt(
    tmp_path: Path,
) -> None:
    server = ServerProcess(config(tmp_path), tmp_path / "data")
    backoff = Backoff(initial=0.01, maximum=0.05, attempts=3)
    try:
        async with Client(server.url, backoff=backoff) as cux:
            trades = await cux.subscribe("trades.re-SPOT")
            await asyncio.to_thread(server.stop)
            with pytest.raises(ClientClosed, match="gave up after 3 attempts"):
                await trades.next(timeout=30)
            with pytest.raises(ClientClosed):
                await cux.balance()
    finally:
        server.stop()

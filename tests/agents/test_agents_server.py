"""Agents against a real ``cux serve``: a market maker quotes both sides,
re-quotes after fills and when its reference moves, and leaves nothing behind;
a consumer's orders reach the server exactly as its seeded plan says."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from server_harness import ServerProcess, connected, write_config

from clients.agents import (
    Consumer,
    ConsumerConfig,
    LotPricer,
    MakerConfig,
    MarketMaker,
    PriceSeries,
    SdkVenue,
    connect_venue,
    load_gpu_prices,
    load_passages,
    plan_jobs,
    quote_prices,
)

# The demo's nodes are CPUs: a lot is priced at their own CU/s (25 CU/s here),
# the GPU's rental price standing for what an hour of a machine is worth.
CPU_MILLI = 25_000


@pytest.fixture
def server(tmp_path: Path) -> Any:
    with ServerProcess(write_config(tmp_path), tmp_path / "data") as process:
        yield process


def book(server: ServerProcess) -> tuple[list[list[int]], list[list[int]]]:
    body = server.get("/api/v1/book/cpu-SPOT").body
    return body["bids"], body["asks"]


async def until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``check`` (which reads the server) until it is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(check)
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"never true: {check}")


async def ioc(server: ServerProcess, key: str, side: str, qty: int, price: int) -> None:
    async with connected(server.url, key) as trader:
        reply = await trader.request(
            "place", symbol="cpu-SPOT", side=side, qty=qty, price=price, tif="IOC"
        )
        assert reply["type"] == "ack", reply


# -- the market maker ----------------------------------------------------------------


async def test_a_market_maker_quotes_both_sides_around_the_series_price(
    server: ServerProcess,
) -> None:
    pricer = LotPricer(load_gpu_prices(), cu_per_second_milli=CPU_MILLI)
    reference = pricer.price(0)
    bid, ask = quote_prices(reference, 200, 1)
    assert (reference, bid, ask) == (2_211, 2_189, 2_233)  # H100 at $1.99 an hour

    async with connect_venue(server.url, "bob", "bob-secret") as venue:
        config = MakerConfig(size=10, spread_bps=200, refresh_seconds=3600)
        maker = MarketMaker(venue, config, pricer.price)
        task = asyncio.create_task(maker.run())

        assert await until(lambda: book(server) == ([[bid, 10]], [[ask, 10]]))

        maker.stop()
        await task

    assert book(server) == ([], [])


async def test_a_market_maker_tops_up_a_partly_filled_ask_and_replaces_a_filled_bid(
    server: ServerProcess,
) -> None:
    pricer = LotPricer(load_gpu_prices(), cu_per_second_milli=CPU_MILLI)
    bid, ask = quote_prices(pricer.price(0), 200, 1)
    config = MakerConfig(name="mm", size=10, spread_bps=200, refresh_seconds=3600)

    async with connect_venue(server.url, "bob", "bob-secret") as venue:
        maker = MarketMaker(venue, config, pricer.price)
        task = asyncio.create_task(maker.run())
        await until(lambda: book(server) == ([[bid, 10]], [[ask, 10]]))

        # alice takes 3 of the 10 lots offered: the ask goes back to 10.
        await ioc(server, "alice", "buy", 3, ask)
        await until(lambda: maker.stats.sold == 3 and maker.stats.amended == 1)
        assert book(server) == ([[bid, 10]], [[ask, 10]])

        # carol sells into the whole bid: a new bid of 10 replaces it.
        await ioc(server, "carol", "sell", 10, bid)
        await until(lambda: maker.stats.bought == 10 and maker.stats.placed == 3)
        assert book(server) == ([[bid, 10]], [[ask, 10]])

        maker.stop()
        await task

    trades = server.get("/api/v1/trades/cpu-SPOT").body["trades"]
    assert sorted((t["price"], t["qty"]) for t in trades) == [(bid, 10), (ask, 3)]
    assert book(server) == ([], [])


async def test_a_market_maker_moves_its_quotes_when_the_series_moves(
    server: ServerProcess,
) -> None:
    # One point at $2.00, then $3.00 for a long while; each refresh moves the
    # replay on by one half-hour point.
    cents = (200, *([300] * 999))
    series = PriceSeries(0, 1800, len(cents), {"H100_80GB_SXM5": {"median": cents}})
    pricer = LotPricer(series, cu_per_second_milli=CPU_MILLI)
    config = MakerConfig(size=5, spread_bps=100, refresh_seconds=0.2, speed=9000)
    before = quote_prices(pricer.price(0), 100, 1)
    after = quote_prices(pricer.price(1800), 100, 1)
    assert before == (2_211, 2_233)
    assert after == (3_317, 3_349)

    async with connect_venue(server.url, "bob", "bob-secret") as venue:
        maker = MarketMaker(venue, config, pricer.price)
        task = asyncio.create_task(maker.run())

        await until(lambda: book(server) == ([[after[0], 5]], [[after[1], 5]]))

        maker.stop()
        await task

    assert maker.stats.placed == 2
    assert maker.stats.amended >= 2
    assert book(server) == ([], [])


class StopsWhilePlacing(SdkVenue):
    """A venue that stops its maker while the maker's first order is on its
    way to the server."""

    maker: MarketMaker

    async def place(self, **fields: Any) -> str:
        self.maker.stop()
        return await super().place(**fields)


async def test_a_market_maker_stopped_while_placing_leaves_no_order_open(
    server: ServerProcess,
) -> None:
    pricer = LotPricer(load_gpu_prices(), cu_per_second_milli=CPU_MILLI)
    async with connect_venue(server.url, "bob", "bob-secret") as plain:
        venue = StopsWhilePlacing(plain.client)
        maker = MarketMaker(venue, MakerConfig(refresh_seconds=0.01), pricer.price)
        venue.maker = maker
        await maker.run()

    assert maker.stats.placed == 1  # the bid went in; the ask never did
    async with connected(server.url, "bob") as bob:
        reply = await bob.request("orders")
    assert reply["orders"] == []
    assert book(server) == ([], [])


# -- the consumer --------------------------------------------------------------------


async def test_a_consumer_sends_its_plans_ioc_buys_and_those_priced_high_enough_fill(
    server: ServerProcess,
) -> None:
    pricer = LotPricer(load_gpu_prices(), cu_per_second_milli=CPU_MILLI)
    passages = load_passages()
    # 12 jobs, fast, over several weeks of prices, each willing to pay 90-110%.
    config = ConsumerConfig(
        name="alice-bot",
        rate_per_second=50,
        inputs_max=40,
        willingness_bps=10_000,
        speed=10_000_000,
        seed=7,
        max_jobs=12,
        mode="order",
    )
    plan = list(plan_jobs(config, pricer.price, passages))
    prices = sorted(job.max_price for job in plan)
    assert len(set(prices)) > 2  # the series moved under the plan
    ask = prices[len(prices) // 2]  # half the jobs pay enough

    await ioc_free_ask(server, ask)
    # A connection of alice's own sees her orders as the server publishes them.
    async with connected(server.url, "alice") as observer:
        reply = await observer.request("subscribe", channels=["orders"])
        assert reply["type"] == "subscribed", reply
        async with connect_venue(server.url, "alice", "alice-secret") as venue:
            consumer = Consumer(venue, config, pricer.price, passages)
            await consumer.run()

        seen = observer.messages["order"]
        finals = await until(lambda: terminal(seen, len(plan)))

    assert consumer.sent == plan
    assert consumer.stats.accepted == 12
    assert [o["client_order_id"] for o in finals] == [
        f"alice-bot.{j.number}" for j in plan
    ]
    for job, order in zip(plan, finals, strict=True):
        assert order["price"] == job.max_price
        if job.max_price >= ask:
            assert (order["status"], order["filled"]) == ("filled", job.lots)
        else:
            assert (order["status"], order["filled"]) == ("cancelled", 0)
    bought = sum(j.lots for j in plan if j.max_price >= ask)
    assert consumer.stats.lots_bought == bought
    assert consumer.stats.spent == bought * ask


async def ioc_free_ask(server: ServerProcess, price: int) -> None:
    """carol offers plenty of lots at ``price``, GTC."""
    async with connected(server.url, "carol") as carol:
        reply = await carol.request(
            "place", symbol="cpu-SPOT", side="sell", qty=10_000, price=price
        )
        assert reply["type"] == "ack", reply


def terminal(orders: list[dict[str, Any]], count: int) -> list[dict[str, Any]] | None:
    """The last message of each order, in order of entry, once ``count``
    orders have ended."""
    last: dict[str, dict[str, Any]] = {}
    for order in orders:
        last[order["order_id"]] = order
    ended = [o for o in last.values() if o["status"] in ("filled", "cancelled")]
    if len(ended) < count:
        return None
    return sorted(ended, key=lambda o: int(o["order_id"]))

"""The daemon's futures quotes against a fake exchange: one sell per trading
window, re-quoted on fills, dropped at the gate, cancelled on stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from fake_exchange import FakeExchange

from providers.daemon import Node, NodeConfig

MILLI = 25_000  # 25 CU/s: reservation 112 µcr at $0.10/h, 124 with 10% markup
H10, H11, H12 = "cpu-20300101T10", "cpu-20300101T11", "cpu-20300101T12"
H13 = "cpu-20300101T13"
HOUR = 3600 * 10**9
T10 = 1_893_492_000 * 10**9  # 2030-01-01 10:00 UTC


def future(symbol: str, start: int, phase: str = "continuous") -> dict[str, Any]:
    """A row of GET /api/v1/instruments for a one-hour future."""
    return {
        "symbol": symbol,
        "resource_class": symbol.split("-")[0],
        "kind": "future",
        "phase": phase,
        "start": start,
        "end": start + HOUR,
    }


class FuturesFake(FakeExchange):
    """The fake exchange with a REST listing of instruments, a ``cancel_all``
    that cancels one symbol's orders, and places it refuses above a size."""

    def __init__(self, capacity: dict[str, int] | None = None) -> None:
        super().__init__(capacity)
        self.instruments: list[dict[str, Any]] = []
        self.largest: dict[str, int] = {}
        """Per symbol, the largest place accepted; more is refused for capacity."""
        self._cancel_symbol: str | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self._handle)
        app.router.add_get("/api/v1/instruments", self._listing)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"ws://127.0.0.1:{port}/ws"

    async def _listing(self, request: web.Request) -> web.Response:
        spot = {"symbol": "cpu-SPOT", "resource_class": "cpu", "kind": "spot"}
        rows = [{**spot, "phase": "continuous", "start": None, "end": None}]
        return web.json_response({"instruments": rows + self.instruments})

    def _answer(self, message: dict[str, Any]) -> dict[str, Any]:
        op, symbol = message["op"], message.get("symbol")
        if op == "cancel_all":
            self._cancel_symbol = symbol
        if op == "place" and message["qty"] > self.largest.get(str(symbol), 10**9):
            return {
                "type": "error",
                "id": message["id"],
                "code": "INSUFFICIENT_CAPACITY",
                "message": "no",
            }
        return super()._answer(message)

    async def _cancelled(self, ws: web.WebSocketResponse) -> None:
        # Only the orders of the symbol cancelled; the others stay open.
        others = {
            k: v
            for k, v in self.open_orders.items()
            if self._cancel_symbol is not None and v["symbol"] != self._cancel_symbol
        }
        for key in others:
            del self.open_orders[key]
        await super()._cancelled(ws)
        self.open_orders.update(others)

    def places(self, symbol: str) -> list[dict[str, Any]]:
        return [p for p in self.ops("place") if p["symbol"] == symbol]

    def amends(self, order_id: str) -> list[dict[str, Any]]:
        return [a for a in self.ops("amend") if a["order_id"] == order_id]

    async def wait_until(self, check: Any, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.01)

    def order_id(self, place: dict[str, Any]) -> str:
        """The id the fake gave the order that ``place`` placed."""
        index = self.ops("place").index(place)
        return str(index + 1)


@pytest.fixture
async def fake() -> AsyncIterator[FuturesFake]:
    exchange = FuturesFake(capacity={"cpu-SPOT": 15, H10: 60, H11: 60})
    exchange.instruments = [
        future(H10, T10),
        future(H11, T10 + HOUR),
        future(H12, T10 + 2 * HOUR, phase="closed"),
        future("gpu-20300101T10", T10),
    ]
    await exchange.start()
    yield exchange
    await exchange.stop()


def make_node(fake: FakeExchange) -> Node:
    config = NodeConfig(
        url=fake.url,
        key="bob",
        secret="bob-secret",
        heartbeat_seconds=0.5,
        backoff_initial=0.05,
        backoff_max=0.2,
    )
    return Node(config, MILLI, {"exact": {"layers": 6}})


async def started(fake: FuturesFake) -> tuple[Node, asyncio.Task[None]]:
    """A node that has quoted the spot book and both trading windows."""
    node = make_node(fake)
    task = asyncio.create_task(node.run())
    await fake.wait_until(lambda: fake.places(H10) and fake.places(H11))
    return node, task


async def stopped(node: Node, task: asyncio.Task[None]) -> None:
    node.stop()
    await asyncio.wait_for(task, 5)


def fill(
    order_id: str, tag: str, symbol: str, qty: int, trade_id: int
) -> dict[str, Any]:
    return {
        "type": "fill",
        "order_id": order_id,
        "client_order_id": tag,
        "trade_id": trade_id,
        "symbol": symbol,
        "side": "sell",
        "price": 124,
        "qty": qty,
        "fee": 0,
        "liquidity": "maker",
        "ts": 1,
    }


def order(
    order_id: str, tag: str, symbol: str, status: str, leaves: int, reason: str | None
) -> dict[str, Any]:
    return {
        "type": "order",
        "order_id": order_id,
        "client_order_id": tag,
        "symbol": symbol,
        "side": "sell",
        "status": status,
        "price": 124,
        "filled": 60 - leaves,
        "leaves": leaves,
        "reason": reason,
        "ts": 1,
    }


async def test_the_node_quotes_each_trading_window_of_its_class_with_its_capacity(
    fake: FuturesFake,
) -> None:
    node, task = await started(fake)
    await stopped(node, task)

    [spot] = fake.places("cpu-SPOT")
    [h10] = fake.places(H10)
    [h11] = fake.places(H11)
    assert (spot["qty"], spot["price"]) == (15, 124)
    for place in (h10, h11):
        assert {k: place[k] for k in ("side", "type", "price", "qty", "tif")} == {
            "side": "sell",
            "type": "limit",
            "price": 124,
            "qty": 60,
            "tif": "GTC",
        }
        assert place["client_order_id"].startswith("node-1.")
    # Neither the closed window nor another class's future.
    assert {p["symbol"] for p in fake.ops("place")} == {"cpu-SPOT", H10, H11}
    subscribes = [set(s["channels"]) for s in fake.ops("subscribe")]
    assert subscribes == [{"orders", "fills", "leases"}, {"instruments", "phases"}]


async def test_a_fill_on_a_window_re_quotes_its_rest_dearer_and_leaves_spot_alone(
    fake: FuturesFake,
) -> None:
    node, task = await started(fake)
    [h10] = fake.places(H10)
    oid, tag = fake.order_id(h10), h10["client_order_id"]

    await fake.push(fill(oid, tag, H10, 20, trade_id=3))
    await fake.push(order(oid, tag, H10, "partially_filled", 40, None))
    await fake.wait_until(lambda: fake.amends(oid))
    # A future's lease ending gives nothing back (the same id as a spot trade).
    await fake.push(
        {
            "type": "lease",
            "lease_id": 3,
            "symbol": H10,
            "status": "expired",
            "consumer": "alice",
            "provider": "bob",
            "lots": 20,
            "price": 124,
            "start": 0,
            "end": 1,
            "ts": 2,
        }
    )
    [h11] = fake.places(H11)
    oid11, tag11 = fake.order_id(h11), h11["client_order_id"]
    await fake.push(fill(oid11, tag11, H11, 60, trade_id=4))
    await fake.push(order(oid11, tag11, H11, "filled", 0, None))
    await fake.wait_until(lambda: node.futures.sold.get(H11) == 60)
    await stopped(node, task)

    # 20 of 60 sold: markup 10% + 40% × 20/60: 112 × 1.2333 = 138.1 → 139.
    [amend] = fake.amends(oid)
    assert (amend["qty"], amend["price"]) == (40, 139)
    assert node.futures.sold == {H10: 20, H11: 60}
    assert node.sold == 0
    assert fake.ops("amend") == [amend]  # the spot quote was never touched
    assert len(fake.places(H11)) == 1  # sold out: not quoted again


async def test_a_window_listed_later_is_registered_for_and_quoted(
    fake: FuturesFake,
) -> None:
    node, task = await started(fake)
    fake.capacity = {"cpu-SPOT": 15, H10: 60, H11: 60, H13: 45}

    await fake.push(
        {
            "type": "listed",
            "symbol": H13,
            "resource_class": "cpu",
            "start": T10 + 3 * HOUR,
            "end": T10 + 4 * HOUR,
            "closing_call_at": T10 + 3 * HOUR - 360 * 10**9,
            "gate_at": T10 + 3 * HOUR - 300 * 10**9,
            "ts": T10 - HOUR,
        }
    )
    await fake.wait_until(lambda: fake.places(H13))
    await stopped(node, task)

    assert len(fake.ops("register_node")) == 2
    assert fake.places(H13)[0]["qty"] == 45
    assert node.futures.windows[H13].capacity == 45


async def test_at_the_gate_a_window_loses_its_quote_and_gets_no_other(
    fake: FuturesFake,
) -> None:
    node, task = await started(fake)
    [h10] = fake.places(H10)
    oid, tag = fake.order_id(h10), h10["client_order_id"]

    await fake.push(
        {
            "type": "phase",
            "symbol": H10,
            "phase": "closed",
            "old_phase": "continuous",
            "ts": 2,
        }
    )
    await fake.push(order(oid, tag, H10, "cancelled", 60, "closed"))
    await fake.push({"type": "settlement", "symbol": H10, "price": None, "ts": 2})
    # A fill on H11 re-quotes everything: H10 must stay unquoted.
    [h11] = fake.places(H11)
    oid11, tag11 = fake.order_id(h11), h11["client_order_id"]
    await fake.push(fill(oid11, tag11, H11, 6, trade_id=9))
    await fake.wait_until(lambda: fake.amends(oid11))
    await stopped(node, task)

    assert len(fake.places(H10)) == 1
    assert fake.amends(oid) == []
    assert [c for c in fake.ops("cancel") if c["order_id"] == oid] == []
    assert node.futures.windows[H10].quote is None
    # On stop only the window that still trades, then the spot book.
    cancels = [c["symbol"] for c in fake.ops("cancel_all")]
    assert cancels == ["cpu-SPOT", H11, "cpu-SPOT"]


async def test_stopping_cancels_every_windows_quote_then_the_spot_book_last(
    fake: FuturesFake,
) -> None:
    node, task = await started(fake)

    await stopped(node, task)
    await asyncio.sleep(0.1)

    cancels = [c.get("symbol") for c in fake.ops("cancel_all")]
    assert cancels == ["cpu-SPOT", H10, H11, "cpu-SPOT"]
    assert fake.received[-1]["op"] == "cancel_all"
    assert fake.open_orders == {}
    assert all(w.quote is None for w in node.futures.windows.values())


async def test_a_quote_refused_for_capacity_is_halved_until_it_is_accepted(
    fake: FuturesFake, caplog: pytest.LogCaptureFixture
) -> None:
    fake.largest[H10] = 20  # 40 lots sold by an earlier run of the node
    node, task = await started(fake)
    await fake.wait_until(lambda: len(fake.places(H10)) == 3)
    await stopped(node, task)

    assert [p["qty"] for p in fake.places(H10)] == [60, 30, 15]
    assert [p["qty"] for p in fake.places(H11)] == [60]
    assert f"quote on {H10} refused: INSUFFICIENT_CAPACITY" in caplog.text


async def test_after_a_reconnection_the_windows_are_quoted_again_less_what_sold(
    fake: FuturesFake,
) -> None:
    node, task = await started(fake)
    [h10] = fake.places(H10)
    oid, tag = fake.order_id(h10), h10["client_order_id"]
    await fake.push(fill(oid, tag, H10, 25, trade_id=5))
    await fake.wait_until(lambda: fake.amends(oid))

    await fake.drop()
    await fake.wait_until(lambda: len(fake.places(H10)) == 2)
    await stopped(node, task)

    again = fake.places(H10)[1]
    # 25 of 60 sold: 10% + 40% × 25/60 = 26.67%: 112 × 1.2666 = 141.9 → 142.
    assert (again["qty"], again["price"]) == (35, 142)
    assert fake.connections == 2


async def test_a_node_whose_listing_cannot_be_read_still_quotes_the_spot_book(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plain = FakeExchange()  # no REST listing: 404
    await plain.start()
    try:
        node = make_node(plain)
        task = asyncio.create_task(node.run())
        await plain.wait_for("ping")
        await stopped(node, task)
    finally:
        await plain.stop()

    assert [p["symbol"] for p in plain.ops("place")] == ["cpu-SPOT"]
    assert "cannot read the listed futures" in caplog.text

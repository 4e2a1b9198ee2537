"""The daemon against a fake exchange: log in, register, quote, re-quote, reconnect."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator

import pytest
from fake_exchange import FakeExchange

from providers.daemon import Backoff, Node, NodeConfig, RequestRefused

TIERS = {"exact": {"layers": 6, "cu_fraction": 1.0}}
MILLI = 25_000  # 25 CU/s: 1,500 CU in a 60 s lease, 15 lots of 100 CU


@pytest.fixture
async def fake() -> AsyncIterator[FakeExchange]:
    exchange = FakeExchange()
    await exchange.start()
    yield exchange
    await exchange.stop()


def make_node(fake: FakeExchange) -> Node:
    config = NodeConfig(
        url=fake.url,
        key="bob",
        secret="bob-secret",
        heartbeat_seconds=0.2,
        backoff_initial=0.05,
        backoff_max=0.2,
    )
    return Node(config, MILLI, TIERS)


async def started(fake: FakeExchange) -> tuple[Node, asyncio.Task[None]]:
    node = make_node(fake)
    task = asyncio.create_task(node.run())
    await fake.wait_for("place")
    return node, task


async def stopped(node: Node, task: asyncio.Task[None]) -> None:
    node.stop()
    await asyncio.wait_for(task, 5)


async def test_the_node_logs_in_registers_and_quotes_its_capacity(
    fake: FakeExchange,
) -> None:
    node, task = await started(fake)
    await stopped(node, task)

    login, subscribe, register, clear, place = fake.received[:5]
    assert login["op"] == "login"
    assert login["key"] == "bob"
    assert (
        login["signature"]
        == hmac.new(b"bob-secret", b"n0nce", hashlib.sha256).hexdigest()
    )
    assert login["cancel_on_disconnect"] is True
    assert register == {
        "op": "register_node",
        "id": register["id"],
        "node_id": "node-1",
        "resource_class": "cpu",
        "cu_per_second_milli": MILLI,
        "model": "all-MiniLM-L6-v2",
        "tiers": TIERS,
    }
    assert set(subscribe["channels"]) == {"orders", "fills", "leases"}
    assert clear == {"op": "cancel_all", "id": clear["id"], "symbol": "cpu-SPOT"}
    # Reservation 112 µcr ($0.10/h at 25 CU/s), 10% markup with nothing sold.
    assert {k: place[k] for k in ("symbol", "side", "type", "price", "qty", "tif")} == {
        "symbol": "cpu-SPOT",
        "side": "sell",
        "type": "limit",
        "price": 124,
        "qty": 15,
        "tif": "GTC",
    }
    assert place["client_order_id"].startswith("node-1.")


async def test_the_node_quotes_the_capacity_the_server_registered(
    fake: FakeExchange,
) -> None:
    fake.capacity = {"cpu-SPOT": 40}
    node, task = await started(fake)
    await stopped(node, task)

    assert fake.ops("place")[0]["qty"] == 40


async def test_a_node_that_starts_while_a_lease_lives_quotes_the_rest_until_it_ends(
    fake: FakeExchange,
) -> None:
    fake.capacity = {"cpu-SPOT": 40}
    fake.spot_leases = {"9": 4}  # sold by an earlier run of the node
    node, task = await started(fake)

    await fake.push(
        {
            "type": "lease",
            "lease_id": 9,
            "symbol": "cpu-SPOT",
            "status": "used_up",
            "consumer": "alice",
            "provider": "bob",
            "lots": 4,
            "price": 130,
            "start": 0,
            "end": 1,
            "ts": 2,
        }
    )
    await fake.wait_for("amend")
    await stopped(node, task)

    # 4 of 40 sold: markup 10% + 40% × 4/40 = 14%: 112 × 1.14 = 127.7.
    first = fake.ops("place")[0]
    assert (first["qty"], first["price"]) == (36, 128)
    amend = fake.ops("amend")[0]
    assert (amend["qty"], amend["price"]) == (40, 124)
    assert node.sold == 0


async def test_a_fill_raises_the_ask_and_an_ended_lease_lowers_it_again(
    fake: FakeExchange,
) -> None:
    node, task = await started(fake)
    tag = fake.ops("place")[0]["client_order_id"]

    await fake.push(
        {
            "type": "fill",
            "order_id": "1",
            "client_order_id": tag,
            "trade_id": 77,
            "symbol": "cpu-SPOT",
            "side": "sell",
            "price": 124,
            "qty": 5,
            "fee": 0,
            "liquidity": "maker",
            "ts": 1,
        }
    )
    await fake.push(
        {
            "type": "order",
            "order_id": "1",
            "client_order_id": tag,
            "symbol": "cpu-SPOT",
            "side": "sell",
            "status": "partially_filled",
            "price": 124,
            "filled": 5,
            "leaves": 10,
            "reason": None,
            "ts": 1,
        }
    )
    await fake.wait_for("amend")
    # 5 of 15 sold: markup 10% + 40% × 5/15 = 23.33%: 112 × 1.2333 = 138.1.
    assert {k: fake.ops("amend")[0][k] for k in ("order_id", "qty", "price")} == {
        "order_id": "1",
        "qty": 10,
        "price": 139,
    }

    await fake.push(
        {
            "type": "lease",
            "lease_id": 77,
            "symbol": "cpu-SPOT",
            "status": "expired",
            "consumer": "alice",
            "provider": "bob",
            "lots": 5,
            "price": 124,
            "start": 0,
            "end": 1,
            "ts": 2,
        }
    )
    await fake.wait_for("amend", 2)
    await stopped(node, task)

    assert {k: fake.ops("amend")[1][k] for k in ("qty", "price")} == {
        "qty": 15,
        "price": 124,
    }
    assert node.sold == 0


async def test_a_filled_quote_is_replaced_by_a_new_one(fake: FakeExchange) -> None:
    node, task = await started(fake)
    tag = fake.ops("place")[0]["client_order_id"]

    await fake.push(
        {
            "type": "fill",
            "order_id": "1",
            "client_order_id": tag,
            "trade_id": 5,
            "symbol": "cpu-SPOT",
            "side": "sell",
            "price": 124,
            "qty": 15,
            "fee": 0,
            "liquidity": "maker",
            "ts": 1,
        }
    )
    await fake.push(
        {
            "type": "order",
            "order_id": "1",
            "client_order_id": tag,
            "symbol": "cpu-SPOT",
            "side": "sell",
            "status": "filled",
            "price": 124,
            "filled": 15,
            "leaves": 0,
            "reason": None,
            "ts": 1,
        }
    )
    await asyncio.sleep(0.2)
    assert len(fake.ops("place")) == 1  # sold out: nothing left to quote

    await fake.push(
        {
            "type": "lease",
            "lease_id": 5,
            "symbol": "cpu-SPOT",
            "status": "expired",
            "consumer": "alice",
            "provider": "bob",
            "lots": 15,
            "price": 124,
            "start": 0,
            "end": 1,
            "ts": 2,
        }
    )
    await fake.wait_for("place", 2)
    await stopped(node, task)

    assert fake.ops("place")[1]["qty"] == 15
    assert fake.ops("place")[1]["price"] == 124


async def test_the_node_reconnects_after_a_drop_and_registers_and_quotes_again(
    fake: FakeExchange,
) -> None:
    node, task = await started(fake)

    await fake.drop()
    await fake.wait_for("place", 2)
    await stopped(node, task)

    assert fake.connections == 2
    assert len(fake.ops("login")) == 2
    assert len(fake.ops("register_node")) == 2


async def test_the_node_pings_while_connected(fake: FakeExchange) -> None:
    node, task = await started(fake)

    await fake.wait_for("ping", 2, timeout=3)
    await stopped(node, task)


async def test_a_delivery_shortfall_re_registers_lower_and_re_quotes(
    fake: FakeExchange,
) -> None:
    node, task = await started(fake)

    second = 1_000_000_000
    # 24 CU/s over a 10-s window: close enough.
    node.record_delivery(flops=240 * 10**9, wall_ns=10 * second)
    # 12.5 CU/s over the next: short.
    node.record_delivery(flops=125 * 10**9, wall_ns=10 * second)
    await fake.wait_for("amend")
    await stopped(node, task)

    registers = fake.ops("register_node")
    assert [r["cu_per_second_milli"] for r in registers] == [MILLI, 12_500]
    # 750 CU in a lease: 7 lots; reservation 223 µcr, marked up 10%.
    assert {k: fake.ops("amend")[0][k] for k in ("qty", "price")} == {
        "qty": 7,
        "price": 246,
    }


async def test_small_shards_do_not_re_register_before_a_whole_window_ran(
    fake: FakeExchange,
) -> None:
    node, task = await started(fake)

    # 500 tiny shards at 1 CU/s, 10 ms each: 5 s of running, half a window.
    for _ in range(500):
        node.record_delivery(flops=10**7, wall_ns=10**7)
    await asyncio.sleep(0.2)
    await stopped(node, task)

    assert [r["cu_per_second_milli"] for r in fake.ops("register_node")] == [MILLI]


async def test_stopping_cancels_the_quotes_and_places_none_after(
    fake: FakeExchange,
) -> None:
    node, task = await started(fake)

    await stopped(node, task)
    await asyncio.sleep(0.1)

    last = fake.received[-1]
    assert last == {"op": "cancel_all", "id": last["id"], "symbol": "cpu-SPOT"}
    assert fake.open_orders == {}
    assert node.quote is None


async def test_a_refused_login_stops_the_node_with_the_refusal(
    fake: FakeExchange,
) -> None:
    fake.refuse["login"] = "AUTH_FAILED"

    with pytest.raises(RequestRefused, match="AUTH_FAILED"):
        await asyncio.wait_for(make_node(fake).run(), 5)
    assert fake.connections == 1


async def test_an_unknown_class_stops_the_node_with_the_refusal(
    fake: FakeExchange,
) -> None:
    fake.refuse["register_node"] = "UNKNOWN_CLASS"

    with pytest.raises(RequestRefused, match="UNKNOWN_CLASS"):
        await asyncio.wait_for(make_node(fake).run(), 5)
    assert fake.connections == 1


async def test_a_refused_quote_is_logged_and_the_node_stays_up(
    fake: FakeExchange, caplog: pytest.LogCaptureFixture
) -> None:
    fake.refuse["place"] = "INSUFFICIENT_CAPACITY"
    node, task = await started(fake)
    await fake.wait_for("ping")
    await stopped(node, task)

    assert fake.connections == 1
    assert "quote refused: INSUFFICIENT_CAPACITY" in caplog.text


def test_the_backoff_doubles_up_to_its_cap_with_seeded_jitter() -> None:
    backoff = Backoff(1.0, 8.0, seed=3)
    series = [backoff.next() for _ in range(6)]
    again = Backoff(1.0, 8.0, seed=3)

    assert series == [again.next() for _ in range(6)]
    for delay, ceiling in zip(series, [1, 2, 4, 8, 8, 8], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next() <= 1


async def test_a_node_id_in_use_stops_the_node_with_the_refusal(
    fake: FakeExchange,
) -> None:
    fake.refuse["register_node"] = "NODE_ID_IN_USE"

    with pytest.raises(RequestRefused, match="NODE_ID_IN_USE"):
        await asyncio.wait_for(make_node(fake).run(), 5)
    assert fake.connections == 1


async def test_a_reconnected_node_whose_old_connection_still_holds_its_id_retries(
    fake: FakeExchange,
) -> None:
    node, task = await started(fake)
    # The exchange has not yet dropped the old connection: it holds the id.
    fake.refuse["register_node"] = "NODE_ID_IN_USE"

    await fake.drop()
    await fake.wait_for("register_node", 3)  # refused twice, retried each time
    del fake.refuse["register_node"]
    await fake.wait_for("place", 2)
    await stopped(node, task)

    assert fake.connections >= 4
    assert len(fake.ops("register_node")) >= 4


async def test_refused_quotes_are_retried_after_reading_the_state_again(
    fake: FakeExchange,
) -> None:
    fake.refuse["place"] = "INSUFFICIENT_CAPACITY"
    node, task = await started(fake)
    # More refusals in a row than the node once allowed itself (3), each
    # followed by a read of its orders and a new registration.
    await fake.wait_for("place", 5)
    del fake.refuse["place"]
    while node.quote is None:
        await asyncio.sleep(0.01)
    await stopped(node, task)

    assert fake.connections == 1
    assert len(fake.ops("orders")) >= 5
    assert len(fake.ops("register_node")) >= 6


async def test_the_node_prices_with_the_lot_and_tick_the_exchange_lists(
    fake: FakeExchange,
) -> None:
    # 25 CU/s: 1,500 CU a 60 s lease, one lot of 1,000 CU.
    fake.instruments = [
        {"symbol": "cpu-SPOT", "kind": "spot", "lot_cu": 1_000, "tick": 10}
    ]
    node, task = await started(fake)
    await stopped(node, task)

    place = fake.ops("place")[0]
    assert (node.lot_cu, node.tick) == (1_000, 10)
    assert place["qty"] == 1
    assert place["price"] % 10 == 0
    assert place["price"] >= 1_120  # ten times the 100-CU lot's 112 µcr


async def test_an_unreachable_exchange_is_logged_in_one_plain_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = NodeConfig(
        url="ws://127.0.0.1:9/ws",
        key="bob",
        secret="bob-secret",
        backoff_initial=0.01,
        backoff_max=0.01,
    )
    node = Node(config, MILLI, TIERS)
    task = asyncio.create_task(node.run())
    while "reconnecting" not in caplog.text:
        await asyncio.sleep(0.01)
    await stopped(node, task)

    line = next(r.getMessage() for r in caplog.records if "reconnecting" in r.message)
    assert line.startswith(
        "cannot reach ws://127.0.0.1:9/ws: connection refused; reconnecting in 0.0"
    )

"""`cux serve` end to end: placing, amending and cancelling orders, and trading.

The tests share a server, and each takes a desk of its own (see `desk_config`):
an instrument and two accounts, a buyer and a seller, with 1,000 credits each,
so every book and balance is known. Each desk's class has a tick of 1 µcr, a
taker fee of 10 bps and no maker fee; a buy holds, per lot, its price and the
fee of a one-lot fill at that price (rounded up). Trade ids count across the
whole server, so they are read from the trade.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from server_harness import Client, ServerProcess, connected, desk_config, write_config

from matching.codes import CODES, Code

DEPOSIT = 1_000_000_000
DESKS = 16
GPU = """
[[classes]]
name = "gpu"
lot_cu = 1000
tick = 10
taker_fee_bps = 25
maker_fee_bps = 10
"""
PRIVATE = ["orders", "fills", "balance"]

_desks = iter(range(DESKS))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("trading")
    extra = GPU + "".join(desk_config(f"desk{i}") for i in range(DESKS))
    with ServerProcess(write_config(folder, extra=extra), folder / "data") as server:
        yield server


@dataclass(frozen=True)
class Desk:
    """A test's own instrument and accounts."""

    symbol: str
    buyer: str
    seller: str


@pytest.fixture
def desk() -> Desk:
    name = f"desk{next(_desks)}"
    return Desk(f"{name}-SPOT", f"{name}-buyer", f"{name}-seller")


def hold(price: int, qty: int) -> int:
    """What a buy of ``qty`` lots at ``price`` holds: the price and the fee."""
    return qty * (price + -(-price * 10 // 10_000))


def engine_error(rid: int, code: Code) -> dict[str, Any]:
    return {"type": "error", "id": rid, "code": code.value, "message": CODES[code]}


def order(
    order_id: str,
    status: str,
    symbol: str,
    side: str,
    price: int,
    filled: int,
    leaves: int,
    ts: int,
    reason: str | None = None,
    client_order_id: str | None = None,
) -> dict[str, Any]:
    """A message of the ``orders`` channel."""
    return {
        "type": "order", "order_id": order_id, "client_order_id": client_order_id,
        "symbol": symbol, "side": side, "status": status, "price": price,
        "filled": filled, "leaves": leaves, "reason": reason, "ts": ts,
    }  # fmt: skip


def fill(
    order_id: str,
    trade_id: int,
    symbol: str,
    side: str,
    price: int,
    qty: int,
    fee: int,
    liquidity: str,
    ts: int,
    client_order_id: str | None = None,
) -> dict[str, Any]:
    """A message of the ``fills`` channel."""
    return {
        "type": "fill", "order_id": order_id, "client_order_id": client_order_id,
        "trade_id": trade_id, "symbol": symbol, "side": side, "price": price,
        "qty": qty, "fee": fee, "liquidity": liquidity, "ts": ts,
    }  # fmt: skip


def balance(available: int, held: int, escrow: int, ts: int) -> dict[str, Any]:
    """A message of the ``balance`` channel."""
    return {"type": "balance", "available": available, "held": held,
            "escrow": escrow, "ts": ts}  # fmt: skip


def result(rid: int, available: int, held: int, escrow: int) -> dict[str, Any]:
    """The answer to a ``balance`` request."""
    return {"type": "result", "id": rid, "available": available, "held": held,
            "escrow": escrow}  # fmt: skip


def place(symbol: str, side: str, qty: int, price: int) -> dict[str, Any]:
    """A limit order request (GTC)."""
    return {"op": "place", "symbol": symbol, "side": side, "qty": qty, "price": price}


async def settle(*clients: Client) -> None:
    """Wait until every message of what the clients did so far has come: a
    read goes through the sequencer, so its answer follows them."""
    for client in clients:
        await client.request("balance")


async def test_a_placed_order_is_acked_announced_and_listed(
    server: ServerProcess, desk: Desk
) -> None:
    sym = desk.symbol
    async with connected(server.url, desk.buyer) as buyer:
        await buyer.request("subscribe", channels=PRIVATE)
        ack = await buyer.request(
            "place", symbol=sym, side="buy", qty=10, price=1200, client_order_id="a1"
        )
        listed = await buyer.request("orders")
        money = await buyer.request("balance")

    order_id = ack["order_id"]
    ts = buyer.messages["order"][0]["ts"]
    held = hold(1200, 10)
    assert held == 12_020
    assert ack == {"type": "ack", "id": 3, "order_id": order_id}
    assert order_id.isdigit()
    assert buyer.messages["order"] == [
        order(order_id, "new", sym, "buy", 1200, 0, 10, ts, client_order_id="a1")
    ]
    assert buyer.messages["balance"] == [balance(DEPOSIT - held, held, 0, ts)]
    assert listed == {
        "type": "result",
        "id": 4,
        "orders": [
            {"order_id": order_id, "client_order_id": "a1", "symbol": sym,
             "side": "buy", "type": "limit", "tif": "GTC", "price": 1200, "qty": 10,
             "filled": 0, "leaves": 10, "expire_at": None}
        ],
    }  # fmt: skip
    assert money == result(5, DEPOSIT - held, held, 0)


async def test_an_amend_changes_the_order_and_its_hold(
    server: ServerProcess, desk: Desk
) -> None:
    sym = desk.symbol
    async with connected(server.url, desk.buyer) as buyer:
        await buyer.request("subscribe", channels=PRIVATE)
        (ack,) = await buyer.request_many([place(sym, "buy", 10, 1200)])
        order_id = ack["order_id"]
        smaller = await buyer.request("amend", order_id=order_id, qty=5)
        cheaper = await buyer.request("amend", order_id=order_id, price=1100)
        zero = await buyer.request("amend", order_id=order_id, qty=0)
        nothing = await buyer.request("amend", order_id=order_id)
        money = await buyer.request("balance")

    assert smaller == {"type": "ack", "id": 4, "order_id": order_id}
    assert cheaper == {"type": "ack", "id": 5, "order_id": order_id}
    assert zero == engine_error(6, Code.INVALID_QUANTITY)
    assert nothing == engine_error(7, Code.NOTHING_TO_AMEND)
    first, second = buyer.messages["order"][1:]
    assert first == order(order_id, "amended", sym, "buy", 1200, 0, 5, first["ts"])
    assert second == order(order_id, "amended", sym, "buy", 1100, 0, 5, second["ts"])
    held = [hold(1200, 10), hold(1200, 5), hold(1100, 5)]
    assert [m["held"] for m in buyer.messages["balance"]] == held
    assert money == result(8, DEPOSIT - held[-1], held[-1], 0)


async def test_a_cancel_releases_the_hold_and_a_second_one_is_refused(
    server: ServerProcess, desk: Desk
) -> None:
    sym = desk.symbol
    async with connected(server.url, desk.buyer) as buyer:
        await buyer.request("subscribe", channels=PRIVATE)
        (ack,) = await buyer.request_many([place(sym, "buy", 2, 500)])
        order_id = ack["order_id"]
        cancelled = await buyer.request("cancel", order_id=order_id)
        again = await buyer.request("cancel", order_id=order_id)
        unknown = await buyer.request("cancel", order_id="987654321")
        listed = await buyer.request("orders")
        money = await buyer.request("balance")

    assert cancelled == {"type": "ack", "id": 4, "order_id": order_id}
    assert again == engine_error(5, Code.ORDER_CLOSED)
    assert unknown == engine_error(6, Code.UNKNOWN_ORDER)
    last = buyer.messages["order"][-1]
    ts = last["ts"]
    assert last == order(order_id, "cancelled", sym, "buy", 500, 0, 0, ts, "user")
    assert buyer.messages["balance"][-1] == balance(DEPOSIT, 0, 0, ts)
    assert listed == {"type": "result", "id": 7, "orders": []}
    assert money == result(8, DEPOSIT, 0, 0)


async def test_cancel_all_cancels_only_the_accounts_own_orders(
    server: ServerProcess, desk: Desk
) -> None:
    sym = desk.symbol
    async with (
        connected(server.url, desk.buyer) as buyer,
        connected(server.url, desk.seller) as seller,
    ):
        await buyer.request_many(
            [place(sym, "buy", 1, p) for p in (100, 101, 102)]
            + [place("gpu-SPOT", "buy", 1, 100)]
        )
        (others,) = await seller.request_many([place(sym, "buy", 1, 103)])
        only_one_symbol = await buyer.request("cancel_all", symbol=sym)
        nothing_left = await buyer.request("cancel_all", symbol=sym)
        everything = await buyer.request("cancel_all")
        mine = await buyer.request("orders")
        theirs = await seller.request("orders")

    assert only_one_symbol == {"type": "ack", "id": 6, "cancelled": 3}
    assert nothing_left == {"type": "ack", "id": 7, "cancelled": 0}
    assert everything == {"type": "ack", "id": 8, "cancelled": 1}
    assert mine["orders"] == []
    assert [o["order_id"] for o in theirs["orders"]] == [others["order_id"]]


async def test_the_engines_rejections_come_back_as_coded_errors(
    server: ServerProcess, desk: Desk
) -> None:
    sym = desk.symbol
    market = {"op": "place", "symbol": sym, "side": "buy", "qty": 1}
    async with connected(server.url, desk.buyer) as buyer:
        replies = await buyer.request_many(
            [
                place(sym, "buy", 1_000_000, 1_000_000),
                place("gpu-SPOT", "buy", 1, 105),
                place(sym, "sell", 1, 100),
                place("tpu-SPOT", "buy", 1, 100),
                place(sym, "buy", 0, 100),
                place(sym, "buy", -1, 100),
                place(sym, "buy", 1, 0),
                {**place(sym, "buy", 1, 100), "tif": "GTD"},
                {**market, "type": "market", "tif": "GTC"},
            ]
        )
        money = await buyer.request("balance")

    assert replies == [
        engine_error(2, Code.INSUFFICIENT_FUNDS),
        engine_error(3, Code.PRICE_NOT_ON_TICK),
        engine_error(4, Code.INSUFFICIENT_CAPACITY),
        {
            **engine_error(5, Code.UNKNOWN_SYMBOL),
            "message": f"{CODES[Code.UNKNOWN_SYMBOL]}: 'tpu-SPOT'",
        },
        engine_error(6, Code.INVALID_QUANTITY),
        engine_error(7, Code.INVALID_QUANTITY),
        engine_error(8, Code.INVALID_PRICE),
        engine_error(9, Code.INVALID_EXPIRY),
        engine_error(10, Code.INVALID_ORDER_TYPE),
    ]
    assert money == result(11, DEPOSIT, 0, 0)


async def test_an_account_sees_and_touches_only_its_own_orders(
    server: ServerProcess, desk: Desk
) -> None:
    async with (
        connected(server.url, desk.buyer) as buyer,
        connected(server.url, desk.seller) as other,
    ):
        await other.request("subscribe", channels=PRIVATE)
        (ack,) = await buyer.request_many([place(desk.symbol, "buy", 3, 700)])
        order_id = ack["order_id"]
        cancel = await other.request("cancel", order_id=order_id)
        amend = await other.request("amend", order_id=order_id, qty=1)
        others = await other.request("orders")
        mine = await buyer.request("orders")
        await settle(other)

    assert cancel == engine_error(3, Code.ORDER_NOT_OWNED)
    assert amend == engine_error(4, Code.ORDER_NOT_OWNED)
    assert others["orders"] == []
    assert [(o["order_id"], o["leaves"]) for o in mine["orders"]] == [(order_id, 3)]
    # Nothing of the buyer's order reached the other account's channels.
    assert other.stream == []
    assert server.get_signed(desk.seller, "/api/v1/orders").body == {"orders": []}


async def test_a_sell_into_a_resting_buy_sends_exact_trade_messages(
    server: ServerProcess, desk: Desk
) -> None:
    sym = desk.symbol
    async with (
        connected(server.url, desk.buyer) as buyer,
        connected(server.url, desk.seller) as seller,
    ):
        await buyer.request("subscribe", channels=PRIVATE)
        await seller.request("subscribe", channels=[*PRIVATE, f"trades.{sym}"])
        buy = await buyer.request(
            "place", symbol=sym, side="buy", qty=10, price=1200, client_order_id="a1"
        )
        (sell,) = await seller.request_many([place(sym, "sell", 4, 1200)])
        await settle(buyer, seller)

    b, s = buy["order_id"], sell["order_id"]
    assert sell == {"type": "ack", "id": 3, "order_id": s}
    (trade,) = seller.messages["trade"]
    ts, tid = trade["ts"], trade["trade_id"]
    assert trade == {"type": "trade", "symbol": sym, "trade_id": tid, "price": 1200,
                     "qty": 4, "taker_side": "sell", "ts": ts}  # fmt: skip

    # The maker: partly filled, no fee (0 bps), 4 lots' notional in escrow.
    assert buyer.messages["order"][1:] == [
        order(b, "partially_filled", sym, "buy", 1200, 4, 6, ts, client_order_id="a1")
    ]
    assert buyer.messages["fill"] == [
        fill(b, tid, sym, "buy", 1200, 4, 0, "maker", ts, client_order_id="a1")
    ]
    left = hold(1200, 6)
    assert buyer.messages["balance"][1:] == [
        balance(DEPOSIT - left - 4 * 1200, left, 4 * 1200, ts)
    ]

    # The taker: new, then filled. A seller pays its fee when the escrow is
    # released, so its fill shows 0 and its balances do not move yet.
    assert seller.messages["order"] == [
        order(s, "new", sym, "sell", 1200, 0, 4, ts),
        order(s, "filled", sym, "sell", 1200, 4, 0, ts),
    ]
    assert seller.messages["fill"] == [
        fill(s, tid, sym, "sell", 1200, 4, 0, "taker", ts)
    ]
    assert seller.messages["balance"] == []


async def test_a_buy_that_takes_pays_the_taker_fee_at_the_makers_price(
    server: ServerProcess, desk: Desk
) -> None:
    sym = desk.symbol
    async with (
        connected(server.url, desk.buyer) as buyer,
        connected(server.url, desk.seller) as seller,
    ):
        await buyer.request("subscribe", channels=PRIVATE)
        await seller.request("subscribe", channels=PRIVATE)
        (sell,) = await seller.request_many([place(sym, "sell", 10, 1000)])
        (buy,) = await buyer.request_many([place(sym, "buy", 3, 1100)])
        money = await buyer.request("balance")
        rest = await seller.request("orders")

    b, s = buy["order_id"], sell["order_id"]
    ts, tid = buyer.messages["fill"][0]["ts"], buyer.messages["fill"][0]["trade_id"]
    fee = 3  # 10 bps of 3,000 µcr
    assert buyer.messages["order"] == [
        order(b, "new", sym, "buy", 1100, 0, 3, ts),
        order(b, "filled", sym, "buy", 1100, 3, 0, ts),
    ]
    assert buyer.messages["fill"] == [
        fill(b, tid, sym, "buy", 1000, 3, fee, "taker", ts)
    ]
    assert buyer.messages["balance"] == [balance(DEPOSIT - 3000 - fee, 0, 3000, ts)]
    assert money == result(4, DEPOSIT - 3000 - fee, 0, 3000)
    assert seller.messages["order"][1:] == [
        order(s, "partially_filled", sym, "sell", 1000, 3, 7, ts)
    ]
    assert seller.messages["fill"] == [
        fill(s, tid, sym, "sell", 1000, 3, 0, "maker", ts)
    ]
    assert [(o["order_id"], o["filled"], o["leaves"]) for o in rest["orders"]] == [
        (s, 3, 7)
    ]

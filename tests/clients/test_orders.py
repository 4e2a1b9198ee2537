"""OrderTracker: an order's result waits for every fill it counted, and an
order that ended while the client was away resolves as ``unknown``."""

from __future__ import annotations

import asyncio

from clients.messages import Fill, OpenOrder, OrderUpdate
from clients.orders import OrderTracker


def update(
    status: str, filled: int, leaves: int, reason: str | None = None
) -> OrderUpdate:
    return OrderUpdate(
        "7", None, "cpu-SPOT", "buy", status, 1000, filled, leaves, reason, 1
    )


def fill(qty: int, trade_id: int) -> Fill:
    return Fill("7", None, trade_id, "cpu-SPOT", "buy", 1000, qty, 1, "maker", 1)


def listed(filled: int, leaves: int) -> OpenOrder:
    return OpenOrder(
        "7",
        None,
        "cpu-SPOT",
        "buy",
        "limit",
        "GTC",
        1000,
        filled + leaves,
        filled,
        leaves,
        None,
    )


async def test_a_filled_order_resolves_only_once_its_last_fill_arrived() -> None:
    tracker = OrderTracker()
    tracker.placed("7", 10)
    waiter = asyncio.ensure_future(tracker.wait("7"))
    tracker.on_order(update("new", 0, 10))
    tracker.on_order(update("partially_filled", 4, 6))
    tracker.on_fill(fill(4, 1))
    # The server sends the order's "filled" just before that fill's message.
    tracker.on_order(update("filled", 10, 0))
    await asyncio.sleep(0)
    assert not waiter.done()
    tracker.on_fill(fill(6, 2))
    result = await waiter
    assert (result.status, result.filled, [f.qty for f in result.fills]) == (
        "filled",
        10,
        [4, 6],
    )
    assert (await tracker.wait("7")).fills == result.fills  # remembered


async def test_an_order_gone_when_reconnecting_resolves_as_unknown() -> None:
    tracker = OrderTracker()
    tracker.placed("7", 10)
    tracker.on_order(update("new", 0, 10))
    waiter = asyncio.ensure_future(tracker.wait("7"))
    tracker.reconcile([])
    result = await waiter
    assert (result.status, result.leaves) == ("unknown", 0)


async def test_fills_missed_while_away_do_not_hold_back_the_result() -> None:
    tracker = OrderTracker()
    tracker.placed("7", 10)
    tracker.on_order(update("new", 0, 10))
    tracker.reconcile([listed(filled=3, leaves=7)])  # 3 lots filled meanwhile
    waiter = asyncio.ensure_future(tracker.wait("7"))
    tracker.on_order(update("filled", 10, 0))
    tracker.on_fill(fill(7, 9))
    result = await waiter
    assert (result.status, result.filled, [f.qty for f in result.fills]) == (
        "filled",
        10,
        [7],
    )


async def test_an_order_first_seen_in_a_listing_is_followed_from_there() -> None:
    tracker = OrderTracker()
    tracker.follow(listed(filled=2, leaves=8))
    waiter = asyncio.ensure_future(tracker.wait("7"))
    tracker.on_order(update("cancelled", 2, 0, "user"))
    result = await waiter
    assert (result.status, result.reason, result.fills) == ("cancelled", "user", [])


def test_only_the_last_terminal_orders_are_remembered() -> None:
    tracker = OrderTracker(keep=2)
    for n in range(3):
        order_id = str(n)
        tracker.placed(order_id, 1)
        tracker.on_order(
            OrderUpdate(order_id, None, "s", "buy", "cancelled", 1, 0, 0, "user", 1)
        )
    assert [tracker.knows(str(n)) for n in range(3)] == [False, True, True]

"""Capacity for selling futures: per window, across overlapping windows, and resale.

A seller's short in a window is its open sells plus lots sold minus lots bought
there (from the window's start on: what it delivers). For every window, the
shorts of all the windows of the class that overlap it, itself included, must
fit in the capacity the seller registered for it. A consumer registers none, so
it can sell what it bought and nothing more.
"""

import msgspec
from futures_harness import (
    CONFIG,
    START,
    W10,
    at,
    consumer,
    futures_market,
    provider,
)
from harness import Balance, Market, accepted, amended, command_rejected, rejected

from matching import (
    CapacitySet,
    Code,
    DeliveryStarted,
    Engine,
    EngineState,
    EscrowReleased,
    Event,
    LeaseCreated,
    ListFuture,
    PlaceOrder,
    SetCapacity,
)

W09 = "cpu-20260302T09"
W11 = "cpu-20260302T11"
W12 = "cpu-20260302T12"
W14 = "cpu-20260302T14"
B10 = "cpu-20260302T10-4H"
"""The block [10:00, 14:00): W10 to W13 lie inside it; W09 and W14 touch it."""


def refused(account: str, order_id: int | None = None) -> list[Event]:
    return [rejected(account, Code.INSUFFICIENT_CAPACITY, order_id)]


# -- one window ---------------------------------------------------------------------


def test_provider_sells_up_to_its_registered_capacity_and_no_more() -> None:
    m = futures_market(("cpu", START, 1))
    provider(m, "p", {W10: 5})
    m.sell("p", 3, 100, symbol=W10)

    fits = m.sell("p", 2, 101, symbol=W10)
    over = m.sell("p", 1, 102, symbol=W10)

    assert fits.events == [accepted(fits.id, "p", "sell", 2, 101, symbol=W10)]
    assert over.events == refused("p")
    assert m.committed("p", W10) == 5
    assert m.asks(W10) == [(100, 3), (101, 2)]


def test_sell_in_a_window_without_registered_capacity_is_rejected() -> None:
    m = futures_market(("cpu", START, 1), ("cpu", at(11), 1))
    provider(m, "p", {W11: 5})

    placed = m.sell("p", 1, 100, symbol=W10)

    assert placed.events == refused("p")
    assert m.asks(W10) == []


def test_capacity_of_a_window_is_set_by_symbol_once_it_is_listed() -> None:
    m = futures_market(("cpu", START, 1))
    m.open("p", roles=("provider",))

    unlisted = m.apply(SetCapacity("p", W11, 5))
    listed = m.apply(SetCapacity("p", W10, 5))

    assert unlisted == [command_rejected("set_capacity", Code.UNKNOWN_SYMBOL)]
    assert listed == [CapacitySet("p", W10, 5)]


def test_cancelled_sell_gives_its_capacity_back() -> None:
    m = futures_market(("cpu", START, 1))
    provider(m, "p", {W10: 5})
    first = m.sell("p", 5, 100, symbol=W10)

    m.cancel("p", first.id)
    again = m.sell("p", 5, 100, symbol=W10)

    assert again.events == [accepted(again.id, "p", "sell", 5, 100, symbol=W10)]
    assert m.committed("p", W10) == 5


def test_lots_sold_keep_counting_against_capacity_after_the_trade() -> None:
    m = futures_market(("cpu", START, 1))
    provider(m, "p", {W10: 5})
    consumer(m, "c", 10_000)
    m.sell("p", 5, 100, symbol=W10)
    m.buy("c", 5, 100, symbol=W10)

    placed = m.sell("p", 1, 100, symbol=W10)

    assert placed.events == refused("p")
    assert m.committed("p", W10) == 5


def test_lots_a_provider_buys_back_reduce_its_short() -> None:
    m = futures_market(("cpu", START, 1))
    provider(m, "p", {W10: 5}, deposit=1_000)
    provider(m, "q", {W10: 5})
    consumer(m, "c", 10_000)
    m.sell("p", 5, 100, symbol=W10)
    m.buy("c", 5, 100, symbol=W10)
    m.sell("q", 2, 90, symbol=W10)
    m.buy("p", 2, 90, symbol=W10)

    two = m.sell("p", 2, 100, symbol=W10)
    three = m.sell("p", 1, 100, symbol=W10)

    assert two.events == [accepted(two.id, "p", "sell", 2, 100, symbol=W10)]
    assert three.events == refused("p")


def test_open_buy_orders_do_not_count_as_lots_to_sell() -> None:
    m = futures_market(("cpu", START, 1))
    consumer(m, "c", 10_000)
    m.buy("c", 3, 100, symbol=W10)

    placed = m.sell("c", 1, 120, symbol=W10)

    assert placed.events == refused("c")


# -- overlapping windows ------------------------------------------------------------


def test_short_in_a_block_counts_against_each_hourly_window_inside_it() -> None:
    m = futures_market(("cpu", START, 4), ("cpu", START, 1), ("cpu", at(11), 1))
    provider(m, "p", {B10: 10, W10: 4, W11: 4})
    m.sell("p", 3, 100, symbol=B10)

    over = m.sell("p", 2, 100, symbol=W10)
    fits = m.sell("p", 1, 100, symbol=W10)
    next_hour = m.sell("p", 1, 100, symbol=W11)

    assert over.events == refused("p")
    assert fits.events == [accepted(fits.id, "p", "sell", 1, 100, symbol=W10)]
    assert next_hour.events == [accepted(next_hour.id, "p", "sell", 1, 100, symbol=W11)]


def test_short_in_an_hourly_window_counts_against_the_block_around_it() -> None:
    m = futures_market(("cpu", START, 4), ("cpu", START, 1))
    provider(m, "p", {B10: 4, W10: 10})
    m.sell("p", 3, 100, symbol=W10)

    over = m.sell("p", 2, 100, symbol=B10)
    fits = m.sell("p", 1, 100, symbol=B10)

    assert over.events == refused("p")
    assert fits.events == [accepted(fits.id, "p", "sell", 1, 100, symbol=B10)]


def test_block_needs_capacity_in_every_listed_hour_inside_it() -> None:
    m = futures_market(("cpu", START, 4), ("cpu", START, 1))
    provider(m, "p", {B10: 10})

    placed = m.sell("p", 1, 100, symbol=B10)

    assert placed.events == refused("p")


def test_shorts_in_two_hourly_windows_inside_a_block_both_count_against_it() -> None:
    m = futures_market(("cpu", START, 4), ("cpu", START, 1), ("cpu", at(11), 1))
    provider(m, "p", {B10: 5, W10: 5, W11: 5})
    m.sell("p", 3, 100, symbol=W10)

    over = m.sell("p", 3, 100, symbol=W11)
    fits = m.sell("p", 2, 100, symbol=W11)

    assert over.events == refused("p")
    assert fits.events == [accepted(fits.id, "p", "sell", 2, 100, symbol=W11)]


def test_adjacent_windows_do_not_count_against_each_other() -> None:
    m = futures_market(("cpu", at(9), 1), ("cpu", START, 4), ("cpu", at(14), 1))
    provider(m, "p", {W09: 3, B10: 3, W14: 3})

    placed = [m.sell("p", 3, 100, symbol=s) for s in (W09, B10, W14)]

    assert [p.events for p in placed] == [
        [accepted(p.id, "p", "sell", 3, 100, symbol=s)]
        for p, s in zip(placed, (W09, B10, W14), strict=True)
    ]


def test_windows_of_another_class_do_not_count() -> None:
    m = futures_market(("cpu", START, 1), ("gpu", START, 4))
    provider(m, "p", {W10: 3, "gpu-20260302T10-4H": 3})

    cpu = m.sell("p", 3, 100, symbol=W10)
    gpu = m.sell("p", 3, 100, symbol="gpu-20260302T10-4H")

    assert cpu.events[0] == accepted(cpu.id, "p", "sell", 3, 100, symbol=W10)
    assert gpu.events[0] == accepted(
        gpu.id, "p", "sell", 3, 100, symbol="gpu-20260302T10-4H"
    )


def test_window_listed_later_counts_the_shorts_already_in_the_block() -> None:
    m = futures_market(("cpu", START, 4))
    provider(m, "p", {B10: 10})
    m.sell("p", 3, 100, symbol=B10)
    m.apply(ListFuture("cpu", at(11)))
    m.apply(SetCapacity("p", W11, 4))

    over = m.sell("p", 2, 100, symbol=W11)
    fits = m.sell("p", 1, 100, symbol=W11)

    assert over.events == refused("p")
    assert fits.events == [accepted(fits.id, "p", "sell", 1, 100, symbol=W11)]


# -- amends -------------------------------------------------------------------------


def test_amending_a_sell_up_beyond_capacity_is_rejected_and_keeps_the_order() -> None:
    m = futures_market(("cpu", START, 1))
    provider(m, "p", {W10: 5})
    s1 = m.sell("p", 4, 100, symbol=W10)

    over = m.amend("p", s1.id, qty=6)
    fits = m.amend("p", s1.id, qty=5)

    assert over == refused("p", s1.id)
    assert fits == [
        amended(
            s1.id,
            "p",
            "sell",
            price=(100, 100),
            leaves=(4, 5),
            kept_priority=False,
            symbol=W10,
        )
    ]
    assert m.asks(W10) == [(100, 5)]
    assert m.committed("p", W10) == 5


def test_amending_a_sell_up_into_an_overlapping_blocks_short_is_rejected() -> None:
    m = futures_market(("cpu", START, 4), ("cpu", START, 1))
    provider(m, "p", {B10: 10, W10: 4})
    m.sell("p", 3, 100, symbol=B10)
    s1 = m.sell("p", 1, 100, symbol=W10)

    events = m.amend("p", s1.id, qty=2)

    assert events == refused("p", s1.id)
    assert m.asks(W10) == [(100, 1)]
    assert m.committed("p", W10) == 1


def test_amending_a_sell_down_frees_capacity_in_the_overlapping_windows() -> None:
    m = futures_market(("cpu", START, 4), ("cpu", START, 1))
    provider(m, "p", {B10: 10, W10: 4})
    s1 = m.sell("p", 4, 100, symbol=B10)
    m.amend("p", s1.id, qty=1)

    placed = m.sell("p", 3, 100, symbol=W10)

    assert placed.events == [accepted(placed.id, "p", "sell", 3, 100, symbol=W10)]


# -- consumers reselling ------------------------------------------------------------


def traded_to_consumer() -> Market:
    """p sold c 3 lots of W10 at 100 µcr; d is a second consumer."""
    m = futures_market(("cpu", START, 1))
    provider(m, "p", {W10: 5})
    consumer(m, "c", 10_000)
    consumer(m, "d", 10_000)
    m.sell("p", 3, 100, symbol=W10)
    m.buy("c", 3, 100, symbol=W10)
    return m


def test_consumer_can_sell_back_what_it_bought_and_nothing_more() -> None:
    m = traded_to_consumer()

    over = m.sell("c", 4, 120, symbol=W10)
    fits = m.sell("c", 3, 120, symbol=W10)
    more = m.sell("c", 1, 120, symbol=W10)

    assert over.events == refused("c")
    assert fits.events == [accepted(fits.id, "c", "sell", 3, 120, symbol=W10)]
    assert more.events == refused("c")
    assert m.committed("c", W10) == 3


def test_consumer_who_resold_everything_cannot_sell_again() -> None:
    m = traded_to_consumer()
    m.sell("c", 3, 120, symbol=W10)
    m.buy("d", 3, 120, symbol=W10)

    placed = m.sell("c", 1, 120, symbol=W10)

    assert placed.events == refused("c")
    assert m.balance("c") == Balance(available=10_000 - 300, held=0, escrow=300)
    assert m.balance("d") == Balance(available=10_000 - 360, held=0, escrow=360)


def test_buyer_of_a_resale_can_resell_it_in_turn() -> None:
    m = traded_to_consumer()
    m.sell("c", 2, 120, symbol=W10)
    m.buy("d", 2, 120, symbol=W10)

    over = m.sell("d", 3, 130, symbol=W10)
    fits = m.sell("d", 2, 130, symbol=W10)

    assert over.events == refused("d")
    assert fits.events == [accepted(fits.id, "d", "sell", 2, 130, symbol=W10)]


def test_consumer_cannot_amend_a_resale_above_what_it_bought() -> None:
    m = traded_to_consumer()
    s1 = m.sell("c", 2, 120, symbol=W10)

    fits = m.amend("c", s1.id, qty=3)
    over = m.amend("c", s1.id, qty=4)

    assert fits[0].leaves == 3  # type: ignore[union-attr]
    assert over == refused("c", s1.id)
    assert m.asks(W10) == [(120, 3)]


def test_consumer_cannot_sell_in_another_window_what_it_bought_in_one() -> None:
    m = futures_market(("cpu", START, 4), ("cpu", START, 1))
    provider(m, "p", {B10: 5, W10: 5})
    consumer(m, "c", 10_000)
    m.sell("p", 3, 100, symbol=B10)
    m.buy("c", 3, 100, symbol=B10)

    placed = m.sell("c", 1, 120, symbol=W10)

    assert placed.events == refused("c")


# -- from the delivery on -----------------------------------------------------------


def test_from_the_start_of_delivery_a_short_is_what_its_seller_delivers() -> None:
    # p sells 3 lots of the block to c and buys 1 back from c: p delivers 2.
    # At the block's start c's sale is paid out (c is not short), which ends
    # p's purchase; p's short must stay 2, not become the 3 lots it sold.
    m = futures_market(("cpu", START, 4), ("cpu", at(12), 1))
    provider(m, "p", {B10: 5, W12: 5}, deposit=1_000)
    consumer(m, "c", 10_000)
    m.sell("p", 3, 100, symbol=B10)
    m.buy("c", 3, 100, symbol=B10)
    m.sell("c", 1, 110, symbol=B10)
    m.buy("p", 1, 110, symbol=B10)

    delivery = m.tick(at=START)
    fits = m.sell("p", 3, 100, symbol=W12)
    over = m.sell("p", 1, 100, symbol=W12)

    assert delivery[-3:] == [
        DeliveryStarted(B10, 2),
        LeaseCreated(1, B10, "c", "p", 2, 100, START, at(14)),
        EscrowReleased(2, B10, "p", "c", 110, 0, 0),
    ]
    assert fits.events == [accepted(fits.id, "p", "sell", 3, 100, symbol=W12)]
    assert over.events == refused("p")


# -- restore ------------------------------------------------------------------------


def test_restored_engine_applies_the_overlap_rule_like_the_original() -> None:
    m = futures_market(("cpu", START, 4), ("cpu", START, 1))
    provider(m, "p", {B10: 5, W10: 5})
    m.sell("p", 2, 100, symbol=B10)
    m.sell("p", 2, 100, symbol=W10)
    raw = msgspec.msgpack.encode(m.engine.snapshot())
    restored = Engine.restore(CONFIG, msgspec.msgpack.decode(raw, type=EngineState))
    seq, ts = m.engine.seq + 1, m.now + 1
    command = PlaceOrder("p", W10, "sell", 1, price=100)

    live = m.apply(command, at=ts)
    again = restored.apply(seq, ts, command)

    # 2 in the block + 2 + 1 in the hour fit both windows' capacity of 5.
    assert live == [accepted(seq, "p", "sell", 1, 100, symbol=W10)]
    assert again == live

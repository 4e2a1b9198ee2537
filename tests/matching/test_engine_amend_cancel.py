"""Amending and cancelling open orders; terminal orders stay terminal."""

from harness import Balance, Market, amended, cancelled, rejected, trade

from matching import CancelReason, Code
from matching.order import BUY, SELL

SECOND = 1_000_000_000


# -- amend: queue place -----------------------------------------------------------


def test_smaller_amend_keeps_queue_place() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", capacity=10)
    a1 = m.sell("u1", 5, 100)
    a2 = m.sell("u2", 5, 100)

    events = m.amend("u1", a1.id, qty=3)

    assert events == [
        amended(
            a1.id, "u1", "sell", price=(100, 100), leaves=(5, 3), kept_priority=True
        )
    ]
    assert m.queue(SELL, 100) == [(a1.id, 3), (a2.id, 5)]
    assert m.asks() == [(100, 8)]
    assert m.committed("u1") == 3


def test_larger_amend_goes_to_the_back_of_its_level() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", capacity=10)
    a1 = m.sell("u1", 5, 100)
    a2 = m.sell("u2", 5, 100)

    events = m.amend("u1", a1.id, qty=8)

    assert events == [
        amended(
            a1.id, "u1", "sell", price=(100, 100), leaves=(5, 8), kept_priority=False
        )
    ]
    assert m.queue(SELL, 100) == [(a2.id, 5), (a1.id, 8)]
    assert m.asks() == [(100, 13)]
    assert m.committed("u1") == 8


def test_price_amend_goes_to_the_back_of_the_new_level() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", capacity=10)
    a1 = m.sell("u1", 5, 101)
    a2 = m.sell("u2", 5, 100)

    events = m.amend("u1", a1.id, price=100)

    assert events == [
        amended(
            a1.id, "u1", "sell", price=(101, 100), leaves=(5, 5), kept_priority=False
        )
    ]
    assert m.queue(SELL, 100) == [(a2.id, 5), (a1.id, 5)]
    assert m.asks() == [(100, 10)]


def test_price_amend_with_a_smaller_quantity_still_loses_the_queue_place() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", capacity=10)
    a1 = m.sell("u1", 5, 100)
    a2 = m.sell("u2", 5, 100)
    m.amend("u1", a1.id, price=101)

    events = m.amend("u1", a1.id, qty=3, price=100)

    assert events == [
        amended(
            a1.id, "u1", "sell", price=(101, 100), leaves=(5, 3), kept_priority=False
        )
    ]
    assert m.queue(SELL, 100) == [(a2.id, 5), (a1.id, 3)]


def test_amend_after_a_partial_fill_sets_the_open_quantity() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    a1 = m.sell("u1", 10, 100)
    m.buy("u2", 4, 100, tif="IOC")

    events = m.amend("u1", a1.id, qty=4)

    assert events == [
        amended(
            a1.id,
            "u1",
            "sell",
            price=(100, 100),
            leaves=(6, 4),
            filled=4,
            kept_priority=True,
        )
    ]
    assert m.asks() == [(100, 4)]
    # 4 lots sold and not yet delivered plus 4 open.
    assert m.committed("u1") == 8


# -- amend: rejected ----------------------------------------------------------------


def test_amend_to_zero_leaves_is_rejected_and_changes_nothing() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    b1 = m.buy("u1", 5, 100, coid="b")

    events = m.amend("u1", b1.id, qty=0)

    assert events == [rejected("u1", Code.INVALID_QUANTITY, order_id=b1.id, coid="b")]
    assert m.bids() == [(100, 5)]
    assert m.balance("u1") == Balance(available=9_500, held=500, escrow=0)


def test_amend_to_negative_leaves_is_rejected() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    b1 = m.buy("u1", 5, 100)

    events = m.amend("u1", b1.id, qty=-1)

    assert events == [rejected("u1", Code.INVALID_QUANTITY, order_id=b1.id)]


def test_amend_with_neither_quantity_nor_price_is_rejected() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    b1 = m.buy("u1", 5, 100)

    events = m.amend("u1", b1.id)

    assert events == [rejected("u1", Code.NOTHING_TO_AMEND, order_id=b1.id)]


def test_amend_to_the_same_quantity_and_price_is_rejected() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    b1 = m.buy("u1", 5, 100)

    events = m.amend("u1", b1.id, qty=5, price=100)

    assert events == [rejected("u1", Code.NOTHING_TO_AMEND, order_id=b1.id)]


def test_amend_to_a_price_off_the_tick_or_below_one_is_rejected() -> None:
    m = Market()
    m.open("u1", deposit=100_000)
    b1 = m.buy("u1", 5, 1000, symbol="gpu-SPOT")

    off_tick = m.amend("u1", b1.id, price=1005)
    zero = m.amend("u1", b1.id, price=0)

    assert off_tick == [rejected("u1", Code.PRICE_NOT_ON_TICK, order_id=b1.id)]
    assert zero == [rejected("u1", Code.INVALID_PRICE, order_id=b1.id)]
    assert m.bids("gpu-SPOT") == [(1000, 5)]


def test_larger_buy_amend_without_the_funds_is_rejected_and_changes_nothing() -> None:
    m = Market()
    m.open("u1", deposit=1_000)
    m.open("u2", deposit=1_000)
    b1 = m.buy("u1", 10, 100)
    b2 = m.buy("u2", 5, 100)

    larger = m.amend("u1", b1.id, qty=11)
    dearer = m.amend("u1", b1.id, price=101)

    assert larger == [rejected("u1", Code.INSUFFICIENT_FUNDS, order_id=b1.id)]
    assert dearer == [rejected("u1", Code.INSUFFICIENT_FUNDS, order_id=b1.id)]
    assert m.queue(BUY, 100) == [(b1.id, 10), (b2.id, 5)]
    assert m.balance("u1") == Balance(available=0, held=1_000, escrow=0)


def test_larger_sell_amend_without_the_capacity_is_rejected_and_changes_nothing() -> (
    None
):
    m = Market()
    m.open("u1", capacity=5)
    m.open("u2", capacity=5)
    a1 = m.sell("u1", 5, 100)
    a2 = m.sell("u2", 5, 100)

    events = m.amend("u1", a1.id, qty=6)

    assert events == [rejected("u1", Code.INSUFFICIENT_CAPACITY, order_id=a1.id)]
    assert m.queue(SELL, 100) == [(a1.id, 5), (a2.id, 5)]
    assert m.committed("u1") == 5


# -- amend: holds and trading -------------------------------------------------------


def test_smaller_buy_amend_releases_the_hold_of_the_removed_lots() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    b1 = m.buy("u1", 10, 100)

    m.amend("u1", b1.id, qty=4)

    assert m.balance("u1") == Balance(available=9_600, held=400, escrow=0)


def test_larger_buy_amend_holds_the_added_lots() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    b1 = m.buy("u1", 10, 100)

    m.amend("u1", b1.id, qty=15)

    assert m.balance("u1") == Balance(available=8_500, held=1_500, escrow=0)


def test_buy_price_amend_holds_at_the_new_price() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    b1 = m.buy("u1", 10, 100)

    m.amend("u1", b1.id, price=90)

    assert m.balance("u1") == Balance(available=9_100, held=900, escrow=0)
    assert m.bids() == [(90, 10)]


def test_price_amend_that_crosses_trades_at_the_maker_price() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    a1 = m.sell("u1", 5, 102)
    b1 = m.buy("u2", 5, 100)

    events = m.amend("u2", b1.id, price=105)

    assert events == [
        amended(
            b1.id, "u2", "buy", price=(100, 105), leaves=(5, 5), kept_priority=False
        ),
        trade(
            1,
            price=102,
            qty=5,
            taker_side="buy",
            maker=(a1.id, "u1", 0),
            taker=(b1.id, "u2", 0),
        ),
    ]
    assert m.bids() == []
    assert m.asks() == []
    assert not m.is_open(b1.id)
    assert m.balance("u2") == Balance(available=9_490, held=0, escrow=510)


def test_price_amend_that_partly_crosses_rests_its_remainder() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    m.open("u2", capacity=10)
    b1 = m.buy("u1", 3, 100)
    a1 = m.sell("u2", 5, 102)

    events = m.amend("u2", a1.id, price=99)

    assert events[1:] == [
        trade(
            1,
            price=100,
            qty=3,
            taker_side="sell",
            maker=(b1.id, "u1", 0),
            taker=(a1.id, "u2", 2),
        ),
    ]
    assert m.asks() == [(99, 2)]
    assert m.bids() == []


# -- cancel -------------------------------------------------------------------------


def test_cancel_takes_a_buy_off_the_book_and_releases_its_hold() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    b1 = m.buy("u1", 5, 100, coid="b")

    events = m.cancel("u1", b1.id)

    assert events == [
        cancelled(b1.id, "u1", "buy", 100, filled=0, reason="user", coid="b")
    ]
    assert m.bids() == []
    assert not m.is_open(b1.id)
    assert m.balance("u1") == Balance(available=10_000, held=0, escrow=0)


def test_cancel_of_a_sell_gives_its_capacity_back() -> None:
    m = Market()
    m.open("u1", capacity=10)
    a1 = m.sell("u1", 10, 100)

    m.cancel("u1", a1.id)

    assert m.committed("u1") == 0
    assert m.asks() == []


def test_cancel_of_a_partly_filled_buy_releases_only_its_open_lots() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    m.open("u2", capacity=10)
    b1 = m.buy("u1", 5, 100)
    m.sell("u2", 2, 100)

    events = m.cancel("u1", b1.id)

    assert events == [
        cancelled(b1.id, "u1", "buy", 100, filled=2, reason=CancelReason.USER)
    ]
    assert m.balance("u1") == Balance(available=9_800, held=0, escrow=200)


def test_cancel_of_the_middle_order_keeps_the_others_in_time_order() -> None:
    m = Market()
    for name in ("u1", "u2", "u3"):
        m.open(name, capacity=10)
    a1 = m.sell("u1", 1, 100)
    a2 = m.sell("u2", 2, 100)
    a3 = m.sell("u3", 3, 100)

    m.cancel("u2", a2.id)

    assert m.queue(SELL, 100) == [(a1.id, 1), (a3.id, 3)]
    assert m.asks() == [(100, 4)]


def test_cancel_of_another_accounts_order_is_rejected_as_not_owned() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    m.open("u2")
    b1 = m.buy("u1", 5, 100)

    cancel = m.cancel("u2", b1.id)
    amend = m.amend("u2", b1.id, qty=1)

    assert cancel == [rejected("u2", Code.ORDER_NOT_OWNED, order_id=b1.id)]
    assert amend == [rejected("u2", Code.ORDER_NOT_OWNED, order_id=b1.id)]
    assert m.bids() == [(100, 5)]


def test_cancel_of_another_accounts_closed_order_is_rejected_as_not_owned() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    m.open("u2")
    b1 = m.buy("u1", 5, 100)
    m.cancel("u1", b1.id)

    events = m.cancel("u2", b1.id)

    assert events == [rejected("u2", Code.ORDER_NOT_OWNED, order_id=b1.id)]


def test_cancel_of_an_unknown_order_is_rejected() -> None:
    m = Market()
    m.open("u1")

    events = m.cancel("u1", 999)

    assert events == [rejected("u1", Code.UNKNOWN_ORDER, order_id=999)]


def test_cancel_by_an_unknown_account_is_rejected() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    b1 = m.buy("u1", 5, 100)

    events = m.cancel("nobody", b1.id)

    assert events == [rejected("nobody", Code.UNKNOWN_ACCOUNT, order_id=b1.id)]
    assert m.bids() == [(100, 5)]


# -- terminal orders ----------------------------------------------------------------


def test_cancel_or_amend_of_a_filled_order_is_rejected_as_closed() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    m.open("u2", capacity=10)
    b1 = m.buy("u1", 2, 100)
    m.sell("u2", 2, 100)

    cancel = m.cancel("u1", b1.id)
    amend = m.amend("u1", b1.id, qty=5)

    assert cancel == [rejected("u1", Code.ORDER_CLOSED, order_id=b1.id)]
    assert amend == [rejected("u1", Code.ORDER_CLOSED, order_id=b1.id)]
    assert m.balance("u1") == Balance(available=9_800, held=0, escrow=200)


def test_second_cancel_of_an_order_is_rejected_as_closed() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    b1 = m.buy("u1", 2, 100)
    m.cancel("u1", b1.id)

    events = m.cancel("u1", b1.id)

    assert events == [rejected("u1", Code.ORDER_CLOSED, order_id=b1.id)]
    assert m.balance("u1") == Balance(available=10_000, held=0, escrow=0)


def test_cancel_of_an_expired_order_is_rejected_as_closed() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    expiry = m.now + SECOND
    g1 = m.buy("u1", 2, 100, tif="GTD", expire_at=expiry)
    m.tick(at=expiry)

    events = m.cancel("u1", g1.id)

    assert events == [rejected("u1", Code.ORDER_CLOSED, order_id=g1.id)]


def test_cancel_of_an_ioc_remainder_is_rejected_as_closed() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    x1 = m.buy("u1", 2, 100, tif="IOC")

    events = m.cancel("u1", x1.id)

    assert events == [rejected("u1", Code.ORDER_CLOSED, order_id=x1.id)]


def test_filled_cancelled_and_expired_orders_never_match_again() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    m.open("u2", capacity=20)
    expiry = m.now + SECOND
    filled = m.buy("u1", 2, 103)
    m.sell("u2", 2, 103)
    gone = m.buy("u1", 2, 102)
    m.cancel("u1", gone.id)
    m.buy("u1", 2, 101, tif="GTD", expire_at=expiry)
    m.tick(at=expiry)
    m.buy("u1", 2, 100, tif="IOC")

    s1 = m.sell("u2", 5, 100)

    assert not m.is_open(filled.id)
    assert s1.events[1:] == []
    assert m.asks() == [(100, 5)]
    assert m.bids() == []
    assert m.balance("u1") == Balance(available=9_794, held=0, escrow=206)

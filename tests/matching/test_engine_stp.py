"""Self-trade prevention: cancel-taker, cancel-maker and cancel-both.

Whatever the mode, an account never trades with itself, the book is never left
crossed, and a taker's remainder never rests against its own order.
"""

from harness import Balance, Market, accepted, cancelled, trade

from matching import CancelReason
from matching.order import SELL

STP = CancelReason.SELF_TRADE


def test_cancel_taker_cancels_the_incoming_order_when_it_reaches_its_own() -> None:
    m = Market()
    m.open("u1", deposit=10_000, capacity=10)
    a1 = m.sell("u1", 5, 100)

    b1 = m.buy("u1", 5, 100)

    assert b1.events == [
        accepted(b1.id, "u1", "buy", 5, 100),
        cancelled(b1.id, "u1", "buy", 100, filled=0, reason=STP),
    ]
    assert m.queue(SELL, 100) == [(a1.id, 5)]
    assert m.bids() == []
    assert m.balance("u1") == Balance(available=10_000, held=0, escrow=0)


def test_cancel_taker_is_the_default_mode() -> None:
    m = Market()
    m.open("u1", deposit=10_000, capacity=10)
    m.sell("u1", 5, 100)

    b1 = m.buy("u1", 5, 100)

    assert b1.events[-1] == cancelled(b1.id, "u1", "buy", 100, filled=0, reason=STP)


def test_cancel_taker_after_other_fills_keeps_them_and_rests_nothing() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000, capacity=10)
    a1 = m.sell("u1", 3, 100)
    a2 = m.sell("u2", 5, 101)

    b1 = m.buy("u2", 10, 101, stp="cancel_taker")

    assert b1.events[1:] == [
        trade(
            1,
            price=100,
            qty=3,
            taker_side="buy",
            maker=(a1.id, "u1", 0),
            taker=(b1.id, "u2", 7),
        ),
        cancelled(b1.id, "u2", "buy", 101, filled=3, reason=STP),
    ]
    assert m.bids() == []
    assert m.queue(SELL, 101) == [(a2.id, 5)]


def test_cancel_maker_cancels_the_own_resting_order_and_trades_on() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000, capacity=10)
    a1 = m.sell("u2", 5, 100)
    a2 = m.sell("u1", 3, 100)

    b1 = m.buy("u2", 4, 100, stp="cancel_maker")

    assert b1.events[1:] == [
        cancelled(a1.id, "u2", "sell", 100, filled=0, reason=STP),
        trade(
            1,
            price=100,
            qty=3,
            taker_side="buy",
            maker=(a2.id, "u1", 0),
            taker=(b1.id, "u2", 1),
        ),
    ]
    assert m.asks() == []
    assert m.bids() == [(100, 1)]
    assert m.committed("u2") == 0


def test_cancel_maker_remainder_rests_only_once_no_own_order_crosses_it() -> None:
    # Own asks at 100 and 101 both cross the 102 bid; both go before it rests.
    m = Market()
    m.open("u1", deposit=10_000, capacity=10)
    a1 = m.sell("u1", 2, 100)
    a2 = m.sell("u1", 2, 101)

    b1 = m.buy("u1", 5, 102, stp="cancel_maker")

    assert b1.events == [
        accepted(b1.id, "u1", "buy", 5, 102),
        cancelled(a1.id, "u1", "sell", 100, filled=0, reason=STP),
        cancelled(a2.id, "u1", "sell", 101, filled=0, reason=STP),
    ]
    assert m.asks() == []
    assert m.bids() == [(102, 5)]


def test_cancel_maker_also_cancels_a_partly_filled_own_order() -> None:
    m = Market()
    m.open("u1", deposit=10_000, capacity=10)
    m.open("u2", deposit=10_000)
    a1 = m.sell("u1", 5, 100)
    m.buy("u2", 2, 100)

    b1 = m.buy("u1", 1, 100, stp="cancel_maker")

    assert b1.events[1] == cancelled(a1.id, "u1", "sell", 100, filled=2, reason=STP)
    # The two lots sold stay committed until delivery.
    assert m.committed("u1") == 2


def test_cancel_both_cancels_the_own_maker_and_the_taker() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000, capacity=10)
    a1 = m.sell("u1", 2, 100)
    a2 = m.sell("u2", 5, 100)
    a3 = m.sell("u1", 5, 100)

    b1 = m.buy("u2", 10, 100, stp="cancel_both")

    assert b1.events[1:] == [
        trade(
            1,
            price=100,
            qty=2,
            taker_side="buy",
            maker=(a1.id, "u1", 0),
            taker=(b1.id, "u2", 8),
        ),
        cancelled(a2.id, "u2", "sell", 100, filled=0, reason=STP),
        cancelled(b1.id, "u2", "buy", 100, filled=2, reason=STP),
    ]
    assert m.queue(SELL, 100) == [(a3.id, 5)]
    assert m.bids() == []
    assert m.balance("u2") == Balance(available=9_800, held=0, escrow=200)


def test_self_trade_prevention_follows_the_takers_mode_not_the_makers() -> None:
    m = Market()
    m.open("u1", deposit=10_000, capacity=10)
    a1 = m.sell("u1", 5, 100, stp="cancel_maker")

    b1 = m.buy("u1", 5, 100, stp="cancel_taker")

    assert b1.events[1:] == [cancelled(b1.id, "u1", "buy", 100, filled=0, reason=STP)]
    assert m.queue(SELL, 100) == [(a1.id, 5)]


def test_market_order_stopped_by_its_own_order_is_cancelled_for_self_trade() -> None:
    m = Market()
    m.open("u1", deposit=10_000, capacity=10)
    m.open("u2", capacity=10)
    a1 = m.sell("u2", 1, 100)
    m.sell("u1", 5, 101)

    b1 = m.buy("u1", 5, market=True, tif="IOC")

    assert b1.events[1:] == [
        trade(
            1,
            price=100,
            qty=1,
            taker_side="buy",
            maker=(a1.id, "u2", 0),
            taker=(b1.id, "u1", 4),
        ),
        cancelled(b1.id, "u1", "buy", None, filled=1, reason=STP),
    ]
    assert m.asks() == [(101, 5)]


def test_price_amend_into_an_own_order_cancels_the_amended_order() -> None:
    m = Market()
    m.open("u1", deposit=10_000, capacity=10)
    a1 = m.sell("u1", 5, 101)
    b1 = m.buy("u1", 5, 100)

    events = m.amend("u1", b1.id, price=101)

    assert events[1:] == [cancelled(b1.id, "u1", "buy", 101, filled=0, reason=STP)]
    assert m.queue(SELL, 101) == [(a1.id, 5)]
    assert m.bids() == []
    assert m.balance("u1") == Balance(available=10_000, held=0, escrow=0)

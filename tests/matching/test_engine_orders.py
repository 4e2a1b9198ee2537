"""Limit and market orders: price-time priority and the maker price rule."""

from harness import (
    CPU,
    GPU,
    Balance,
    Market,
    accepted,
    cancelled,
    trade,
)

from matching import CancelReason, PlaceOrder, Trade
from matching.order import BUY, SELL


def test_limit_buy_that_does_not_cross_rests_on_the_bid() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    m.open("u2", capacity=10)
    m.sell("u2", 5, 101)

    b1 = m.buy("u1", 10, 100)

    assert b1.events == [accepted(b1.id, "u1", "buy", 10, 100)]
    assert m.bids() == [(100, 10)]
    assert m.asks() == [(101, 5)]
    assert m.balance("u1") == Balance(available=9_000, held=1_000, escrow=0)


def test_order_id_is_the_sequence_number_of_its_place_command() -> None:
    m = Market()
    m.open("u1", deposit=10_000)

    events = m.apply(PlaceOrder("u1", CPU, "buy", 1, price=100))

    seq = m.journal[-1][0]
    assert events == [accepted(seq, "u1", "buy", 1, 100)]
    assert m.is_open(seq)


def test_crossing_buy_trades_at_the_resting_ask_price_not_its_own_limit() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    a1 = m.sell("u1", 5, 100)

    b1 = m.buy("u2", 5, 105)

    assert b1.events == [
        accepted(b1.id, "u2", "buy", 5, 105),
        trade(
            1,
            price=100,
            qty=5,
            taker_side="buy",
            maker=(a1.id, "u1", 0),
            taker=(b1.id, "u2", 0),
        ),
    ]
    assert m.balance("u2") == Balance(available=9_500, held=0, escrow=500)


def test_crossing_sell_trades_at_the_resting_bid_price_not_its_own_limit() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    m.open("u2", capacity=10)
    b1 = m.buy("u1", 5, 100)

    s1 = m.sell("u2", 5, 90)

    assert s1.events == [
        accepted(s1.id, "u2", "sell", 5, 90),
        trade(
            1,
            price=100,
            qty=5,
            taker_side="sell",
            maker=(b1.id, "u1", 0),
            taker=(s1.id, "u2", 0),
        ),
    ]
    assert m.balance("u1") == Balance(available=9_500, held=0, escrow=500)


def test_orders_at_one_price_fill_oldest_first() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", capacity=10)
    m.open("u3", deposit=10_000)
    a1 = m.sell("u1", 3, 100)
    a2 = m.sell("u2", 3, 100)

    b1 = m.buy("u3", 4, 100)

    assert b1.events[1:] == [
        trade(
            1,
            price=100,
            qty=3,
            taker_side="buy",
            maker=(a1.id, "u1", 0),
            taker=(b1.id, "u3", 1),
        ),
        trade(
            2,
            price=100,
            qty=1,
            taker_side="buy",
            maker=(a2.id, "u2", 2),
            taker=(b1.id, "u3", 0),
        ),
    ]
    assert m.queue(SELL, 100) == [(a2.id, 2)]


def test_a_better_priced_level_fills_before_an_older_worse_one() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", capacity=10)
    m.open("u3", deposit=10_000)
    a1 = m.sell("u1", 3, 101)
    a2 = m.sell("u2", 3, 100)

    b1 = m.buy("u3", 4, 101)

    assert b1.events[1:] == [
        trade(
            1,
            price=100,
            qty=3,
            taker_side="buy",
            maker=(a2.id, "u2", 0),
            taker=(b1.id, "u3", 1),
        ),
        trade(
            2,
            price=101,
            qty=1,
            taker_side="buy",
            maker=(a1.id, "u1", 2),
            taker=(b1.id, "u3", 0),
        ),
    ]
    assert m.asks() == [(101, 2)]
    assert m.bids() == []


def test_crossing_limit_order_rests_its_remainder_at_its_own_limit() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    m.sell("u1", 3, 100)

    b1 = m.buy("u2", 5, 102)

    assert m.asks() == []
    assert m.bids() == [(102, 2)]
    assert m.queue(BUY, 102) == [(b1.id, 2)]
    # 3 lots paid at 100; the 2 open lots hold their limit price.
    assert m.balance("u2") == Balance(available=9_496, held=204, escrow=300)


def test_market_buy_sweeps_the_asks_best_first_and_cancels_the_unfilled_rest() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    a1 = m.sell("u1", 2, 100)
    a2 = m.sell("u1", 3, 105)

    b1 = m.buy("u2", 10, market=True, tif="IOC")

    assert b1.events == [
        accepted(b1.id, "u2", "buy", 10, None, order_type="market", tif="IOC"),
        trade(
            1,
            price=100,
            qty=2,
            taker_side="buy",
            maker=(a1.id, "u1", 0),
            taker=(b1.id, "u2", 8),
        ),
        trade(
            2,
            price=105,
            qty=3,
            taker_side="buy",
            maker=(a2.id, "u1", 0),
            taker=(b1.id, "u2", 5),
        ),
        cancelled(b1.id, "u2", "buy", None, filled=5, reason=CancelReason.UNFILLED),
    ]
    assert m.bids() == []
    assert m.asks() == []
    assert not m.is_open(b1.id)
    assert m.balance("u2") == Balance(available=9_485, held=0, escrow=515)


def test_market_sell_sweeps_the_bids_best_first_and_cancels_the_unfilled_rest() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    m.open("u2", capacity=10)
    b1 = m.buy("u1", 2, 99)
    b2 = m.buy("u1", 3, 98)

    s1 = m.sell("u2", 7, market=True, tif="IOC")

    assert s1.events == [
        accepted(s1.id, "u2", "sell", 7, None, order_type="market", tif="IOC"),
        trade(
            1,
            price=99,
            qty=2,
            taker_side="sell",
            maker=(b1.id, "u1", 0),
            taker=(s1.id, "u2", 5),
        ),
        trade(
            2,
            price=98,
            qty=3,
            taker_side="sell",
            maker=(b2.id, "u1", 0),
            taker=(s1.id, "u2", 2),
        ),
        cancelled(s1.id, "u2", "sell", None, filled=5, reason=CancelReason.UNFILLED),
    ]
    assert m.bids() == []
    # The cancelled 2 lots give their capacity back; the 5 sold stay committed.
    assert m.committed("u2") == 5


def test_market_order_on_an_empty_side_is_cancelled_unfilled() -> None:
    m = Market()
    m.open("u1", deposit=10_000)

    b1 = m.buy("u1", 5, market=True, tif="IOC")

    assert b1.events == [
        accepted(b1.id, "u1", "buy", 5, None, order_type="market", tif="IOC"),
        cancelled(b1.id, "u1", "buy", None, filled=0, reason=CancelReason.UNFILLED),
    ]
    assert m.balance("u1") == Balance(available=10_000, held=0, escrow=0)


def test_market_buy_holds_nothing_and_pays_each_fill_from_available() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=1_000)
    m.sell("u1", 4, 100)

    m.buy("u2", 4, market=True, tif="IOC")

    assert m.balance("u2") == Balance(available=600, held=0, escrow=400)


def test_market_buy_stops_when_the_next_lot_is_not_affordable() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=350)
    a1 = m.sell("u1", 5, 100)

    b1 = m.buy("u2", 5, market=True, tif="IOC")

    assert b1.events[1:] == [
        trade(
            1,
            price=100,
            qty=3,
            taker_side="buy",
            maker=(a1.id, "u1", 2),
            taker=(b1.id, "u2", 2),
        ),
        cancelled(
            b1.id,
            "u2",
            "buy",
            None,
            filled=3,
            reason=CancelReason.INSUFFICIENT_FUNDS,
        ),
    ]
    assert m.balance("u2") == Balance(available=50, held=0, escrow=300)
    assert m.asks() == [(100, 2)]


def test_market_buy_with_no_money_against_asks_fills_nothing() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2")
    m.sell("u1", 5, 100)

    b1 = m.buy("u2", 1, market=True, tif="IOC")

    assert b1.events[1:] == [
        cancelled(
            b1.id,
            "u2",
            "buy",
            None,
            filled=0,
            reason=CancelReason.INSUFFICIENT_FUNDS,
        )
    ]
    assert m.asks() == [(100, 5)]
    assert m.balance("u2") == Balance(available=0, held=0, escrow=0)


def test_market_buy_budget_counts_the_taker_fee_of_every_fill() -> None:
    # gpu: taker 25 bps. 4 lots at 1000 cost 4000 + fee 10 = 4010; a fifth
    # would cost 5000 + 13 = 5013 > 5012.
    m = Market()
    m.open("u1", capacity=10, symbol=GPU)
    m.open("u2", deposit=5_012)
    a1 = m.sell("u1", 5, 1000, symbol=GPU)

    b1 = m.buy("u2", 5, market=True, tif="IOC", symbol=GPU)

    assert b1.events[1] == trade(
        1,
        price=1000,
        qty=4,
        taker_side="buy",
        maker=(a1.id, "u1", 1),
        taker=(b1.id, "u2", 1),
        buyer_fee=10,
        symbol=GPU,
    )
    assert m.balance("u2") == Balance(available=1_002, held=0, escrow=4_000)
    assert m.fee_income == 10


def test_client_order_id_is_echoed_in_every_event_of_its_order() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    a1 = m.sell("u1", 2, 100)

    b1 = m.buy("u2", 5, 100, tif="IOC", coid="mine")

    assert b1.events == [
        accepted(b1.id, "u2", "buy", 5, 100, tif="IOC", coid="mine"),
        trade(
            1,
            price=100,
            qty=2,
            taker_side="buy",
            maker=(a1.id, "u1", 0),
            taker=(b1.id, "u2", 3),
        ),
        cancelled(
            b1.id,
            "u2",
            "buy",
            100,
            filled=2,
            reason=CancelReason.UNFILLED,
            coid="mine",
        ),
    ]


def test_a_long_queue_fills_in_time_order_after_many_fills_and_cancels() -> None:
    m = Market()
    for i in range(4):
        m.open(f"s{i}", capacity=1_000)
    m.open("u1", deposit=1_000_000)
    ids = [m.sell(f"s{i % 4}", 1, 100).id for i in range(300)]
    m.buy("u1", 150, 100)
    for n, order_id in enumerate(ids[150:200]):
        if n % 2:
            m.cancel(f"s{ids.index(order_id) % 4}", order_id)

    b2 = m.buy("u1", 30, 100)

    left = ids[150:200:2] + ids[200:]
    trades = [e for e in b2.events if isinstance(e, Trade)]
    assert [t.maker_order_id for t in trades] == left[:30]
    assert m.queue(SELL, 100) == [(i, 1) for i in left[30:]]


def test_best_price_stays_right_while_many_levels_come_and_go() -> None:
    m = Market()
    m.open("s", capacity=10_000)
    m.open("u1", deposit=10**9)
    asks = {m.sell("s", 1, price).id: price for price in range(300, 100, -1)}
    for order_id, price in asks.items():
        if price % 3:
            m.cancel("s", order_id)

    b1 = m.buy("u1", 3, 300, tif="IOC")

    trades = [e for e in b1.events if isinstance(e, Trade)]
    assert [t.price for t in trades] == [102, 105, 108]
    assert m.asks() == [(price, 1) for price in range(111, 301, 3)]

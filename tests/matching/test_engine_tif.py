"""Time in force: IOC, FOK, GTD, and post-only orders."""

from harness import (
    CPU,
    GPU,
    STEP,
    Balance,
    Market,
    accepted,
    amended,
    cancelled,
    expired,
    rejected,
    trade,
)

from matching import CancelReason, Code, PlaceOrder
from matching.order import BUY, SELL

SECOND = 1_000_000_000


# -- IOC --------------------------------------------------------------------------


def test_ioc_fills_what_it_can_and_cancels_the_rest_without_resting() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    a1 = m.sell("u1", 3, 100)

    x1 = m.buy("u2", 5, 101, tif="IOC")

    assert x1.events == [
        accepted(x1.id, "u2", "buy", 5, 101, tif="IOC"),
        trade(
            1,
            price=100,
            qty=3,
            taker_side="buy",
            maker=(a1.id, "u1", 0),
            taker=(x1.id, "u2", 2),
        ),
        cancelled(x1.id, "u2", "buy", 101, filled=3, reason=CancelReason.UNFILLED),
    ]
    assert m.bids() == []
    assert m.asks() == []
    assert m.balance("u2") == Balance(available=9_700, held=0, escrow=300)


def test_ioc_with_nothing_to_trade_is_cancelled_unfilled_and_holds_nothing() -> None:
    m = Market()
    m.open("u1", deposit=10_000)

    x1 = m.buy("u1", 5, 100, tif="IOC")

    assert x1.events == [
        accepted(x1.id, "u1", "buy", 5, 100, tif="IOC"),
        cancelled(x1.id, "u1", "buy", 100, filled=0, reason=CancelReason.UNFILLED),
    ]
    assert m.bids() == []
    assert m.balance("u1") == Balance(available=10_000, held=0, escrow=0)


def test_ioc_sell_remainder_gives_its_capacity_back() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    m.open("u2", capacity=10)
    m.buy("u1", 2, 100)

    m.sell("u2", 10, 100, tif="IOC")

    assert m.asks() == []
    assert m.committed("u2") == 2


# -- FOK --------------------------------------------------------------------------


def test_fok_that_can_fill_completely_fills_across_levels() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    a1 = m.sell("u1", 3, 100)
    a2 = m.sell("u1", 3, 101)

    f1 = m.buy("u2", 5, 101, tif="FOK")

    assert f1.events == [
        accepted(f1.id, "u2", "buy", 5, 101, tif="FOK"),
        trade(
            1,
            price=100,
            qty=3,
            taker_side="buy",
            maker=(a1.id, "u1", 0),
            taker=(f1.id, "u2", 2),
        ),
        trade(
            2,
            price=101,
            qty=2,
            taker_side="buy",
            maker=(a2.id, "u1", 1),
            taker=(f1.id, "u2", 0),
        ),
    ]
    assert m.asks() == [(101, 1)]
    assert m.balance("u2") == Balance(available=9_498, held=0, escrow=502)


def test_fok_that_cannot_fill_completely_has_no_effect_on_book_or_ledger() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    m.sell("u1", 3, 100)
    m.sell("u1", 2, 101)
    m.sell("u1", 4, 102)

    f1 = m.buy("u2", 6, 101, tif="FOK")

    assert f1.events == [
        accepted(f1.id, "u2", "buy", 6, 101, tif="FOK"),
        cancelled(f1.id, "u2", "buy", 101, filled=0, reason=CancelReason.FILL_OR_KILL),
    ]
    assert m.asks() == [(100, 3), (101, 2), (102, 4)]
    assert m.bids() == []
    assert m.balance("u2") == Balance(available=10_000, held=0, escrow=0)
    assert m.balance("u1") == Balance(available=0, held=0, escrow=0)
    assert m.committed("u1") == 9
    assert m.engine.trade_seq == 0


def test_fok_sell_that_cannot_fill_completely_gives_its_capacity_back() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    m.open("u2", capacity=10)
    m.buy("u1", 4, 100)

    f1 = m.sell("u2", 5, 100, tif="FOK")

    assert f1.events[1:] == [
        cancelled(f1.id, "u2", "sell", 100, filled=0, reason=CancelReason.FILL_OR_KILL),
    ]
    assert m.bids() == [(100, 4)]
    assert m.committed("u2") == 0


def test_fok_counts_self_trade_prevention_in_its_feasibility() -> None:
    # Three lots of another seller, then the buyer's own ask: cancel-taker would
    # stop the match at the own ask after 3 lots, so a FOK for 6 cannot fill.
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000, capacity=10)
    a1 = m.sell("u1", 3, 100)
    a2 = m.sell("u2", 5, 100)
    m.sell("u1", 5, 101)

    f1 = m.buy("u2", 6, 101, tif="FOK")

    assert f1.events[1:] == [
        cancelled(f1.id, "u2", "buy", 101, filled=0, reason=CancelReason.FILL_OR_KILL),
    ]
    assert m.queue(SELL, 100) == [(a1.id, 3), (a2.id, 5)]
    assert m.asks() == [(100, 8), (101, 5)]
    assert m.balance("u2") == Balance(available=10_000, held=0, escrow=0)


def test_fok_with_cancel_maker_fills_past_its_own_cancelled_order() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000, capacity=10)
    a1 = m.sell("u1", 3, 100)
    a2 = m.sell("u2", 5, 100)
    a3 = m.sell("u1", 5, 101)

    f1 = m.buy("u2", 6, 101, tif="FOK", stp="cancel_maker")

    assert f1.events == [
        accepted(f1.id, "u2", "buy", 6, 101, tif="FOK"),
        trade(
            1,
            price=100,
            qty=3,
            taker_side="buy",
            maker=(a1.id, "u1", 0),
            taker=(f1.id, "u2", 3),
        ),
        cancelled(a2.id, "u2", "sell", 100, filled=0, reason=CancelReason.SELF_TRADE),
        trade(
            2,
            price=101,
            qty=3,
            taker_side="buy",
            maker=(a3.id, "u1", 2),
            taker=(f1.id, "u2", 0),
        ),
    ]
    assert m.asks() == [(101, 2)]
    assert m.committed("u2") == 0


def test_fok_that_fills_before_reaching_its_own_order_fills() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000, capacity=10)
    a1 = m.sell("u1", 5, 100)
    a2 = m.sell("u2", 5, 100)

    f1 = m.buy("u2", 5, 100, tif="FOK")

    assert f1.events[1:] == [
        trade(
            1,
            price=100,
            qty=5,
            taker_side="buy",
            maker=(a1.id, "u1", 0),
            taker=(f1.id, "u2", 0),
        ),
    ]
    assert m.queue(SELL, 100) == [(a2.id, 5)]


def test_fok_with_cancel_maker_that_cannot_fill_leaves_its_own_order_alone() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000, capacity=10)
    a1 = m.sell("u2", 5, 100)
    a2 = m.sell("u1", 2, 100)

    f1 = m.buy("u2", 5, 100, tif="FOK", stp="cancel_maker")

    assert f1.events[1:] == [
        cancelled(f1.id, "u2", "buy", 100, filled=0, reason=CancelReason.FILL_OR_KILL),
    ]
    assert m.queue(SELL, 100) == [(a1.id, 5), (a2.id, 2)]
    assert m.committed("u2") == 5


def test_fok_market_buy_that_cannot_afford_every_lot_has_no_effect() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=499)
    m.sell("u1", 5, 100)

    f1 = m.buy("u2", 5, market=True, tif="FOK")

    assert f1.events == [
        accepted(f1.id, "u2", "buy", 5, None, order_type="market", tif="FOK"),
        cancelled(f1.id, "u2", "buy", None, filled=0, reason=CancelReason.FILL_OR_KILL),
    ]
    assert m.asks() == [(100, 5)]
    assert m.balance("u2") == Balance(available=499, held=0, escrow=0)


def test_fok_market_buy_that_can_afford_every_lot_fills() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=500)
    m.sell("u1", 5, 100)

    f1 = m.buy("u2", 5, market=True, tif="FOK")

    assert len(f1.events) == 2
    assert m.asks() == []
    assert m.balance("u2") == Balance(available=0, held=0, escrow=500)


# -- GTD --------------------------------------------------------------------------


def test_gtd_order_rests_until_a_command_reaches_its_expiry() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    expiry = m.now + 10 * SECOND
    g1 = m.buy("u1", 5, 100, tif="GTD", expire_at=expiry)

    before = m.tick(at=expiry - 1)
    at_expiry = m.tick(at=expiry)

    assert g1.events == [
        accepted(g1.id, "u1", "buy", 5, 100, tif="GTD", expire_at=expiry)
    ]
    assert before == []
    assert at_expiry == [expired(g1.id, "u1", "buy", 100)]
    assert m.bids() == []
    assert not m.is_open(g1.id)
    assert m.balance("u1") == Balance(available=10_000, held=0, escrow=0)


def test_gtd_order_expires_before_a_command_stamped_at_its_expiry_is_applied() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    expiry = m.now + SECOND
    g1 = m.sell("u1", 5, 100, tif="GTD", expire_at=expiry)

    b1 = m.buy("u2", 5, 100, at=expiry)

    assert b1.events == [
        expired(g1.id, "u1", "sell", 100),
        accepted(b1.id, "u2", "buy", 5, 100),
    ]
    assert m.asks() == []
    assert m.bids() == [(100, 5)]
    assert m.committed("u1") == 0


def test_partly_filled_gtd_order_expires_and_releases_the_hold_of_its_open_lots() -> (
    None
):
    m = Market()
    m.open("u1", deposit=10_000)
    m.open("u2", capacity=10)
    expiry = m.now + SECOND
    g1 = m.buy("u1", 5, 100, tif="GTD", expire_at=expiry)
    m.sell("u2", 2, 100)

    events = m.tick(at=expiry)

    assert events == [expired(g1.id, "u1", "buy", 100, filled=2)]
    assert m.balance("u1") == Balance(available=9_800, held=0, escrow=200)


def test_gtd_order_with_an_expiry_not_after_the_command_time_is_rejected() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    ts = m.now + STEP

    past = m.buy("u1", 5, 100, tif="GTD", expire_at=ts - 1, at=ts)
    now = m.buy("u1", 5, 100, tif="GTD", expire_at=ts, at=ts)

    assert past.events == [rejected("u1", Code.INVALID_EXPIRY)]
    assert now.events == [rejected("u1", Code.INVALID_EXPIRY)]
    assert m.bids() == []
    assert m.balance("u1") == Balance(available=10_000, held=0, escrow=0)


def test_gtd_order_without_an_expiry_is_rejected() -> None:
    m = Market()
    m.open("u1", deposit=10_000)

    g1 = m.buy("u1", 5, 100, tif="GTD")

    assert g1.events == [rejected("u1", Code.INVALID_EXPIRY)]


def test_gtc_order_with_an_expiry_is_rejected() -> None:
    m = Market()
    m.open("u1", deposit=10_000)

    b1 = m.buy("u1", 5, 100, expire_at=m.now + SECOND)

    assert b1.events == [rejected("u1", Code.INVALID_EXPIRY)]


def test_cancelled_gtd_order_gives_no_expiry_event_later() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    expiry = m.now + SECOND
    g1 = m.buy("u1", 5, 100, tif="GTD", expire_at=expiry)
    m.cancel("u1", g1.id)

    events = m.tick(at=expiry)

    assert events == []


def test_gtd_order_that_fills_completely_on_arrival_never_expires() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    m.sell("u1", 5, 100)
    expiry = m.now + SECOND
    m.buy("u2", 5, 100, tif="GTD", expire_at=expiry)

    events = m.tick(at=expiry)

    assert events == []


def test_gtd_order_keeps_its_expiry_after_an_amend_that_loses_priority() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    expiry = m.now + SECOND
    g1 = m.buy("u1", 5, 100, tif="GTD", expire_at=expiry)
    m.amend("u1", g1.id, qty=8, price=99)

    events = m.tick(at=expiry)

    assert events == [expired(g1.id, "u1", "buy", 99)]
    assert m.bids() == []
    assert m.balance("u1") == Balance(available=10_000, held=0, escrow=0)


def test_expiries_come_first_and_in_expiry_order() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    late = m.now + 2 * SECOND
    early = m.now + SECOND
    g1 = m.buy("u1", 1, 100, tif="GTD", expire_at=late)
    g2 = m.buy("u1", 1, 99, tif="GTD", expire_at=early)

    b1 = m.buy("u1", 1, 98, at=late)

    assert b1.events == [
        expired(g2.id, "u1", "buy", 99),
        expired(g1.id, "u1", "buy", 100),
        accepted(b1.id, "u1", "buy", 1, 98),
    ]


# -- post-only --------------------------------------------------------------------


def test_post_only_order_that_does_not_cross_rests() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    m.sell("u1", 5, 101)

    p1 = m.buy("u2", 5, 100, post_only=True)

    assert p1.events == [accepted(p1.id, "u2", "buy", 5, 100, post_only=True)]
    assert m.bids() == [(100, 5)]


def test_post_only_order_that_would_trade_is_rejected_and_changes_nothing() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    m.sell("u1", 5, 100)

    p1 = m.buy("u2", 5, 100, post_only=True, coid="p")

    assert p1.events == [rejected("u2", Code.WOULD_TRADE, coid="p")]
    assert m.asks() == [(100, 5)]
    assert m.bids() == []
    assert m.balance("u2") == Balance(available=10_000, held=0, escrow=0)


def test_post_only_gtd_order_rests_and_expires() -> None:
    m = Market()
    m.open("u1", capacity=10)
    expiry = m.now + SECOND
    p1 = m.sell("u1", 5, 100, tif="GTD", expire_at=expiry, post_only=True)

    events = m.tick(at=expiry)

    assert events == [expired(p1.id, "u1", "sell", 100)]


def test_post_only_amend_to_a_crossing_price_is_rejected_and_changes_nothing() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    m.sell("u1", 5, 101)
    p1 = m.buy("u2", 5, 100, post_only=True, coid="p")

    events = m.amend("u2", p1.id, price=101)

    assert events == [rejected("u2", Code.WOULD_TRADE, order_id=p1.id, coid="p")]
    assert m.bids() == [(100, 5)]
    assert m.asks() == [(101, 5)]
    assert m.balance("u2") == Balance(available=9_500, held=500, escrow=0)


def test_post_only_amend_to_a_price_that_does_not_cross_moves_the_order() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    m.sell("u1", 5, 102)
    p1 = m.buy("u2", 5, 100, post_only=True)

    events = m.amend("u2", p1.id, price=101)

    assert events == [
        amended(
            p1.id, "u2", "buy", price=(100, 101), leaves=(5, 5), kept_priority=False
        )
    ]
    assert m.queue(BUY, 101) == [(p1.id, 5)]


def test_post_only_order_on_a_fee_instrument_holds_the_maker_or_taker_fee() -> None:
    # gpu: the hold per lot is the price plus the higher of the two fees of a
    # one-lot fill at the limit: 1000 + ceil(1000 * 25 / 10_000) = 1003.
    m = Market()
    m.open("u1", deposit=10_000)

    m.buy("u1", 5, 1000, symbol=GPU, post_only=True)

    assert m.balance("u1") == Balance(available=4_985, held=5_015, escrow=0)


# -- defaults -----------------------------------------------------------------------


def test_limit_order_without_time_in_force_rests_as_gtc() -> None:
    m = Market()
    m.open("u1", deposit=10_000)

    events = m.apply(PlaceOrder("u1", CPU, "buy", 5, price=100))

    assert events == [accepted(m.engine.seq, "u1", "buy", 5, 100, tif="GTC")]
    assert m.bids() == [(100, 5)]


def test_market_order_without_time_in_force_is_ioc() -> None:
    m = Market()
    m.open("u1", capacity=10)
    m.open("u2", deposit=10_000)
    a1 = m.sell("u1", 3, 100)

    events = m.apply(PlaceOrder("u2", CPU, "buy", 5, "market"))

    taker = m.engine.seq
    assert events == [
        accepted(taker, "u2", "buy", 5, None, order_type="market", tif="IOC"),
        trade(
            1,
            price=100,
            qty=3,
            taker_side="buy",
            maker=(a1.id, "u1", 0),
            taker=(taker, "u2", 2),
        ),
        cancelled(taker, "u2", "buy", None, filled=3, reason=CancelReason.UNFILLED),
    ]
    assert m.bids() == []
